/*
 * Datasets: the in-memory form, the HDF5 reader/validator and writer, and the
 * four builders of datasets/README.md (fashion-domains, multifashion,
 * synthetic-tn, synthetic-mmoe).
 *
 * HDF5 layout (root attribute `setting`):
 *   multi_input:  /tasks/<name>/{train,val,test}/{x,y}   (each task its own examples)
 *   shared_input: /{train,val,test}/x and /{train,val,test}/y (n, T)
 * x is float32 (n, C, H, W) or (n, d); y is int32 class ids or float32 targets.
 * Per-task attributes on /tasks/<name> (multi-input) or on the group
 * /tasks/<name> holding only attributes (shared-input): kind
 * ("classification" | "regression"), classes (int; 1 for regression), index
 * (task order). Root attributes: setting, builder, seed, and builder options;
 * synthetic-tn also stores /truth/sigma3 (T, T) float64.
 *
 * Files are read with HDF5's default driver on every rank (datasets are small
 * enough to be replicated); readers are not collective.
 */
#ifndef TASKREL_DATA_H
#define TASKREL_DATA_H

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TR_SETTING_MULTI_INPUT = 0, TR_SETTING_SHARED_INPUT } tr_setting;
typedef enum { TR_TASK_CLASSIFICATION = 0, TR_TASK_REGRESSION } tr_task_kind;
typedef enum { TR_SPLIT_TRAIN = 0, TR_SPLIT_VAL, TR_SPLIT_TEST, TR_SPLIT_COUNT } tr_split;

const char *tr_split_name(tr_split s); /* "train", "val", "test" */

typedef struct {
    int64_t n;  /* examples */
    float *x;   /* (n, sample_size) */
    int32_t *y; /* classification labels: (n) multi-input, (n, T) shared-input; else NULL */
    float *yf;  /* regression targets: (n) multi-input, (n, T) shared-input; else NULL */
} tr_split_data;

typedef struct {
    char name[64];
    tr_task_kind kind;
    int classes;                         /* classes; 1 for regression */
    tr_split_data split[TR_SPLIT_COUNT]; /* multi-input only (zeroed otherwise) */
} tr_task_info;

typedef struct {
    tr_setting setting;
    int T;
    int ndim;                             /* 1 (vectors) or 3 (C, H, W) */
    int64_t dims[3];                      /* per-sample shape */
    int64_t sample_size;                  /* product of dims */
    tr_task_info *tasks;                  /* (T) */
    tr_split_data shared[TR_SPLIT_COUNT]; /* shared-input only: y or yf is (n, T) */
    double *sigma3;                       /* (T, T) true task covariance (synthetic-tn) or NULL */
} tr_dataset;

/* Read and validate a dataset file. Raises TR_ERR_DATA with a message naming
 * the file and the offending HDF5 path for: a missing file, a missing group or
 * dataset, a wrong dtype, shapes that disagree (x vs y rows, per-sample shapes
 * across tasks/splits), labels outside [0, classes), non-finite x or targets,
 * an empty train split, unknown `setting`/`kind` attributes. */
tr_status tr_dataset_load(tr_dataset *ds, const char *path);
/* Write ds to path (overwrites). `builder` and the option string are stored as
 * root attributes for provenance. */
tr_status tr_dataset_save(const tr_dataset *ds, const char *path, const char *builder,
                          uint64_t seed, const char *options);
void tr_dataset_free(tr_dataset *ds); /* no-op on a zeroed struct */
/* A fingerprint of ds's contents ("v1-" and 16 hex digits, TR_RUN_ID_LEN
 * bytes suffice): its structure and a sample of its numbers (every byte of
 * arrays up to 1 MiB). Checkpoints store it; a resume on other data is refused. */
void tr_dataset_fingerprint(const tr_dataset *ds, char *out, size_t outn);
/* The task names of a dataset file in task order (each task's `index`),
 * without reading any examples: names (cap), *T tasks. */
tr_status tr_dataset_task_names(const char *path, char (*names)[64], int cap, int *T);

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
} tr_builder_opts;

void tr_builder_opts_default(tr_builder_opts *o);
tr_status tr_build_fashion_domains(const tr_builder_opts *o);
tr_status tr_build_multifashion(const tr_builder_opts *o);
tr_status tr_build_synthetic_tn(const tr_builder_opts *o);
tr_status tr_build_synthetic_mmoe(const tr_builder_opts *o);

/* `taskrel data BUILDER --out FILE [options]` (argv[0] = BUILDER). Serial. */
tr_status tr_cmd_data(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
