/*
 * Unit tests of the layers in taskrel/nn.h.
 *
 * Every backward is checked against central finite differences of the scalar
 * objective L = sum(out .* R) with a fixed random R (so dL/dout = R), or of
 * the loss itself for the losses. Forwards run in float32 as in training; L is
 * summed in double. The error measure is the relative error of the whole
 * gradient vector, ||g_fd - g|| / max(||g||, tiny).
 *
 * Tolerances, from the expected size of the FD error, not from observed runs:
 *  - TOL_PL (1e-3): layers that are linear in the perturbed variable between
 *    kinks (linear, conv, ReLU, max pool, dropout) and the quadratic MSE.
 *    Inputs stay farther than h from every kink, so the central difference
 *    has no truncation error at all (MSE: the quadratic's third derivative is
 *    0). What is left is float32 rounding of the outputs: about
 *    u * sqrt(M) * |out| ~ 6e-8 * 30 ~ 2e-6 in L for M <= 1000 outputs of
 *    size ~1, divided by 2h = 2e-2: ~1e-4 absolute on gradient entries of
 *    size ~1, i.e. 1e-4 relative. 1e-3 leaves a 10x margin, while a wrong
 *    index, sign or missing term gives O(0.1..1).
 *  - TOL_SMOOTH (5e-3): batch norm and softmax cross-entropy are smooth but
 *    curved. With h = 1e-2 the truncation error is h^2/6 * |f'''| ~ 2e-5 *
 *    |f'''|; for standardised inputs |f'''| = O(10), so ~2e-4, plus the same
 *    rounding as above. 5e-3 leaves a 10x margin over ~5e-4.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fd_check.h"
#include "taskrel/nn.h"

#define H_FD 1e-2f
#define TOL_PL 1e-3
#define TOL_SMOOTH 5e-3

/* ---- helpers ----------------------------------------------------------------- */

// x (n) ~ U(lo, hi) from test stream `stream`
static void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t stream) {
    fd_fill_uniform(x, n, lo, hi, 1234, stream);
}

/* x (n): distinct values spaced 0.05 apart (a random permutation), centred
 * on 0 and all at least 0.025 from 0, so that a perturbation of h = 1e-2
 * never reorders two elements or crosses zero. */
static void fill_distinct(float *x, size_t n, uint64_t stream) {
    int32_t *perm = malloc(n * sizeof(int32_t));
    assert_non_null(perm);
    tr_rng_permutation(perm, (int32_t)n, 99, TR_RNG_TEST, stream);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.05f * (float)(perm[i] - (int32_t)(n / 2)) + 0.025f; // k/20 + 1/40, never 0
    free(perm);
}

/* The FD checks of this file do not require a nonzero gradient (fd_check's
 * last argument); the attention tests do. */
static void check_fd(const char *what, float *x, const float *g, size_t n, fd_objective f,
                     void *ctx, float h, double tol) {
    fd_check(what, x, g, n, f, ctx, h, tol, 0);
}

/* max |a - 2b| / max|b| : backward called twice must give twice the gradient */
static void check_twice(const float *twice, const float *once, size_t n) {
    double m = 0.0, d = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)twice[i] - 2.0 * once[i]));
        m = fmax(m, fabs((double)once[i]));
    }
    // Only reassociation differs between the two accumulations.
    assert_true(d <= 1e-5 * fmax(m, 1e-30));
}

/* ---- linear -------------------------------------------------------------------- */

typedef struct {
    int n, din, dout;
    float *in, *w, *b, *out, *R;
} lin_ctx;

static double lin_obj(void *p) {
    lin_ctx *c = p;
    tr_linear_forward(c->out, c->in, c->w, c->b, c->n, c->din, c->dout);
    return fd_dot(c->out, c->R, (size_t)c->n * c->dout);
}

