/*
 * MRN math, serial double precision (taskrel/mrn_math.h): precisions from
 * covariances, the prior's value and gradient, the flip-flop covariance updates
 * as partial sums over an owned task range, the proximal step and the
 * correlation helpers.
 * Not here: MPI (the caller all-gathers / all-reduces), float conversion, ScaLAPACK.
 *
 * Layout reminder: W_t is row-major D1×D2 at w + t*d1*d2, so the T tasks form a
 * row-major (T, D1·D2) matrix; a product over the task axis (Σ_j Ω3[i,j] W_j) is
 * one dgemm on that view. Products with Ω1 / Ω2 are per task (dsymm). Every
 * function allocates its scratch in one block, so a failure cannot leak.
 */
#include <math.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "taskrel/mrn_math.h"

static tr_status check_sizes(int d1, int d2, int t, int t0, int tn) {
    TR_CHECK(d1 > 0 && d2 > 0 && t > 0, TR_ERR_INTERNAL,
             "MRN: sizes must be positive (d1=%d d2=%d t=%d)", d1, d2, t);
    TR_CHECK(t0 >= 0 && tn >= 0 && t0 <= t - tn, TR_ERR_INTERNAL,
             "MRN: task range [%d, %d) is not inside [0, %d)", t0, t0 + tn, t);
    /* BLAS takes int dimensions; D1·D2 is a leading dimension, T·D1·D2 an offset. */
    TR_CHECK((size_t)d1 * (size_t)d2 * (size_t)t <= (size_t)INT32_MAX, TR_ERR_INTERNAL,
             "MRN: weight tensor %d x %d x %d is too large", d1, d2, t);
    return TR_OK;
}

/* ---- precisions ------------------------------------------------------------- */

typedef enum { RULE_FLOOR, RULE_OFFICIAL } precision_rule;

tr_status tr_mrn_precision_from_eig(double *omega, const double *u, const double *p, int n) {
    TR_CHECK(n > 0, TR_ERR_INTERNAL, "MRN: precision size must be positive (n=%d)", n);
    double *v; // (n, n) scaled eigenvectors
    TR_ALLOC(v, (size_t)n * n, "MRN eigenvector scratch");
    int all_positive = 1;
    for (int k = 0; k < n; k++)
        all_positive &= p[k] > 0.0;
    if (all_positive) {
        /* Ω = V Vᵀ with V = U diag(sqrt p): half the flops of a gemm and exactly
         * symmetric once the upper triangle is mirrored. */
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
                v[(size_t)i * n + k] = u[(size_t)i * n + k] * sqrt(p[k]);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, n, 1.0, v, n, 0.0, omega, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                omega[(size_t)i * n + j] = omega[(size_t)j * n + i];
    } else {
        /* Official rule may give p <= 0: general product, then symmetrise. */
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
                v[(size_t)i * n + k] = u[(size_t)i * n + k] * p[k];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, v, n, u, n, 0.0, omega,
                    n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) {
                double m = 0.5 * (omega[(size_t)i * n + j] + omega[(size_t)j * n + i]);
                omega[(size_t)i * n + j] = m;
                omega[(size_t)j * n + i] = m;
            }
    }
    tr_free(v);
    return TR_OK;
}

/* u (n, n) eigenvectors, s (n) ascending eigenvalues of sigma (upper triangle). */
static tr_status sym_eig(double *u, double *s, const double *sigma, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++)
            TR_CHECK(isfinite(sigma[(size_t)i * n + j]), TR_ERR_NUMERIC,
                     "MRN: covariance entry (%d, %d) is not finite", i, j);
    memcpy(u, sigma, (size_t)n * n * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, u, n, s);
    TR_LAPACK(info, "LAPACKE_dsyevd (MRN covariance)");
    return TR_OK;
}

