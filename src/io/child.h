/*
 * A read of an untrusted file in a forked child process, private to src/io.
 * The HDF5 library can crash or loop on a damaged file; run there, the read
 * costs the caller a verdict instead of the process (and, under MPI, the
 * job). The child touches no MPI: it reads the file, writes a fixed-size
 * result to a pipe and leaves with _exit. Used by the checkpoint validator
 * and the dataset check.
 */
#ifndef TASKREL_IO_CHILD_H
#define TASKREL_IO_CHILD_H

#include <stddef.h>

/* fn(arg, out, outn) fills out (outn bytes) with its result. */
typedef void (*tr_child_fn)(void *arg, void *out, size_t outn);

typedef enum {
    TR_CHILD_DONE = 0, /* out holds fn's result (from the child, or from this process) */
    TR_CHILD_SIGNAL,   /* the child was killed by signal *detail (a crash) */
    TR_CHILD_EXIT,   /* the child exited with code *detail before its result (a sanitizer report) */
    TR_CHILD_TIMEOUT /* no result within timeout_s seconds: the child was killed */
} tr_child_outcome;

/* Run fn in a forked child and wait at most timeout_s seconds for its result.
 * mem_extra > 0 caps the child's address space at its size at the fork plus
 * mem_extra bytes, so that an allocation of whatever size a damaged file
 * states fails (the library reports an error) instead of taking the node's
 * memory (not in sanitizer builds, whose shadow memory the cap would break).
 * If no child can be started, fn runs in this process, uncapped. */
tr_child_outcome tr_io_in_child(tr_child_fn fn, void *arg, void *out, size_t outn, double timeout_s,
                                size_t mem_extra, int *detail);

#endif
