/*
 * MRN's proximal step on the rank grid (taskrel/mrn.h, tr_mrn_layer_prox):
 * vec(W) <- (I + η λ' Ω3⊗Ω2⊗Ω1)^{-1} vec(W) on the owned tasks, in single
 * precision (the default) or double. With mrn.mean = shared the step acts on
 * the deviations D = W - W̄ only: W_t <- W̄ + prox(D)_t. W̄ needs every task, so
 * the centred step always takes the gathered path (rotate the owned tasks,
 * all-gather them within replica_comm, subtract the mean of the rotated tasks,
 * which is the rotated W̄, mix, divide, mix back, rotate back and add W̄).
 * When Ω1, Ω2 are scaled identities (mrn.shrink = 1, the default) the float
 * step is a T x T mixing of the weights instead (dense, or identity plus low
 * rank), with the centring folded into the mixing matrix.
 * Not here: the covariances (mrn.c), the serial math (linalg/mrn_math.c).
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "mrn_internal.h"

/* ---- proximal step in single precision -------------------------------------- *
 * The same step as below with the rotations by U1, U2 (and the task mixing by
 * U3) as float32 GEMMs on the float weights: U is computed in double at each
 * covariance update and rounded to float once; the divisors
 * 1 + η λ' p3_i p1_a p2_b are formed in double. */

static void refresh_u_f32(const tr_mrn *mrn, tr_mrn_layer *L) {
    if (L->u_f32_stamp == mrn->counters[0])
        return;
    for (int k = 0; k < TR_MRN_MODE_COUNT; k++) {
        size_t n = (size_t)L->n[k] * L->n[k];
        for (size_t i = 0; i < n; i++)
            L->u_f32[k][i] = (float)L->u[k][i];
    }
    L->u_f32_stamp = mrn->counters[0];
}

/* x (d1, d2) = U1ᵀ w U2 (an absent U is the identity); x != w; tmp (d1, d2) */
static void rotate_f32(float *x, const float *w, const float *u1, const float *u2, float *tmp,
                       int d1, int d2) {
    if (u1 && u2) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d1, d2, d1, 1.0f, u1, d1, w, d2, 0.0f,
                    tmp, d2);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d2, 1.0f, tmp, d2, u2, d2,
                    0.0f, x, d2);
    } else if (u1) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d1, d2, d1, 1.0f, u1, d1, w, d2, 0.0f,
                    x, d2);
    } else if (u2) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d2, 1.0f, w, d2, u2, d2,
                    0.0f, x, d2);
    } else {
        memcpy(x, w, (size_t)d1 * d2 * sizeof(float));
    }
}

/* w (d1, d2) = U1 x U2ᵀ; x != w; tmp (d1, d2) */
static void unrotate_f32(float *w, const float *x, const float *u1, const float *u2, float *tmp,
                         int d1, int d2) {
    if (u1 && u2) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d1, 1.0f, u1, d1, x, d2,
                    0.0f, tmp, d2);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d1, d2, d2, 1.0f, tmp, d2, u2, d2,
                    0.0f, w, d2);
    } else if (u1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d1, 1.0f, u1, d1, x, d2,
                    0.0f, w, d2);
    } else if (u2) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d1, d2, d2, 1.0f, x, d2, u2, d2, 0.0f,
                    w, d2);
    } else {
        memcpy(w, x, (size_t)d1 * d2 * sizeof(float));
    }
}

/* x (d1, d2) /= 1 + s p1_a p2_b */
static tr_status scale_f32(float *x, const double *p1, const double *p2, double s, int d1, int d2) {
    for (int a = 0; a < d1; a++) {
        double sa = s * p1[a];
        float *row = x + (size_t)a * d2;
        for (int b = 0; b < d2; b++) {
            double den = 1.0 + sa * p2[b];
            TR_CHECK(den > 0.0 && isfinite(den), TR_ERR_NUMERIC,
                     "MRN prox: 1 + eta*lambda*p3*p1*p2 = %g is not positive", den);
            row[b] = (float)(row[b] / den);
        }
    }
    return TR_OK;
}

/* xbar (nn) = mean over the T tasks of x (T, nn) (summed in double, in task
 * order), and x -= xbar: the deviations from the shared mean. */
