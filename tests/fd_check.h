/*
 * The finite-difference harness of the gradient tests (unit.nn,
 * unit.attention, unit.relational): central differences of a scalar
 * objective, the relative error of a whole gradient vector, and the check
 * that prints and asserts it. Include after <cmocka.h>.
 *
 * The objective is evaluated in float32 as in training and summed in double;
 * a difference quotient divides by the step actually taken in float32.
 */
#ifndef TASKREL_TESTS_FD_CHECK_H
#define TASKREL_TESTS_FD_CHECK_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "taskrel/core.h"

typedef double (*fd_objective)(void *ctx);

/* A zeroed float buffer of n entries (at least one); the test frees it. */
static inline float *fd_buf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* x (n) ~ U(lo, hi) from the test stream (seed, stream). */
static inline void fd_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed,
                                   uint64_t stream) {
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_TEST, stream);
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)tr_rng_uniform(&r);
}

/* sum(a .* b) in double: the objective L = sum(out .* R), so dL/dout = R. */
static inline double fd_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Central difference of f in *x with step h; *x is restored. */
static inline double fd_central(float *x, float h, fd_objective f, void *ctx) {
    float x0 = *x;
    *x = x0 + h;
    double lp = f(ctx);
    *x = x0 - h;
    double lm = f(ctx);
    *x = x0;
    return (lp - lm) / ((double)(x0 + h) - (double)(x0 - h));
}

/* ||g_fd - g|| / max(||g||, tiny) over x (n) and its analytic gradient g (n);
 * *gnorm (may be NULL) gets ||g||. */
static inline double fd_rel_err(float *x, const float *g, size_t n, fd_objective f, void *ctx,
                                float h, double *gnorm) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double gfd = fd_central(&x[i], h, f, ctx);
        num += (gfd - g[i]) * (gfd - g[i]);
        den += (double)g[i] * g[i];
    }
    if (gnorm)
        *gnorm = sqrt(den);
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}

/* Print the relative error of g against f's central differences in x and
 * assert it is below tol; with nonzero, also that g is not all zero (a zero
 * gradient checks nothing). */
static inline void fd_check(const char *what, float *x, const float *g, size_t n, fd_objective f,
                            void *ctx, float h, double tol, int nonzero) {
    double gnorm = 0.0;
    double e = fd_rel_err(x, g, n, f, ctx, h, &gnorm);
    print_message("  fd %-34s rel err %.2e (tol %.0e)\n", what, e, tol);
    if (nonzero)
        assert_true(gnorm > 0.0);
    assert_true(e < tol);
}

#endif
