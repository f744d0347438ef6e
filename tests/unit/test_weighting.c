/*
 * Unit tests of the train.weighting solvers (src/train/weighting_solvers.h),
 * each against an independent computation on explicit gradient vectors:
 * PCGrad's coefficients against LibMTL's loop on the vectors (same task
 * orders), MGDA's and CAGrad's solutions against a fine grid over the simplex,
 * GradNorm's logits gradient against central finite differences.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "taskrel/core.h"
#include "train/weighting_solvers.h"

#define D 5 /* dimension of the test gradients */

/* G = g g^T for T vectors of dimension D. */
static void gram(double *G, const double (*g)[D], int T) {
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            double s = 0.0;
            for (int k = 0; k < D; k++)
                s += g[i][k] * g[j][k];
            G[i * T + j] = s;
        }
}

static void combine(double *out, const double *a, const double (*g)[D], int T) {
    for (int k = 0; k < D; k++) {
        out[k] = 0.0;
        for (int t = 0; t < T; t++)
            out[k] += a[t] * g[t][k];
    }
}

static double dot(const double *a, const double *b) {
    double s = 0.0;
    for (int k = 0; k < D; k++)
        s += a[k] * b[k];
    return s;
}

static void random_grads(double (*g)[D], int T, uint64_t seed) {
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_TEST, 0);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < D; k++)
            g[t][k] = tr_rng_normal(&r) + (k == 0 ? 0.3 : 0.0);
}

static void test_pcgrad_two(void **s) {
    (void)s;
    const double g[2][D] = {{1, 0}, {-1, 1}};
    double G[4], a[2];
    gram(G, g, 2);
    tr_wsolve_pcgrad(a, G, 2, 1, 0);
    /* pc1 = g1 + g2 / 2, pc2 = g2 + g1 (either order) */
    assert_true(fabs(a[0] - 2.0) < 1e-14 && fabs(a[1] - 1.5) < 1e-14);
}

/* LibMTL's loop on the vectors, with the same orders. */
static void test_pcgrad_vectors(void **s) {
    (void)s;
    enum { T = 4 };
    double g[T][D], G[T * T], a[T], want[D] = {0}, got[D];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        random_grads(g, T, seed);
        gram(G, (const double(*)[D])g, T);
        int64_t step = (int64_t)seed * 7;
        tr_wsolve_pcgrad(a, G, T, 11, step);
        memset(want, 0, sizeof(want));
        for (int i = 0; i < T; i++) {
            double pc[D];
            memcpy(pc, g[i], sizeof(pc));
            int32_t order[T];
            tr_rng_permutation(order, T, 11, TR_RNG_PCGRAD, (uint64_t)step * 65536u + (uint64_t)i);
            for (int o = 0; o < T; o++) {
                int j = order[o];
                double gij = dot(pc, g[j]);
                if (gij < 0)
                    for (int k = 0; k < D; k++)
                        pc[k] -= gij * g[j][k] / dot(g[j], g[j]);
            }
            for (int k = 0; k < D; k++)
                want[k] += pc[k];
        }
        combine(got, a, (const double(*)[D])g, T);
        for (int k = 0; k < D; k++)
            assert_true(fabs(got[k] - want[k]) < 1e-12 * (1 + fabs(want[k])));
    }
}

/* The smallest value of f over a grid of step 1/n on the 3-simplex. */
static double grid_min(double (*f)(const double *w, const void *ctx), const void *ctx, int n) {
    double best = INFINITY;
    for (int i = 0; i <= n; i++)
        for (int j = 0; i + j <= n; j++) {
            double w[3] = {(double)i / n, (double)j / n, (double)(n - i - j) / n};
            best = fmin(best, f(w, ctx));
        }
    return best;
}

static double mgda_f(const double *w, const void *ctx) {
    const double *G = ctx;
    double s = 0.0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            s += w[i] * w[j] * G[i * 3 + j];
    return s;
}