static void centre_f32(float *xbar, float *x, int nn, int T) {
    for (int k = 0; k < nn; k++) {
        double s = 0.0;
        for (int t = 0; t < T; t++)
            s += x[(size_t)t * nn + k];
        xbar[k] = (float)(s / T);
    }
    for (int t = 0; t < T; t++)
        for (int k = 0; k < nn; k++)
            x[(size_t)t * nn + k] -= xbar[k];
}

/* ---- the step when Ω1 = p1 I and Ω2 = p2 I ----------------------------------- *
 * U1 = U2 = I (mrn.shrink = 1, the default, or those modes not learned): the
 * divisor depends on the task eigenvalue only, 1 + η λ' p3_i p1 p2 = 1 / f_i,
 * and the whole step is one T x T mixing of the tasks' weights,
 * W_t <- Σ_j K[t,j] W_j, with M = U3 diag(f) U3ᵀ and K = M; with mrn.mean =
 * shared, W_t <- W̄ + Σ_j M[t,j] (W_j - W̄), i.e. K[t,j] = M[t,j] + (1 - Σ_k
 * M[t,k]) / T. K is formed in double and rounded to float once; one sgemm of
 * the owned rows of K with the all-gathered float weights, in place of the
 * rotations, the centring and the per-element division. Without task mixing
 * (U3 = I, no shared mean) each owned task is divided by its 1 + η λ' p3_t p1
 * p2 and nothing is communicated. */

static int all_equal(const double *p, int n) {
    for (int i = 1; i < n; i++)
        if (p[i] != p[0])
            return 0;
    return 1;
}

/* U1 = U2 = I with constant p1, p2 (rotated == 0 keeps Ω_k = p_k I). */
static int scaled_identities(const tr_mrn *mrn, const tr_mrn_layer *L) {
    return !mrn->o.dense && !L->rotated[TR_MRN_MODE_FEATURE] && !L->rotated[TR_MRN_MODE_CLASS] &&
           all_equal(L->p[0], L->d1) && all_equal(L->p[1], L->d2);
}

/* 1 + η λ' p3 p1 p2, multiplied in scale_f32's order */
static tr_status divisor(double *den, double step, double p3, double p1, double p2) {
    *den = 1.0 + step * p3 * p1 * p2;
    TR_CHECK(*den > 0.0 && isfinite(*den), TR_ERR_NUMERIC,
             "MRN prox: 1 + eta*lambda*p3*p1*p2 = %g is not positive", *den);
    return TR_OK;
}

/* f (T): 1 / (1 + η λ' p3_i p1 p2) */
static tr_status mixing_factors(double *f, const tr_mrn *mrn, const tr_mrn_layer *L, double step) {
    for (int i = 0; i < mrn->T; i++) {
        double den;
        TR_CALL(divisor(&den, step, L->p[2][i], L->p[0][0], L->p[1][0]));
        f[i] = 1.0 / den;
    }
    return TR_OK;
}

/* k (tn, T) float: rows t0..t0+tn-1 of K above; rows: tn T doubles scratch. */
static void mixing_rows(float *k, double *rows, const tr_mrn *mrn, const tr_mrn_layer *L,
                        const double *f) {
    int T = mrn->T, tn = mrn->tn;
    const double *u3 = L->u[TR_MRN_MODE_TASK]; /* (T, T), eigenvectors in columns */
    for (int a = 0; a < tn; a++) {
        const double *ua = u3 + (size_t)(mrn->t0 + a) * T;
        double sum = 0.0;
        for (int j = 0; j < T; j++) {
            const double *uj = u3 + (size_t)j * T;
            double s = 0.0;
            for (int i = 0; i < T; i++)
                s += ua[i] * f[i] * uj[i];
            rows[(size_t)a * T + j] = s;
            sum += s;
        }
        if (mrn->o.centred)
            for (int j = 0; j < T; j++)
                rows[(size_t)a * T + j] += (1.0 - sum) / T;
    }
    for (size_t i = 0; i < (size_t)tn * T; i++)
        k[i] = (float)rows[i];
}

/* Columns per block of the mixing product. One sgemm over all D1 D2 columns
 * ran at 37-41 GFLOP/s on the development machine (T = 96, 65,536 columns,
 * either OpenBLAS kernel set); blocks of 256 columns at 45 (Haswell) and 114
 * (AVX-512) GFLOP/s. */
#define MIX_BLOCK 256

/* out (m, nn) = k (m, T) w (T, nn), block of columns by block of columns. out
 * may be w (m = T): each block then goes through tmp (T, MIX_BLOCK) first. */
