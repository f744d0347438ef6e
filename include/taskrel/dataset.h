/*
 * Datasets: the in-memory form and the HDF5 reader/validator and writer
 * (src/io). The builders, the IDX reader and task selection are in
 * taskrel/data.h (src/data).
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
 * Every task has its own kind and class count. A file may lack whole splits
 * (the same ones for every task): a test-only file can be evaluated, while
 * training needs train and val (checked by the trainer).
 *
 * Files are read with HDF5's default driver; readers are not collective. In
 * the multi-input setting a rank can read only the examples of the tasks it
 * owns (tr_dataset_load_header, then tr_dataset_load_tasks).
 */
#ifndef TASKREL_DATASET_H
#define TASKREL_DATASET_H

#include <mpi.h>

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TR_SETTING_MULTI_INPUT = 0, TR_SETTING_SHARED_INPUT } tr_setting;
typedef enum { TR_TASK_CLASSIFICATION = 0, TR_TASK_REGRESSION } tr_task_kind;
typedef enum { TR_SPLIT_TRAIN = 0, TR_SPLIT_VAL, TR_SPLIT_TEST, TR_SPLIT_COUNT } tr_split;

const char *tr_split_name(tr_split s); /* "train", "val", "test" */

/* The inputs of one split read from the file on demand (data.load =
 * stream; opaque, owned by its tr_split_data). */
typedef struct tr_x_stream tr_x_stream;

typedef struct {
    int64_t n;          /* examples */
    float *x;           /* (n, sample_size); NULL when compact (xq) or streamed (xs) */
    uint8_t *xq;        /* compact inputs (tr_dataset_compact): x = palette[xq], or NULL */
    float palette[256]; /* with xq: the values */
    int32_t *y;         /* classification labels: (n) multi-input, (n, T) shared-input; else NULL */
    float *yf;          /* regression targets: (n) multi-input, (n, T) shared-input; else NULL */
    tr_x_stream *xs;    /* inputs left in the file (tr_dataset_stream_tasks), or NULL */
} tr_split_data;

typedef struct {
    char name[64];
    tr_task_kind kind;
    int classes;                         /* classes; 1 for regression */
    tr_split_data split[TR_SPLIT_COUNT]; /* multi-input only (zeroed otherwise) */
    int loaded;                          /* its examples are in memory (n is known either way) */
    uint64_t digest; /* multi-input: a hash of its examples (tr_dataset_task_digests), 0 unknown */
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
    int has_split[TR_SPLIT_COUNT];        /* the file has this split (a missing one has n = 0) */
} tr_dataset;

/* Read and validate a dataset file. Raises TR_ERR_DATA with a message naming
 * the file and the offending HDF5 path for: a missing file, a missing group or
 * dataset, a wrong dtype, shapes that disagree (x vs y rows, per-sample shapes
 * across tasks/splits), labels outside [0, classes), non-finite x or targets,
 * an empty train split, unknown `setting`/`kind` attributes. */
tr_status tr_dataset_load(tr_dataset *ds, const char *path);
/* tr_dataset_load in two steps: the header reads and checks everything but
 * the examples (tasks, kinds, classes, which splits exist, every split's size
 * and shapes); load_tasks then reads and checks the examples of tasks
 * [t0, t0 + tn) in ds's task order (multi-input; shared-input reads all).
 * The other tasks keep their sizes with x, y and yf NULL. */
tr_status tr_dataset_load_header(tr_dataset *ds, const char *path);
tr_status tr_dataset_load_tasks(tr_dataset *ds, const char *path, int t0, int tn);
/* tr_dataset_load_tasks with the inputs left in the file (data.load =
 * stream): every split's x is checked as load_tasks checks it, by a pass
 * over the file that holds a few MiB at a time, and then read on demand
 * through tr_split_x_read (sd->xs; sd->x stays NULL). Labels and targets are
 * read into memory. The file stays open until tr_dataset_free; it must not
 * change meanwhile (a read that fails is TR_ERR_DATA). Contiguous float32
 * arrays are read with pread() at their offset in the file, others
 * (chunked, compressed) through HDF5. */
