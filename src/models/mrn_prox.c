/*
 * MRN's proximal step on the rank grid (taskrel/mrn.h, tr_mrn_layer_prox):
 * vec(W) <- (I + η λ' Ω3⊗Ω2⊗Ω1)^{-1} vec(W) on the owned tasks, in single
 * precision (the default) or double. With mrn.mean = shared the step acts on
 * the deviations D = W - W̄ only: W_t <- W̄ + prox(D)_t. W̄ needs every task, so
 * the centred step always takes the gathered path (rotate the owned tasks,
 * all-gather them within replica_comm, subtract the mean of the rotated tasks,
 * which is the rotated W̄, mix, divide, mix back, rotate back and add W̄).
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

static tr_status layer_prox_f32(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, float *w_local,
                                double eta) {
    int d1 = L->d1, d2 = L->d2, nn = d1 * d2, tn = mrn->tn, T = mrn->T;
    int centred = mrn->o.centred;
    if (tn == 0 && !L->rotated[TR_MRN_MODE_TASK] && !centred)
        return TR_OK;
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
