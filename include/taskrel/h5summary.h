/*
 * A read-only look into any HDF5 file, for `taskrel inspect` and `plot`: its
 * root attributes and its datasets with their shapes, and one float64 matrix.
 * Serial, on the calling rank only; the file is only read. Callers need not
 * know HDF5: this is the only way src/cli sees a file's structure.
 */
#ifndef TASKREL_H5SUMMARY_H
#define TASKREL_H5SUMMARY_H

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_H5_SUMMARY_VALUES 16

typedef enum {
    TR_H5_ATTR_TEXT = 0, /* a string (fixed or variable length, ASCII or UTF-8) */
    TR_H5_ATTR_INT,      /* 1 to 16 integers */
    TR_H5_ATTR_FLOAT,    /* 1 to 16 floating-point numbers */
    TR_H5_ATTR_OTHER     /* anything else, or unreadable: only the count is known */
} tr_h5_attr_kind;

typedef struct {
    char name[64];
    tr_h5_attr_kind kind;
    int64_t count;                        /* values in the attribute */
    char *text;                           /* TEXT: owned by the summary */
    long long ints[TR_H5_SUMMARY_VALUES]; /* INT: the values */
    double reals[TR_H5_SUMMARY_VALUES];   /* FLOAT: the values */
} tr_h5_attr_info;

typedef struct {
    char path[256]; /* e.g. "/params/trunk.fc1.w" */
    char type[16];  /* "float32", "float64", "int" or "other" */
    int ndim;       /* 0: scalar */
    int64_t dims[8];
} tr_h5_dataset_info;

typedef struct {
    tr_h5_attr_info *attrs; /* root attributes, by name */
    int n_attrs;
    tr_h5_dataset_info *datasets; /* every dataset outside /relations, by name */
    int n_datasets;
} tr_h5_summary;

/* 1 if path is an HDF5 file. */
int tr_h5_is_file(const char *path);
/* Switch HDF5's own error printing off for the rest of the process (the CLI
 * reports every failure itself). */
void tr_h5_errors_quiet(void);

/* TR_ERR_DATA naming path if it does not open or its objects cannot be listed. */
tr_status tr_h5_summary_read(const char *path, tr_h5_summary *s);
void tr_h5_summary_free(tr_h5_summary *s); /* no-op on a zeroed struct */

/* The 2-D dataset `name` as float64 (rows, cols), malloc'd into *data (free()
 * it). *found = 0 (TR_OK) if the file has no such dataset; a dataset that is
 * not a matrix of at most 2^24 entries is TR_ERR_DATA. */
tr_status tr_h5_read_matrix(const char *path, const char *name, double **data, int *rows, int *cols,
                            int *found);

#ifdef __cplusplus
}
#endif
#endif
