/*
 * Run-and-compare for the MPI equivalence tests (mpi.train_equiv,
 * mpi.mran_equiv): a short run on MPI_COMM_SELF by rank 0 is the reference;
 * the same config runs twice on MPI_COMM_WORLD, and every per-task loss of
 * both runs must agree with the reference to a relative tolerance and the two
 * runs with each other bitwise (losses and final test metric). Each test adds
 * its own checks on the pair (communication volume, relation matrices).
 * Include after <cmocka.h>; every assertion is agreed over MPI_COMM_WORLD.
 */
#ifndef TASKREL_MPI_EQUIV_H
#define TASKREL_MPI_EQUIV_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mpi_test.h"
#include "taskrel/train.h"

/* Run directory of run `tag` under base: one per rank for a run on
 * MPI_COMM_SELF, one shared by the ranks of a collective run. */
static inline void equiv_run_dir(char *dir, size_t n, const char *base, const char *tag,
                                 MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (comm == MPI_COMM_SELF)
        snprintf(dir, n, "%s/run-%s-%d", base, tag, rank);
    else
        snprintf(dir, n, "%s/run-%s", base, tag);
}

/* One quiet training run recording its per-step losses; a failure is printed
 * with the rank and tag. */
static inline tr_status equiv_run(const char *base, const tr_config *c, MPI_Comm comm,
                                  tr_train_result *res, const char *tag) {
    char dir[512];
    equiv_run_dir(dir, sizeof(dir), base, tag, comm);
    tr_train_opts opts = {.run_dir = dir, .quiet = 1, .record_losses = 1};
    tr_error_clear();
    tr_status st = tr_train_run(c, comm, &opts, res);
    if (st != TR_OK) {
        int rank;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        fprintf(stderr, "[rank %d] %s: %s\n", rank, tag, tr_error_message());
    }
    return st;
}

/* Largest |a - b| / |b| entrywise; NaN gives NaN (a failure). */
static inline double equiv_max_rel_diff(const double *a, const double *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-12);
        if (!(d <= worst))
            worst = d; /* NaN propagates as a failure */
    }
    return worst;
}

/* The reference: rank 0 runs c alone on MPI_COMM_SELF as run `tag`; its
 * losses (steps x T) and T are broadcast. accept (may be NULL) adds a check
 * of the reference run on rank 0. */
static inline void equiv_reference(const char *base, const tr_config *c, int steps, double *losses,
                                   int *T, const char *tag,
                                   int (*accept)(const tr_train_result *r)) {
    int rank, ok = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        tr_train_result r;
        ok = equiv_run(base, c, MPI_COMM_SELF, &r, tag) == TR_OK;
        if (ok) {
            *T = r.T;
            memcpy(losses, r.losses, sizeof(double) * (size_t)steps * (size_t)r.T);
            ok = !accept || accept(&r);
        }
        tr_train_result_free(&r);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    assert_true(ok);
    MPI_Bcast(T, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(losses, steps * *T, MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

/* Runs tag-a and tag-b of c on MPI_COMM_WORLD: both succeed with `steps`
 * steps and T tasks, a's losses are within tol of ref (relative, every
 * entry), and b repeats a bitwise. The caller checks more and frees both. */
static inline void equiv_run_pair(const char *base, const tr_config *c, int steps,
                                  const double *ref, int T, double tol, const char *tag,
                                  tr_train_result *a, tr_train_result *b) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char t[160];
    snprintf(t, sizeof(t), "%s-a", tag);
    MPI_ASSERT(equiv_run(base, c, MPI_COMM_WORLD, a, t) == TR_OK);
    snprintf(t, sizeof(t), "%s-b", tag);
    MPI_ASSERT(equiv_run(base, c, MPI_COMM_WORLD, b, t) == TR_OK);
    MPI_ASSERT(a->steps == steps && a->T == T);
    double d = equiv_max_rel_diff(a->losses, ref, (size_t)steps * T);
    if (rank == 0)
        printf("  %-36s R=%d: max relative loss difference to 1 rank %.2e\n", tag,
               size / (c->task_shards > 0 ? c->task_shards : 1), d);
    MPI_ASSERT(d <= tol);
    /* the same P twice: bitwise identical */
    MPI_ASSERT(memcmp(a->losses, b->losses, sizeof(double) * (size_t)steps * (size_t)T) == 0);
    MPI_ASSERT(a->test_mean == b->test_mean);
}

#endif
