/*
 * Attention layers of taskrel/attention.h: token embeddings, the four
 * relation scores, multihead self-attention, sum-pool softmax, Hadamard
 * re-weighting, task-feature alignment and the MMoE mixture. Per-sample
 * products are OpenBLAS sgemm calls on a caller-owned scratch; nothing here
 * allocates or calls MPI. Not here: batch norm (batchnorm.c), the model that
 * wires these together (src/models/mran.c, mmoe.c).
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "taskrel/attention.h"

size_t tr_attn_scratch_size(const tr_attn_dims *d) {
    size_t k = (size_t)d->k, m = (size_t)d->m, q = (size_t)(d->q > 0 ? d->q : 1);
    size_t H = (size_t)(d->heads > 0 ? d->heads : 1);
    return 8 * k * m + (H + 3) * k * k + 4 * k * q + 16;
}

/* ---- embeddings ------------------------------------------------------------------ */

// e (n, k, m) = z (n, k) * u (k, m) + b (k, m)
void tr_embed_forward(float *e, const float *z, const float *u, const float *b, int n, int k,
                      int m) {
    for (int s = 0; s < n; s++)
        for (int i = 0; i < k; i++) {
            float zi = z[(size_t)s * k + i];
            float *ei = e + ((size_t)s * k + i) * m;
            const float *ui = u + (size_t)i * m, *bi = b + (size_t)i * m;
            for (int c = 0; c < m; c++)
                ei[c] = zi * ui[c] + bi[c];
        }
}

// dz (n, k) or NULL, du (k, m), db (k, m), de (n, k, m)
void tr_embed_backward(float *dz, float *du, float *db, const float *de, const float *z,
                       const float *u, int n, int k, int m) {
    for (int s = 0; s < n; s++)
        for (int i = 0; i < k; i++) {
            float zi = z[(size_t)s * k + i];
            const float *dei = de + ((size_t)s * k + i) * m;
            const float *ui = u + (size_t)i * m;
            float *dui = du + (size_t)i * m, *dbi = db + (size_t)i * m;
            float acc = 0.0f;
            for (int c = 0; c < m; c++) {
                dui[c] += dei[c] * zi;
                dbi[c] += dei[c];
                acc += dei[c] * ui[c];
            }
            if (dz)
                dz[(size_t)s * k + i] += acc;
        }
}

/* ---- per-sample score kernels ------------------------------------------------------ */

// s (k, k) = scores of one sample with embeddings E (k, m); scratch as tr_attn_scratch_size
static void sample_scores(float *s, const float *E, const tr_attn_w *w, const tr_attn_dims *d,
                          float *scratch) {
    int k = d->k, m = d->m;
    float rs = 1.0f / sqrtf((float)m);
    switch (d->kind) {
    case TR_ATTN_DOT:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, m, rs, E, m, E, m, 0.0f, s, k);
        break;
    case TR_ATTN_GENERAL: {
        float *F = scratch; // (k, m): F_j = W e_j, i.e. F = E W^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, m, m, 1.0f, E, m, w->w, m, 0.0f, F,
                    m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, m, rs, E, m, F, m, 0.0f, s, k);
        break;
    }
    case TR_ATTN_CONCAT: {
        int q = d->q;
        float *P = scratch, *Q = scratch + (size_t)k * q; // (k, q) each
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, q, m, 1.0f, E, m, w->w, q, 0.0f,
                    P, q);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, q, m, 1.0f, E, m,
                    w->w + (size_t)m * q, q, 0.0f, Q, q);
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                const float *pi = P + (size_t)i * q, *qj = Q + (size_t)j * q;
                float acc = 0.0f;
                for (int c = 0; c < q; c++)
                    acc += w->v[c] * tanhf(pi[c] + qj[c]);
                s[(size_t)i * k + j] = acc;
            }
        break;
    }
    case TR_ATTN_MULTIHEAD: {
        int H = d->heads, dk = m / H;
        float *Q = scratch, *K = scratch + (size_t)k * m; // (k, m) each
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wq, m, 0.0f,
                    Q, m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wk, m, 0.0f,
                    K, m);
        float sc = 1.0f / ((float)H * sqrtf((float)dk));
        for (int h = 0; h < H; h++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, dk, sc, Q + h * dk, m,
                        K + h * dk, m, h ? 1.0f : 0.0f, s, k);
        break;
    }
    }
}

