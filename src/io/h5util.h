/*
 * Small HDF5 helpers shared by src/io (attributes). Private to src/io.
 * In a parallel file, attribute creation and writes are collective: every
 * rank calls them with the same values.
 */
#ifndef TASKREL_IO_H5UTIL_H
#define TASKREL_IO_H5UTIL_H

#include <hdf5.h>

#include "taskrel/core.h"
#include "taskrel/params.h"

tr_status tr_h5_attr_write_int(hid_t loc, const char *name, long long v);
tr_status tr_h5_attr_write_double(hid_t loc, const char *name, double v);
tr_status tr_h5_attr_write_str(hid_t loc, const char *name, const char *v);
/* Read a string attribute into buf (size cap, always terminated); *found = 0 if absent. */
tr_status tr_h5_attr_read_str(hid_t loc, const char *name, char *buf, size_t cap, int *found);
/* Read an integer attribute; *found = 0 if absent. */
tr_status tr_h5_attr_read_int(hid_t loc, const char *name, long long *v, int *found);
tr_status tr_h5_attr_read_double(hid_t loc, const char *name, double *v, int *found);

/* File and memory selections of this rank's part of tensor t for a collective
 * read or write: all of it (shared tensor), its task rows [t0, t0+tn) (task
 * tensor), or nothing (active = 0: both selections empty, the rank still joins
 * the collective call). *mspace is created here; the caller closes it. */
tr_status tr_h5_select_part(hid_t fspace, hid_t *mspace, const tr_tensor *t, int active);

#endif
