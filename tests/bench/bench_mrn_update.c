/*
 * One MRN covariance update on P ranks (src/models/mrn.c): the all-gather of the
 * layer's task weights in replica_comm, the three modes' partial sums on each
 * rank's own tasks, one all-reduce per covariance, the precisions (ScaLAPACK
 * pdsyevd + pdgemm over all ranks for n > linalg.scalapack_min_dim when P > 1,
 * LAPACKE otherwise) and the trace normalisation — at D1 = 512, 1024, 2048,
 * D2 = 256, T = 6 (an fc7-like layer), plus one proximal step for scale —
 * with the unbounded prior (mrn.shrink = 0: the general path, rotations by U1,
 * U2) and with the shipped defaults (shared mean, fixed task scale, shrink 1:
 * the scaled-identity path), the latter also forced onto the general path
 * (tr_mrn_opts.dense) for comparison in the same process.
 * Median of several repetitions after one warm-up, one BLAS thread per rank.
 *
 *   cmake --build build --target bench_mrn_update
 *   mpirun -n P build/tests/bench_mrn_update [reps] [scalapack_min_dim] [max_D1]
 * The prox is timed twice, in float32 (the default) and in double.
 *   (tests/bench/bench_mrn.sh runs P = 1 and 2 and the step benchmark)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/mrn.h"

#define T 6
#define D2 256

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(tr_status s) {
    if (s != TR_OK) {
        fprintf(stderr, "bench_mrn_update: %s\n", tr_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* Median seconds over reps (after one warm-up) of one update, one float prox
 * and one double prox of an fc7-like layer (d1, D2) with options o. */
static void time_layer(double med[3], int *eig_calls, int *scalapack, const tr_mrn_opts *o, int d1,
                       int reps) {
    int d2 = D2;
    tr_grid g;
    die(tr_grid_init(&g, MPI_COMM_WORLD, T, 0, NULL));
    const char *names[1] = {"fc7"};
    tr_mrn mrn;
    die(tr_mrn_init(&mrn, o, &g, 1, names, &d1, &d2));
    size_t nn = (size_t)d1 * d2;
    float *w = malloc(sizeof(float) * nn * (size_t)(g.tn > 0 ? g.tn : 1));
    for (int k = 0; k < g.tn; k++)
        for (size_t i = 0; i < nn; i++)
            w[k * nn + i] = (float)(0.05 * sin(0.001 * (double)i * (g.t0 + k + 1) + 0.3 * k));
    double *t[3];
    for (int c = 0; c < 3; c++)
        t[c] = malloc(sizeof(double) * (size_t)(reps + 1));
    for (int r = 0; r <= reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        die(tr_mrn_layer_gather(&mrn, 0, &g, w));
        die(tr_mrn_layer_update(&mrn, 0, &g));
        double t1 = MPI_Wtime();
        die(tr_mrn_layer_prox(&mrn, 0, &g, w, 0.03));
        double t2 = MPI_Wtime();
        mrn.o.prox_f64 = 1; /* the same step in double (mrn.prox_precision = double) */
        die(tr_mrn_layer_prox(&mrn, 0, &g, w, 0.03));
        mrn.o.prox_f64 = 0;
        double t3 = MPI_Wtime();
        double loc[3] = {t1 - t0, t2 - t1, t3 - t2}, mx[3];
        MPI_Allreduce(loc, mx, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        for (int c = 0; c < 3; c++)
            t[c][r] = mx[c];
    }
    for (int c = 0; c < 3; c++) {
        qsort(t[c] + 1, (size_t)reps, sizeof(double), cmp);
        med[c] = t[c][1 + reps / 2];
        free(t[c]);
    }
    *eig_calls = mrn.scalapack_calls + mrn.lapack_calls;
    *scalapack = mrn.scalapack_calls;
    free(w);
    tr_mrn_free(&mrn);
    tr_grid_free(&g);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    int min_dim = argc > 2 ? atoi(argv[2]) : 256;
    int max_d1 = argc > 3 ? atoi(argv[3]) : 2048;
    const int dims[] = {512, 1024, 2048};
    if (rank == 0)
        printf("# P=%d T=%d D2=%d reps=%d scalapack_min_dim=%d (median seconds)\n"
               "%-6s %-18s %-10s %-12s %-12s %-10s %s\n",
               P, T, D2, reps, min_dim, "D1", "prior", "update_s", "prox_step_s", "prox_f64_s",
               "eig_calls", "backend");
    tr_mrn_opts general = {.lambda = 1e-3,
                           .modes = 7u,
                           .update_every = 50,
                           .flipflop_iters = 1,
                           .prox = 1,
                           .prox_every = 1,
                           .eps = 1e-6,
                           .eig_floor = 0.1,
                           .scalapack_min_dim = min_dim};
    tr_mrn_opts defaults = general, forced = general;
    defaults.centred = forced.centred = 1;
    defaults.task_fixed = forced.task_fixed = 1;
    defaults.shrink = forced.shrink = 1.0;
    forced.dense = 1;
    const tr_mrn_opts *variants[3] = {&general, &defaults, &forced};
    const char *labels[3] = {"shrink 0", "defaults", "defaults, general"};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        int d1 = dims[di];
        if (d1 > max_d1)
            break;
        for (int v = 0; v < 3; v++) {
            double med[3];
            int calls, scalapack;
            time_layer(med, &calls, &scalapack, variants[v], d1, reps);
            if (rank == 0)
                printf("%-6d %-18s %-10.4f %-12.4f %-12.4f %-10d %s\n", d1, labels[v], med[0],
                       med[1], med[2], calls, scalapack ? "scalapack(D1,T<=min:lapack)" : "lapack");
        }
    }
    MPI_Finalize();
    return 0;
}