void tr_attn_scores_sum(double *S, const float *e, const tr_attn_w *w, const tr_attn_dims *d, int n,
                        float *scratch) {
    size_t kk = (size_t)d->k * d->k;
    float *s = scratch + tr_attn_scratch_size(d) - kk - 16; // last k*k floats
    for (int i = 0; i < n; i++) {
        sample_scores(s, e + (size_t)i * d->k * d->m, w, d, scratch);
        for (size_t j = 0; j < kk; j++)
            S[j] += s[j];
    }
}

/* Multihead backward of one sample: the value path (dzhat != NULL) and/or a
 * logit gradient Gl (k, k) added to every head's logits (Gl != NULL).
 * dE (k, m) +=, dw +=. */
static void mha_sample_backward(float *dE, tr_attn_w *dw, const float *dzhat, const float *Gl,
                                const float *E, const tr_attn_w *w, const tr_attn_dims *d,
                                float *scratch) {
    int k = d->k, m = d->m, H = d->heads, dk = m / H;
    size_t km = (size_t)k * m, kk = (size_t)k * k;
    float *Q = scratch, *K = Q + km, *V = K + km, *O = V + km;
    float *dQ = O + km, *dK = dQ + km, *dV = dK + km, *dO = dV + km;
    float *A = dO + km, *dA = A + kk;
    float rs = 1.0f / sqrtf((float)dk);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wq, m, 0.0f, Q,
                m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wk, m, 0.0f, K,
                m);
    memset(dQ, 0, 3 * km * sizeof(float)); // dQ, dK, dV
    if (dzhat) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wv, m, 0.0f,
                    V, m);
        for (int i = 0; i < k; i++)
            for (int c = 0; c < m; c++)
                dO[(size_t)i * m + c] = dzhat[i] * w->wo[c];
    }
    for (int h = 0; h < H; h++) {
        const float *Qh = Q + h * dk, *Kh = K + h * dk;
        memset(dA, 0, kk * sizeof(float)); // becomes dL_h
        if (dzhat) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, dk, rs, Qh, m, Kh, m, 0.0f,
                        A, k);
            tr_softmax_forward(A, A, k, k);
            // O_h = A V_h (for dwo), dA = dO_h V_h^T, dV_h += A^T dO_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, dk, k, 1.0f, A, k, V + h * dk,
                        m, 0.0f, O + h * dk, m);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, dk, k, 1.0f, A, k, dO + h * dk,
                        m, 1.0f, dV + h * dk, m);
            // dprobs (k, k) into the second half of the scratch, then the softmax backward
            float *dprob = dA + kk;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, dk, 1.0f, dO + h * dk, m,
                        V + h * dk, m, 0.0f, dprob, k);
            tr_softmax_backward(dA, dprob, A, k, k);
        }
        if (Gl)
            for (size_t j = 0; j < kk; j++)
                dA[j] += Gl[j] / (float)H;
        // L = Qh Kh^T * rs: dQh += dL Kh rs, dKh += dL^T Qh rs
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, dk, k, rs, dA, k, Kh, m, 1.0f,
                    dQ + h * dk, m);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, dk, k, rs, dA, k, Qh, m, 1.0f,
                    dK + h * dk, m);
    }
    if (dzhat) {
        // zhat = O wo: dwo += O^T dzhat; V = E wv
        cblas_sgemv(CblasRowMajor, CblasTrans, k, m, 1.0f, O, m, dzhat, 1, 1.0f, dw->wo, 1);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, m, k, 1.0f, E, m, dV, m, 1.0f,
                    dw->wv, m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, m, m, 1.0f, dV, m, w->wv, m, 1.0f,
                    dE, m);
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, m, k, 1.0f, E, m, dQ, m, 1.0f, dw->wq,
                m);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, m, k, 1.0f, E, m, dK, m, 1.0f, dw->wk,
                m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, m, m, 1.0f, dQ, m, w->wq, m, 1.0f, dE,
                m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, m, m, 1.0f, dK, m, w->wk, m, 1.0f, dE,
                m);
}