static void run_linear(int n, int din, int dout, int use_bias, int use_din) {
    lin_ctx c = {.n = n, .din = din, .dout = dout};
    size_t ni = (size_t)c.n * c.din, nw = (size_t)c.din * c.dout, no = (size_t)c.n * c.dout;
    c.in = fd_buf(ni);
    c.w = fd_buf(nw);
    c.b = use_bias ? fd_buf(c.dout) : NULL;
    c.out = fd_buf(no);
    c.R = fd_buf(no);
    fill_uniform(c.in, ni, -1, 1, 1);
    fill_uniform(c.w, nw, -1, 1, 2);
    if (c.b)
        fill_uniform(c.b, c.dout, -1, 1, 3);
    fill_uniform(c.R, no, -1, 1, 4);

    // forward against a naive double loop
    tr_linear_forward(c.out, c.in, c.w, c.b, c.n, c.din, c.dout);
    for (int i = 0; i < c.n; i++)
        for (int j = 0; j < c.dout; j++) {
            double s = c.b ? c.b[j] : 0.0;
            for (int k = 0; k < c.din; k++)
                s += (double)c.in[i * c.din + k] * c.w[k * c.dout + j];
            assert_true(fabs(s - c.out[i * c.dout + j]) < 1e-5 * (1.0 + fabs(s)));
        }

    float *gin = use_din ? fd_buf(ni) : NULL, *gw = fd_buf(nw),
          *gb = use_bias ? fd_buf(c.dout) : NULL;
    tr_linear_backward(gin, gw, gb, c.R, c.in, c.w, c.n, c.din, c.dout);
    if (gin)
        check_fd("linear din", c.in, gin, ni, lin_obj, &c, H_FD, TOL_PL);
    check_fd("linear dw", c.w, gw, nw, lin_obj, &c, H_FD, TOL_PL);
    if (gb)
        check_fd("linear db", c.b, gb, c.dout, lin_obj, &c, H_FD, TOL_PL);

    // a second backward adds the same amount again
    float *gin2 = use_din ? fd_buf(ni) : NULL, *gw2 = fd_buf(nw),
          *gb2 = use_bias ? fd_buf(c.dout) : NULL;
    for (int rep = 0; rep < 2; rep++)
        tr_linear_backward(gin2, gw2, gb2, c.R, c.in, c.w, c.n, c.din, c.dout);
    check_twice(gw2, gw, nw);
    if (gin)
        check_twice(gin2, gin, ni);
    if (gb)
        check_twice(gb2, gb, c.dout);

    free(c.in), free(c.w), free(c.b), free(c.out), free(c.R);
    free(gin), free(gw), free(gb), free(gin2), free(gw2), free(gb2);
}

static void test_linear(void **state) {
    (void)state;
    run_linear(5, 7, 6, 1, 1);
    run_linear(5, 7, 6, 0, 1);  // no bias
    run_linear(5, 7, 6, 1, 0);  // din NULL
    run_linear(3, 9, 19, 1, 1); // rows of 8 + tail in the bias gradient
}

/* ---- conv2d --------------------------------------------------------------------- */

typedef struct {
    int n, c, h, w, oc, k, pad, stride, oh, ow;
    float *in, *wt, *b, *out, *col, *R;
} conv_ctx;

static double conv_obj(void *p) {
    conv_ctx *c = p;
    tr_conv2d_forward(c->out, c->col, c->in, c->wt, c->b, c->n, c->c, c->h, c->w, c->oc, c->k,
                      c->pad, c->stride);
    return fd_dot(c->out, c->R, (size_t)c->n * c->oc * c->oh * c->ow);
}

// direct convolution in double, compared with the im2col + GEMM forward
static void check_conv_naive(const conv_ctx *c) {
    for (int i = 0; i < c->n; i++)
        for (int o = 0; o < c->oc; o++)
            for (int y = 0; y < c->oh; y++)
                for (int x = 0; x < c->ow; x++) {
                    double s = c->b ? c->b[o] : 0.0;
                    for (int ci = 0; ci < c->c; ci++)
                        for (int ky = 0; ky < c->k; ky++)
                            for (int kx = 0; kx < c->k; kx++) {
                                int iy = y * c->stride - c->pad + ky;
                                int ix = x * c->stride - c->pad + kx;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                    continue;
                                s += (double)c->in[((i * c->c + ci) * c->h + iy) * c->w + ix] *
                                     c->wt[((o * c->c + ci) * c->k + ky) * c->k + kx];
                            }
                    float got = c->out[((i * c->oc + o) * c->oh + y) * c->ow + x];
                    assert_true(fabs(s - got) < 1e-5 * (1.0 + fabs(s)));
                }
}

