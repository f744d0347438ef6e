/*
 * MRN math, the options that bound the prior (taskrel/mrn_math.h, "options"):
 * the shared mean over tasks and the centred tensor (mrn.mean = shared), the
 * centred proximal step and the centred precision of the gradient form, the
 * trace normalisation of the task covariance (mrn.task_scale = fixed) and the
 * shrinkage of a covariance toward the scaled identity (mrn.shrink).
 * Serial double precision, like mrn_math.c. Not here: MPI (a distributed caller
 * all-gathers the weights first, so every rank computes the same mean from the
 * same numbers in the same order).
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "taskrel/mrn_math.h"

void tr_mrn_task_mean(double *mean, const double *w, int d1, int d2, int t) {
    size_t nn = (size_t)d1 * d2;
    memset(mean, 0, nn * sizeof(double));
    /* summed in task order 0..T-1, so every grid gets the same bits */
    for (int k = 0; k < t; k++)
        for (size_t i = 0; i < nn; i++)
            mean[i] += w[(size_t)k * nn + i];
    for (size_t i = 0; i < nn; i++)
        mean[i] /= t;
}

void tr_mrn_centre(double *dev, const double *w, const double *mean, int d1, int d2, int n) {
    size_t nn = (size_t)d1 * d2;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < nn; i++)
            dev[(size_t)k * nn + i] = w[(size_t)k * nn + i] - mean[i];
}

tr_status tr_mrn_centre_precision(double *omega_c, const double *omega3, int t) {
    TR_CHECK(t > 0, TR_ERR_INTERNAL, "MRN: task count must be positive (t=%d)", t);
    double *m; // (t) row means of Ω3 (= column means: Ω3 is symmetric)
    TR_ALLOC(m, (size_t)t, "MRN centring scratch");
    double all = 0.0;
    for (int i = 0; i < t; i++) {
        double s = 0.0;
        for (int j = 0; j < t; j++)
            s += omega3[(size_t)i * t + j];
        m[i] = s / t;
        all += s;
    }
    all /= (double)t * t;
    /* (C Ω3 C)[i,j] = Ω3[i,j] - m_i - m_j + mean(Ω3), C = I - 11ᵀ/T */
    for (int i = 0; i < t; i++)
        for (int j = 0; j < t; j++)
            omega_c[(size_t)i * t + j] = omega3[(size_t)i * t + j] - m[i] - m[j] + all;
    tr_free(m);
    return TR_OK;
}

tr_status tr_mrn_prox_centred(double *w_out, const double *w, const double *u1, const double *u2,
                              const double *u3, const double *p1, const double *p2,
                              const double *p3, double eta, double lambda, int d1, int d2, int t,
                              int t0, int tn) {
    TR_CHECK(d1 > 0 && d2 > 0 && t > 0 && t0 >= 0 && tn >= 0 && t0 <= t - tn, TR_ERR_INTERNAL,
             "MRN prox: bad sizes (d1=%d d2=%d t=%d, tasks [%d, %d))", d1, d2, t, t0, t0 + tn);
    if (tn == 0)
        return TR_OK;
    size_t nn = (size_t)d1 * d2;
    double *dev; // (t, d1, d2) D = W - W̄, then (d1, d2) W̄
    TR_ALLOC(dev, ((size_t)t + 1) * nn, "MRN centred prox scratch");
    double *mean = dev + (size_t)t * nn;
    tr_mrn_task_mean(mean, w, d1, d2, t);
    tr_mrn_centre(dev, w, mean, d1, d2, t);
    tr_status st = tr_mrn_prox(w_out, dev, u1, u2, u3, p1, p2, p3, eta, lambda, d1, d2, t, t0, tn);
    if (st == TR_OK)
        for (int k = 0; k < tn; k++)
            for (size_t i = 0; i < nn; i++)
                w_out[(size_t)k * nn + i] += mean[i];
    tr_free(dev);
    TR_CALL(st);
    return TR_OK;
}

tr_status tr_mrn_unrotate(double *w, const double *x, const double *u1, const double *u2, int d1,
                          int d2, int n) {
    TR_CHECK(d1 > 0 && d2 > 0 && n >= 0, TR_ERR_INTERNAL, "MRN: bad sizes (d1=%d d2=%d n=%d)", d1,
             d2, n);
    size_t nn = (size_t)d1 * d2;
    double *tmp; // (d1, d2)
    TR_ALLOC(tmp, nn, "MRN rotation scratch");
    for (int k = 0; k < n; k++) {
        memcpy(tmp, x + k * nn, nn * sizeof(double)); /* w may equal x */
        double *wk = w + k * nn;
        if (u1) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d1, 1.0, u1, d1, tmp, d2,
                        0.0, wk, d2);
            if (u2)
                memcpy(tmp, wk, nn * sizeof(double));
        }
        if (u2)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d1, d2, d2, 1.0, tmp, d2, u2, d2,
                        0.0, wk, d2);
        if (!u1 && !u2)
            memcpy(wk, tmp, nn * sizeof(double));
    }
    tr_free(tmp);
    return TR_OK;
}

static double trace_of(const double *a, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[(size_t)i * n + i];
    return s;
}

tr_status tr_mrn_cov_shrink(double *sigma, double s, int n) {
    TR_CHECK(n > 0, TR_ERR_INTERNAL, "MRN: covariance size must be positive (n=%d)", n);
    TR_CHECK(s >= 0.0 && s <= 1.0, TR_ERR_CONFIG, "mrn.shrink must be in [0, 1] (got %g)", s);
    if (s == 0.0)
        return TR_OK;
    double target = trace_of(sigma, n) / n;
    TR_CHECK(isfinite(target), TR_ERR_NUMERIC, "MRN: covariance trace is %g, cannot shrink",
             target * n);
    size_t nn = (size_t)n * n;
    for (size_t k = 0; k < nn; k++)
        sigma[k] *= 1.0 - s;
    for (int i = 0; i < n; i++)
        sigma[(size_t)i * n + i] += s * target;
    return TR_OK;
}

tr_status tr_mrn_cov_fix_task_scale(double *sigma3, double *factor, int t) {
    TR_CHECK(t > 0, TR_ERR_INTERNAL, "MRN: task count must be positive (t=%d)", t);
    double tr3 = trace_of(sigma3, t);
    TR_CHECK(isfinite(tr3) && tr3 > 0.0, TR_ERR_NUMERIC,
             "MRN: task covariance has trace %g, cannot normalise", tr3);
    double c = t / tr3;
    size_t nn = (size_t)t * t;
    for (size_t k = 0; k < nn; k++)
        sigma3[k] *= c;
    if (factor)
        *factor = c;
    return TR_OK;
}
