/*
 * Batch normalisation over (n, c, s): per channel c, statistics over the n
 * samples and s spatial positions (s = 1 after a linear layer, h*w after a
 * conv). Training is split into local-sum calls and apply calls so that a
 * caller can all-reduce the sums (synchronised BN); nothing here calls MPI.
 * Sums are double: they may cover a whole global batch.
 * gamma/beta may be NULL (no affine transform; then dgamma/dbeta are ignored).
 * Not here: the running-statistics buffers' storage or their checkpointing.
 */
#include <math.h>

#include "taskrel/nn.h"

#include "kernels.h"

// sum (c), sumsq (c) overwritten with the local sums over (n, s); in (n, c, s)
void tr_bn_stats(double *sum, double *sumsq, const float *in, int n, int c, int s) {
    for (int ch = 0; ch < c; ch++) {
        sum[ch] = 0.0;
        sumsq[ch] = 0.0;
    }
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            const float *x = in + ((size_t)i * c + ch) * s;
            if (s >= 8) {
                k_sums_d(&sum[ch], &sumsq[ch], x, (size_t)s);
                continue;
            }
            for (int j = 0; j < s; j++) { // s = 1 after a linear layer
                sum[ch] += x[j];
                sumsq[ch] += (double)x[j] * x[j];
            }
        }
}

/* Batch mean and biased variance of channel ch from the sums. The variance is
 * clamped at 0: E[x^2] - E[x]^2 can round slightly negative. */
static void moments(double *mean, double *var, double sum, double sumsq, double count) {
    *mean = sum / count;
    double v = sumsq / count - *mean * *mean;
    *var = v > 0.0 ? v : 0.0;
}

// out (s), xhat (s) = (in - mean) * r, out = g * xhat + b (blocks of 8, see kernels.h)
static void normalise(float *restrict out, float *restrict xhat, const float *restrict in,
                      float mean, float r, float g, float b, size_t s) {
    size_t j = 0;
    for (; j + 8 <= s; j += 8)
        for (int u = 0; u < 8; u++) {
            float xh = (in[j + u] - mean) * r;
            xhat[j + u] = xh;
            out[j + u] = g * xh + b;
        }
    for (; j < s; j++) {
        float xh = (in[j] - mean) * r;
        xhat[j] = xh;
        out[j] = g * xh + b;
    }
}

// din (s) += k * (dout - mdy - xhat * mdyx)
static void input_grad(float *restrict din, const float *restrict dout, const float *restrict xhat,
                       float k, float mdy, float mdyx, size_t s) {
    size_t j = 0;
    for (; j + 8 <= s; j += 8)
        for (int u = 0; u < 8; u++)
            din[j + u] += k * (dout[j + u] - mdy - xhat[j + u] * mdyx);
    for (; j < s; j++)
        din[j] += k * (dout[j] - mdy - xhat[j] * mdyx);
}

// out (n, c, s), xhat (n, c, s) cache, rstd (c) cache, in (n, c, s),
// sum/sumsq (c) over `count` values per channel, gamma/beta (c) or NULL
void tr_bn_forward(float *out, float *xhat, float *rstd, const float *in, const double *sum,
                   const double *sumsq, double count, const float *gamma, const float *beta, int n,
                   int c, int s, float eps) {
    for (int ch = 0; ch < c; ch++) {
        double mean, var;
        moments(&mean, &var, sum[ch], sumsq[ch], count);
        rstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
    }
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * s;
            float mean = (float)(sum[ch] / count), r = rstd[ch];
            float g = gamma ? gamma[ch] : 1.0f, b = beta ? beta[ch] : 0.0f;
            normalise(out + off, xhat + off, in + off, mean, r, g, b, (size_t)s);
        }
    }
}

// running_mean/var (c); sum/sumsq (c) over `count` values. The running
// variance takes the unbiased batch variance (count / (count - 1)), as PyTorch.
void tr_bn_update_running(float *running_mean, float *running_var, const double *sum,
                          const double *sumsq, double count, int c, float momentum) {
    double unbias = count > 1.0 ? count / (count - 1.0) : 1.0;
    for (int ch = 0; ch < c; ch++) {
        double mean, var;
        moments(&mean, &var, sum[ch], sumsq[ch], count);
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * var * unbias);
    }
}

// out (n, c, s), in (n, c, s), running_mean/var (c), gamma/beta (c) or NULL
void tr_bn_forward_eval(float *out, const float *in, const float *running_mean,
                        const float *running_var, const float *gamma, const float *beta, int n,
                        int c, int s, float eps) {
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * s;
            float g = gamma ? gamma[ch] : 1.0f, b = beta ? beta[ch] : 0.0f;
            // out = a * x + bb with the normalisation folded into one affine map
            float a = g / sqrtf(running_var[ch] + eps);
            float bb = b - a * running_mean[ch];
            for (int j = 0; j < s; j++)
                out[off + j] = a * in[off + j] + bb;
        }
    }
}

// dsum (c), dxsum (c) overwritten with the local sums of dout and dout * xhat;
// dout (n, c, s), xhat (n, c, s)
void tr_bn_backward_stats(double *dsum, double *dxsum, const float *dout, const float *xhat, int n,
                          int c, int s) {
    for (int ch = 0; ch < c; ch++) {
        dsum[ch] = 0.0;
        dxsum[ch] = 0.0;
    }
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * s;
            if (s >= 8) {
                k_sum_dot_d(&dsum[ch], &dxsum[ch], dout + off, xhat + off, (size_t)s);
                continue;
            }
            for (int j = 0; j < s; j++) {
                dsum[ch] += dout[off + j];
                dxsum[ch] += (double)dout[off + j] * xhat[off + j];
            }
        }
}

/* din += gamma * rstd * (dout - mean(dout) - xhat * mean(dout * xhat)), where
 * the means are over the (possibly global) batch of `count` values per channel:
 * that is the exact gradient through the batch mean and variance.
 * dgamma += sum(dout * xhat), dbeta += sum(dout) over this call's rows only,
 * because parameter gradients are all-reduced later with the others.
 * din (n, c, s) or NULL, dgamma/dbeta (c) or NULL, dout/xhat (n, c, s), rstd (c) */
void tr_bn_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *xhat,
                    const float *rstd, const double *dsum, const double *dxsum, double count,
                    const float *gamma, int n, int c, int s) {
    if (dgamma || dbeta) {
        for (int i = 0; i < n; i++) {
            for (int ch = 0; ch < c; ch++) {
                size_t off = ((size_t)i * c + ch) * s;
                float a, b;
                if (s >= 8) {
                    a = k_sum(dout + off, (size_t)s);
                    b = k_dot(dout + off, xhat + off, (size_t)s);
                } else {
                    a = b = 0.0f;
                    for (int j = 0; j < s; j++) {
                        a += dout[off + j];
                        b += dout[off + j] * xhat[off + j];
                    }
                }
                if (dbeta)
                    dbeta[ch] += a;
                if (dgamma)
                    dgamma[ch] += b;
            }
        }
    }
    if (!din)
        return;
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            size_t off = ((size_t)i * c + ch) * s;
            float k = (gamma ? gamma[ch] : 1.0f) * rstd[ch];
            float mdy = (float)(dsum[ch] / count), mdyx = (float)(dxsum[ch] / count);
            input_grad(din + off, dout + off, xhat + off, k, mdy, mdyx, (size_t)s);
        }
    }
}
