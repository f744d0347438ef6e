/*
 * Resumable training checkpoints in one HDF5 file each, written and read
 * collectively with parallel HDF5 (MPI-IO). docs/checkpoints.md is the format
 * reference; in short:
 *
 *   /params/<name>      float32, GLOBAL shape (task tensors stacked on axis 0)
 *   /buffers/<name>     float32, BN running statistics
 *   /optim/m/<name>     float32, momentum / Adam first moment (params' layout)
 *   /optim/v/<name>     float32, Adam second moment (AdamW only)
 *   /best/params/<name>, /best/buffers/<name>   the model selected so far on
 *                       validation (absent before the first validation)
 *   /train/window       float64 (T, 4): training stats since the last validation
 *   <extra paths>       float64, replicated state (MRN covariances, MRAN alpha)
 *   /relations          relation matrices for inspect/plot (taskrel/relations.h)
 *
 * Every dataset is chunked with fletcher32 checksums; the file uses the
 * HDF5 1.8+ object format so that superblock and object headers (and so every
 * attribute) carry metadata checksums too. Root attributes: format, version,
 * step, epoch, cursor, steps_per_epoch, total_steps, seed, rng, opt_kind,
 * opt_t, best_step, best_score, train_seconds, samples, tasks, task_names,
 * world_size, replicas, shards, model_kind, config, run_id, data_fingerprint.
 *
 * Ownership of the I/O: shared tensors are written by rank 0, task rows by the
 * ranks of replica 0, extra state by rank 0; every other rank joins each
 * collective write with an empty selection. Every rank reads the slices it
 * holds, so a checkpoint written on P ranks loads on any P' (any grid).
 *
 * Atomicity: tr_checkpoint_save writes <path> as given; tr_checkpoint_write
 * writes <dir>/ckpt-<step>.h5.tmp, closes it, renames it to ckpt-<step>.h5,
 * points the symlink <dir>/latest at it and removes all but the newest `keep`.
 */
#ifndef TASKREL_CHECKPOINT_H
#define TASKREL_CHECKPOINT_H

#include "taskrel/config.h"
#include "taskrel/comm.h"
#include "taskrel/params.h"
#include "taskrel/relations.h"
#include "taskrel/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_CHECKPOINT_FORMAT "taskrel-checkpoint"
#define TR_CHECKPOINT_VERSION 1
#define TR_MAX_EXTRA 64
#define TR_EXTRA_NAME_LEN 96

/* A replicated float64 array (identical on every rank) saved with the
 * checkpoint and restored in place on resume: MRN covariances, precisions and
 * eigenvectors, the MRAN alpha matrix. `name` is the HDF5 path, e.g.
 * "/mrn/fc8/sigma3" (intermediate groups are created); `data` is not owned. */
typedef struct {
    char name[TR_EXTRA_NAME_LEN];
    double *data; /* (dims[0], ..., dims[ndim-1]) row-major */
    int ndim;     /* 1..3 */
    int64_t dims[3];
} tr_extra_state;

/* Scalar training state (root attributes). */
typedef struct {
    int64_t step;            /* steps completed: the resumed run starts at this step */
    int64_t steps_per_epoch; /* epoch = step / steps_per_epoch, cursor = step % it */
    int64_t total_steps;
    uint64_t seed;        /* the key of every RNG stream (counter-based: no other state) */
    int64_t opt_t;        /* optimizer steps taken (AdamW bias correction) */
    int64_t best_step;    /* -1: no validation yet */
    double best_score;    /* NaN: no validation yet */
    double train_seconds; /* reporting only */
    int64_t samples;      /* reporting only */
} tr_ckpt_scalars;

/* What a checkpoint holds, as pointers into the trainer's memory. Arenas
 * (opt_m, opt_v, best_params, best_buffers) have the layout of params or
 * buffers; opt_v, best_* and window may be NULL. Save reads them, load
 * overwrites them (this rank's slices). */
typedef struct {
    const tr_params *params, *buffers;
    float *opt_m, *opt_v;
    float *best_params, *best_buffers;
    double *window; /* (T, 4) */
    tr_extra_state *extra;
    int n_extra;
    const tr_relations *relations; /* may be NULL or empty */
    const char *task_names;        /* joined by ',' */
    const tr_provenance *prov;     /* run id and data fingerprint (may be NULL) */
    tr_ckpt_scalars sc;
} tr_ckpt_state;

/* How the collective writes and reads went (H5Pget_mpio_actual_io_mode). */
typedef struct {
    int64_t collective;  /* transfers HDF5 reports as collective */
    int64_t independent; /* transfers that fell back to independent I/O */
    char cause[128];     /* first H5Pget_mpio_no_collective_cause, if any */
    double seconds;
    int64_t bytes; /* file size after save */
} tr_ckpt_io;

/* Write state to `path` (truncating it). Collective over g->world; every rank
 * returns the same status. cfg (may be NULL) is stored as the config text. */
tr_status tr_checkpoint_save(const char *path, const tr_ckpt_state *s, const tr_grid *g,
                             const tr_config *cfg, tr_ckpt_io *io);

