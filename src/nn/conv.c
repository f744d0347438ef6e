/*
 * 2-D convolution, NCHW, square kernel, zero padding, via im2col + sgemm.
 * Per sample: col_n (K, P) with K = c*k*k and P = oh*ow, then
 *   forward   out_n (oc, P)  = w (oc, K) @ col_n
 *   backward  dw    (oc, K) += dout_n @ col_n^T
 *             dcol  (K, P)   = w^T @ dout_n, scattered back by col2im.
 * NCHW output makes one GEMM per sample the natural unit (a batched GEMM
 * would produce (oc, n, P) and need a transpose pass plus scratch).
 * The model keeps no columns between the passes: it runs the forward one
 * sample at a time into a one-sample col and the backward rebuilds them
 * from the input (tr_conv2d_backward_in), the same GEMMs on the same numbers.
 * Not here: dilation, groups, non-square kernels.
 */
#include <string.h>

#include <cblas.h>

#include "taskrel/nn.h"

#include "kernels.h"

int tr_conv2d_out_dim(int in_dim, int k, int pad, int stride) {
    return (in_dim + 2 * pad - k) / stride + 1;
}

size_t tr_conv2d_col_size(int c, int h, int w, int k, int pad, int stride) {
    size_t oh = (size_t)tr_conv2d_out_dim(h, k, pad, stride);
    size_t ow = (size_t)tr_conv2d_out_dim(w, k, pad, stride);
    return (size_t)c * k * k * oh * ow;
}

/* Output columns ox in [*lo, *hi) read an input column ix = ox*stride + off
 * inside [0, w); the others read zero padding. */
static void valid_range(int *lo, int *hi, int off, int w, int ow, int stride) {
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = off >= w ? 0 : (w - 1 - off) / stride + 1;
    if (h > ow)
        h = ow;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* im2col for stride 1 and no padding (every output position reads inside the
 * plane): the same columns as the general loop below, without its bounds
 * work, which is most of its time at these sizes. */
static void im2col_s1(float *restrict col, const float *restrict in, int c, int h, int w, int k,
                      int oh, int ow) {
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++) {
            const float *rows = in + ((size_t)ci * h + ki) * w;
            for (int kj = 0; kj < k; kj++)
                for (int oy = 0; oy < oh; oy++, col += ow)
                    k_copy(col, rows + (size_t)oy * w + kj, (size_t)ow);
        }
}

// col (c*k*k, oh*ow), in (c, h, w): one sample
static void im2col(float *col, const float *in, int c, int h, int w, int k, int pad, int stride,
                   int oh, int ow) {
    if (stride == 1 && pad == 0) {
        im2col_s1(col, in, c, h, w, k, oh, ow);
        return;
    }
    for (int ci = 0; ci < c; ci++) {
        const float *plane = in + (size_t)ci * h * w;
        for (int ki = 0; ki < k; ki++) {
            for (int kj = 0; kj < k; kj++) {
                int lo, hi, off = kj - pad; // input column ix = ox*stride + off
                valid_range(&lo, &hi, off, w, ow, stride);
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * stride - pad + ki;
                    float *dst = col + (size_t)oy * ow;
                    if (iy < 0 || iy >= h || lo >= hi) {
                        memset(dst, 0, (size_t)ow * sizeof(float));
                        continue;
                    }
                    for (int ox = 0; ox < lo; ox++)
                        dst[ox] = 0.0f;
                    const float *row = plane + (size_t)iy * w;
                    if (stride == 1) {
                        k_copy(dst + lo, row + lo + off, (size_t)(hi - lo));
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] = row[ox * stride + off];
                    }
                    for (int ox = hi; ox < ow; ox++)
                        dst[ox] = 0.0f;
                }
                col += (size_t)oh * ow;
            }
        }
    }
}

/* col2im for stride 1 and no padding: the additions of the general loop
 * below, into the same places in the same order (so the same sums), without
 * its bounds work. */
static void col2im_add_s1(float *restrict din, const float *restrict dcol, int c, int h, int w,
                          int k, int oh, int ow) {
    for (int ci = 0; ci < c; ci++)
        for (int ki = 0; ki < k; ki++) {
            float *rows = din + ((size_t)ci * h + ki) * w;
            for (int kj = 0; kj < k; kj++)
                for (int oy = 0; oy < oh; oy++, dcol += ow)
                    k_add(rows + (size_t)oy * w + kj, dcol, (size_t)ow);
        }
}