static void run_conv(int n, int ch, int h, int w, int oc, int k, int pad, int stride) {
    conv_ctx c = {.n = n, .c = ch, .h = h, .w = w, .oc = oc, .k = k, .pad = pad, .stride = stride};
    c.oh = tr_conv2d_out_dim(h, k, pad, stride);
    c.ow = tr_conv2d_out_dim(w, k, pad, stride);
    size_t csz = tr_conv2d_col_size(ch, h, w, k, pad, stride);
    assert_int_equal(csz, (size_t)ch * k * k * c.oh * c.ow);
    size_t ni = (size_t)n * ch * h * w, nw = (size_t)oc * ch * k * k;
    size_t no = (size_t)n * oc * c.oh * c.ow;
    c.in = fd_buf(ni), c.wt = fd_buf(nw), c.b = fd_buf(oc), c.out = fd_buf(no), c.R = fd_buf(no);
    c.col = fd_buf(n * csz);
    fill_uniform(c.in, ni, -1, 1, 11);
    fill_uniform(c.wt, nw, -1, 1, 12);
    fill_uniform(c.b, oc, -1, 1, 13);
    fill_uniform(c.R, no, -1, 1, 14);
    print_message(" conv n=%d c=%d %dx%d oc=%d k=%d pad=%d stride=%d -> %dx%d\n", n, ch, h, w, oc,
                  k, pad, stride, c.oh, c.ow);

    conv_obj(&c);
    check_conv_naive(&c);

    float *gin = fd_buf(ni), *gw = fd_buf(nw), *gb = fd_buf(oc), *dcol = fd_buf(csz);
    tr_conv2d_backward(gin, gw, gb, dcol, c.R, c.col, c.wt, n, ch, h, w, oc, k, pad, stride);
    check_fd("conv din", c.in, gin, ni, conv_obj, &c, H_FD, TOL_PL);
    check_fd("conv dw", c.wt, gw, nw, conv_obj, &c, H_FD, TOL_PL);
    check_fd("conv db", c.b, gb, oc, conv_obj, &c, H_FD, TOL_PL);

    conv_obj(&c); // col cache of the unperturbed input
    float *gin2 = fd_buf(ni), *gw2 = fd_buf(nw), *gb2 = fd_buf(oc);
    for (int rep = 0; rep < 2; rep++)
        tr_conv2d_backward(gin2, gw2, gb2, dcol, c.R, c.col, c.wt, n, ch, h, w, oc, k, pad, stride);
    check_twice(gin2, gin, ni);
    check_twice(gw2, gw, nw);
    check_twice(gb2, gb, oc);

    // din NULL and db NULL: dw alone is unchanged
    float *gw3 = fd_buf(nw);
    tr_conv2d_backward(NULL, gw3, NULL, dcol, c.R, c.col, c.wt, n, ch, h, w, oc, k, pad, stride);
    check_twice(gw2, gw3, nw);

    free(c.in), free(c.wt), free(c.b), free(c.out), free(c.R), free(c.col);
    free(gin), free(gw), free(gb), free(dcol), free(gin2), free(gw2), free(gb2), free(gw3);
}

static void test_conv2d(void **state) {
    (void)state;
    //       n  c  h  w oc  k pad stride
    run_conv(2, 1, 5, 5, 1, 3, 0, 1);
    run_conv(2, 3, 6, 5, 4, 3, 2, 1);
    run_conv(2, 2, 7, 7, 3, 3, 0, 2);
    run_conv(1, 3, 8, 6, 2, 5, 2, 2);
    run_conv(2, 2, 9, 8, 3, 2, 1, 2);   // even kernel, a column dropped by floor
    run_conv(1, 2, 4, 4, 2, 5, 2, 1);   // kernel larger than the input
    run_conv(2, 2, 11, 13, 2, 3, 1, 1); // output rows of 8 + tail (13 wide)
}

/* ---- max pool ------------------------------------------------------------------- */

typedef struct {
    int n, c, h, w, k;
    float *in, *out, *R;
    uint8_t *idx;
} pool_ctx;

static double pool_obj(void *p) {
    pool_ctx *c = p;
    tr_maxpool_forward(c->out, c->idx, c->in, c->n, c->c, c->h, c->w, c->k);
    return fd_dot(c->out, c->R, (size_t)c->n * c->c * (c->h / c->k) * (c->w / c->k));
}