/* Read a checkpoint that validated: every rank reads its slices of params,
 * buffers, optimizer and best arenas, all of window and the extra arrays, and
 * the scalars into s->sc. Collective over g->world; statuses agreed. */
tr_status tr_checkpoint_load(const char *path, tr_ckpt_state *s, const tr_grid *g, tr_ckpt_io *io);

/* The atomic write: save <dir>/ckpt-<step>.h5.tmp, close, rename, update the
 * symlink <dir>/latest, keep the newest `keep` checkpoints (0: all). dir must
 * exist. The final path goes to out (may be NULL). Collective. */
tr_status tr_checkpoint_write(const char *dir, const tr_ckpt_state *s, const tr_grid *g,
                              const tr_config *cfg, int keep, char *out, size_t outn,
                              tr_ckpt_io *io);

/* Steps of the checkpoints ckpt-<step>.h5 in dir, newest first (at most cap).
 * A missing directory is an empty list. Local (file system only). */
int tr_checkpoint_list(const char *dir, int64_t *steps, int cap);

typedef enum {
    TR_CKPT_VALID = 0,
    TR_CKPT_CORRUPT,      /* unreadable, truncated, checksum mismatch, missing parts */
    TR_CKPT_INCOMPATIBLE, /* sound, but written for another model or dataset */
} tr_ckpt_verdict;

/* Check one file on THIS rank only (serial HDF5, in a forked child process so
 * that a corrupt file can neither crash nor hang the caller): the format and
 * version, every dataset read back in full (fletcher32 verified), and, if
 * expect != NULL, the presence and global shape of every tensor and extra
 * array of expect. why gets a one-line reason naming the file. Call it on one
 * rank and broadcast the verdict (tr_checkpoint_validate_all does). */
tr_ckpt_verdict tr_checkpoint_validate(const char *path, const tr_ckpt_state *expect, char *why,
                                       size_t whyn);

/* Collective: rank 0 validates, every rank gets its verdict and reason. */
tr_ckpt_verdict tr_checkpoint_validate_all(const char *path, const tr_ckpt_state *expect,
                                           MPI_Comm world, char *why, size_t whyn);

/* What a check learned about a checkpoint's identity (valid when readable). */
typedef struct {
    int readable;       /* the root attributes were read */
    int model_mismatch; /* TR_CKPT_INCOMPATIBLE because a tensor of expect is missing or of
                           another shape (not because of the format or version) */
    int64_t step;
    char run_id[TR_RUN_ID_LEN];           /* "" if the checkpoint has none */
    char data_fingerprint[TR_RUN_ID_LEN]; /* "" if the checkpoint has none */
} tr_ckpt_ident;

/* tr_checkpoint_validate with the identity; attrs_only: read the root
 * attributes only (no dataset read, no model check), still in a child. */
tr_ckpt_verdict tr_checkpoint_check(const char *path, const tr_ckpt_state *expect, int attrs_only,
                                    tr_ckpt_ident *id, char *why, size_t whyn);
/* Collective form: rank 0 checks, every rank gets verdict, identity, reason. */
tr_ckpt_verdict tr_checkpoint_check_all(const char *path, const tr_ckpt_state *expect,
                                        int attrs_only, MPI_Comm world, tr_ckpt_ident *id,
                                        char *why, size_t whyn);

/* The resolved config text stored in a checkpoint, malloc'd into *text (""
 * if it has none; free() it). Serial, this rank only. */
tr_status tr_checkpoint_read_config(const char *path, char **text);

/* ---- serial read-only summary (for `taskrel inspect`) --------------------- */

typedef struct {
    char path[160]; /* HDF5 path, e.g. "/params/trunk.fc1.w" */
    int ndim;
    int64_t dims[TR_MAX_DIMS];
    char type[16]; /* "float32", "float64", "other" */
} tr_ckpt_dataset;

typedef struct {
    char format[32];
    int version;
    tr_ckpt_scalars sc;
    int64_t epoch, cursor;
    int world_size, replicas, shards, tasks;
    char model_kind[16];
    char task_names[1024];
    char run_id[TR_RUN_ID_LEN];           /* "" if absent */
    char data_fingerprint[TR_RUN_ID_LEN]; /* "" if absent */
    int model_mismatch;                   /* see tr_ckpt_ident */
    tr_ckpt_dataset *datasets;            /* (n_datasets), in file order */
    int n_datasets;
    tr_ckpt_verdict verdict; /* integrity: every dataset read with checksums */
    char why[512];           /* reason if not valid */
} tr_ckpt_info;

/* Serial, read-only, on the calling rank only. A file that cannot be opened at
 * all is TR_ERR_DATA naming it; a file that opens but fails integrity checks
 * returns TR_OK with info->verdict = TR_CKPT_CORRUPT and the reason in why. */
tr_status tr_checkpoint_info(const char *path, tr_ckpt_info *info);
void tr_checkpoint_info_free(tr_ckpt_info *info); /* no-op on a zeroed struct */

#ifdef __cplusplus
}
#endif
#endif