/* p (n) from the covariance eigenvalues s (n) by the rule; logdet = Σ ln p. */
static tr_status apply_rule(double *p, double *logdet, const double *s, precision_rule rule,
                            double eig_floor, int n) {
    double logsum = 0.0;
    if (rule == RULE_FLOOR) {
        double mean = 0.0;
        for (int k = 0; k < n; k++)
            mean += s[k];
        mean /= n;
        TR_CHECK(isfinite(mean) && mean > 0.0, TR_ERR_NUMERIC,
                 "MRN: covariance has a non-positive or non-finite mean eigenvalue (%g)", mean);
        double floor_s = eig_floor * mean;
        for (int k = 0; k < n; k++) {
            p[k] = 1.0 / fmax(s[k], floor_s);
            logsum += log(p[k]);
        }
    } else {
        double trace = 0.0;
        for (int k = 0; k < n; k++) {
            p[k] = fabs(s[k]) > TR_MRN_OFFICIAL_THRESHOLD ? 1.0 / s[k] : s[k];
            trace += p[k];
        }
        TR_CHECK(isfinite(trace), TR_ERR_NUMERIC, "MRN: precision trace is not finite");
        if (trace > TR_MRN_OFFICIAL_TRACE_CAP) {
            double c = TR_MRN_OFFICIAL_TRACE_CAP / trace;
            for (int k = 0; k < n; k++)
                p[k] *= c;
        }
        for (int k = 0; k < n; k++)
            logsum += p[k] > 0.0 ? log(p[k]) : -HUGE_VAL;
    }
    *logdet = logsum;
    return TR_OK;
}

tr_status tr_mrn_precision_eigvals(double *p, double *logdet, const double *s, int official,
                                   double eig_floor, int n) {
    TR_CHECK(n > 0, TR_ERR_INTERNAL, "MRN: precision size must be positive (n=%d)", n);
    TR_CHECK(official || eig_floor > 0.0, TR_ERR_CONFIG, "mrn.eig_floor must be positive");
    double ld = 0.0;
    TR_CALL(apply_rule(p, &ld, s, official ? RULE_OFFICIAL : RULE_FLOOR, eig_floor, n));
    if (logdet)
        *logdet = ld;
    return TR_OK;
}

static tr_status precision_run(double *omega, double *u, double *p, double *logdet, double *s,
                               const double *sigma, precision_rule rule, double eig_floor, int n) {
    TR_CALL(sym_eig(u, s, sigma, n));
    TR_CALL(apply_rule(p, logdet, s, rule, eig_floor, n));
    TR_CALL(tr_mrn_precision_from_eig(omega, u, p, n));
    return TR_OK;
}

static tr_status precision(double *omega, double *u, double *p, double *logdet, const double *sigma,
                           precision_rule rule, double eig_floor, int n) {
    TR_CHECK(n > 0, TR_ERR_INTERNAL, "MRN: precision size must be positive (n=%d)", n);
    size_t nn = (size_t)n * n;
    double *scratch; // u (n, n) if not given, p (n) if not given, s (n)
    TR_ALLOC(scratch, nn + 2 * (size_t)n, "MRN precision scratch");
    double ld = 0.0;
    tr_status st = precision_run(omega, u ? u : scratch, p ? p : scratch + nn, &ld,
                                 scratch + nn + n, sigma, rule, eig_floor, n);
    tr_free(scratch);
    TR_CALL(st);
    if (logdet)
        *logdet = ld;
    return TR_OK;
}

tr_status tr_mrn_precision_floor(double *omega, double *u, double *p, double *logdet,
                                 const double *sigma, double eig_floor, int n) {
    TR_CHECK(eig_floor > 0.0 && isfinite(eig_floor), TR_ERR_CONFIG,
             "mrn.eig_floor must be a positive number (got %g)", eig_floor);
    TR_CALL(precision(omega, u, p, logdet, sigma, RULE_FLOOR, eig_floor, n));
    return TR_OK;
}

tr_status tr_mrn_precision_official(double *omega, double *u, double *p, double *logdet,
                                    const double *sigma, int n) {
    TR_CALL(precision(omega, u, p, logdet, sigma, RULE_OFFICIAL, 0.0, n));
    return TR_OK;
}

void tr_mrn_precision_scale(double *omega, double *p, double *logdet, double c, int n) {
    size_t nn = (size_t)n * n;
    for (size_t k = 0; k < nn; k++)
        omega[k] *= c;
    if (p)
        for (int k = 0; k < n; k++)
            p[k] *= c;
    if (logdet)
        *logdet += n * log(c);
}

