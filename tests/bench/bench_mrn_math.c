/*
 * Micro-benchmark of one MRN covariance update (taskrel/mrn_math.h), serial:
 * the flip-flop over the three modes — feature, class, task — each being the
 * partial sum over all T tasks (what one rank computes when it owns every task),
 * finalize, the [choice] trace normalisation and the floor precision
 * (LAPACKE_dsyevd + dsyrk) — at D1 = 512 and 1024, D2 = 256, T = 6 (fc7-like).
 * Also timed: the same partial sums for one owned task (a rank's share with six
 * ranks), one prior gradient over all tasks and one proximal step, for scale.
 * Best of several repetitions, one thread. Not a test and not built by CMake.
 * Build and run from the repository root:
 *
 *   mpicc -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -I include -I src \
 *     -I/usr/include/x86_64-linux-gnu/openblas-pthread src/core/[a-z]*.c \
 *     src/linalg/mrn_math.c tests/bench/bench_mrn_math.c -o /tmp/bench_mrn_math \
 *     -llapacke -lopenblas -lm
 *   OPENBLAS_NUM_THREADS=1 /tmp/bench_mrn_math [reps]
 */
#include <stdio.h>
#include <stdlib.h>

#include "taskrel/mrn_math.h"

#define D2 256
#define T 6

static double *alloc_d(size_t n) {
    double *p = tr_calloc(n ? n : 1, sizeof(double));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void eye(double *a, int n) {
    for (int i = 0; i < n; i++)
        a[(size_t)i * n + i] = 1.0;
}

static void check(tr_status s) {
    if (s != TR_OK) {
        fprintf(stderr, "error: %s (%s)\n", tr_error_message(), tr_error_where());
        exit(1);
    }
}

/* Seconds for one mode's update: part over [0, tn), finalize, normalise (feature,
 * class), precision. Timed separately: the part and the rest. */
typedef struct {
    double part, rest;
} mode_time;

static mode_time update_mode(tr_mrn_mode mode, double *sig[3], double *om[3], double *u[3],
                             double *p[3], const double *w, int d1, int tn) {
    int dims[3] = {d1, D2, T};
    int n = dims[mode];
    mode_time mt;
    double t0 = tr_time_now();
    check(tr_mrn_cov_part(sig[mode], mode, w, om[0], om[1], om[2], d1, D2, T, 0, tn));
    double t1 = tr_time_now();
    tr_mrn_cov_finalize(sig[mode], tr_mrn_cov_scale(mode, d1, D2, T), 1e-6, n);
    if (mode != TR_MRN_MODE_TASK) {
        double f3;
        check(tr_mrn_cov_normalize(mode == TR_MRN_MODE_FEATURE ? sig[0] : NULL,
                                   mode == TR_MRN_MODE_CLASS ? sig[1] : NULL, sig[2], &f3, d1, D2,
                                   T));
        tr_mrn_precision_scale(om[2], p[2], NULL, 1.0 / f3, T);
    }
    check(tr_mrn_precision_floor(om[mode], u[mode], p[mode], NULL, sig[mode], 0.1, n));
    mt.part = t1 - t0;
    mt.rest = tr_time_now() - t1;
    return mt;
}

static void bench(int d1, int reps) {
    size_t nn = (size_t)d1 * D2;
    int dims[3] = {d1, D2, T};
    double *w = alloc_d(T * nn), *g = alloc_d(T * nn);
    tr_rng r;
    tr_rng_init(&r, 1, TR_RNG_TEST, (uint64_t)d1);
    for (size_t i = 0; i < T * nn; i++)
        w[i] = 0.01 * tr_rng_normal(&r);
    double *sig[3], *om[3], *u[3], *p[3];
    for (int m = 0; m < 3; m++) {
        size_t n2 = (size_t)dims[m] * dims[m];
        sig[m] = alloc_d(n2);
        om[m] = alloc_d(n2);
        u[m] = alloc_d(n2);
        p[m] = alloc_d(dims[m]);
        eye(sig[m], dims[m]);
        eye(om[m], dims[m]);
        eye(u[m], dims[m]);
        for (int k = 0; k < dims[m]; k++)
            p[m][k] = 1.0;
    }
    const char *names[3] = {"feature", "class", "task"};
    mode_time best[3] = {{1e30, 1e30}, {1e30, 1e30}, {1e30, 1e30}};
    double best_total = 1e30, best_part1[3] = {1e30, 1e30, 1e30}, best_grad = 1e30,
           best_prox = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double total = 0.0;
        for (int m = 0; m < 3; m++) {
            mode_time mt = update_mode((tr_mrn_mode)m, sig, om, u, p, w, d1, T);
            total += mt.part + mt.rest;
            if (mt.part < best[m].part)
                best[m].part = mt.part;
            if (mt.rest < best[m].rest)
                best[m].rest = mt.rest;
        }
        if (total < best_total)
            best_total = total;
        for (int m = 0; m < 3; m++) {
            double t0 = tr_time_now();
            check(tr_mrn_cov_part(sig[m], (tr_mrn_mode)m, w, om[0], om[1], om[2], d1, D2, T, 0, 1));
            double dt = tr_time_now() - t0;
            if (dt < best_part1[m])
                best_part1[m] = dt;
            tr_mrn_cov_finalize(sig[m], 1.0, 1.0, dims[m]); // keep it a usable covariance
        }
        double t0 = tr_time_now();
        check(tr_mrn_prior_grad(g, NULL, w, om[0], om[1], om[2], 1e-3, d1, D2, T, 0, T));
        double t1 = tr_time_now();
        check(tr_mrn_prox(g, w, u[0], u[1], u[2], p[0], p[1], p[2], 0.01, 1e-3, d1, D2, T, 0, T));
        double t2 = tr_time_now();
        if (t1 - t0 < best_grad)
            best_grad = t1 - t0;
        if (t2 - t1 < best_prox)
            best_prox = t2 - t1;
    }
    /* Flops of a part over tn tasks: task mix 2 tn T D1 D2 (not for task mode, which
     * has the same term as its final product) + 2 tn (D1² D2 + D1 D2²). */
    double dd1 = d1,
           flops_part = 2.0 * T * T * dd1 * D2 + 2.0 * T * (dd1 * dd1 * D2 + dd1 * D2 * D2);
    printf("D1=%d D2=%d T=%d: one covariance update (all three modes, all tasks) %.1f ms\n", d1, D2,
           T, 1e3 * best_total);
    for (int m = 0; m < 3; m++)
        printf("  %-7s part %8.1f ms (%5.1f GFLOP/s)  finalize+normalise+precision (n=%4d) "
               "%8.1f ms   part for 1 owned task %7.1f ms\n",
               names[m], 1e3 * best[m].part, flops_part / best[m].part * 1e-9, dims[m],
               1e3 * best[m].rest, 1e3 * best_part1[m]);
    printf("  prior gradient (all tasks) %.1f ms, proximal step (all tasks) %.1f ms\n",
           1e3 * best_grad, 1e3 * best_prox);
    for (int m = 0; m < 3; m++) {
        tr_free(sig[m]);
        tr_free(om[m]);
        tr_free(u[m]);
        tr_free(p[m]);
    }
    tr_free(w);
    tr_free(g);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    if (reps < 1)
        reps = 1;
    bench(512, reps);
    bench(1024, reps);
    return 0;
}