tr_status tr_dataset_stream_tasks(tr_dataset *ds, const char *path, int t0, int tn);
/* The file's structure checked in a forked child process, before a loader
 * reads it in this one: the header's reads (tr_dataset_load_header) and the
 * chunk index of every split's arrays, not the examples. The HDF5 library can
 * crash on a damaged file; here that is TR_ERR_DATA "data: FILE: damaged HDF5
 * file: the HDF5 library crashed reading it" (a loop: after a timeout). A file
 * the header rejects gets the header's error. Cost: the header read once more,
 * and a fork. _all: rank 0 checks, every rank of world gets its verdict and
 * message (collective). */
tr_status tr_dataset_check(const char *path);
tr_status tr_dataset_check_all(const char *path, MPI_Comm world);
/* Multi-input: set the digest of every loaded task from its examples (the
 * fingerprint combines the digests, so ranks holding different tasks can agree
 * on it by sharing them). Fails only on a streamed read (TR_ERR_DATA). */
tr_status tr_dataset_task_digests(tr_dataset *ds);
/* Multi-input: keep each loaded split whose inputs take at most 256 distinct
 * values (8-bit images stored as float32) as one byte per value and a
 * palette (xq, palette; x freed): a quarter of the memory. Only the trainer
 * does this; readers of x take it through tr_split_x_read. */
tr_status tr_dataset_compact(tr_dataset *ds);
/* out (count) = the inputs of sd from value `first` (a row starts at
 * row * sample_size), compact, streamed or neither. Fails (TR_ERR_DATA) only
 * when a streamed read does: the caller agrees on it across ranks. */
tr_status tr_split_x_read(float *out, const tr_split_data *sd, size_t first, size_t count);
/* A stream's values [first, first + count) into out (tr_split_x_read). */
tr_status tr_x_stream_read(const tr_x_stream *xs, float *out, size_t first, size_t count);
void tr_x_stream_close(tr_x_stream *xs); /* NULL: no-op */
/* Write ds to path (overwrites). `builder` and the option string are stored as
 * root attributes for provenance. */
tr_status tr_dataset_save(const tr_dataset *ds, const char *path, const char *builder,
                          uint64_t seed, const char *options);
void tr_dataset_free(tr_dataset *ds); /* no-op on a zeroed struct */
/* A fingerprint of ds's contents ("v2-" and 16 hex digits, TR_RUN_ID_LEN
 * bytes suffice): its structure and a sample of its numbers (every byte of
 * arrays up to 1 MiB). Multi-input tasks enter through their digest
 * (tr_dataset_task_digests, on the rank that holds their examples); a loaded
 * task whose digest is not set yet is digested here.
 * Checkpoints store it; a resume on other data is refused. Streamed inputs
 * are read for it (the same value as in memory); fails only on such a read. */
tr_status tr_dataset_fingerprint(const tr_dataset *ds, char *out, size_t outn);
/* The task names of a dataset file in task order (each task's `index`),
 * without reading any examples: names (cap), *T tasks. */
tr_status tr_dataset_task_names(const char *path, char (*names)[64], int cap, int *T);

/* ---- predictions (taskrel eval --predictions) ------------------------------ */

/* Rows of one split's predictions, task after task in ds's order: task t's
 * rows start at tr_predictions_offset(ds, split, t) doubles, one row per
 * example of the split, each (label or target, then the task's outputs:
 * `classes` probabilities, or the predicted value). */
size_t tr_predictions_offset(const tr_dataset *ds, tr_split s, int t);
/* Write rows[s] (NULL: split s absent) to path (overwritten) as
 * /tasks/<name>/<split>/{index, label, pred, probs}: index int64 (the row of
 * the example in the data file's split), label int32 or float32, pred int32
 * (the most probable class) or float32 (the value), probs float32 (n, classes)
 * for classification; attributes kind, classes, index on /tasks/<name>, and
 * weights and setting on the root. Serial (one rank). */
tr_status tr_predictions_write(const char *path, const tr_dataset *ds, const char *weights,
                               const double *const rows[TR_SPLIT_COUNT]);

#ifdef __cplusplus
}
#endif
#endif