/* ---- prior ---------------------------------------------------------------------- */

/* a (tn, d1*d2) = Ω3[t0:t0+tn, :] · W, i.e. A_i = Σ_j Ω3[i,j] W_j for owned i. */
static void task_mix(double *a, const double *w, const double *omega3, int d1, int d2, int t,
                     int t0, int tn) {
    int nn = d1 * d2;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tn, nn, t, 1.0, omega3 + (size_t)t0 * t,
                t, w, nn, 0.0, a, nn);
}

/* g (tn, d1, d2), tmp (d1, d2) scratch. */
static void prior_grad_run(double *g, double *value, double *tmp, const double *w,
                           const double *omega1, const double *omega2, const double *omega3,
                           double lambda, int d1, int d2, int t, int t0, int tn) {
    size_t nn = (size_t)d1 * d2;
    double v = 0.0;
    task_mix(g, w, omega3, d1, d2, t, t0, tn); // g_i = M_i
    for (int i = 0; i < tn; i++) {
        double *gi = g + (size_t)i * nn;
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, d1, d2, 1.0, omega2, d2, gi, d2, 0.0,
                    tmp, d2);
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, d1, d2, lambda, omega1, d1, tmp, d2, 0.0,
                    gi, d2);
        v += cblas_ddot((int)nn, w + (size_t)(t0 + i) * nn, 1, gi, 1);
    }
    if (value)
        *value = 0.5 * v;
}

tr_status tr_mrn_prior_grad(double *g, double *value, const double *w, const double *omega1,
                            const double *omega2, const double *omega3, double lambda, int d1,
                            int d2, int t, int t0, int tn) {
    TR_CALL(check_sizes(d1, d2, t, t0, tn));
    if (tn == 0) {
        if (value)
            *value = 0.0;
        return TR_OK;
    }
    double *tmp;
    TR_ALLOC(tmp, (size_t)d1 * d2, "MRN prior scratch");
    prior_grad_run(g, value, tmp, w, omega1, omega2, omega3, lambda, d1, d2, t, t0, tn);
    tr_free(tmp);
    return TR_OK;
}

tr_status tr_mrn_prior_value(double *value, const double *w, const double *omega1,
                             const double *omega2, const double *omega3, double lambda, int d1,
                             int d2, int t, int t0, int tn) {
    TR_CALL(check_sizes(d1, d2, t, t0, tn));
    *value = 0.0;
    if (tn == 0)
        return TR_OK;
    size_t nn = (size_t)d1 * d2;
    double *g; // (tn, d1, d2) gradient, then (d1, d2) scratch
    TR_ALLOC(g, ((size_t)tn + 1) * nn, "MRN prior value scratch");
    prior_grad_run(g, value, g + (size_t)tn * nn, w, omega1, omega2, omega3, lambda, d1, d2, t, t0,
                   tn);
    tr_free(g);
    return TR_OK;
}

/* ---- covariance updates --------------------------------------------------------- */

/* Σ_i (W_i Ω2) A_iᵀ. part (d1, d1); scratch 2 tn d1 d2. */
static void cov_feature(double *part, double *scratch, const double *w, const double *omega2,
                        const double *omega3, int d1, int d2, int t, int t0, int tn) {
    size_t nn = (size_t)d1 * d2;
    double *a = scratch;           // (tn, d1, d2) A_i
    double *b = scratch + tn * nn; // (tn, d1, d2) W_i Ω2
    task_mix(a, w, omega3, d1, d2, t, t0, tn);
    /* The owned W_i stacked are one (tn·d1, d2) matrix: one product with Ω2. */
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, tn * d1, d2, 1.0, omega2, d2,
                w + (size_t)t0 * nn, d2, 0.0, b, d2);
    for (int i = 0; i < tn; i++)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d1, d1, d2, 1.0, b + i * nn, d2,
                    a + i * nn, d2, i == 0 ? 0.0 : 1.0, part, d1);
}