static void mix_blocked(float *out, const float *k, const float *w, float *tmp, int m, int T,
                        int nn) {
    for (int j0 = 0; j0 < nn; j0 += MIX_BLOCK) {
        int nb = nn - j0 < MIX_BLOCK ? nn - j0 : MIX_BLOCK;
        if (out != w) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nb, T, 1.0f, k, T, w + j0, nn,
                        0.0f, out + j0, nn);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nb, T, 1.0f, k, T, w + j0, nn,
                    0.0f, tmp, nb);
        for (int t = 0; t < m; t++)
            memcpy(out + (size_t)t * nn + j0, tmp + (size_t)t * nb, (size_t)nb * sizeof(float));
    }
}

/* W_owned <- K[owned, :] W on the all-gathered float weights (in place when this
 * rank holds every task: nothing to gather). */
static tr_status prox_mix_dense(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, float *w_local,
                                const double *f) {
    int nn = L->d1 * L->d2, tn = mrn->tn, T = mrn->T;
    int local = tn == T; /* the same on every rank of replica_comm: each holds all tasks */
    if (!local) {
        tr_mrn_set_counts(mrn, g, nn);
        TR_CALL(tr_allgatherv_f32(g, g->replica_comm, w_local, tn * nn, L->w_f32, mrn->counts,
                                  mrn->displs, TR_COLL_MRN));
    }
    if (tn == 0)
        return TR_OK;
    double *rows; /* K's owned rows in double (tn, T), then in float */
    TR_ALLOC(rows, 2 * (size_t)tn * T, "MRN prox mixing");
    float *k = (float *)(rows + (size_t)tn * T);
    mixing_rows(k, rows, mrn, L, f);
    if (local) /* in place, w_f32 as the block scratch */
        mix_blocked(w_local, k, w_local, L->w_f32, T, T, nn);
    else /* w_f32 is a copy: the product may overwrite w_local */
        mix_blocked(w_local, k, L->w_f32, NULL, tn, T, nn);
    tr_free(rows);
    return TR_OK;
}

/* ---- low rank: most task precisions floored -------------------------------------- *
 * The floor gives every task eigenvalue below it the same precision, the largest,
 * hence the same factor f_F: M = f_F I + V diag(f_V - f_F) Vᵀ with V (T, r) the
 * eigenvectors of the r other eigenvalues. Then
 *   M W = f_F W + V diag(f_V - f_F) (Vᵀ W),
 * and with the shared mean (W̄ = 1ᵀ W / T appended to Vᵀ W as a last row)
 *   W_t <- f_F W_t + Σ_i V[t,i] g_i (Vᵀ W)_i + (1 - f_F - Σ_i V[t,i] g_i (Vᵀ 1)_i) W̄,
 * g = f_V - f_F. Z = [V, 1/T]ᵀ W, (r + 1) x d1 d2, is summed over replica_comm
 * (the owned tasks' part on each rank), so the step costs 4 (r + 1) T d1 d2 flops
 * and an all-reduce of (r + 1) d1 d2 floats in place of 2 T² d1 d2 and an
 * all-gather of T d1 d2. Taken when 2 (r + 1) < T. */

/* idx (T): the eigenvalues whose precision is not the largest; their count.
 * *top: one whose precision is the largest. */
static int unfloored(int *idx, int *top, const double *p3, int T) {
    *top = 0;
    for (int i = 1; i < T; i++)
        if (p3[i] > p3[*top])
            *top = i;
    int r = 0;
    for (int i = 0; i < T; i++)
        if (p3[i] != p3[*top])
            idx[r++] = i;
    return r;
}

