/*
 * Small datasets shared by the MPI training tests, built once by rank 0 into
 * a scratch directory that every rank learns by broadcast:
 *   multi.h5   synthetic-tn, 6 classification tasks, 60/20/20 examples per task
 *   shared.h5  synthetic-mmoe, 4 regression tasks, d = 12, 96/24/24 examples
 * A build failure aborts the job (the tests cannot run without data).
 */
#ifndef TASKREL_MPI_DATA_H
#define TASKREL_MPI_DATA_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "taskrel/data.h"

enum { MPI_DATA_MULTI = 1, MPI_DATA_SHARED = 2 };

static inline tr_status mpi_data_build(const char *dir, unsigned which) {
    char path[512];
    tr_builder_opts o;
    tr_status st = TR_OK;
    if (which & MPI_DATA_MULTI) {
        tr_builder_opts_default(&o);
        snprintf(path, sizeof(path), "%s/multi.h5", dir);
        o.out = path;
        o.tasks = 6;
        o.regression = 0;
        o.n_train = 60;
        o.n_val = 20;
        o.n_test = 20;
        st = tr_build_synthetic_tn(&o);
    }
    if (st == TR_OK && (which & MPI_DATA_SHARED)) {
        tr_builder_opts_default(&o);
        snprintf(path, sizeof(path), "%s/shared.h5", dir);
        o.out = path;
        o.tasks = 4;
        o.dim = 12;
        o.n_train = 96;
        o.n_val = 24;
        o.n_test = 24;
        st = tr_build_synthetic_mmoe(&o);
    }
    return st;
}

/* dir (cap bytes) = /tmp/taskrel-<tag>-<rank 0's pid> on every rank, with the
 * datasets of `which` in it. Collective over MPI_COMM_WORLD. */
static inline void mpi_data_setup(char *dir, size_t cap, const char *tag, unsigned which) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int ok = 1;
    if (rank == 0) {
        snprintf(dir, cap, "/tmp/taskrel-%s-%d", tag, (int)getpid());
        mkdir(dir, 0755);
        if (mpi_data_build(dir, which) != TR_OK) {
            fprintf(stderr, "building test data failed: %s\n", tr_error_message());
            ok = 0;
        }
    }
    MPI_Bcast(dir, (int)cap, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!ok)
        MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Remove the scratch directory after every rank is done with it. Collective. */
static inline void mpi_data_cleanup(const char *dir) {
    int rank;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
}

#endif
