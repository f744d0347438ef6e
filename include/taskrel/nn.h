/*
 * Layers: free functions in forward/backward pairs (llm.c style).
 * Arguments: outputs first, then inputs and weights, then sizes.
 * Forward caches what backward needs in caller-owned buffers.
 * Every backward ADDS into its gradient outputs (din, dw, db, ...); the caller
 * zeroes them (tr_params_zero_grad, memset for activation gradients).
 * A NULL din means "input gradient not needed" (first layer).
 * Layers never call MPI: statistics that may be synchronised across ranks
 * (batch norm) are split into a local-sums call and an apply call.
 * All tensors are row-major float32; shapes are given in comments.
 */
#ifndef TASKREL_NN_H
#define TASKREL_NN_H

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear: out = in @ w + b ---------------------------------------------- */
/* out (n, n_out), in (n, n_in), w (n_in, n_out), b (n_out) or NULL */
void tr_linear_forward(float *out, const float *in, const float *w, const float *b, int n, int n_in,
                       int n_out);
/* din (n, n_in) or NULL, dw (n_in, n_out), db (n_out) or NULL, dout (n, n_out) */
void tr_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int n, int n_in, int n_out);

/* ---- conv2d (im2col + GEMM), NCHW, square kernel k, stride, zero padding --- */
int tr_conv2d_out_dim(int in_dim, int k, int pad, int stride);
/* Floats of the im2col cache per sample: c*k*k * oh*ow. */
size_t tr_conv2d_col_size(int c, int h, int w, int k, int pad, int stride);
/* out (n, oc, oh, ow), col (n * col_size) cache for backward, in (n, c, h, w),
 * w (oc, c, k, k), b (oc) */
void tr_conv2d_forward(float *out, float *col, const float *in, const float *w, const float *b,
                       int n, int c, int h, int wd, int oc, int k, int pad, int stride);
/* din (n, c, h, w) or NULL; dw (oc, c, k, k); db (oc); dcol scratch of
 * tr_conv2d_col_size() floats (one sample); dout (n, oc, oh, ow) */
void tr_conv2d_backward(float *din, float *dw, float *db, float *dcol, const float *dout,
                        const float *col, const float *w, int n, int c, int h, int wd, int oc,
                        int k, int pad, int stride);
/* The same without a cache: col is a one-sample scratch of
 * tr_conv2d_col_size() floats, refilled from in (n, c, h, w) for each sample.
 * Bitwise the same gradients as the forward's cache would give. */
void tr_conv2d_backward_in(float *din, float *dw, float *db, float *col, float *dcol,
                           const float *dout, const float *in, const float *w, int n, int c, int h,
                           int wd, int oc, int k, int pad, int stride);

/* ---- max pool, window = stride = k, floor division ------------------------- */
/* out (n, c, h/k, w/k), win (same) the argmax's place in its window,
 * ky * k + kx; k <= 16 */
void tr_maxpool_forward(float *out, uint8_t *win, const float *in, int n, int c, int h, int w,
                        int k);
void tr_maxpool_backward(float *din, const float *dout, const uint8_t *win, int n, int c, int h,
                         int w, int k);
/* The offset in the (h, w) plane of output j's argmax (win its window place). */
size_t tr_maxpool_offset(size_t j, uint8_t win, int w, int k);

/* ---- ReLU (in place allowed: out == in) ------------------------------------ */
void tr_relu_forward(float *out, const float *in, size_t n);
/* uses the forward output: din += dout * (out > 0) */
void tr_relu_backward(float *din, const float *dout, const float *out, size_t n);

/* ---- batch norm over (n, c, s): per channel c, statistics over n and s ----- */
/* Local sums of x and x^2 per channel (overwrites sum, sumsq). A caller that
 * synchronises BN all-reduces them (and the count) before tr_bn_forward. */
void tr_bn_stats(double *sum, double *sumsq, const float *in, int n, int c, int s);
/* Training forward with the (possibly global) sums over `count` values per
 * channel. Caches xhat (n, c, s) and rstd (c). out (n, c, s). */
void tr_bn_forward(float *out, float *xhat, float *rstd, const float *in, const double *sum,
                   const double *sumsq, double count, const float *gamma, const float *beta, int n,
                   int c, int s, float eps);
/* running = (1 - momentum) * running + momentum * batch (unbiased variance) */
void tr_bn_update_running(float *running_mean, float *running_var, const double *sum,
                          const double *sumsq, double count, int c, float momentum);
void tr_bn_forward_eval(float *out, const float *in, const float *running_mean,
                        const float *running_var, const float *gamma, const float *beta, int n,
                        int c, int s, float eps);
/* Local sums for backward (overwrites): dsum = sum(dout), dxsum = sum(dout * xhat). */
void tr_bn_backward_stats(double *dsum, double *dxsum, const float *dout, const float *xhat, int n,
                          int c, int s);
/* din += BN input gradient using the (possibly global) dsum/dxsum over count;
 * dgamma, dbeta += this rank's local contributions (computed here). */
void tr_bn_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *xhat,
                    const float *rstd, const double *dsum, const double *dxsum, double count,
                    const float *gamma, int n, int c, int s);

/* ---- dropout (inverted, keep prob 1-p) -------------------------------------- */
/* The mask of sample i is drawn from the counter-based RNG keyed on
 * (seed ^ salt(layer) ^ salt(high 32 bits of the id), TR_RNG_DROPOUT,
 * step << 32 | low 32 bits of sample_ids[i]), so it does not
 * depend on the number of ranks or on where the sample sits in the batch.
 * out (n, d), mask (n, d) cache, in (n, d) */
void tr_dropout_forward(float *out, uint8_t *mask, const float *in, int n, int d, float p,
                        uint64_t seed, uint32_t layer, uint64_t step, const int64_t *sample_ids);
void tr_dropout_backward(float *din, const float *dout, const uint8_t *mask, int n, int d, float p);

/* ---- losses ------------------------------------------------------------------ */
/* Softmax cross-entropy. probs (n, c) cache, logits (n, c), labels (n).
 * Returns the SUM of per-row losses (double); *correct += rows whose argmax
 * equals the label (pass NULL to skip). */
double tr_softmax_xent_forward(float *probs, int64_t *correct, const float *logits,
                               const int32_t *labels, int n, int c);
/* dlogits += scale * (probs - onehot(labels)) */
void tr_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int n,
                              int c, float scale);
/* Mean-squared error: returns SUM over all n*d of (pred - target)^2;
 * *abs_sum += sum |pred - target| (NULL to skip). */
double tr_mse_forward(double *abs_sum, const float *pred, const float *target, int n, int d);
/* dpred += scale * 2 * (pred - target) */
void tr_mse_backward(float *dpred, const float *pred, const float *target, int n, int d,
                     float scale);

/* ---- initialisation -------------------------------------------------------------- */
/* Uniform(-bound, bound) from stream (seed, TR_RNG_INIT, stream). */
void tr_init_uniform(float *w, size_t n, float bound, uint64_t seed, uint64_t stream);
/* N(0, std^2) from stream (seed, TR_RNG_INIT, stream). */
void tr_init_normal(float *w, size_t n, float std, uint64_t seed, uint64_t stream);

#ifdef __cplusplus
}
#endif
#endif