void tr_attn_scores_backward(float *de, tr_attn_w *dw, const float *G, const float *e,
                             const tr_attn_w *w, const tr_attn_dims *d, int n, float *scratch) {
    int k = d->k, m = d->m;
    float rs = 1.0f / sqrtf((float)m);
    size_t km = (size_t)k * m;
    switch (d->kind) {
    case TR_ATTN_DOT: {
        float *Gs = scratch; // (k, k) = G + G^T
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                Gs[(size_t)i * k + j] = G[(size_t)i * k + j] + G[(size_t)j * k + i];
        for (int s = 0; s < n; s++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, k, rs, Gs, k, e + s * km,
                        m, 1.0f, de + s * km, m);
        break;
    }
    case TR_ATTN_GENERAL: {
        float *F = scratch, *dF = scratch + km;
        for (int s = 0; s < n; s++) {
            const float *E = e + s * km;
            float *dE = de + s * km;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, m, m, 1.0f, E, m, w->w, m, 0.0f,
                        F, m);
            // s = E F^T rs: dE += G F rs, dF = G^T E rs
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, k, rs, G, k, F, m, 1.0f,
                        dE, m);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, m, k, rs, G, k, E, m, 0.0f, dF,
                        m);
            // F = E W^T: dE += dF W, dW += dF^T E
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, dF, m, w->w, m,
                        1.0f, dE, m);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, m, k, 1.0f, dF, m, E, m, 1.0f,
                        dw->w, m);
        }
        break;
    }
    case TR_ATTN_CONCAT: {
        int q = d->q;
        size_t kq = (size_t)k * q;
        float *P = scratch, *Q = P + kq, *dP = Q + kq, *dQ = dP + kq;
        const float *W1 = w->w, *W2 = w->w + (size_t)m * q;
        for (int s = 0; s < n; s++) {
            const float *E = e + s * km;
            float *dE = de + s * km;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, q, m, 1.0f, E, m, W1, q, 0.0f,
                        P, q);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, q, m, 1.0f, E, m, W2, q, 0.0f,
                        Q, q);
            memset(dP, 0, 2 * kq * sizeof(float));
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) {
                    float g = G[(size_t)i * k + j];
                    if (g == 0.0f)
                        continue;
                    const float *pi = P + (size_t)i * q, *qj = Q + (size_t)j * q;
                    float *dpi = dP + (size_t)i * q, *dqj = dQ + (size_t)j * q;
                    for (int c = 0; c < q; c++) {
                        float t = tanhf(pi[c] + qj[c]);
                        dw->v[c] += g * t;
                        float dpre = g * w->v[c] * (1.0f - t * t);
                        dpi[c] += dpre;
                        dqj[c] += dpre;
                    }
                }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, m, q, 1.0f, dP, q, W1, q, 1.0f,
                        dE, m);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, m, q, 1.0f, dQ, q, W2, q, 1.0f,
                        dE, m);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, q, k, 1.0f, E, m, dP, q, 1.0f,
                        dw->w, q);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, q, k, 1.0f, E, m, dQ, q, 1.0f,
                        dw->w + (size_t)m * q, q);
        }
        break;
    }
    case TR_ATTN_MULTIHEAD:
        for (int s = 0; s < n; s++)
            mha_sample_backward(de + s * km, dw, NULL, G, e + s * km, w, d, scratch);
        break;
    }
}

/* ---- multihead value path ------------------------------------------------------------ */

void tr_mha_forward(float *zhat, const float *e, const tr_attn_w *w, const tr_attn_dims *d, int n,
                    float *scratch) {
    int k = d->k, m = d->m, H = d->heads, dk = m / H;
    size_t km = (size_t)k * m;
    float *Q = scratch, *K = Q + km, *V = K + km, *O = V + km, *A = O + km;
    float rs = 1.0f / sqrtf((float)dk);
    for (int s = 0; s < n; s++) {
        const float *E = e + s * km;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wq, m, 0.0f,
                    Q, m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wk, m, 0.0f,
                    K, m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, m, m, 1.0f, E, m, w->wv, m, 0.0f,
                    V, m);
        for (int h = 0; h < H; h++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, dk, rs, Q + h * dk, m,
                        K + h * dk, m, 0.0f, A, k);
            tr_softmax_forward(A, A, k, k);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, dk, k, 1.0f, A, k, V + h * dk,
                        m, 0.0f, O + h * dk, m);
        }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, k, m, 1.0f, O, m, w->wo, 1, 0.0f,
                    zhat + (size_t)s * k, 1);
    }
}

void tr_mha_backward(float *de, tr_attn_w *dw, const float *dzhat, const float *e,
                     const tr_attn_w *w, const tr_attn_dims *d, int n, float *scratch) {
    size_t km = (size_t)d->k * d->m;
    for (int s = 0; s < n; s++)
        mha_sample_backward(de + s * km, dw, dzhat + (size_t)s * d->k, NULL, e + s * km, w, d,
                            scratch);
}

/* ---- softmax, sum pooling, re-weighting -------------------------------------------------- */

