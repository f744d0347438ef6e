/*
 * What the dataset reader (dataset.c) needs from the input streams of
 * data.load = stream (dataset_stream.c) beyond taskrel/dataset.h: the shared
 * file the streams of one load read from, and opening a stream on an array
 * the reader has already checked (dtype float32, shape). Not part of the
 * public API.
 */
#ifndef TASKREL_IO_DATASET_STREAM_H
#define TASKREL_IO_DATASET_STREAM_H

#include <hdf5.h>

#include "taskrel/dataset.h"

/* The dataset file as the streams read it: one descriptor for pread() and,
 * when an array needs the HDF5 route, one HDF5 file id, shared by every
 * stream opened on it (reference counted: each stream holds a reference). */
typedef struct tr_x_file tr_x_file;

/* Open path for the streams; *xf holds one reference. TR_ERR_DATA if the
 * file cannot be opened. */
tr_status tr_x_file_open(tr_x_file **xf, const char *path);
/* Drop one reference (the last closes the file); NULL is a no-op. */
void tr_x_file_release(tr_x_file *xf);

/* A stream over the input array at HDF5 path hpath, (n, sample_size) float32
 * values, found through fid (the reader's open file). *xs is set (and then
 * owned by the caller, to close with tr_x_stream_close) even when the
 * opening check fails: a pass over every value in pieces of a few MiB that
 * raises TR_ERR_DATA for a value that is not finite or an array that does
 * not fit in the file. */
tr_status tr_x_stream_open(tr_x_stream **xs, tr_x_file *xf, hid_t fid, const char *hpath, int64_t n,
                           int64_t sample_size);

#endif
