/*
 * Micro-benchmark of the GEMM-bound layers at the lenet shapes (batch 128):
 * conv 1->32 k5 on 28x28, conv 32->64 k5 on 12x12, linear 1024->512, forward
 * and backward, in ms and GFLOP/s (best of several repetitions, one thread).
 * A plain sgemm with the same total flops is timed as the machine's ceiling.
 * The memory-bound layers (ReLU, max pool, batch norm, dropout) are timed at
 * conv1's output size (128, 32, 24, 24) and fc6's (128, 512).
 * Not a test and not built by CMake. Build and run from the repository root:
 *
 *   mpicc -O2 -std=gnu11 -Wall -Wextra -I include -I src \
 *     -I/usr/include/x86_64-linux-gnu/openblas-pthread src/core/[a-z]*.c src/nn/[a-z]*.c \
 *     tests/bench/bench_layers.c -o /tmp/bench_layers -lopenblas -lm
 *   OPENBLAS_NUM_THREADS=1 /tmp/bench_layers [reps]
 */
#include <stdio.h>
#include <stdlib.h>

#include <cblas.h>

#include "taskrel/nn.h"

#define BATCH 128

static float *alloc_rand(size_t n, uint64_t stream) {
    float *p = tr_calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    tr_init_uniform(p, n, 1.0f, 42, stream);
    return p;
}

static void report(const char *what, double sec, double flops) {
    printf("  %-34s %8.3f ms  %6.1f GFLOP/s\n", what, sec * 1e3, flops / sec * 1e-9);
}

static void bench_conv(int c, int h, int oc, int k, int with_din, int reps) {
    int n = BATCH, o = tr_conv2d_out_dim(h, k, 0, 1);
    size_t csz = tr_conv2d_col_size(c, h, h, k, 0, 1);
    float *in = alloc_rand((size_t)n * c * h * h, 1), *w = alloc_rand((size_t)oc * c * k * k, 2);
    float *b = alloc_rand(oc, 3), *out = alloc_rand((size_t)n * oc * o * o, 4);
    float *col = alloc_rand(n * csz, 5), *dcol = alloc_rand(csz, 6);
    float *dout = alloc_rand((size_t)n * oc * o * o, 7),
          *din = alloc_rand((size_t)n * c * h * h, 8);
    float *dw = alloc_rand((size_t)oc * c * k * k, 9), *db = alloc_rand(oc, 10);
    double fwd = 1e30, bwd = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = tr_time_now();
        tr_conv2d_forward(out, col, in, w, b, n, c, h, h, oc, k, 0, 1);
        double t1 = tr_time_now();
        tr_conv2d_backward(with_din ? din : NULL, dw, db, dcol, dout, col, w, n, c, h, h, oc, k, 0,
                           1);
        double t2 = tr_time_now();
        fwd = t1 - t0 < fwd ? t1 - t0 : fwd;
        bwd = t2 - t1 < bwd ? t2 - t1 : bwd;
    }
    double f = 2.0 * n * oc * o * o * c * k * k; // one GEMM's flops
    printf("conv %d->%d k%d on %dx%d (out %dx%d), batch %d\n", c, oc, k, h, h, o, o, n);
    report("forward (im2col + sgemm)", fwd, f);
    report(with_din ? "backward (dw, db, din)" : "backward (dw, db; din NULL)", bwd,
           with_din ? 2 * f : f);
    tr_free(in), tr_free(w), tr_free(b), tr_free(out), tr_free(col), tr_free(dcol);
    tr_free(dout), tr_free(din), tr_free(dw), tr_free(db);
}

static void bench_linear(int din_, int dout_, int reps) {
    int n = BATCH;
    float *in = alloc_rand((size_t)n * din_, 1), *w = alloc_rand((size_t)din_ * dout_, 2);
    float *b = alloc_rand(dout_, 3), *out = alloc_rand((size_t)n * dout_, 4);
    float *dout = alloc_rand((size_t)n * dout_, 5), *din = alloc_rand((size_t)n * din_, 6);
    float *dw = alloc_rand((size_t)din_ * dout_, 7), *db = alloc_rand(dout_, 8);
    double fwd = 1e30, bwd = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = tr_time_now();
        tr_linear_forward(out, in, w, b, n, din_, dout_);
        double t1 = tr_time_now();
        tr_linear_backward(din, dw, db, dout, in, w, n, din_, dout_);
        double t2 = tr_time_now();
        fwd = t1 - t0 < fwd ? t1 - t0 : fwd;
        bwd = t2 - t1 < bwd ? t2 - t1 : bwd;
    }
    double f = 2.0 * n * din_ * dout_;
    printf("linear %d->%d, batch %d\n", din_, dout_, n);
    report("forward", fwd, f);
    report("backward (dw, db, din)", bwd, 2 * f);
    tr_free(in), tr_free(w), tr_free(b), tr_free(out), tr_free(dout), tr_free(din), tr_free(dw);
    tr_free(db);
}