static void test_maxpool(void **state) {
    (void)state;
    pool_ctx c = {.n = 2, .c = 3, .h = 7, .w = 6, .k = 2}; // odd h: last row dropped
    size_t ni = (size_t)c.n * c.c * c.h * c.w, no = (size_t)c.n * c.c * (c.h / 2) * (c.w / 2);
    c.in = fd_buf(ni), c.out = fd_buf(no), c.R = fd_buf(no);
    c.idx = calloc(no, sizeof(uint8_t));
    fill_distinct(c.in, ni, 21);
    fill_uniform(c.R, no, -1, 1, 22);
    pool_obj(&c);
    // forward: each output is the max of its window, idx points at it
    for (int pl = 0; pl < c.n * c.c; pl++)
        for (int y = 0; y < c.h / 2; y++)
            for (int x = 0; x < c.w / 2; x++) {
                const float *src = c.in + (size_t)pl * c.h * c.w;
                float m = fmaxf(
                    fmaxf(src[2 * y * c.w + 2 * x], src[2 * y * c.w + 2 * x + 1]),
                    fmaxf(src[(2 * y + 1) * c.w + 2 * x], src[(2 * y + 1) * c.w + 2 * x + 1]));
                size_t j = (size_t)y * (c.w / 2) + x, o = (size_t)pl * (c.h / 2) * (c.w / 2) + j;
                assert_true(c.out[o] == m);
                assert_true(src[tr_maxpool_offset(j, c.idx[o], c.w, 2)] == m);
            }
    float *gin = fd_buf(ni), *gin2 = fd_buf(ni);
    tr_maxpool_backward(gin, c.R, c.idx, c.n, c.c, c.h, c.w, c.k);
    check_fd("maxpool din", c.in, gin, ni, pool_obj, &c, H_FD, TOL_PL);
    for (int rep = 0; rep < 2; rep++)
        tr_maxpool_backward(gin2, c.R, c.idx, c.n, c.c, c.h, c.w, c.k);
    check_twice(gin2, gin, ni);
    free(c.in), free(c.out), free(c.R), free(c.idx), free(gin), free(gin2);
}

/* ---- ReLU ------------------------------------------------------------------------ */

typedef struct {
    size_t n;
    float *in, *out, *R;
} relu_ctx;

static double relu_obj(void *p) {
    relu_ctx *c = p;
    tr_relu_forward(c->out, c->in, c->n);
    return fd_dot(c->out, c->R, c->n);
}

static void test_relu(void **state) {
    (void)state;
    relu_ctx c = {.n = 43}; // blocks of 8 + tail
    c.in = fd_buf(c.n), c.out = fd_buf(c.n), c.R = fd_buf(c.n);
    fill_distinct(c.in, c.n, 31); // |x| >= 0.025 > h: no kink crossed
    fill_uniform(c.R, c.n, -1, 1, 32);
    relu_obj(&c);
    float *gin = fd_buf(c.n), *gin2 = fd_buf(c.n);
    tr_relu_backward(gin, c.R, c.out, c.n);
    check_fd("relu din", c.in, gin, c.n, relu_obj, &c, H_FD, TOL_PL);
    for (int rep = 0; rep < 2; rep++)
        tr_relu_backward(gin2, c.R, c.out, c.n);
    check_twice(gin2, gin, c.n);
    // in place gives the same output
    relu_obj(&c); // c.out of the unperturbed input
    float *x = fd_buf(c.n);
    memcpy(x, c.in, c.n * sizeof(float));
    tr_relu_forward(x, x, c.n);
    assert_memory_equal(x, c.out, c.n * sizeof(float));
    free(c.in), free(c.out), free(c.R), free(gin), free(gin2), free(x);
}

/* ---- batch norm --------------------------------------------------------------------- */

typedef struct {
    int n, c, s;
    float eps;
    float *in, *gamma, *beta, *out, *xhat, *rstd, *R;
    double *sum, *sumsq;
} bn_ctx;

static double bn_obj(void *p) {
    bn_ctx *c = p;
    tr_bn_stats(c->sum, c->sumsq, c->in, c->n, c->c, c->s);
    tr_bn_forward(c->out, c->xhat, c->rstd, c->in, c->sum, c->sumsq, (double)c->n * c->s, c->gamma,
                  c->beta, c->n, c->c, c->s, c->eps);
    return fd_dot(c->out, c->R, (size_t)c->n * c->c * c->s);
}

#define BN_MAXC 8

