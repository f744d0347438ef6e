/*
 * Fully connected layer, out = in @ w + b: one OpenBLAS sgemm per product.
 * w is stored (n_in, n_out) so that forward is a plain NN product.
 * Not a general GEMM wrapper; never allocates.
 */
#include <string.h>

#include <cblas.h>

#include "taskrel/nn.h"

#include "kernels.h"

// out (n, n_out), in (n, n_in), w (n_in, n_out), b (n_out) or NULL
void tr_linear_forward(float *out, const float *in, const float *w, const float *b, int n, int n_in,
                       int n_out) {
    if (n <= 0 || n_out <= 0)
        return;
    // Seed out with the bias and let the GEMM accumulate onto it (beta = 1):
    // one pass over out instead of a GEMM pass plus a bias pass.
    if (b) {
        for (int i = 0; i < n; i++)
            memcpy(out + (size_t)i * n_out, b, (size_t)n_out * sizeof(float));
    } else if (n_in <= 0) {
        memset(out, 0, (size_t)n * n_out * sizeof(float));
    }
    if (n_in <= 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n_out, n_in, 1.0f, in, n_in, w, n_out,
                b ? 1.0f : 0.0f, out, n_out);
}

// din (n, n_in) or NULL, dw (n_in, n_out), db (n_out) or NULL, dout (n, n_out),
// in (n, n_in), w (n_in, n_out). Every gradient is accumulated (+=).
void tr_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int n, int n_in, int n_out) {
    if (n <= 0 || n_out <= 0)
        return;
    if (n_in > 0) {
        // dw (n_in, n_out) += in^T (n_in, n) @ dout (n, n_out)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_in, n_out, n, 1.0f, in, n_in, dout,
                    n_out, 1.0f, dw, n_out);
        // din (n, n_in) += dout (n, n_out) @ w^T (n_out, n_in)
        if (din)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n_in, n_out, 1.0f, dout, n_out,
                        w, n_out, 1.0f, din, n_in);
    }
    if (db) {
        for (int i = 0; i < n; i++)
            k_add(db, dout + (size_t)i * n_out, (size_t)n_out);
    }
}