/* Σ_i W_iᵀ (Ω1 A_i). part (d2, d2); scratch (tn + 1) d1 d2. */
static void cov_class(double *part, double *scratch, const double *w, const double *omega1,
                      const double *omega3, int d1, int d2, int t, int t0, int tn) {
    size_t nn = (size_t)d1 * d2;
    double *a = scratch;           // (tn, d1, d2) A_i
    double *c = scratch + tn * nn; // (d1, d2) Ω1 A_i
    task_mix(a, w, omega3, d1, d2, t, t0, tn);
    for (int i = 0; i < tn; i++) {
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, d1, d2, 1.0, omega1, d1, a + i * nn, d2,
                    0.0, c, d2);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d2, d2, d1, 1.0,
                    w + (size_t)(t0 + i) * nn, d2, c, d2, i == 0 ? 0.0 : 1.0, part, d2);
    }
}

/* Rows t0..t0+tn-1 of [<Ω1 W_i Ω2, W_j>_F]; part (t, t); scratch (tn + 1) d1 d2. */
static void cov_task(double *part, double *scratch, const double *w, const double *omega1,
                     const double *omega2, int d1, int d2, int t, int t0, int tn) {
    size_t nn = (size_t)d1 * d2;
    double *e = scratch;             // (tn, d1, d2) Ω1 W_i Ω2
    double *tmp = scratch + tn * nn; // (d1, d2)
    for (int i = 0; i < tn; i++) {
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, d1, d2, 1.0, omega2, d2,
                    w + (size_t)(t0 + i) * nn, d2, 0.0, tmp, d2);
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, d1, d2, 1.0, omega1, d1, tmp, d2, 0.0,
                    e + i * nn, d2);
    }
    memset(part, 0, (size_t)t * t * sizeof(double));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tn, t, (int)nn, 1.0, e, (int)nn, w,
                (int)nn, 0.0, part + (size_t)t0 * t, t);
}

tr_status tr_mrn_cov_part(double *part, tr_mrn_mode mode, const double *w, const double *omega1,
                          const double *omega2, const double *omega3, int d1, int d2, int t, int t0,
                          int tn) {
    TR_CALL(check_sizes(d1, d2, t, t0, tn));
    TR_CHECK(mode >= 0 && mode < TR_MRN_MODE_COUNT, TR_ERR_INTERNAL, "MRN: bad mode %d", (int)mode);
    int n = mode == TR_MRN_MODE_FEATURE ? d1 : mode == TR_MRN_MODE_CLASS ? d2 : t;
    if (tn == 0) {
        memset(part, 0, (size_t)n * n * sizeof(double));
        return TR_OK;
    }
    size_t nn = (size_t)d1 * d2;
    size_t len = mode == TR_MRN_MODE_FEATURE ? 2 * tn * nn : (tn + 1) * nn;
    double *scratch;
    TR_ALLOC(scratch, len, "MRN covariance scratch");
    switch (mode) {
    case TR_MRN_MODE_FEATURE:
        cov_feature(part, scratch, w, omega2, omega3, d1, d2, t, t0, tn);
        break;
    case TR_MRN_MODE_CLASS:
        cov_class(part, scratch, w, omega1, omega3, d1, d2, t, t0, tn);
        break;
    default:
        cov_task(part, scratch, w, omega1, omega2, d1, d2, t, t0, tn);
        break;
    }
    tr_free(scratch);
    return TR_OK;
}

double tr_mrn_cov_scale(tr_mrn_mode mode, int d1, int d2, int t) {
    switch (mode) {
    case TR_MRN_MODE_FEATURE:
        return 1.0 / ((double)d2 * t);
    case TR_MRN_MODE_CLASS:
        return 1.0 / ((double)d1 * t);
    case TR_MRN_MODE_TASK:
        return 1.0 / ((double)d1 * d2);
    default:
        return NAN;
    }
}

void tr_mrn_cov_finalize(double *sigma, double scale, double eps, int n) {
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++) {
            double m = 0.5 * scale * (sigma[(size_t)i * n + j] + sigma[(size_t)j * n + i]);
            sigma[(size_t)i * n + j] = m;
            sigma[(size_t)j * n + i] = m;
        }
        sigma[(size_t)i * n + i] = scale * sigma[(size_t)i * n + i] + eps;
    }
}