static void run_batchnorm(int n, int nc, int s) {
    bn_ctx c = {.n = n, .c = nc, .s = s, .eps = 1e-5f};
    assert_true(nc <= BN_MAXC && n >= 2);
    print_message(" batchnorm n=%d c=%d s=%d\n", n, nc, s);
    size_t nt = (size_t)c.n * c.c * c.s;
    double count = (double)c.n * c.s;
    c.in = fd_buf(nt), c.out = fd_buf(nt), c.xhat = fd_buf(nt), c.R = fd_buf(nt);
    c.gamma = fd_buf(c.c), c.beta = fd_buf(c.c), c.rstd = fd_buf(c.c);
    c.sum = calloc(c.c, sizeof(double)), c.sumsq = calloc(c.c, sizeof(double));
    fill_uniform(c.in, nt, -2, 2, 41);
    fill_uniform(c.gamma, c.c, 0.5f, 1.5f, 42);
    fill_uniform(c.beta, c.c, -1, 1, 43);
    fill_uniform(c.R, nt, -1, 1, 44);
    bn_obj(&c);

    // forward: each channel of xhat has mean 0 and (biased) variance ~1
    for (int ch = 0; ch < c.c; ch++) {
        double m = 0, v = 0;
        for (int i = 0; i < c.n; i++)
            for (int j = 0; j < c.s; j++)
                m += c.xhat[(i * c.c + ch) * c.s + j];
        m /= count;
        for (int i = 0; i < c.n; i++)
            for (int j = 0; j < c.s; j++) {
                double d = c.xhat[(i * c.c + ch) * c.s + j] - m;
                v += d * d;
            }
        assert_true(fabs(m) < 1e-5);
        assert_true(fabs(v / count - 1.0) < 1e-3);
    }

    double *dsum = calloc(c.c, sizeof(double)), *dxsum = calloc(c.c, sizeof(double));
    float *gin = fd_buf(nt), *gg = fd_buf(c.c), *gbeta = fd_buf(c.c);
    tr_bn_backward_stats(dsum, dxsum, c.R, c.xhat, c.n, c.c, c.s);
    tr_bn_backward(gin, gg, gbeta, c.R, c.xhat, c.rstd, dsum, dxsum, count, c.gamma, c.n, c.c, c.s);
    check_fd("bn din", c.in, gin, nt, bn_obj, &c, H_FD, TOL_SMOOTH);
    check_fd("bn dgamma", c.gamma, gg, c.c, bn_obj, &c, H_FD, TOL_SMOOTH);
    check_fd("bn dbeta", c.beta, gbeta, c.c, bn_obj, &c, H_FD, TOL_SMOOTH);

    bn_obj(&c);
    float *gin2 = fd_buf(nt), *gg2 = fd_buf(c.c), *gbeta2 = fd_buf(c.c);
    for (int rep = 0; rep < 2; rep++)
        tr_bn_backward(gin2, gg2, gbeta2, c.R, c.xhat, c.rstd, dsum, dxsum, count, c.gamma, c.n,
                       c.c, c.s);
    check_twice(gin2, gin, nt);
    check_twice(gg2, gg, c.c);
    check_twice(gbeta2, gbeta, c.c);

    /* Synchronised BN as two "ranks" holding rows [0, 1) and [1, n): the summed
     * local sums give the same output and input gradient as the whole batch,
     * and the local dgamma/dbeta add up to the whole batch's. */
    int n0 = 1, n1 = c.n - 1;
    size_t r1 = (size_t)n0 * c.c * c.s;
    double s0[BN_MAXC], q0[BN_MAXC], s1[BN_MAXC], q1[BN_MAXC], gs[BN_MAXC], gq[BN_MAXC];
    tr_bn_stats(s0, q0, c.in, n0, c.c, c.s);
    tr_bn_stats(s1, q1, c.in + r1, n1, c.c, c.s);
    for (int ch = 0; ch < c.c; ch++)
        gs[ch] = s0[ch] + s1[ch], gq[ch] = q0[ch] + q1[ch];
    float *out_p = fd_buf(nt), *xhat_p = fd_buf(nt), rstd0[BN_MAXC], rstd1[BN_MAXC];
    tr_bn_forward(out_p, xhat_p, rstd0, c.in, gs, gq, count, c.gamma, c.beta, n0, c.c, c.s, c.eps);
    tr_bn_forward(out_p + r1, xhat_p + r1, rstd1, c.in + r1, gs, gq, count, c.gamma, c.beta, n1,
                  c.c, c.s, c.eps);
    for (size_t i = 0; i < nt; i++)
        assert_true(fabsf(out_p[i] - c.out[i]) < 1e-5f);
    double ds0[BN_MAXC], dx0[BN_MAXC], ds1[BN_MAXC], dx1[BN_MAXC], gds[BN_MAXC], gdx[BN_MAXC];
    tr_bn_backward_stats(ds0, dx0, c.R, xhat_p, n0, c.c, c.s);
    tr_bn_backward_stats(ds1, dx1, c.R + r1, xhat_p + r1, n1, c.c, c.s);
    for (int ch = 0; ch < c.c; ch++)
        gds[ch] = ds0[ch] + ds1[ch], gdx[ch] = dx0[ch] + dx1[ch];
    float *gin_p = fd_buf(nt), gg_p[BN_MAXC] = {0}, gb_p[BN_MAXC] = {0};
    tr_bn_backward(gin_p, gg_p, gb_p, c.R, xhat_p, rstd0, gds, gdx, count, c.gamma, n0, c.c, c.s);
    tr_bn_backward(gin_p + r1, gg_p, gb_p, c.R + r1, xhat_p + r1, rstd1, gds, gdx, count, c.gamma,
                   n1, c.c, c.s);
    for (size_t i = 0; i < nt; i++)
        assert_true(fabsf(gin_p[i] - gin[i]) < 1e-5f * (1.0f + fabsf(gin[i])));
    for (int ch = 0; ch < c.c; ch++) {
        assert_true(fabsf(gg_p[ch] - gg[ch]) < 1e-5f * (1.0f + fabsf(gg[ch])));
        assert_true(fabsf(gb_p[ch] - gbeta[ch]) < 1e-5f * (1.0f + fabsf(gbeta[ch])));
    }

    free(c.in), free(c.out), free(c.xhat), free(c.R), free(c.gamma), free(c.beta), free(c.rstd);
    free(c.sum), free(c.sumsq), free(dsum), free(dxsum), free(gin), free(gg), free(gbeta);
    free(gin2), free(gg2), free(gbeta2), free(out_p), free(xhat_p), free(gin_p);
}

