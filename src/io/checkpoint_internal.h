/*
 * Shared between checkpoint.c (save/load) and checkpoint_check.c (validation,
 * summary). Private to src/io.
 */
#ifndef TASKREL_IO_CHECKPOINT_INTERNAL_H
#define TASKREL_IO_CHECKPOINT_INTERNAL_H

#include "taskrel/checkpoint.h"

/* 1 if name is "ckpt-<digits>.h5" (sets *step). */
int tr_ckpt_parse_name(const char *name, int64_t *step);

#endif
