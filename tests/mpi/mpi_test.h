/*
 * Helpers for cmocka tests under mpiexec: an assertion outcome is agreed on
 * over MPI_COMM_WORLD before cmocka sees it, so a failure on one rank fails
 * the test on every rank instead of leaving the others in a collective.
 */
#ifndef TASKREL_MPI_TEST_H
#define TASKREL_MPI_TEST_H

#include <mpi.h>
#include <stdio.h>

/* 1 on every rank iff cond held on every rank; prints the failing ranks. */
static inline int mpi_all(int cond, const char *what) {
    int ok = cond ? 1 : 0, all = 0, rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok)
        fprintf(stderr, "[rank %d] check failed: %s\n", rank, what);
    return all;
}

#define MPI_ASSERT(cond) assert_true(mpi_all((cond), #cond))

#endif
