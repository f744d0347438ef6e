/*
 * What the dataset builders (src/data) need from the dataset writer beyond
 * taskrel/dataset.h: allocation helpers and a save with a hook that adds
 * provenance (attributes, ground truth) through path-named helpers, so no
 * builder touches HDF5 itself. Not part of the public API.
 */
#ifndef TASKREL_IO_DATASET_EXTRA_H
#define TASKREL_IO_DATASET_EXTRA_H

#include "taskrel/dataset.h"

/* An open dataset file being written (opaque outside src/io). */
typedef struct tr_data_file tr_data_file;

/* Called with the still-open file after the dataset itself is written, so a
 * builder can add provenance before the file is renamed into place. */
typedef tr_status (*tr_data_extra_fn)(tr_data_file *f, const tr_dataset *ds, const void *ctx);

/* tr_dataset_save plus an optional `extra` hook. Writes PATH.tmp, then renames. */
tr_status tr_data_save_ex(const tr_dataset *ds, const char *path, const char *builder,
                          uint64_t seed, const char *options, tr_data_extra_fn extra,
                          const void *ctx);

/* A string or int32 attribute `name` on the existing group `obj` ("/" the root). */
tr_status tr_data_attr_str(tr_data_file *f, const char *obj, const char *name, const char *v);
tr_status tr_data_attr_int(tr_data_file *f, const char *obj, const char *name, int v);

/* A float64 dataset at `path` (rank dims), creating missing groups on the way. */
tr_status tr_data_write_array(tr_data_file *f, const char *path, int rank, const int64_t *dims,
                              const double *data);

/* Allocate ds->tasks (T) and set T; names, kinds and splits are left to the caller. */
tr_status tr_data_alloc_tasks(tr_dataset *ds, int T);

/* Allocate one split's arrays: x (n, sample_size) and, by kind, y or yf with
 * `cols` columns (1 multi-input, T shared-input). */
tr_status tr_data_alloc_split(tr_split_data *sd, int64_t n, int64_t sample_size, tr_task_kind kind,
                              int cols);
/* Free everything one split holds (inputs in memory, compact or streamed;
 * labels; targets) and zero it. */
void tr_data_free_split(tr_split_data *sd);

/* TR_ERR_DATA naming file, the array's HDF5 path and the element (first + i)
 * if a value of v (n) is not finite: the reader's check of inputs, in memory
 * or passed through in pieces by a stream. */
tr_status tr_data_check_finite(const char *file, const char *path, const float *v, int64_t n,
                               int64_t first);

#endif