static void test_batchnorm(void **state) {
    (void)state;
    run_batchnorm(4, 3, 5);  // conv-like, short rows
    run_batchnorm(3, 2, 19); // rows of 8 + tail
    run_batchnorm(6, 4, 1);  // after a linear layer
}

static void test_batchnorm_running_and_eval(void **state) {
    (void)state;
    // one channel, values 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3
    float x[4] = {1, 2, 3, 4};
    double sum, sumsq;
    tr_bn_stats(&sum, &sumsq, x, 4, 1, 1);
    assert_true(sum == 10.0 && sumsq == 30.0);
    float rm = 1.0f, rv = 2.0f;
    tr_bn_update_running(&rm, &rv, &sum, &sumsq, 4.0, 1, 0.1f);
    assert_true(fabsf(rm - (0.9f * 1.0f + 0.1f * 2.5f)) < 1e-6f);
    assert_true(fabsf(rv - (0.9f * 2.0f + 0.1f * (5.0f / 3.0f))) < 1e-6f);
    // eval: gamma * (x - rm) / sqrt(rv + eps) + beta
    float g = 2.0f, b = 0.5f, out[4];
    tr_bn_forward_eval(out, x, &rm, &rv, &g, &b, 4, 1, 1, 1e-5f);
    for (int i = 0; i < 4; i++) {
        double want = 2.0 * (x[i] - rm) / sqrt((double)rv + 1e-5) + 0.5;
        assert_true(fabs(out[i] - want) < 1e-5);
    }
}

/* ---- dropout --------------------------------------------------------------------------- */

typedef struct {
    int n, d;
    float p;
    const int64_t *ids;
    float *in, *out, *R;
    uint8_t *mask;
} drop_ctx;

static double drop_obj(void *p) {
    drop_ctx *c = p;
    tr_dropout_forward(c->out, c->mask, c->in, c->n, c->d, c->p, 77, 3, 12, c->ids);
    return fd_dot(c->out, c->R, (size_t)c->n * c->d);
}

