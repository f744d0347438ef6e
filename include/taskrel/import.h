/*
 * Importing a user's own data: NumPy (.npy, .npz) and CSV readers, and
 * `taskrel data import`, which turns them into the dataset layout of
 * taskrel/dataset.h (datasets/README.md, "Importing your own data").
 *
 * Arrays are read whole into memory as float64 (C order); the readers are
 * serial and do not use MPI. Every problem with an input file is TR_ERR_DATA
 * naming the file (and the member or line).
 */
#ifndef TASKREL_IMPORT_H
#define TASKREL_IMPORT_H

#include "taskrel/config.h"
#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_ARRAY_MAX_DIMS 8

typedef struct {
    char name[256]; /* key: the .npz member or .npy file name without ".npy" */
    int ndim;
    int64_t shape[TR_ARRAY_MAX_DIMS];
    int64_t count;  /* product of shape */
    int is_integer; /* integer or bool dtype (classification labels) */
    double *data;   /* (count) values, C order; owned */
} tr_array;

void tr_array_free(tr_array *a); /* no-op on a zeroed struct */

/* Parse a .npy image in memory (format 1.0, 2.0, 3.0; dtypes bool, int8..64,
 * uint8..64, float16/32/64, either byte order; C order only). what names the
 * source in messages. */
tr_status tr_npy_parse(tr_array *out, const uint8_t *buf, size_t len, const char *what);

/* Read a .npy file; the array's name is the file's base name without .npy. */
tr_status tr_npy_read(tr_array *out, const char *path);

/* Read every .npy member of a .npz (a zip archive; stored or deflated members,
 * as numpy.savez and numpy.savez_compressed write them). *arrays (n) is
 * tr_calloc'd; free each with tr_array_free and the list with tr_free. */
tr_status tr_npz_read(const char *path, tr_array **arrays, int *n);

/* A CSV table: a header row of column names, then rows of cells separated by
 * commas (fields may be double-quoted, with "" for a quote). Cells that parse
 * as numbers are in num (NaN otherwise, and for an empty cell); the raw text
 * of every cell stays in text for string columns such as a split or a task. */
typedef struct {
    int ncols;
    int64_t nrows;
    char **names; /* (ncols) */
    double *num;  /* (nrows, ncols) */
    char **text;  /* (nrows, ncols) */
} tr_csv;

tr_status tr_csv_read(tr_csv *out, const char *path);
void tr_csv_free(tr_csv *t);                          /* no-op on a zeroed struct */
int tr_csv_column(const tr_csv *t, const char *name); /* index or -1 */

/* What `taskrel data import` reads and how (datasets/README.md). */
typedef struct {
    const char *out;           /* output .h5 */
    const char *const *inputs; /* (ninputs) .npz, .npy or .csv files */
    int ninputs;
    const char *const *labels; /* CSV: target columns, one task each (shared-input) */
    int nlabels;
    const char *task_column;  /* CSV: multi-input, rows belong to the task named here */
    const char *split_column; /* CSV: train/val/test per row; NULL: "split" if present */
    const char *const *names; /* (nnames) task names in order, replacing the defaults */
    int nnames;
    int kind;   /* -1: inferred per task; else a tr_task_kind for all */
    int nkinds; /* > 0: kinds[t] is task t's kind (--kind a,b,...) */
    int kinds[TR_MAX_TASKS];
    int classes;  /* 0: max label + 1 per task */
    int nclasses; /* > 0: class_list[t] is task t's class count */
    int class_list[TR_MAX_TASKS];
    double val_frac, test_frac; /* split train when val/test are not given */
    uint64_t seed;              /* of that split */
    int64_t image[3];           /* (C, H, W) for vector x, or zeros */
} tr_import_opts;

void tr_import_opts_default(tr_import_opts *o);

/* Read the inputs, build the dataset and write it to o->out (PATH.tmp, then
 * renamed). Logs one line per task: name, kind, classes, split sizes. */
tr_status tr_import(const tr_import_opts *o);

#ifdef __cplusplus
}
#endif
#endif