static double trace_of(const double *a, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[(size_t)i * n + i];
    return s;
}

static void scale_matrix(double *a, double c, int n) {
    size_t nn = (size_t)n * n;
    for (size_t k = 0; k < nn; k++)
        a[k] *= c;
}

tr_status tr_mrn_cov_normalize(double *sigma1, double *sigma2, double *sigma3, double *factor3,
                               int d1, int d2, int t) {
    TR_CALL(check_sizes(d1, d2, t, 0, 0));
    double a = 1.0, b = 1.0;
    if (sigma1) {
        double tr1 = trace_of(sigma1, d1);
        TR_CHECK(isfinite(tr1) && tr1 > 0.0, TR_ERR_NUMERIC,
                 "MRN: feature covariance has trace %g, cannot normalise", tr1);
        a = d1 / tr1;
    }
    if (sigma2) {
        double tr2 = trace_of(sigma2, d2);
        TR_CHECK(isfinite(tr2) && tr2 > 0.0, TR_ERR_NUMERIC,
                 "MRN: class covariance has trace %g, cannot normalise", tr2);
        b = d2 / tr2;
    }
    if (sigma1)
        scale_matrix(sigma1, a, d1);
    if (sigma2)
        scale_matrix(sigma2, b, d2);
    scale_matrix(sigma3, 1.0 / (a * b), t);
    if (factor3)
        *factor3 = 1.0 / (a * b);
    return TR_OK;
}

/* ---- proximal step ------------------------------------------------------------- */

tr_status tr_mrn_prox_rotate(double *x, const double *w, const double *u1, const double *u2, int d1,
                             int d2, int n) {
    TR_CHECK(n >= 0, TR_ERR_INTERNAL, "MRN prox: negative task count %d", n);
    if (n == 0)
        return TR_OK;
    TR_CALL(check_sizes(d1, d2, n, 0, 0));
    size_t nn = (size_t)d1 * d2;
    double *tmp; // (d1, d2) U1ᵀ W_k
    TR_ALLOC(tmp, nn, "MRN prox scratch");
    for (int k = 0; k < n; k++) {
        const double *src = w + k * nn;
        if (u1) {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d1, d2, d1, 1.0, u1, d1, src, d2,
                        0.0, tmp, d2);
            src = tmp;
        } else if (u2 && src == x + k * nn) {
            memcpy(tmp, src, nn * sizeof(double)); /* x aliases w: dgemm must not */
            src = tmp;
        }
        if (u2)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d2, 1.0, src, d2, u2, d2,
                        0.0, x + k * nn, d2);
        else if (src != x + k * nn)
            memmove(x + k * nn, src, nn * sizeof(double));
    }
    tr_free(tmp);
    return TR_OK;
}

/* wt (t, d1, d2) = U3ᵀ X divided by 1 + step·p3_i·p1_a·p2_b; w_out (tn, d1, d2)
 * = U1 (U3 wt)_i U2ᵀ for the owned i. tmp (d1, d2). */