static void test_dropout(void **state) {
    (void)state;
    int64_t ids[4] = {17, 4, 123456, 9};
    drop_ctx c = {.n = 4, .d = 16, .p = 0.3f, .ids = ids};
    size_t nt = (size_t)c.n * c.d;
    c.in = fd_buf(nt), c.out = fd_buf(nt), c.R = fd_buf(nt);
    c.mask = calloc(nt, 1);
    fill_uniform(c.in, nt, -1, 1, 51);
    fill_uniform(c.R, nt, -1, 1, 52);
    drop_obj(&c);
    for (size_t i = 0; i < nt; i++) {
        assert_true(c.mask[i] == 0 || c.mask[i] == 1);
        float want = c.mask[i] ? c.in[i] / (1.0f - c.p) : 0.0f;
        assert_true(fabsf(c.out[i] - want) < 1e-6f);
    }
    float *gin = fd_buf(nt), *gin2 = fd_buf(nt);
    tr_dropout_backward(gin, c.R, c.mask, c.n, c.d, c.p);
    check_fd("dropout din", c.in, gin, nt, drop_obj, &c, H_FD, TOL_PL);
    for (int rep = 0; rep < 2; rep++)
        tr_dropout_backward(gin2, c.R, c.mask, c.n, c.d, c.p);
    check_twice(gin2, gin, nt);

    // A sample's mask does not depend on its position in the batch (or the batch).
    int64_t ids_b[3] = {9, 555, 17};
    float *out_b = fd_buf(3 * c.d);
    uint8_t *mask_b = calloc(3 * c.d, 1);
    tr_dropout_forward(out_b, mask_b, c.in, 3, c.d, c.p, 77, 3, 12, ids_b);
    assert_memory_equal(mask_b, c.mask + 3 * c.d, c.d); // id 9: row 3 -> row 0
    assert_memory_equal(mask_b + 2 * c.d, c.mask, c.d); // id 17: row 0 -> row 2
    // Another step, layer or seed gives another mask.
    tr_dropout_forward(out_b, mask_b, c.in, 3, c.d, c.p, 77, 3, 13, ids_b);
    assert_memory_not_equal(mask_b + 2 * c.d, c.mask, c.d);
    tr_dropout_forward(out_b, mask_b, c.in, 3, c.d, c.p, 77, 4, 12, ids_b);
    assert_memory_not_equal(mask_b + 2 * c.d, c.mask, c.d);

    // keep rate ~ 1 - p over many draws: 1e5 Bernoulli(0.7), sd 0.0014
    int n = 1000, d = 100;
    float *x = fd_buf((size_t)n * d), *y = fd_buf((size_t)n * d);
    uint8_t *m = calloc((size_t)n * d, 1);
    int64_t *many = malloc(n * sizeof(int64_t));
    for (int i = 0; i < n; i++)
        many[i] = i;
    tr_dropout_forward(y, m, x, n, d, c.p, 1, 0, 0, many);
    size_t kept = 0;
    for (size_t i = 0; i < (size_t)n * d; i++)
        kept += m[i];
    assert_true(fabs((double)kept / ((double)n * d) - 0.7) < 0.01);
    // p = 0 keeps everything unscaled
    tr_dropout_forward(y, m, c.in, c.n, c.d, 0.0f, 1, 0, 0, ids);
    assert_memory_equal(y, c.in, nt * sizeof(float));

    free(c.in), free(c.out), free(c.R), free(c.mask), free(gin), free(gin2);
    free(out_b), free(mask_b), free(x), free(y), free(m), free(many);
}

/* ---- losses ------------------------------------------------------------------------------- */

typedef struct {
    int n, c;
    float *logits, *probs;
    const int32_t *labels;
} xent_ctx;

static double xent_obj(void *p) {
    xent_ctx *c = p;
    return tr_softmax_xent_forward(c->probs, NULL, c->logits, c->labels, c->n, c->c);
}

static void test_softmax_xent(void **state) {
    (void)state;
    int32_t labels[5] = {0, 3, 2, 2, 1};
    xent_ctx c = {.n = 5, .c = 4, .labels = labels};
    size_t nt = (size_t)c.n * c.c;
    c.logits = fd_buf(nt), c.probs = fd_buf(nt);
    fill_uniform(c.logits, nt, -2, 2, 61);

    // forward against a naive double computation
    int64_t correct = 0;
    double loss = tr_softmax_xent_forward(c.probs, &correct, c.logits, labels, c.n, c.c);
    double want = 0.0;
    int64_t want_correct = 0;
    for (int i = 0; i < c.n; i++) {
        const float *z = c.logits + i * c.c;
        double s = 0.0;
        int arg = 0;
        for (int j = 0; j < c.c; j++) {
            s += exp(z[j]);
            if (z[j] > z[arg])
                arg = j;
        }
        want += -log(exp(z[labels[i]]) / s);
        want_correct += arg == labels[i];
        double psum = 0.0;
        for (int j = 0; j < c.c; j++) {
            assert_true(fabs(c.probs[i * c.c + j] - exp(z[j]) / s) < 1e-6);
            psum += c.probs[i * c.c + j];
        }
        assert_true(fabs(psum - 1.0) < 1e-6);
    }
    assert_true(fabs(loss - want) < 1e-5 * want);
    assert_int_equal(correct, want_correct);

    float *g = fd_buf(nt), *g2 = fd_buf(nt);
    tr_softmax_xent_backward(g, c.probs, labels, c.n, c.c, 1.0f);
    check_fd("softmax-xent dlogits", c.logits, g, nt, xent_obj, &c, H_FD, TOL_SMOOTH);
    xent_obj(&c);
    for (int rep = 0; rep < 2; rep++)
        tr_softmax_xent_backward(g2, c.probs, labels, c.n, c.c, 0.5f); // scale: 2 * 0.5 = 1
    for (size_t i = 0; i < nt; i++)
        assert_true(fabsf(g2[i] - g[i]) < 1e-6f);

    // huge logits stay finite thanks to the max subtraction
    float big[3] = {1000.0f, 990.0f, -1000.0f}, pb[3];
    int32_t lb = 1;
    double lbig = tr_softmax_xent_forward(pb, NULL, big, &lb, 1, 3);
    assert_true(isfinite(lbig) && fabs(lbig - 10.0) < 1e-3);
    free(c.logits), free(c.probs), free(g), free(g2);
}

