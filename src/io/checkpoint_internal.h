/*
 * Shared between checkpoint.c (save/load) and checkpoint_check.c (validation,
 * summary). Private to src/io.
 */
#ifndef TASKREL_IO_CHECKPOINT_INTERNAL_H
#define TASKREL_IO_CHECKPOINT_INTERNAL_H

#include <hdf5.h>

#include "taskrel/checkpoint.h"

/* File access list for checkpoints: MPI-IO on comm (MPI_COMM_NULL: serial)
 * and the 1.8+ object format (checksummed metadata). */
hid_t tr_ckpt_fapl(MPI_Comm comm);
/* 1 if name is "ckpt-<digits>.h5" (sets *step). */
int tr_ckpt_parse_name(const char *name, int64_t *step);

#endif