// din (c, h, w) += col2im(dcol (c*k*k, oh*ow)): one sample
static void col2im_add(float *din, const float *dcol, int c, int h, int w, int k, int pad,
                       int stride, int oh, int ow) {
    if (stride == 1 && pad == 0) {
        col2im_add_s1(din, dcol, c, h, w, k, oh, ow);
        return;
    }
    for (int ci = 0; ci < c; ci++) {
        float *plane = din + (size_t)ci * h * w;
        for (int ki = 0; ki < k; ki++) {
            for (int kj = 0; kj < k; kj++) {
                int lo, hi, off = kj - pad; // input column ix = ox*stride + off
                valid_range(&lo, &hi, off, w, ow, stride);
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * stride - pad + ki;
                    if (iy < 0 || iy >= h)
                        continue;
                    const float *src = dcol + (size_t)oy * ow;
                    float *row = plane + (size_t)iy * w;
                    if (stride == 1) {
                        k_add(row + lo + off, src + lo, (size_t)(hi - lo));
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            row[ox * stride + off] += src[ox];
                    }
                }
                dcol += (size_t)oh * ow;
            }
        }
    }
}

// out (n, oc, oh, ow), col (n, c*k*k, oh*ow) cache, in (n, c, h, wd),
// w (oc, c, k, k), b (oc) or NULL
void tr_conv2d_forward(float *out, float *col, const float *in, const float *w, const float *b,
                       int n, int c, int h, int wd, int oc, int k, int pad, int stride) {
    int oh = tr_conv2d_out_dim(h, k, pad, stride);
    int ow = tr_conv2d_out_dim(wd, k, pad, stride);
    int kk = c * k * k, p = oh * ow;
    size_t col_size = (size_t)kk * p;
    for (int i = 0; i < n; i++) {
        float *col_i = col + (size_t)i * col_size;
        float *out_i = out + (size_t)i * oc * p;
        im2col(col_i, in + (size_t)i * c * h * wd, c, h, wd, k, pad, stride, oh, ow);
        if (b) {
            for (int o = 0; o < oc; o++)
                k_fill(out_i + (size_t)o * p, b[o], (size_t)p);
        }
        // out_i (oc, p) (+)= w (oc, kk) @ col_i (kk, p)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, p, kk, 1.0f, w, kk, col_i, p,
                    b ? 1.0f : 0.0f, out_i, p);
    }
}

/* One sample's backward: db, dw += from dout_i (oc, p) and col_i (kk, p);
 * din_i (c, h, wd) += col2im(w^T @ dout_i) through the dcol scratch. */
static void backward_one(float *din_i, float *dw, float *db, float *dcol, const float *dout_i,
                         const float *col_i, const float *w, int c, int h, int wd, int oc, int k,
                         int pad, int stride, int oh, int ow) {
    int kk = c * k * k, p = oh * ow;
    if (db) {
        for (int o = 0; o < oc; o++)
            db[o] += k_sum(dout_i + (size_t)o * p, (size_t)p);
    }
    // dw (oc, kk) += dout_i (oc, p) @ col_i^T (p, kk)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, kk, p, 1.0f, dout_i, p, col_i, p, 1.0f,
                dw, kk);
    if (din_i) {
        // dcol (kk, p) = w^T (kk, oc) @ dout_i (oc, p)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, p, oc, 1.0f, w, kk, dout_i, p,
                    0.0f, dcol, p);
        col2im_add(din_i, dcol, c, h, wd, k, pad, stride, oh, ow);
    }
}

// din (n, c, h, wd) or NULL, dw (oc, c, k, k), db (oc) or NULL,
// dcol (c*k*k, oh*ow) scratch, dout (n, oc, oh, ow), col (n, c*k*k, oh*ow)
// from forward, w (oc, c, k, k). Gradients are accumulated (+=).
void tr_conv2d_backward(float *din, float *dw, float *db, float *dcol, const float *dout,
                        const float *col, const float *w, int n, int c, int h, int wd, int oc,
                        int k, int pad, int stride) {
    int oh = tr_conv2d_out_dim(h, k, pad, stride);
    int ow = tr_conv2d_out_dim(wd, k, pad, stride);
    size_t col_size = (size_t)c * k * k * oh * ow;
    for (int i = 0; i < n; i++)
        backward_one(din ? din + (size_t)i * c * h * wd : NULL, dw, db, dcol,
                     dout + (size_t)i * oc * oh * ow, col + (size_t)i * col_size, w, c, h, wd, oc,
                     k, pad, stride, oh, ow);
}

// The same from the input in (n, c, h, wd): each sample's columns are
// rebuilt in col (c*k*k, oh*ow), a one-sample scratch, instead of kept.
void tr_conv2d_backward_in(float *din, float *dw, float *db, float *col, float *dcol,
                           const float *dout, const float *in, const float *w, int n, int c, int h,
                           int wd, int oc, int k, int pad, int stride) {
    int oh = tr_conv2d_out_dim(h, k, pad, stride);
    int ow = tr_conv2d_out_dim(wd, k, pad, stride);
    size_t in_size = (size_t)c * h * wd;
    for (int i = 0; i < n; i++) {
        im2col(col, in + (size_t)i * in_size, c, h, wd, k, pad, stride, oh, ow);
        backward_one(din ? din + (size_t)i * in_size : NULL, dw, db, dcol,
                     dout + (size_t)i * oc * oh * ow, col, w, c, h, wd, oc, k, pad, stride, oh, ow);
    }
}
