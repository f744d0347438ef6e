/*
 * Model weights in one HDF5 file, written and read collectively with parallel
 * HDF5 (MPI-IO). Every tensor is stored once with its GLOBAL shape (task
 * tensors stacked along axis 0): /params/<name>, /buffers/<name>, float32,
 * chunked per task, fletcher32 checksums. Shared tensors are written by rank 0,
 * task tensors by the ranks of replica 0 (their task rows); every other rank
 * joins each collective write with an empty selection. Because shapes are
 * global, a file written on P ranks loads on any P'.
 *
 * Root attributes: format = "taskrel-weights", version, tasks, world_size,
 * replicas, shards, and (save) the resolved config text and the run's
 * provenance: run_id and data_fingerprint (see tr_provenance).
 */
#ifndef TASKREL_WEIGHTS_H
#define TASKREL_WEIGHTS_H

#include "taskrel/config.h"
#include "taskrel/comm.h"
#include "taskrel/params.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_WEIGHTS_VERSION 1
#define TR_RUN_ID_LEN 40

/* Where a file's weights came from: the run (an id made at the run's first
 * start and kept across resumes) and the dataset it trained on (a fingerprint
 * of its contents, tr_dataset_fingerprint). Stored as the root attributes
 * run_id and data_fingerprint of checkpoints and model.h5. */
typedef struct {
    char run_id[TR_RUN_ID_LEN];
    char data_fingerprint[TR_RUN_ID_LEN];
    /* where and how it ran (this start of the run; "" if unknown): attributes
     * taskrel_version, git_revision, command_line, hosts, slurm_job_id, blas */
    char version[32];
    char git_revision[48];
    char command_line[1024];
    char hosts[1024]; /* distinct host names of the ranks, comma separated */
    char slurm_job_id[32];
    char blas[160]; /* tr_blas_config(): OpenBLAS's version and kernel set */
    int world_size;
} tr_provenance;

/* Collective over g->world. buffers and prov may be NULL or empty. */
tr_status tr_weights_save(const char *path, const tr_params *params, const tr_params *buffers,
                          const tr_grid *g, const tr_config *cfg, const tr_provenance *prov);
/* Collective over g->world: each rank reads its own slices. A missing file,
 * a missing tensor or a shape that does not match the model raises
 * TR_ERR_DATA naming the file and the tensor. */
tr_status tr_weights_load(const char *path, tr_params *params, tr_params *buffers,
                          const tr_grid *g);

#ifdef __cplusplus
}
#endif
#endif
