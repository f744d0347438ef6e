/*
 * Private helpers shared by the dataset writer (dataset.c) and the builders
 * (build_fashion.c, build_synthetic.c). Not part of the public API.
 */
#ifndef TASKREL_IO_DATA_INTERNAL_H
#define TASKREL_IO_DATA_INTERNAL_H

#include <hdf5.h>

#include "taskrel/data.h"

/* Called with the still-open file after the dataset itself is written, so a
 * builder can add provenance (per-task attributes, ground truth) before the
 * file is renamed into place. */
typedef tr_status (*tr_data_extra_fn)(hid_t file, const tr_dataset *ds, const void *ctx);

/* tr_dataset_save plus an optional `extra` hook. Writes PATH.tmp, then renames. */
tr_status tr_data_save_ex(const tr_dataset *ds, const char *path, const char *builder,
                          uint64_t seed, const char *options, tr_data_extra_fn extra,
                          const void *ctx);

/* Write a float64 dataset `name` (rank dims) under loc, creating it. */
tr_status tr_data_write_f64(hid_t loc, const char *name, int rank, const hsize_t *dims,
                            const double *data);

/* Allocate ds->tasks (T) and set T; names, kinds and splits are left to the caller. */
tr_status tr_data_alloc_tasks(tr_dataset *ds, int T);

/* Allocate one split's arrays: x (n, sample_size) and, by kind, y or yf with
 * `cols` columns (1 multi-input, T shared-input). */
tr_status tr_data_alloc_split(tr_split_data *sd, int64_t n, int64_t sample_size, tr_task_kind kind,
                              int cols);

#endif