static tr_status prox_mix_low_rank(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, float *w_local,
                                   const double *f, const int *idx, int r, double fF) {
    int nn = L->d1 * L->d2, tn = mrn->tn, T = mrn->T, t0 = mrn->t0;
    int q = r + (mrn->o.centred ? 1 : 0); /* columns of [V, 1/T] */
    const double *u3 = L->u[TR_MRN_MODE_TASK];
    double *vt1; /* (q) Vᵀ 1, then float V, C (tn, q) for the owned rows */
    TR_ALLOC(vt1, (size_t)q + 2 * (size_t)tn * q, "MRN prox low rank");
    float *vf = (float *)(vt1 + q), *cf = vf + (size_t)tn * q;
    for (int c = 0; c < r; c++) {
        double s = 0.0;
        for (int t = 0; t < T; t++)
            s += u3[(size_t)t * T + idx[c]];
        vt1[c] = s;
    }
    for (int a = 0; a < tn; a++) {
        const double *ua = u3 + (size_t)(t0 + a) * T;
        double mean_coef = 1.0 - fF;
        for (int c = 0; c < r; c++) {
            double gc = f[idx[c]] - fF;
            vf[(size_t)a * q + c] = (float)ua[idx[c]];
            cf[(size_t)a * q + c] = (float)(ua[idx[c]] * gc);
            mean_coef -= ua[idx[c]] * gc * vt1[c];
        }
        if (q > r) {
            vf[(size_t)a * q + r] = (float)(1.0 / T);
            cf[(size_t)a * q + r] = (float)mean_coef;
        }
    }
    float *z = L->w_f32; /* (q, d1 d2) */
    if (tn > 0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, nn, tn, 1.0f, vf, q, w_local, nn,
                    0.0f, z, nn);
    else
        memset(z, 0, (size_t)q * nn * sizeof(float));
    tr_status st = tr_allreduce_f32(g, g->replica_comm, z, (size_t)q * nn, TR_COLL_MRN);
    if (st == TR_OK && tn > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tn, nn, q, 1.0f, cf, q, z, nn,
                    (float)fF, w_local, nn);
    tr_free(vt1);
    return st;
}

static tr_status layer_prox_iso_f32(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, float *w_local,
                                    double eta) {
    int nn = L->d1 * L->d2, tn = mrn->tn, T = mrn->T;
    double step = eta * mrn->o.lambda;
    if (!L->rotated[TR_MRN_MODE_TASK] && !mrn->o.centred) {
        for (int i = 0; i < tn; i++) {
            double den;
            TR_CALL(divisor(&den, step, L->p[2][mrn->t0 + i], L->p[0][0], L->p[1][0]));
            float *w = w_local + (size_t)i * nn;
            for (int k = 0; k < nn; k++)
                w[k] = (float)(w[k] / den);
        }
        return TR_OK;
    }
    double *f; /* (T) factors, then (T) ints: the unfloored eigenvalues */
    TR_ALLOC(f, 2 * (size_t)T, "MRN prox factors");
    int *idx = (int *)(f + T);
    tr_status st = mixing_factors(f, mrn, L, step);
    if (st == TR_OK) {
        int top, r = unfloored(idx, &top, L->p[2], T);
        if (2 * (r + 1) < T) {
            st = prox_mix_low_rank(mrn, L, g, w_local, f, idx, r, f[top]);
            mrn->low_rank_proxes++;
        } else
            st = prox_mix_dense(mrn, L, g, w_local, f);
    }
    tr_free(f);
    return st;
}

/* ---- the general step ------------------------------------------------------------ */

