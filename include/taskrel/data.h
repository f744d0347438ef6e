/*
 * Making datasets (src/data): the four builders of datasets/README.md
 * (fashion-domains, multifashion, synthetic-tn, synthetic-mmoe), the IDX
 * reader they read Fashion-MNIST with, and the selection of tasks
 * (data.tasks) from a loaded dataset. Importing NumPy and CSV files is in
 * taskrel/import.h.
 */
#ifndef TASKREL_DATA_H
#define TASKREL_DATA_H

#include "taskrel/config.h"
#include "taskrel/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX (MNIST / Fashion-MNIST) ------------------------------------------- */
/* Read an IDX file, gzip-compressed or not (zlib). Returns a malloc'd (tr_calloc)
 * byte array of prod(dims) unsigned bytes (only type 0x08 is supported) and the
 * dims (up to 4). */
tr_status tr_idx_read(const char *path, uint8_t **data, int *ndim, int64_t dims[4]);

/* ---- builders ----------------------------------------------------------------- */
typedef struct {
    const char *out;                /* output .h5 path */
    uint64_t seed;                  /* default 1 */
    const char *fashion_dir;        /* Fashion-MNIST IDX directory; NULL = Debian's default */
    double train_frac;              /* fashion-domains: labelled fraction per task (0.10) */
    int tasks;                      /* multifashion: 2 or 4; synthetic-*: T */
    int64_t n_train, n_val, n_test; /* synthetic-* sizes per task/split; 0 = defaults */
    int dim;                        /* synthetic-*: input dimension d */
    int regression;                 /* synthetic-tn: 1 regression (default), 0 classification */
    double corr;                    /* synthetic-mmoe: correlation within a task pair (0.9) */
} tr_builder_opts;

void tr_builder_opts_default(tr_builder_opts *o);
tr_status tr_build_fashion_domains(const tr_builder_opts *o);
tr_status tr_build_multifashion(const tr_builder_opts *o);
tr_status tr_build_synthetic_tn(const tr_builder_opts *o);
tr_status tr_build_synthetic_mmoe(const tr_builder_opts *o);

/* ---- task selection --------------------------------------------------------- */
/* Apply data.tasks to a loaded dataset (keeps the selected tasks in order;
 * exit-2 error naming a task the dataset lacks). */
tr_status tr_dataset_select_tasks(tr_dataset *ds, const tr_task_select *sel);

#ifdef __cplusplus
}
#endif
#endif