// p (n, c) = row softmax of x (n, c); p == x allowed
void tr_softmax_forward(float *p, const float *x, int n, int c) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * c;
        float *pi = p + (size_t)i * c;
        float mx = xi[0];
        for (int j = 1; j < c; j++)
            mx = xi[j] > mx ? xi[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < c; j++) {
            pi[j] = expf(xi[j] - mx);
            sum += pi[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < c; j++)
            pi[j] *= inv;
    }
}

// dx (n, c) += p .* (dp - <p, dp>) per row
void tr_softmax_backward(float *dx, const float *dp, const float *p, int n, int c) {
    for (int i = 0; i < n; i++) {
        const float *pi = p + (size_t)i * c, *dpi = dp + (size_t)i * c;
        double dot = 0.0;
        for (int j = 0; j < c; j++)
            dot += (double)pi[j] * dpi[j];
        float *dxi = dx + (size_t)i * c;
        for (int j = 0; j < c; j++)
            dxi[j] += pi[j] * (dpi[j] - (float)dot);
    }
}

// a (k) = softmax_j(sum_i S_ij), S (k, k)
void tr_sumpool_softmax_forward(float *a, const float *S, int k) {
    for (int j = 0; j < k; j++) {
        double c = 0.0;
        for (int i = 0; i < k; i++)
            c += S[(size_t)i * k + j];
        a[j] = (float)c;
    }
    tr_softmax_forward(a, a, 1, k);
}

// G (k, k) += dS with dS_ij = dc_j, dc = softmax backward of da
void tr_sumpool_softmax_backward(float *G, const float *da, const float *a, int k) {
    double dot = 0.0;
    for (int j = 0; j < k; j++)
        dot += (double)a[j] * da[j];
    for (int j = 0; j < k; j++) {
        float dc = a[j] * (da[j] - (float)dot);
        for (int i = 0; i < k; i++)
            G[(size_t)i * k + j] += dc;
    }
}

// out (n, k) = z (n, k) .* (1 + a (k))
void tr_reweight_forward(float *out, const float *z, const float *a, int n, int k) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            out[(size_t)i * k + j] = z[(size_t)i * k + j] * (1.0f + a[j]);
}

void tr_reweight_backward(float *dz, double *da, const float *dout, const float *z, const float *a,
                          int n, int k) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            size_t o = (size_t)i * k + j;
            if (dz)
                dz[o] += dout[o] * (1.0f + a[j]);
            if (da)
                da[j] += (double)dout[o] * z[o];
        }
}

/* ---- alignment -------------------------------------------------------------------------- */

// s (T, d) += ht^T (T, n) hf (n, d), accumulated per sample in double
void tr_align_scores_sum(double *s, const float *ht, const float *hf, int n, int T, int d) {
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            double a = ht[(size_t)i * T + t];
            const float *f = hf + (size_t)i * d;
            double *st = s + (size_t)t * d;
            for (int j = 0; j < d; j++)
                st[j] += a * f[j];
        }
}

// dht (n, T) += hf G^T, dhf (n, d) += ht G; G (T, d)
void tr_align_backward(float *dht, float *dhf, const float *G, const float *ht, const float *hf,
                       int n, int T, int d) {
    if (n <= 0)
        return;
    if (dht)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, T, d, 1.0f, hf, d, G, d, 1.0f, dht,
                    T);
    if (dhf)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, T, 1.0f, ht, T, G, d, 1.0f,
                    dhf, d);
}

/* ---- MMoE mixture ------------------------------------------------------------------------ */

void tr_moe_combine_forward(float *out, const float *g, const float *ex, int n, int E, int de,
                            int ld) {
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * de;
        memset(o, 0, (size_t)de * sizeof(float));
        for (int e = 0; e < E; e++) {
            float ge = g[(size_t)i * E + e];
            const float *x = ex + (size_t)i * ld + (size_t)e * de;
            for (int c = 0; c < de; c++)
                o[c] += ge * x[c];
        }
    }
}

void tr_moe_combine_backward(float *dg, float *dex, const float *dout, const float *g,
                             const float *ex, int n, int E, int de, int ld) {
    for (int i = 0; i < n; i++) {
        const float *dO = dout + (size_t)i * de;
        for (int e = 0; e < E; e++) {
            const float *x = ex + (size_t)i * ld + (size_t)e * de;
            if (dg) {
                float acc = 0.0f;
                for (int c = 0; c < de; c++)
                    acc += dO[c] * x[c];
                dg[(size_t)i * E + e] += acc;
            }
            if (dex) {
                float ge = g[(size_t)i * E + e];
                float *dx = dex + (size_t)i * ld + (size_t)e * de;
                for (int c = 0; c < de; c++)
                    dx[c] += ge * dO[c];
            }
        }
    }
}