static void test_mgda(void **s) {
    (void)s;
    const double g2[2][D] = {{1, 0}, {0, 1}};
    double G2[4], sol2[2];
    gram(G2, g2, 2);
    tr_wsolve_mgda(sol2, G2, 2);
    assert_true(fabs(sol2[0] - 0.5) < 1e-14 && fabs(sol2[1] - 0.5) < 1e-14);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        double g[3][D], G[9], sol[3];
        random_grads(g, 3, seed);
        gram(G, (const double(*)[D])g, 3);
        tr_wsolve_mgda(sol, G, 3);
        assert_true(fabs(sol[0] + sol[1] + sol[2] - 1.0) < 1e-9);
        assert_true(sol[0] >= 0 && sol[1] >= 0 && sol[2] >= 0);
        /* Frank-Wolfe stops at an L1 change of 1e-5: within 1e-3 relative */
        double best = grid_min(mgda_f, G, 400);
        assert_true(mgda_f(sol, G) <= best * (1 + 1e-3) + 1e-12);
    }
}

typedef struct {
    const double *G;
    double c;
} cag_ctx;

static double cagrad_f(const double *w, const void *p) {
    const cag_ctx *x = p;
    double wGb = 0.0, wGw = mgda_f(w, x->G);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            wGb += w[i] * x->G[i * 3 + j] / 3.0;
    return wGb + x->c * sqrt(wGw + 1e-8);
}

static void test_cagrad(void **s) {
    (void)s;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        double g[3][D], G[9], a[3], w[3];
        random_grads(g, 3, seed);
        gram(G, (const double(*)[D])g, 3);
        tr_wsolve_cagrad(a, w, G, 3, 0.5, 1);
        double mean = 0.0;
        for (int i = 0; i < 9; i++)
            mean += G[i] / 9;
        cag_ctx x = {G, 0.5 * sqrt(mean + 1e-8) + 1e-8};
        assert_true(cagrad_f(w, &x) <= grid_min(cagrad_f, &x, 400) + 1e-9);
        /* a = (1/T + lambda w) / (1 + c^2) */
        double lambda = x.c / (sqrt(mgda_f(w, G)) + 1e-8);
        for (int t = 0; t < 3; t++)
            assert_true(fabs(a[t] - (1.0 / 3 + lambda * w[t]) / 1.25) < 1e-12);
    }
    double G[9] = {1, 0.2, 0.1, 0.2, 2, 0.3, 0.1, 0.3, 1.5}, a[3], w[3];
    tr_wsolve_cagrad(a, w, G, 3, 0.0, 0); /* c = 0: the mean gradient */
    for (int t = 0; t < 3; t++)
        assert_true(fabs(a[t] - 1.0 / 3) < 1e-7);
}

static double gradnorm_loss(const double *z, const double *n, const double *r, const double *tgt,
                            int T) {
    double w[8], s = 0.0;
    tr_wsolve_scaled_softmax(w, z, T);
    for (int t = 0; t < T; t++)
        s += fabs(w[t] * n[t] - tgt[t]);
    return s;
}

static void test_gradnorm(void **s) {
    (void)s;
    enum { T = 4 };
    double z[T] = {0.1, -0.3, 0.4, 0.0}, n[T] = {1.0, 2.5, 0.7, 1.8}, r[T] = {0.9, 1.1, 0.8, 1.2};
    double w[T], dz[T], tgt[T], gmean = 0.0, rmean = 0.0;
    tr_wsolve_scaled_softmax(w, z, T);
    double sum = 0.0;
    for (int t = 0; t < T; t++)
        sum += w[t];
    assert_true(fabs(sum - T) < 1e-12);
    for (int t = 0; t < T; t++) {
        gmean += w[t] * n[t] / T;
        rmean += r[t] / T;
    }
    for (int t = 0; t < T; t++) /* the target is held constant (detached) */
        tgt[t] = gmean * pow(r[t] / rmean, 1.5);
    tr_wsolve_gradnorm(dz, z, n, r, T, 1.5);
    for (int k = 0; k < T; k++) {
        double zp[T], zm[T], h = 1e-6;
        memcpy(zp, z, sizeof(zp));
        memcpy(zm, z, sizeof(zm));
        zp[k] += h;
        zm[k] -= h;
        double fd = (gradnorm_loss(zp, n, r, tgt, T) - gradnorm_loss(zm, n, r, tgt, T)) / (2 * h);
        assert_true(fabs(fd - dz[k]) < 1e-6);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcgrad_two), cmocka_unit_test(test_pcgrad_vectors),
        cmocka_unit_test(test_mgda),       cmocka_unit_test(test_cagrad),
        cmocka_unit_test(test_gradnorm),
    };
    return cmocka_run_group_tests_name("weighting", tests, NULL, NULL);
}