static tr_status prox_finish_run(double *w_out, double *wt, double *tmp, const double *x,
                                 const double *u1, const double *u2, const double *u3,
                                 const double *p1, const double *p2, const double *p3, double step,
                                 int d1, int d2, int t, int t0, int tn) {
    int nn = d1 * d2;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, nn, t, 1.0, u3, t, x, nn, 0.0, wt, nn);
    for (int i = 0; i < t; i++)
        for (int a = 0; a < d1; a++) {
            double s = step * p3[i] * p1[a];
            double *row = wt + (size_t)i * nn + (size_t)a * d2;
            for (int b = 0; b < d2; b++) {
                double den = 1.0 + s * p2[b];
                TR_CHECK(den > 0.0 && isfinite(den), TR_ERR_NUMERIC,
                         "MRN prox: 1 + eta*lambda*p3*p1*p2 = %g is not positive", den);
                row[b] /= den;
            }
        }
    /* x is not read below, so w_out may overlap it. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tn, nn, t, 1.0, u3 + (size_t)t0 * t, t,
                wt, nn, 0.0, w_out, nn);
    for (int i = 0; i < tn && (u1 || u2); i++) {
        double *wi = w_out + (size_t)i * nn;
        if (u1 && u2) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d1, 1.0, u1, d1, wi, d2,
                        0.0, tmp, d2);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d1, d2, d2, 1.0, tmp, d2, u2, d2,
                        0.0, wi, d2);
        } else if (u1) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d1, d2, d1, 1.0, u1, d1, wi, d2,
                        0.0, tmp, d2);
            memcpy(wi, tmp, (size_t)nn * sizeof(double));
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d1, d2, d2, 1.0, wi, d2, u2, d2,
                        0.0, tmp, d2);
            memcpy(wi, tmp, (size_t)nn * sizeof(double));
        }
    }
    return TR_OK;
}

tr_status tr_mrn_prox_finish(double *w_out, const double *x, const double *u1, const double *u2,
                             const double *u3, const double *p1, const double *p2, const double *p3,
                             double eta, double lambda, int d1, int d2, int t, int t0, int tn) {
    TR_CALL(check_sizes(d1, d2, t, t0, tn));
    if (tn == 0)
        return TR_OK;
    size_t nn = (size_t)d1 * d2;
    double *scratch; // wt (t, d1, d2), tmp (d1, d2)
    TR_ALLOC(scratch, ((size_t)t + 1) * nn, "MRN prox scratch");
    tr_status st = prox_finish_run(w_out, scratch, scratch + (size_t)t * nn, x, u1, u2, u3, p1, p2,
                                   p3, eta * lambda, d1, d2, t, t0, tn);
    tr_free(scratch);
    TR_CALL(st);
    return TR_OK;
}

tr_status tr_mrn_prox(double *w_out, const double *w, const double *u1, const double *u2,
                      const double *u3, const double *p1, const double *p2, const double *p3,
                      double eta, double lambda, int d1, int d2, int t, int t0, int tn) {
    TR_CALL(check_sizes(d1, d2, t, t0, tn));
    if (tn == 0)
        return TR_OK;
    double *x; // (t, d1, d2) all tasks rotated by U1, U2
    TR_ALLOC(x, (size_t)t * d1 * d2, "MRN prox rotated weights");
    tr_status st = tr_mrn_prox_rotate(x, w, u1, u2, d1, d2, t);
    if (st == TR_OK)
        st = tr_mrn_prox_finish(w_out, x, u1, u2, u3, p1, p2, p3, eta, lambda, d1, d2, t, t0, tn);
    tr_free(x);
    TR_CALL(st);
    return TR_OK;
}

/* ---- correlations ---------------------------------------------------------------- */

tr_status tr_mrn_corr(double *corr, const double *sigma, int n) {
    TR_CHECK(n > 0, TR_ERR_INTERNAL, "MRN: correlation size must be positive (n=%d)", n);
    double *inv_sd; // (n) 1/sqrt(Σ[i,i]), copied first because corr may equal sigma
    TR_ALLOC(inv_sd, (size_t)n, "MRN correlation scratch");
    for (int i = 0; i < n; i++) {
        double v = sigma[(size_t)i * n + i];
        if (!(isfinite(v) && v > 0.0)) {
            tr_free(inv_sd);
            TR_RAISE(TR_ERR_NUMERIC, "MRN: variance %d is %g, correlation undefined", i, v);
        }
        inv_sd[i] = 1.0 / sqrt(v);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            corr[(size_t)i * n + j] =
                i == j ? 1.0 : sigma[(size_t)i * n + j] * inv_sd[i] * inv_sd[j];
    tr_free(inv_sd);
    return TR_OK;
}

void tr_mrn_offdiag_pearson(double *r, const double *a, const double *b, int n) {
    double ma = 0.0, mb = 0.0;
    long m = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++, m++) {
            ma += a[(size_t)i * n + j];
            mb += b[(size_t)i * n + j];
        }
    *r = NAN;
    if (m < 2)
        return;
    ma /= m;
    mb /= m;
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double da = a[(size_t)i * n + j] - ma, db = b[(size_t)i * n + j] - mb;
            sab += da * db;
            saa += da * da;
            sbb += db * db;
        }
    if (saa > 0.0 && sbb > 0.0)
        *r = sab / sqrt(saa * sbb);
}