static tr_status layer_prox_f32(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, float *w_local,
                                double eta) {
    int d1 = L->d1, d2 = L->d2, nn = d1 * d2, tn = mrn->tn, T = mrn->T;
    int centred = mrn->o.centred;
    if (tn == 0 && !L->rotated[TR_MRN_MODE_TASK] && !centred)
        return TR_OK;
    if (scaled_identities(mrn, L))
        return layer_prox_iso_f32(mrn, L, g, w_local, eta);
    refresh_u_f32(mrn, L);
    const float *u1 = L->rotated[0] ? L->u_f32[0] : NULL, *u2 = L->rotated[1] ? L->u_f32[1] : NULL;
    double step = eta * mrn->o.lambda;
    /* float scratch inside work ((T + 2) d1 d2 doubles at least): xl (tn), wt (T), tmp (1),
     * xbar (1), wbar (1) */
    float *xl = (float *)L->work, *wt = xl + (size_t)tn * nn, *tmp = wt + (size_t)T * nn;
    float *xbar = tmp + nn, *wbar = xbar + nn;
    if (!L->rotated[TR_MRN_MODE_TASK] && !centred) {
        /* Ω3 is diagonal: no task mixing, nothing to communicate */
        for (int i = 0; i < tn; i++) {
            float *w = w_local + (size_t)i * nn;
            rotate_f32(xl, w, u1, u2, tmp, d1, d2);
            TR_CALL(scale_f32(xl, L->p[0], L->p[1], step * L->p[2][mrn->t0 + i], d1, d2));
            unrotate_f32(w, xl, u1, u2, tmp, d1, d2);
        }
        return TR_OK;
    }
    for (int i = 0; i < tn; i++)
        rotate_f32(xl + (size_t)i * nn, w_local + (size_t)i * nn, u1, u2, tmp, d1, d2);
    tr_mrn_set_counts(mrn, g, nn);
    /* w_f32 holds the rotated weights of all tasks from here on */
    TR_CALL(tr_allgatherv_f32(g, g->replica_comm, xl, tn * nn, L->w_f32, mrn->counts, mrn->displs,
                              TR_COLL_MRN));
    if (tn == 0)
        return TR_OK;
    if (centred)
        centre_f32(xbar, L->w_f32, nn, T); /* the rotated mean U1ᵀ W̄ U2; D from here on */
    const float *u3 = L->u_f32[2];         /* the identity until the task mode is updated */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, nn, T, 1.0f, u3, T, L->w_f32, nn, 0.0f,
                wt, nn);
    for (int i = 0; i < T; i++)
        TR_CALL(scale_f32(wt + (size_t)i * nn, L->p[0], L->p[1], step * L->p[2][i], d1, d2));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tn, nn, T, 1.0f,
                u3 + (size_t)mrn->t0 * T, T, wt, nn, 0.0f, xl, nn);
    for (int i = 0; i < tn; i++)
        unrotate_f32(w_local + (size_t)i * nn, xl + (size_t)i * nn, u1, u2, tmp, d1, d2);
    if (centred) {
        unrotate_f32(wbar, xbar, u1, u2, tmp, d1, d2); /* W̄, unchanged by the step */
        for (int i = 0; i < tn; i++)
            for (int k = 0; k < nn; k++)
                w_local[(size_t)i * nn + k] += wbar[k];
    }
    return TR_OK;
}

tr_status tr_mrn_layer_prox(tr_mrn *mrn, int l, tr_grid *g, float *w_local, double eta) {
    tr_mrn_layer *L = &mrn->layer[l];
    if (!mrn->o.prox_f64)
        return layer_prox_f32(mrn, L, g, w_local, eta);
    int d1 = L->d1, d2 = L->d2, nn = d1 * d2, tn = mrn->tn;
    const double *u1 = L->rotated[0] ? L->u[0] : NULL, *u2 = L->rotated[1] ? L->u[1] : NULL;
    double *x = L->work;                /* (tn, d1, d2) owned tasks */
    double *xbar = x + (size_t)tn * nn; /* (d1, d2) rotated mean, then W̄ */
    size_t n = (size_t)tn * nn;
    int centred = mrn->o.centred;
    for (size_t i = 0; i < n; i++)
        x[i] = w_local[i];
    if (!L->rotated[TR_MRN_MODE_TASK] && !centred) {
        /* Ω3 is diagonal: no task mixing, nothing to communicate */
        TR_CALL(tr_mrn_prox(x, x, u1, u2, mrn->eye_tn, L->p[0], L->p[1], L->p[2] + mrn->t0, eta,
                            mrn->o.lambda, d1, d2, tn, 0, tn));
    } else {
        TR_CALL(tr_mrn_prox_rotate(x, x, u1, u2, d1, d2, tn));
        tr_mrn_set_counts(mrn, g, nn);
        /* w_all holds the rotated weights of all tasks from here on */
        TR_CALL(tr_allgatherv_f64(g, g->replica_comm, x, tn * nn, L->w_all, mrn->counts,
                                  mrn->displs, TR_COLL_MRN));
        if (centred) { /* D = W - W̄ in the rotated basis (the rotation is linear) */
            tr_mrn_task_mean(xbar, L->w_all, d1, d2, mrn->T);
            tr_mrn_centre(L->w_all, L->w_all, xbar, d1, d2, mrn->T);
        }
        TR_CALL(tr_mrn_prox_finish(x, L->w_all, u1, u2, L->u[2], L->p[0], L->p[1], L->p[2], eta,
                                   mrn->o.lambda, d1, d2, mrn->T, mrn->t0, tn));
        if (centred && tn > 0) { /* W_t = W̄ + prox(D)_t */
            TR_CALL(tr_mrn_unrotate(xbar, xbar, u1, u2, d1, d2, 1));
            for (int i = 0; i < tn; i++)
                for (int k = 0; k < nn; k++)
                    x[(size_t)i * nn + k] += xbar[k];
        }
    }
    for (size_t i = 0; i < n; i++)
        w_local[i] = (float)x[i];
    return TR_OK;
}
