/*
 * MRN covariance updates when Σ1, Σ2 are scaled identities (mrn.shrink = 1, the
 * default, or the feature and class modes not learned; called by
 * tr_mrn_layer_update in mrn.c). With Σ1 = c1 I and Σ2 = c2 I after every
 * update, U1 = U2 = I, Ω1 = ω1 I, Ω2 = ω2 I, and with G[i,j] = <W_i, W_j>_F
 * (T, T) the parts tr_mrn_cov_part would assemble reduce to
 *   tr part1 = ω2 Σ_ij Ω3[i,j] G[i,j],  tr part2 = ω1 Σ_ij Ω3[i,j] G[i,j],
 *   part3 = ω1 ω2 G,  prior value = ½ ω1 ω2 Σ_ij Ω3[i,j] G[i,j],
 * and shrinkage by 1 keeps only the trace of part1, part2. So one all-reduce of
 * G replaces the D1 x D1 and D2 x D2 products, their all-reduces and their
 * eigendecompositions; the numbers are the general path's up to rounding.
 * Not here: the general update (mrn.c), the prox (mrn_prox.c).
 */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "mrn_internal.h"

/* a (n, n) = a[0] I exactly */
static int is_scaled_identity(const double *a, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (a[(size_t)i * n + j] != (i == j ? a[0] : 0.0))
                return 0;
    return 1;
}

/* Ω1, Ω2 are scaled identities now and stay so through the update. A mode the
 * general path updated (a run resumed from a checkpoint written without this
 * path) qualifies when its Ω is exactly a scaled identity; the update then
 * resets its U to I. */
int tr_mrn_iso_applies(const tr_mrn *mrn, const tr_mrn_layer *L) {
    const tr_mrn_opts *o = &mrn->o;
    if (o->dense)
        return 0;
    for (int k = TR_MRN_MODE_FEATURE; k <= TR_MRN_MODE_CLASS; k++) {
        if ((o->modes & (1u << k)) && o->shrink != 1.0)
            return 0;
        if (L->rotated[k] && !is_scaled_identity(L->omega[k], L->n[k]))
            return 0;
    }
    return 1;
}

/* Σ_ij a[i,j] b[i,j] (n, n) */
static double frobenius_dot(const double *a, const double *b, int n) {
    double s = 0.0;
    for (size_t i = 0; i < (size_t)n * n; i++)
        s += a[i] * b[i];
    return s;
}

static void set_scaled_identity(double *a, double c, int n) {
    tr_mrn_set_identity(a, n);
    for (int i = 0; i < n; i++)
        a[(size_t)i * n + i] = c;
}

/* Mode k (feature or class) from the trace of its part: Σ_k = (tr Σ_k / n) I
 * after the scale, ε and shrinkage, its precision by the rule. s: n scratch. */
static tr_status update_iso_mode(tr_mrn *mrn, tr_mrn_layer *L, double *s, double part_trace,
                                 int k) {
    const tr_mrn_opts *o = &mrn->o;
    int n = L->n[k];
    double scale = o->official ? 1.0 : tr_mrn_cov_scale((tr_mrn_mode)k, L->d1, L->d2, mrn->T);
    double c = (scale * part_trace + n * o->eps) / n;
    TR_CHECK(isfinite(c) && c > 0.0, TR_ERR_NUMERIC, "MRN: %s covariance has trace %g",
             k == TR_MRN_MODE_FEATURE ? "feature" : "class", c * n);
    for (int i = 0; i < n; i++)
        s[i] = c;
    TR_CALL(tr_mrn_precision_eigvals(L->p[k], &L->logdet[k], s, o->official, o->eig_floor, n));
    set_scaled_identity(L->sigma[k], c, n);
    set_scaled_identity(L->omega[k], L->p[k][0], n);
    tr_mrn_set_identity(L->u[k], n);
    L->u_f32_stamp = -1.0;
    L->rotated[k] = 0;
    return TR_OK;
}

/* The task mode from part3 = ω1 ω2 G, as update_mode does with the general part. */
static tr_status update_iso_task(tr_mrn *mrn, tr_mrn_layer *L, double *part, const double *gram) {
    const tr_mrn_opts *o = &mrn->o;
    int T = mrn->T, k = TR_MRN_MODE_TASK;
    double c = L->omega[0][0] * L->omega[1][0];
    for (size_t i = 0; i < (size_t)T * T; i++)
        part[i] = c * gram[i];
    double scale = o->official ? 1.0 : tr_mrn_cov_scale(TR_MRN_MODE_TASK, L->d1, L->d2, T);
    tr_mrn_cov_finalize(part, scale, o->eps, T);
    memcpy(L->sigma[k], part, (size_t)T * T * sizeof(double));
    L->u_f32_stamp = -1.0;
    TR_CALL(tr_mrn_precision(mrn, L->omega[k], L->u[k], L->p[k], &L->logdet[k], L->sigma[k], T));
    L->rotated[k] = 1;
    return TR_OK;
}

/* scratch: 2 T² + max(d1, d2) doubles. */
static tr_status update_iso(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, const double *w,
                            double *scratch) {
    int T = mrn->T, nn = L->d1 * L->d2;
    double *gram = scratch, *part = gram + (size_t)T * T, *s = part + (size_t)T * T;
    memset(gram, 0, (size_t)T * T * sizeof(double));
    if (g->r == 0 && mrn->tn > 0) /* the owned rows; replica 0 holds every task once */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mrn->tn, T, nn, 1.0,
                    w + (size_t)mrn->t0 * nn, nn, w, nn, 0.0, gram + (size_t)mrn->t0 * T, T);
    TR_CALL(tr_allreduce_f64(g, g->world, gram, (size_t)T * T, TR_COLL_MRN));
    for (int it = 0; it < mrn->o.flipflop_iters; it++) {
        for (int k = 0; k < TR_MRN_MODE_COUNT; k++) {
            if (!(mrn->o.modes & (1u << k)))
                continue;
            if (k == TR_MRN_MODE_TASK) {
                TR_CALL(update_iso_task(mrn, L, part, gram));
                continue;
            }
            double mixed = frobenius_dot(L->omega[2], gram, T); /* Σ_ij Ω3[i,j] G[i,j] */
            double other = L->omega[k == TR_MRN_MODE_FEATURE ? 1 : 0][0];
            TR_CALL(update_iso_mode(mrn, L, s, other * mixed, k));
        }
        if (!mrn->o.official)
            TR_CALL(tr_mrn_normalize(L, mrn->o.task_fixed));
    }
    L->prior_value = 0.5 * L->omega[0][0] * L->omega[1][0] * frobenius_dot(L->omega[2], gram, T);
    return TR_OK;
}

tr_status tr_mrn_update_iso(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, const double *w) {
    int T = mrn->T, maxd = L->d1 > L->d2 ? L->d1 : L->d2;
    double *scratch;
    TR_ALLOC(scratch, 2 * (size_t)T * T + maxd, "MRN update scratch");
    tr_status st = update_iso(mrn, L, g, w, scratch);
    tr_free(scratch);
    return st;
}
