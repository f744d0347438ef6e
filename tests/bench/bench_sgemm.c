/*
 * tests/bench/bench_sgemm.c — this core's sgemm rate (GFLOP/s, 2·m·n·k per
 * product) for a large square product and for the GEMM shapes of the
 * HPS-lenet bench step (tests/bench/hps_lenet_bench.ini, 128 examples per
 * task, 4 tasks): the per-sample convolution products of src/nn/conv.c and
 * the fc products over a task's batch. Median of `reps` timings of each
 * shape, each timing long enough (>= 0.2 s) to swamp the clock.
 *
 *   cmake --build build --target bench_sgemm && build/tests/bench_sgemm [reps]
 *
 * Prints one line per shape: name m n k transA transB GFLOP/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *name;
    int m, n, k, ta, tb;
} shape;

static double rate(const shape *s, int reps) {
    size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    for (size_t i = 0; i < na; i++)
        a[i] = (float)((i * 7 % 13) - 6) * 0.01f;
    for (size_t i = 0; i < nb; i++)
        b[i] = (float)((i * 5 % 11) - 5) * 0.01f;
    for (size_t i = 0; i < nc; i++)
        c[i] = 0.0f;
    int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    double flop = 2.0 * s->m * s->n * s->k, *g = malloc((size_t)reps * sizeof *g);
    int inner = 1;
    for (;;) { /* calibrate: one timing >= 0.2 s */
        double t0 = now();
        for (int i = 0; i < inner; i++)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                        s->tb ? CblasTrans : CblasNoTrans, s->m, s->n, s->k, 1.0f, a, lda, b, ldb,
                        1.0f, c, s->n);
        if (now() - t0 >= 0.2)
            break;
        inner *= 2;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < inner; i++)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                        s->tb ? CblasTrans : CblasNoTrans, s->m, s->n, s->k, 1.0f, a, lda, b, ldb,
                        1.0f, c, s->n);
        g[r] = flop * inner / (now() - t0) * 1e-9;
    }
    qsort(g, (size_t)reps, sizeof *g, cmp);
    double med = g[reps / 2];
    free(a);
    free(b);
    free(c);
    free(g);
    return med;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1)
        reps = 1;
    /* conv1: 1->32, 5x5 on 28x28 (P = 576, K = 25); conv2: 32->64 on 12x12 (P = 64, K = 800) */
    const shape shapes[] = {
        {"square-2048", 2048, 2048, 2048, 0, 0}, {"conv1-fwd", 32, 576, 25, 0, 0},
        {"conv1-dw", 32, 25, 576, 0, 1},         {"conv2-fwd", 64, 64, 800, 0, 0},
        {"conv2-dw", 64, 800, 64, 0, 1},         {"conv2-dcol", 800, 64, 64, 1, 0},
        {"fc6-fwd", 512, 512, 1024, 0, 0},       {"fc6-dw", 1024, 512, 512, 1, 0},
        {"fc7-fwd", 128, 256, 512, 0, 0},        {"fc7-dw", 512, 256, 128, 1, 0},
    };
    printf("%-12s %5s %5s %5s %2s %2s %9s\n", "shape", "m", "n", "k", "tA", "tB", "GFLOP/s");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *s = &shapes[i];
        printf("%-12s %5d %5d %5d %2d %2d %9.1f\n", s->name, s->m, s->n, s->k, s->ta, s->tb,
               rate(s, reps));
        fflush(stdout);
    }
    return 0;
}