typedef struct {
    int n, d;
    float *pred, *target;
} mse_ctx;

static double mse_obj(void *p) {
    mse_ctx *c = p;
    return tr_mse_forward(NULL, c->pred, c->target, c->n, c->d);
}

static void test_mse(void **state) {
    (void)state;
    mse_ctx c = {.n = 6, .d = 2};
    size_t nt = (size_t)c.n * c.d;
    c.pred = fd_buf(nt), c.target = fd_buf(nt);
    fill_uniform(c.pred, nt, -1, 1, 71);
    fill_uniform(c.target, nt, -1, 1, 72);
    double abs_sum = 1.0, sq = 0.0, ab = 0.0;
    for (size_t i = 0; i < nt; i++) {
        double e = (double)c.pred[i] - c.target[i];
        sq += e * e;
        ab += fabs(e);
    }
    double got = tr_mse_forward(&abs_sum, c.pred, c.target, c.n, c.d);
    assert_true(fabs(got - sq) < 1e-12 && fabs(abs_sum - (1.0 + ab)) < 1e-12);
    float *g = fd_buf(nt), *g2 = fd_buf(nt);
    tr_mse_backward(g, c.pred, c.target, c.n, c.d, 1.0f);
    check_fd("mse dpred", c.pred, g, nt, mse_obj, &c, H_FD, TOL_PL);
    for (int rep = 0; rep < 2; rep++)
        tr_mse_backward(g2, c.pred, c.target, c.n, c.d, 1.0f);
    check_twice(g2, g, nt);
    free(c.pred), free(c.target), free(g), free(g2);
}

/* ---- init ----------------------------------------------------------------------------------- */

static void test_init(void **state) {
    (void)state;
    size_t n = 20000;
    float *a = fd_buf(n), *b = fd_buf(n);
    tr_init_uniform(a, n, 0.5f, 7, 3);
    tr_init_uniform(b, n, 0.5f, 7, 3);
    assert_memory_equal(a, b, n * sizeof(float)); // same stream, same values
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(a[i] >= -0.5f && a[i] <= 0.5f);
        m += a[i];
        v += (double)a[i] * a[i];
    }
    m /= n, v = v / n - m * m;
    assert_true(fabs(m) < 0.01 && fabs(v - 0.25 / 3.0) < 0.005); // U(-b,b): var b^2/3
    tr_init_uniform(b, n, 0.5f, 7, 4);
    assert_memory_not_equal(a, b, n * sizeof(float)); // another stream
    tr_init_normal(a, n, 2.0f, 7, 5);
    m = 0, v = 0;
    for (size_t i = 0; i < n; i++)
        m += a[i], v += (double)a[i] * a[i];
    m /= n, v = v / n - m * m;
    // mean sd 2/sqrt(n) = 0.014; variance sd ~ 4*sqrt(2/n) = 0.04
    assert_true(fabs(m) < 0.06 && fabs(v - 4.0) < 0.2);
    free(a), free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),    cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_maxpool),   cmocka_unit_test(test_relu),
        cmocka_unit_test(test_batchnorm), cmocka_unit_test(test_batchnorm_running_and_eval),
        cmocka_unit_test(test_dropout),   cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_mse),       cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