#define TIME_BEST(best, stmt)                                                                      \
    do {                                                                                           \
        best = 1e30;                                                                               \
        for (int r_ = 0; r_ < reps; r_++) {                                                        \
            double t0_ = tr_time_now();                                                            \
            stmt;                                                                                  \
            double t_ = tr_time_now() - t0_;                                                       \
            best = t_ < best ? t_ : best;                                                          \
        }                                                                                          \
    } while (0)

static void report_bw(const char *what, double sec, size_t elems) {
    printf("  %-34s %8.3f ms  %6.2f ns/element\n", what, sec * 1e3, sec * 1e9 / (double)elems);
}

static void bench_elementwise(int reps) {
    int n = BATCH, c = 32, hw = 24, s = hw * hw, fc = 512;
    size_t total = (size_t)n * c * s, pooled = total / 4;
    float *x = alloc_rand(total, 1), *y = alloc_rand(total, 2), *g = alloc_rand(total, 3);
    float *dx = alloc_rand(total, 4), *xhat = alloc_rand(total, 5);
    uint8_t *idx = tr_calloc(pooled, 1);
    uint8_t *mask = tr_calloc((size_t)n * fc, 1);
    int64_t *ids = tr_calloc(n, sizeof(int64_t));
    double sum[32], sumsq[32], dsum[32], dxsum[32], best;
    float gamma[32], beta[32], rstd[32], dgamma[32] = {0}, dbeta[32] = {0};
    for (int i = 0; i < c; i++)
        gamma[i] = 1.0f, beta[i] = 0.0f;
    printf("elementwise at (%d, %d, %d, %d) and (%d, %d)\n", n, c, hw, hw, n, fc);
    TIME_BEST(best, tr_relu_forward(y, x, total));
    report_bw("relu forward", best, total);
    TIME_BEST(best, tr_relu_backward(dx, g, y, total));
    report_bw("relu backward", best, total);
    TIME_BEST(best, tr_maxpool_forward(y, idx, x, n, c, hw, hw, 2));
    report_bw("maxpool 2x2 forward", best, total);
    TIME_BEST(best, tr_maxpool_backward(dx, g, idx, n, c, hw, hw, 2));
    report_bw("maxpool 2x2 backward", best, total);
    TIME_BEST(best, tr_bn_stats(sum, sumsq, x, n, c, s); tr_bn_forward(
                  y, xhat, rstd, x, sum, sumsq, (double)n * s, gamma, beta, n, c, s, 1e-5f));
    report_bw("batchnorm stats + forward", best, total);
    TIME_BEST(best, tr_bn_backward_stats(dsum, dxsum, g, xhat, n, c, s); tr_bn_backward(
                  dx, dgamma, dbeta, g, xhat, rstd, dsum, dxsum, (double)n * s, gamma, n, c, s));
    report_bw("batchnorm backward stats + backward", best, total);
    TIME_BEST(best, tr_dropout_forward(y, mask, x, n, fc, 0.5f, 1, 0, 0, ids));
    report_bw("dropout forward (128, 512)", best, (size_t)n * fc);
    TIME_BEST(best, tr_dropout_backward(dx, g, mask, n, fc, 0.5f));
    report_bw("dropout backward (128, 512)", best, (size_t)n * fc);
    tr_free(x), tr_free(y), tr_free(g), tr_free(dx), tr_free(xhat), tr_free(idx), tr_free(mask);
    tr_free(ids);
}

// a square-ish sgemm of about the same flops as conv2's forward, as a ceiling
static void bench_gemm(int m, int nn, int kk, int reps) {
    float *a = alloc_rand((size_t)m * kk, 1), *b = alloc_rand((size_t)kk * nn, 2);
    float *c = alloc_rand((size_t)m * nn, 3);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = tr_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nn, kk, 1.0f, a, kk, b, nn, 0.0f,
                    c, nn);
        double t = tr_time_now() - t0;
        best = t < best ? t : best;
    }
    char what[64];
    snprintf(what, sizeof(what), "sgemm %dx%dx%d", m, nn, kk);
    report(what, best, 2.0 * m * nn * kk);
    tr_free(a), tr_free(b), tr_free(c);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 20;
    bench_conv(1, 28, 32, 5, 0, reps);  // conv1: first layer, no input gradient
    bench_conv(32, 12, 64, 5, 1, reps); // conv2
    bench_linear(1024, 512, reps);      // fc6
    bench_elementwise(reps);
    printf("reference\n");
    bench_gemm(64, 8192, 800, reps); // conv2 forward as one big GEMM
    bench_gemm(1024, 1024, 512, reps);
    return 0;
}
