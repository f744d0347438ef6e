/*
 * Unit tests of the MRN math (taskrel/mrn_math.h) against EXPLICIT formulas built
 * here: the Kronecker product K = Ω3⊗Ω2⊗Ω1 as a dense D×D matrix (D = D1·D2·T),
 * the second moment vec(W) vec(W)ᵀ with partial traces for the covariances, and a
 * dense Cholesky solve for the proximal step. None of them reuses the library's
 * way of computing (no task-axis gemm, no eigenvectors except to build inputs).
 *
 * vec convention (the header's): vec(W)[a + D1*(b + D2*t)] = W_t[a,b] with W_t
 * row-major at w + t*D1*D2, so K[(a,b,t),(a',b',t')] = Ω3[t,t'] Ω2[b,b'] Ω1[a,a'].
 * test_vec_convention_by_hand pins it on numbers worked out by hand.
 *
 * Shapes: D1, D2, T <= 5, including D1 != D2, D1 = 1, D2 = 1 and T = 1.
 * The options that bound the prior (mrn.mean = shared, mrn.task_scale = fixed,
 * mrn.shrink) are checked the same way: centred covariances against the partial
 * traces of the centred weights' second moment, the centred prox against a dense
 * solve with C Ω3 C (C = I - 11ᵀ/T).
 *
 * Tolerance: 1e-10 relative (Frobenius norm of the difference over that of the
 * reference) everywhere. The inputs are well conditioned (SPD matrices
 * A Aᵀ/n + 0.5 I, prox with η λ ‖K‖ = O(10)), so double rounding gives
 * 1e-15..1e-13; a wrong index, transpose or missing term gives O(0.1..1). The
 * finite-difference check also meets 1e-10 because the prior is quadratic: the
 * central difference has no truncation error for any step, so a large step
 * (h = 0.5) is taken and only rounding (~u |f| / h ~ 1e-14) is left.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lapacke.h>

#include "taskrel/mrn_math.h"

#define TOL 1e-10

typedef struct {
    int d1, d2, t;
} shape;

static const shape k_shapes[] = {{1, 1, 1}, {2, 3, 1}, {3, 2, 4}, {4, 4, 3},
                                 {5, 2, 5}, {2, 5, 2}, {1, 4, 3}, {3, 1, 5}};
#define N_SHAPES ((int)(sizeof(k_shapes) / sizeof(k_shapes[0])))

/* ---- helpers ------------------------------------------------------------------ */

static double *dbuf(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    assert_non_null(p);
    return p;
}

// x (n) ~ N(0, 1) from test stream `stream`
static void fill_normal(double *x, size_t n, uint64_t stream) {
    tr_rng r;
    tr_rng_init(&r, 777, TR_RNG_TEST, stream);
    for (size_t i = 0; i < n; i++)
        x[i] = tr_rng_normal(&r);
}

// s (n, n) = A Aᵀ / n + 0.5 I, exactly symmetric; A normal from `stream`
static double *rand_spd(int n, uint64_t stream) {
    double *a = dbuf((size_t)n * n), *s = dbuf((size_t)n * n);
    fill_normal(a, (size_t)n * n, stream);
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double v = 0.0;
            for (int k = 0; k < n; k++)
                v += a[i * n + k] * a[j * n + k];
            v = v / n + (i == j ? 0.5 : 0.0);
            s[i * n + j] = s[j * n + i] = v;
        }
    free(a);
    return s;
}

// q (n, n) orthogonal: eigenvectors of a random symmetric matrix
static double *rand_orthogonal(int n, uint64_t stream) {
    double *q = rand_spd(n, stream), *ev = dbuf((size_t)n);
    assert_int_equal(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, q, n, ev), 0);
    free(ev);
    return q;
}

// sigma (n, n) = Q diag(s) Qᵀ, exactly symmetric
static double *with_spectrum(const double *q, const double *s, int n) {
    double *sig = dbuf((size_t)n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double v = 0.0;
            for (int k = 0; k < n; k++)
                v += q[i * n + k] * s[k] * q[j * n + k];
            sig[i * n + j] = sig[j * n + i] = v;
        }
    return sig;
}

static double rel_err(const double *x, const double *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (x[i] - ref[i]) * (x[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return sqrt(num) / fmax(sqrt(den), 1e-300);
}

static double rel_err1(double x, double ref) {
    return fabs(x - ref) / fmax(fabs(ref), 1e-300);
}

static size_t vi(const shape *s, int a, int b, int t) {
    return (size_t)a + (size_t)s->d1 * ((size_t)b + (size_t)s->d2 * t);
}

static size_t dim(const shape *s) {
    return (size_t)s->d1 * s->d2 * s->t;
}

// v (D) = vec(W)
static void vec_of(double *v, const double *w, const shape *s) {
    for (int t = 0; t < s->t; t++)
        for (int a = 0; a < s->d1; a++)
            for (int b = 0; b < s->d2; b++)
                v[vi(s, a, b, t)] = w[((size_t)t * s->d1 + a) * s->d2 + b];
}

// w (T, D1, D2) from v (D)
static void unvec(double *w, const double *v, const shape *s) {
    for (int t = 0; t < s->t; t++)
        for (int a = 0; a < s->d1; a++)
            for (int b = 0; b < s->d2; b++)
                w[((size_t)t * s->d1 + a) * s->d2 + b] = v[vi(s, a, b, t)];
}

// K (D, D) = m3 ⊗ m2 ⊗ m1, straight from the definition
static double *kron3(const double *m1, const double *m2, const double *m3, const shape *s) {
    size_t n = dim(s);
    double *k = dbuf(n * n);
    for (int t = 0; t < s->t; t++)
        for (int b = 0; b < s->d2; b++)
            for (int a = 0; a < s->d1; a++)
                for (int t2 = 0; t2 < s->t; t2++)
                    for (int b2 = 0; b2 < s->d2; b2++)
                        for (int a2 = 0; a2 < s->d1; a2++)
                            k[vi(s, a, b, t) * n + vi(s, a2, b2, t2)] =
                                m3[t * s->t + t2] * m2[b * s->d2 + b2] * m1[a * s->d1 + a2];
    return k;
}

// y (n) = K (n, n) x (n)
static void matvec(double *y, const double *k, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = 0.0;
        for (size_t j = 0; j < n; j++)
            v += k[i * n + j] * x[j];
        y[i] = v;
    }
}

typedef struct {
    shape s;
    double *w, *o1, *o2, *o3; // (T, D1, D2), (D1, D1), (D2, D2), (T, T)
} problem;

static problem make_problem(int si, uint64_t stream) {
    problem p;
    p.s = k_shapes[si];
    p.w = dbuf(dim(&p.s));
    fill_normal(p.w, dim(&p.s), stream);
    p.o1 = rand_spd(p.s.d1, stream + 1);
    p.o2 = rand_spd(p.s.d2, stream + 2);
    p.o3 = rand_spd(p.s.t, stream + 3);
    return p;
}

static void free_problem(problem *p) {
    free(p->w);
    free(p->o1);
    free(p->o2);
    free(p->o3);
}

/* ---- vec convention, by hand ----------------------------------------------------- */

static void test_vec_convention_by_hand(void **state) {
    (void)state;
    /* D1 = D2 = 2, T = 1, W = [[1,2],[3,4]], Ω1 = diag(1,2) (rows), Ω2 = diag(1,3)
     * (columns): value = ½ Σ W[a,b]² Ω1[a,a] Ω2[b,b] = ½(1 + 4·3 + 9·2 + 16·6) = 63.5
     * (with Ω1 and Ω2 swapped it would be 66); G = Ω1 W Ω2 = [[1,6],[6,24]]. */
    shape s = {2, 2, 1};
    double w[4] = {1, 2, 3, 4}, o1[4] = {1, 0, 0, 2}, o2[4] = {1, 0, 0, 3}, o3[1] = {1};
    double g_hand[4] = {1, 6, 6, 24}, v[4], kv[4], g[4], val;
    double *k = kron3(o1, o2, o3, &s);
    vec_of(v, w, &s);
    matvec(kv, k, v, 4);
    double explicit_val = 0.0;
    for (int i = 0; i < 4; i++)
        explicit_val += 0.5 * v[i] * kv[i];
    assert_true(rel_err1(explicit_val, 63.5) < TOL);
    unvec(g, kv, &s);
    assert_true(rel_err(g, g_hand, 4) < TOL);
    assert_int_equal(tr_mrn_prior_value(&val, w, o1, o2, o3, 1.0, 2, 2, 1, 0, 1), TR_OK);
    assert_true(rel_err1(val, 63.5) < TOL);
    assert_int_equal(tr_mrn_prior_grad(g, &val, w, o1, o2, o3, 1.0, 2, 2, 1, 0, 1), TR_OK);
    assert_true(rel_err(g, g_hand, 4) < TOL);
    free(k);

    /* Task mode: D1 = D2 = 1, T = 2, W = (1, 2), Ω3 = [[2,1],[1,2]]:
     * value = ½ (2 + 2·2 + 4·2) = 7, G = Ω3 w = (4, 5). */
    shape s2 = {1, 1, 2};
    double w2[2] = {1, 2}, one[1] = {1}, o32[4] = {2, 1, 1, 2}, g2_hand[2] = {4, 5}, g2[2];
    double *k2 = kron3(one, one, o32, &s2), kv2[2];
    matvec(kv2, k2, w2, 2);
    assert_true(rel_err(kv2, g2_hand, 2) < TOL);
    assert_int_equal(tr_mrn_prior_grad(g2, &val, w2, one, one, o32, 1.0, 1, 1, 2, 0, 2), TR_OK);
    assert_true(rel_err(g2, g2_hand, 2) < TOL);
    assert_true(rel_err1(val, 7.0) < TOL);
    free(k2);
}

/* ---- prior ---------------------------------------------------------------------- */

static void test_prior_value_and_grad(void **state) {
    (void)state;
    const double lambda = 0.7;
    for (int si = 0; si < N_SHAPES; si++) {
        problem p = make_problem(si, 100 + 10 * si);
        const shape *s = &p.s;
        size_t n = dim(s), nn = (size_t)s->d1 * s->d2;
        double *k = kron3(p.o1, p.o2, p.o3, s);
        double *v = dbuf(n), *kv = dbuf(n), *g_ref = dbuf(n), *g = dbuf(n);
        vec_of(v, p.w, s);
        matvec(kv, k, v, n);
        double val_ref = 0.0;
        for (size_t i = 0; i < n; i++) {
            val_ref += 0.5 * lambda * v[i] * kv[i];
            kv[i] *= lambda;
        }
        unvec(g_ref, kv, s);

        double val, val_g;
        assert_int_equal(
            tr_mrn_prior_value(&val, p.w, p.o1, p.o2, p.o3, lambda, s->d1, s->d2, s->t, 0, s->t),
            TR_OK);
        assert_true(rel_err1(val, val_ref) < TOL);
        assert_int_equal(tr_mrn_prior_grad(g, &val_g, p.w, p.o1, p.o2, p.o3, lambda, s->d1, s->d2,
                                           s->t, 0, s->t),
                         TR_OK);
        assert_true(rel_err(g, g_ref, n) < TOL);
        assert_true(rel_err1(val_g, val_ref) < TOL);

        /* Every split [0, c) + [c, T): gradient slices and value parts. */
        for (int c = 0; c <= s->t; c++) {
            double v1, v2, w1, w2;
            assert_int_equal(
                tr_mrn_prior_value(&v1, p.w, p.o1, p.o2, p.o3, lambda, s->d1, s->d2, s->t, 0, c),
                TR_OK);
            assert_int_equal(tr_mrn_prior_value(&v2, p.w, p.o1, p.o2, p.o3, lambda, s->d1, s->d2,
                                                s->t, c, s->t - c),
                             TR_OK);
            assert_true(rel_err1(v1 + v2, val_ref) < TOL);
            memset(g, 0, n * sizeof(double));
            assert_int_equal(
                tr_mrn_prior_grad(g, &w1, p.w, p.o1, p.o2, p.o3, lambda, s->d1, s->d2, s->t, 0, c),
                TR_OK);
            assert_int_equal(tr_mrn_prior_grad(g + c * nn, &w2, p.w, p.o1, p.o2, p.o3, lambda,
                                               s->d1, s->d2, s->t, c, s->t - c),
                             TR_OK);
            assert_true(rel_err(g, g_ref, n) < TOL);
            assert_true(rel_err1(w1, v1) < TOL && rel_err1(w2, v2) < TOL);
        }

        /* Central differences of the value (exact for a quadratic, see top). */
        const double h = 0.5;
        double *g_fd = dbuf(n);
        for (size_t i = 0; i < n; i++) {
            double keep = p.w[i], fp, fm;
            p.w[i] = keep + h;
            assert_int_equal(
                tr_mrn_prior_value(&fp, p.w, p.o1, p.o2, p.o3, lambda, s->d1, s->d2, s->t, 0, s->t),
                TR_OK);
            p.w[i] = keep - h;
            assert_int_equal(
                tr_mrn_prior_value(&fm, p.w, p.o1, p.o2, p.o3, lambda, s->d1, s->d2, s->t, 0, s->t),
                TR_OK);
            p.w[i] = keep;
            g_fd[i] = (fp - fm) / (2 * h);
        }
        assert_true(rel_err(g_fd, g_ref, n) < TOL);
        free(g_fd);
        free(k);
        free(v);
        free(kv);
        free(g_ref);
        free(g);
        free_problem(&p);
    }
}

/* ---- covariance updates ------------------------------------------------------------ */

/* Unscaled update of `mode` from the second moment S = vec(W) vec(W)ᵀ by partial
 * traces against the two other precisions. ref (n_k, n_k). */
static void cov_explicit(double *ref, tr_mrn_mode mode, const problem *p) {
    const shape *s = &p->s;
    size_t n = dim(s);
    double *v = dbuf(n), *sm = dbuf(n * n);
    vec_of(v, p->w, s);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            sm[i * n + j] = v[i] * v[j];
    int nk = mode == TR_MRN_MODE_FEATURE ? s->d1 : mode == TR_MRN_MODE_CLASS ? s->d2 : s->t;
    memset(ref, 0, (size_t)nk * nk * sizeof(double));
    for (int t = 0; t < s->t; t++)
        for (int b = 0; b < s->d2; b++)
            for (int a = 0; a < s->d1; a++)
                for (int t2 = 0; t2 < s->t; t2++)
                    for (int b2 = 0; b2 < s->d2; b2++)
                        for (int a2 = 0; a2 < s->d1; a2++) {
                            double m = sm[vi(s, a, b, t) * n + vi(s, a2, b2, t2)];
                            double o1 = p->o1[a * s->d1 + a2], o2 = p->o2[b * s->d2 + b2];
                            double o3 = p->o3[t * s->t + t2];
                            if (mode == TR_MRN_MODE_FEATURE)
                                ref[a * nk + a2] += o3 * o2 * m;
                            else if (mode == TR_MRN_MODE_CLASS)
                                ref[b * nk + b2] += o3 * o1 * m;
                            else
                                ref[t * nk + t2] += o1 * o2 * m;
                        }
    free(v);
    free(sm);
}

static void test_cov_updates(void **state) {
    (void)state;
    const double eps = 1e-3;
    for (int si = 0; si < N_SHAPES; si++) {
        problem p = make_problem(si, 300 + 10 * si);
        const shape *s = &p.s;
        for (int mode = 0; mode < TR_MRN_MODE_COUNT; mode++) {
            int nk = mode == 0 ? s->d1 : mode == 1 ? s->d2 : s->t;
            size_t nk2 = (size_t)nk * nk;
            double *ref = dbuf(nk2), *full = dbuf(nk2), *a = dbuf(nk2), *b = dbuf(nk2);
            cov_explicit(ref, (tr_mrn_mode)mode, &p);
            /* The precision of the mode being updated is not read: pass NULL. */
            const double *o1 = mode == TR_MRN_MODE_FEATURE ? NULL : p.o1;
            const double *o2 = mode == TR_MRN_MODE_CLASS ? NULL : p.o2;
            const double *o3 = mode == TR_MRN_MODE_TASK ? NULL : p.o3;
            assert_int_equal(tr_mrn_cov_part(full, (tr_mrn_mode)mode, p.w, o1, o2, o3, s->d1, s->d2,
                                             s->t, 0, s->t),
                             TR_OK);
            assert_true(rel_err(full, ref, nk2) < TOL);

            for (int c = 0; c <= s->t; c++) {
                assert_int_equal(tr_mrn_cov_part(a, (tr_mrn_mode)mode, p.w, o1, o2, o3, s->d1,
                                                 s->d2, s->t, 0, c),
                                 TR_OK);
                assert_int_equal(tr_mrn_cov_part(b, (tr_mrn_mode)mode, p.w, o1, o2, o3, s->d1,
                                                 s->d2, s->t, c, s->t - c),
                                 TR_OK);
                for (size_t i = 0; i < nk2; i++)
                    a[i] += b[i];
                assert_true(rel_err(a, full, nk2) < TOL);
            }

            /* Finalize: scale · sym + ε I, with the documented ML scale. */
            double scale = tr_mrn_cov_scale((tr_mrn_mode)mode, s->d1, s->d2, s->t);
            double want_scale = mode == 0   ? 1.0 / (s->d2 * s->t)
                                : mode == 1 ? 1.0 / (s->d1 * s->t)
                                            : 1.0 / (s->d1 * s->d2);
            assert_true(rel_err1(scale, want_scale) < 1e-15);
            tr_mrn_cov_finalize(full, scale, eps, nk);
            for (int i = 0; i < nk; i++)
                for (int j = 0; j < nk; j++)
                    ref[i * nk + j] = scale * ref[i * nk + j] + (i == j ? eps : 0.0);
            assert_true(rel_err(full, ref, nk2) < TOL);
            for (int i = 0; i < nk; i++)
                for (int j = 0; j < nk; j++)
                    assert_true(full[i * nk + j] == full[j * nk + i]);
            free(ref);
            free(full);
            free(a);
            free(b);
        }
        free_problem(&p);
    }
}

static void test_cov_normalize(void **state) {
    (void)state;
    for (int si = 0; si < N_SHAPES; si++) {
        shape s = k_shapes[si];
        double *s1 = rand_spd(s.d1, 500 + si), *s2 = rand_spd(s.d2, 520 + si);
        double *s3 = rand_spd(s.t, 540 + si);
        double *k_before = kron3(s1, s2, s3, &s);
        double *o1 = dbuf((size_t)s.d1 * s.d1), *o1n = dbuf((size_t)s.d1 * s.d1);
        double *o3 = dbuf((size_t)s.t * s.t), *o3n = dbuf((size_t)s.t * s.t);
        double *p1 = dbuf(s.d1), ld1, ld1n;
        assert_int_equal(tr_mrn_precision_floor(o1, NULL, p1, &ld1, s1, 0.1, s.d1), TR_OK);
        assert_int_equal(tr_mrn_precision_floor(o3, NULL, NULL, NULL, s3, 0.1, s.t), TR_OK);

        double f3, tr1_old = 0.0, tr2_old = 0.0;
        for (int i = 0; i < s.d1; i++)
            tr1_old += s1[i * s.d1 + i];
        for (int i = 0; i < s.d2; i++)
            tr2_old += s2[i * s.d2 + i];
        double a1 = s.d1 / tr1_old, b2 = s.d2 / tr2_old;
        assert_int_equal(tr_mrn_cov_normalize(s1, s2, s3, &f3, s.d1, s.d2, s.t), TR_OK);
        assert_true(rel_err1(f3, 1.0 / (a1 * b2)) < TOL);
        double tr1 = 0.0, tr2 = 0.0;
        for (int i = 0; i < s.d1; i++)
            tr1 += s1[i * s.d1 + i];
        for (int i = 0; i < s.d2; i++)
            tr2 += s2[i * s.d2 + i];
        assert_true(rel_err1(tr1, s.d1) < TOL && rel_err1(tr2, s.d2) < TOL);
        double *k_after = kron3(s1, s2, s3, &s);
        assert_true(rel_err(k_after, k_before, dim(&s) * dim(&s)) < TOL);

        /* The floor rule is scale equivariant: the precisions of the rescaled
         * factors are the old ones scaled by tr_mrn_precision_scale. */
        double *p1n = dbuf(s.d1);
        assert_int_equal(tr_mrn_precision_floor(o1n, NULL, p1n, &ld1n, s1, 0.1, s.d1), TR_OK);
        assert_int_equal(tr_mrn_precision_floor(o3n, NULL, NULL, NULL, s3, 0.1, s.t), TR_OK);
        tr_mrn_precision_scale(o3, NULL, NULL, a1 * b2, s.t);
        assert_true(rel_err(o3n, o3, (size_t)s.t * s.t) < TOL);
        tr_mrn_precision_scale(o1, p1, &ld1, 1.0 / a1, s.d1);
        assert_true(rel_err(o1n, o1, (size_t)s.d1 * s.d1) < TOL);
        assert_true(rel_err(p1n, p1, s.d1) < TOL);
        assert_true(fabs(ld1n - ld1) < TOL * fmax(1.0, fabs(ld1)));
        free(p1n);

        /* sigma1 = NULL: only Σ2's factor moves. */
        double *k_mid = kron3(s1, s2, s3, &s);
        for (int i = 0; i < s.d2 * s.d2; i++)
            s2[i] *= 3.0;
        for (int i = 0; i < s.t * s.t; i++)
            s3[i] /= 3.0;
        assert_int_equal(tr_mrn_cov_normalize(NULL, s2, s3, &f3, s.d1, s.d2, s.t), TR_OK);
        assert_true(rel_err1(f3, 3.0) < TOL);
        double *k_end = kron3(s1, s2, s3, &s);
        assert_true(rel_err(k_end, k_mid, dim(&s) * dim(&s)) < TOL);

        free(s1), free(s2), free(s3), free(k_before), free(k_after), free(k_mid), free(k_end);
        free(o1), free(o1n), free(o3), free(o3n), free(p1);
    }
}

/* ---- proximal step --------------------------------------------------------------- */

// ref (T, D1, D2): (I + step·Ω3⊗Ω2⊗Ω1) vec(ref) = vec(w), by a dense Cholesky solve
static void prox_dense(double *ref, const double *w, const double *o1, const double *o2,
                       const double *o3, double step, const shape *s) {
    size_t n = dim(s);
    double *k = kron3(o1, o2, o3, s), *x = dbuf(n);
    for (size_t i = 0; i < n * n; i++)
        k[i] *= step;
    for (size_t i = 0; i < n; i++)
        k[i * n + i] += 1.0;
    vec_of(x, w, s);
    assert_int_equal(LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (int)n, 1, k, (int)n, x, 1), 0);
    unvec(ref, x, s);
    free(k);
    free(x);
}

static void test_prox(void **state) {
    (void)state;
    const double eta = 0.3, lambda = 1.7;
    for (int si = 0; si < N_SHAPES; si++) {
        shape s = k_shapes[si];
        size_t n = dim(&s), nn = (size_t)s.d1 * s.d2;
        int dk[3] = {s.d1, s.d2, s.t};
        double *om[3], *u[3], *pk[3];
        for (int m = 0; m < 3; m++) {
            double *sig = rand_spd(dk[m], 700 + 10 * si + m);
            om[m] = dbuf((size_t)dk[m] * dk[m]);
            u[m] = dbuf((size_t)dk[m] * dk[m]);
            pk[m] = dbuf(dk[m]);
            assert_int_equal(tr_mrn_precision_floor(om[m], u[m], pk[m], NULL, sig, 0.5, dk[m]),
                             TR_OK);
            free(sig);
        }
        double *w = dbuf(n);
        fill_normal(w, n, 800 + si);

        double *ref = dbuf(n);
        prox_dense(ref, w, om[0], om[1], om[2], eta * lambda, &s);

        double *out = dbuf(n), *rot = dbuf(n), *wcopy = dbuf(n);
        for (int c = 0; c <= s.t; c++) {
            int rng[2][2] = {{0, c}, {c, s.t - c}};
            memset(out, 0, n * sizeof(double));
            memset(wcopy, 0, n * sizeof(double));
            for (int r = 0; r < 2; r++) {
                int t0 = rng[r][0], tn = rng[r][1];
                assert_int_equal(tr_mrn_prox(out + t0 * nn, w, u[0], u[1], u[2], pk[0], pk[1],
                                             pk[2], eta, lambda, s.d1, s.d2, s.t, t0, tn),
                                 TR_OK);
                /* Distributed path: rotate own tasks (in place), "all-gather", finish. */
                memcpy(rot + t0 * nn, w + t0 * nn, tn * nn * sizeof(double));
                assert_int_equal(
                    tr_mrn_prox_rotate(rot + t0 * nn, rot + t0 * nn, u[0], u[1], s.d1, s.d2, tn),
                    TR_OK);
            }
            assert_true(rel_err(out, ref, n) < TOL);
            for (int r = 0; r < 2; r++) {
                int t0 = rng[r][0], tn = rng[r][1];
                assert_int_equal(tr_mrn_prox_finish(wcopy + t0 * nn, rot, u[0], u[1], u[2], pk[0],
                                                    pk[1], pk[2], eta, lambda, s.d1, s.d2, s.t, t0,
                                                    tn),
                                 TR_OK);
            }
            assert_true(rel_err(wcopy, ref, n) < TOL);
        }
        /* In place on all tasks (w_out aliases w). */
        memcpy(wcopy, w, n * sizeof(double));
        assert_int_equal(tr_mrn_prox(wcopy, wcopy, u[0], u[1], u[2], pk[0], pk[1], pk[2], eta,
                                     lambda, s.d1, s.d2, s.t, 0, s.t),
                         TR_OK);
        assert_true(rel_err(wcopy, ref, n) < TOL);
        /* NULL U1 / U2 mean the identity: equal to passing explicit identities with the
         * same eigenvalues (a mode that is diagonal in its own basis). */
        for (int which = 0; which < 3; which++) {
            double *e1 = dbuf((size_t)s.d1 * s.d1), *e2 = dbuf((size_t)s.d2 * s.d2);
            for (int i = 0; i < s.d1; i++)
                e1[i * s.d1 + i] = 1.0;
            for (int i = 0; i < s.d2; i++)
                e2[i * s.d2 + i] = 1.0;
            const double *a1 = which != 1 ? NULL : u[0], *a2 = which != 0 ? NULL : u[1];
            const double *b1 = a1 ? a1 : e1, *b2 = a2 ? a2 : e2;
            double *o1 = dbuf(n), *o2 = dbuf(n);
            memcpy(o1, w, n * sizeof(double));
            assert_int_equal(tr_mrn_prox(o1, o1, a1, a2, u[2], pk[0], pk[1], pk[2], eta, lambda,
                                         s.d1, s.d2, s.t, 0, s.t),
                             TR_OK);
            assert_int_equal(tr_mrn_prox(o2, w, b1, b2, u[2], pk[0], pk[1], pk[2], eta, lambda,
                                         s.d1, s.d2, s.t, 0, s.t),
                             TR_OK);
            assert_true(rel_err(o1, o2, n) < TOL);
            free(e1), free(e2), free(o1), free(o2);
        }
        for (int m = 0; m < 3; m++)
            free(om[m]), free(u[m]), free(pk[m]);
        free(w), free(ref), free(out), free(rot), free(wcopy);
    }
}

/* ---- precisions -------------------------------------------------------------------- */

static void test_precision_floor_inverse(void **state) {
    (void)state;
    /* All eigenvalues of A Aᵀ/n + I are >= 1 > 0.1 · mean for n <= 5 (mean < 10),
     * so the floor is inactive: Ω Σ = I, ln|Ω| = -ln|Σ| (Cholesky). */
    for (int n = 1; n <= 5; n++) {
        double *sig = rand_spd(n, 900 + n), *om = dbuf(n * n), *u = dbuf(n * n), *p = dbuf(n);
        for (int i = 0; i < n; i++)
            sig[i * n + i] += 0.5;
        double ld;
        assert_int_equal(tr_mrn_precision_floor(om, u, p, &ld, sig, 0.1, n), TR_OK);
        double *prod = dbuf(n * n), *eye = dbuf(n * n), *l = dbuf(n * n), *rec = dbuf(n * n);
        for (int i = 0; i < n; i++) {
            eye[i * n + i] = 1.0;
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++) {
                    prod[i * n + j] += om[i * n + k] * sig[k * n + j];
                    rec[i * n + j] += u[i * n + k] * p[k] * u[j * n + k];
                }
        }
        assert_true(rel_err(prod, eye, n * n) < TOL);
        assert_true(rel_err(rec, om, n * n) < TOL);
        for (int k = 1; k < n; k++)
            assert_true(p[k] <= p[k - 1]); // s ascending, so p descending
        memcpy(l, sig, n * n * sizeof(double));
        assert_int_equal(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, l, n), 0);
        double ld_sigma = 0.0;
        for (int i = 0; i < n; i++)
            ld_sigma += 2.0 * log(l[i * n + i]);
        assert_true(fabs(ld + ld_sigma) < TOL * fmax(1.0, fabs(ld_sigma)));
        free(sig), free(om), free(u), free(p), free(prod), free(eye), free(l), free(rec);
    }
}

static void test_precision_floor_active(void **state) {
    (void)state;
    /* Known spectrum (1e-6, 0.01, 1, 2, 3): mean 1.2020002, floor 0.12020002,
     * p = (1/floor, 1/floor, 1, 1/2, 1/3). */
    const int n = 5;
    double s[5] = {1e-6, 0.01, 1, 2, 3}, fl = 0.1 * (1e-6 + 0.01 + 6.0) / 5.0;
    double want[5] = {1 / fl, 1 / fl, 1.0, 0.5, 1.0 / 3.0};
    double *q = rand_orthogonal(n, 950), *sig = with_spectrum(q, s, n);
    double om[25], u[25], p[5], ld, ev[5];
    assert_int_equal(tr_mrn_precision_floor(om, u, p, &ld, sig, 0.1, n), TR_OK);
    assert_true(rel_err(p, want, n) < TOL);
    double ld_want = 0.0;
    for (int k = 0; k < n; k++)
        ld_want += log(want[k]);
    assert_true(rel_err1(ld, ld_want) < TOL);
    /* Ω itself has the spectrum p (ascending: 1/3, 1/2, 1, 1/fl, 1/fl). */
    assert_int_equal(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', n, om, n, ev), 0);
    double want_asc[5] = {1.0 / 3.0, 0.5, 1.0, 1 / fl, 1 / fl};
    assert_true(rel_err(ev, want_asc, n) < TOL);
    free(q), free(sig);
}

static void test_precision_floor_continuous_monotone(void **state) {
    (void)state;
    /* Spectrum (x, 1, 2, 3, 10 - x): the mean stays 16/5, floor = 0.1 · 3.2 = 0.32.
     * Sweep x through the floor: p_0 = 1 / max(x, floor), continuous and
     * non-increasing; exactly 1/floor below it. */
    const int n = 5;
    const double fl = 0.32;
    double *q = rand_orthogonal(n, 960);
    double prev = INFINITY;
    for (int k = 0; k <= 64; k++) {
        double x = 0.2 + k * (0.25 / 64.0);
        double s[5] = {x, 1, 2, 3, 10 - x}, om[25], p[5];
        double *sig = with_spectrum(q, s, n);
        assert_int_equal(tr_mrn_precision_floor(om, NULL, p, NULL, sig, 0.1, n), TR_OK);
        assert_true(rel_err1(p[0], 1.0 / fmax(x, fl)) < TOL);
        assert_true(p[0] <= prev * (1 + TOL));
        prev = p[0];
        free(sig);
    }
    /* Continuity at the floor: a step of ±δ moves p_0 by at most δ / floor². */
    for (double d = 1e-3; d >= 1e-9; d /= 10) {
        double pl[5], pr[5], om[25];
        double sl[5] = {fl - d, 1, 2, 3, 10 - fl + d}, sr[5] = {fl + d, 1, 2, 3, 10 - fl - d};
        double *gl = with_spectrum(q, sl, n), *gr = with_spectrum(q, sr, n);
        assert_int_equal(tr_mrn_precision_floor(om, NULL, pl, NULL, gl, 0.1, n), TR_OK);
        assert_int_equal(tr_mrn_precision_floor(om, NULL, pr, NULL, gr, 0.1, n), TR_OK);
        /* + 1e-13: eigenvalue rounding (~u ‖Σ‖) divided by floor² */
        assert_true(fabs(pl[0] - pr[0]) <= d / (fl * fl) + 1e-13);
        free(gl), free(gr);
    }
    free(q);
}

static void test_precision_official(void **state) {
    (void)state;
    /* 1/s above 0.1, s at or below (the discontinuity: 0.0999 -> 0.0999, 0.1001 ->
     * 9.99). Not exactly 0.1: rounding of the eigenvalue would pick a side at random. */
    const int n = 5;
    double s[5] = {0.05, 0.0999, 0.1001, 0.5, 4.0};
    double want[5] = {0.05, 0.0999, 1 / 0.1001, 2.0, 0.25};
    double *q = rand_orthogonal(n, 970), *sig = with_spectrum(q, s, n);
    double om[25], p[5], ld, ld_want = 0.0;
    assert_int_equal(tr_mrn_precision_official(om, NULL, p, &ld, sig, n), TR_OK);
    assert_true(rel_err(p, want, n) < TOL);
    for (int k = 0; k < n; k++)
        ld_want += log(want[k]);
    assert_true(rel_err1(ld, ld_want) < TOL);
    free(q), free(sig);

    /* Trace cap: 400 eigenvalues 0.1001 -> 9.99 each, tr = 3996.0 > 3000, so Ω and p
     * are scaled by 3000/3996.0 (tr(Ω) = 3000). The cap needs n > 300: each p <= 10. */
    const int m = 400;
    double *sm = dbuf(m), *pm = dbuf(m), *wm = dbuf(m), *omm = dbuf((size_t)m * m);
    for (int k = 0; k < m; k++)
        sm[k] = 0.1001 + 1e-6 * k;
    double tr_raw = 0.0;
    for (int k = 0; k < m; k++)
        tr_raw += 1.0 / sm[k];
    double *qm = rand_orthogonal(m, 980), *sgm = with_spectrum(qm, sm, m);
    assert_int_equal(tr_mrn_precision_official(omm, NULL, pm, &ld, sgm, m), TR_OK);
    double trace = 0.0;
    ld_want = 0.0;
    for (int k = 0; k < m; k++) {
        trace += omm[(size_t)k * m + k];
        wm[k] = (1.0 / sm[k]) * (3000.0 / tr_raw);
        ld_want += log(wm[k]);
    }
    assert_true(rel_err1(trace, 3000.0) < TOL);
    assert_true(rel_err(pm, wm, m) < TOL);
    assert_true(rel_err1(ld, ld_want) < TOL);
    free(sm), free(pm), free(wm), free(omm), free(qm), free(sgm);
}

static void test_precision_errors(void **state) {
    (void)state;
    double sig[4] = {1, 0, 0, 1}, zero[4] = {0}, om[4];
    assert_int_equal(tr_mrn_precision_floor(om, NULL, NULL, NULL, sig, 0.0, 2), TR_ERR_CONFIG);
    assert_int_equal(tr_mrn_precision_floor(om, NULL, NULL, NULL, zero, 0.1, 2), TR_ERR_NUMERIC);
    sig[1] = NAN;
    assert_int_equal(tr_mrn_precision_floor(om, NULL, NULL, NULL, sig, 0.1, 2), TR_ERR_NUMERIC);
    double g[4], w[4] = {0};
    assert_int_equal(tr_mrn_prior_grad(g, NULL, w, sig, sig, sig, 1.0, 2, 2, 1, 1, 1),
                     TR_ERR_INTERNAL);
    assert_int_equal(tr_mrn_cov_normalize(zero, NULL, sig, NULL, 2, 2, 2), TR_ERR_NUMERIC);
    tr_error_clear();
}

/* ---- correlations -------------------------------------------------------------------- */

static void test_corr_and_pearson(void **state) {
    (void)state;
    double sig[9] = {4, 2, 0, 2, 9, -3, 0, -3, 1}, c[9];
    double want[9] = {1, 1.0 / 3.0, 0, 1.0 / 3.0, 1, -1, 0, -1, 1};
    assert_int_equal(tr_mrn_corr(c, sig, 3), TR_OK);
    assert_true(rel_err(c, want, 9) < TOL);
    assert_int_equal(tr_mrn_corr(sig, sig, 3), TR_OK); // in place
    assert_true(rel_err(sig, want, 9) < TOL);
    double bad[4] = {1, 0, 0, 0};
    assert_int_equal(tr_mrn_corr(c, bad, 2), TR_ERR_NUMERIC);
    tr_error_clear();

    /* Off-diagonal (upper) entries a: (1, 2, 3); b: (2, 4, 6) -> 1; (3, 2, 1) -> -1;
     * (1, 3, 2) -> 0.5 (deviations (-1,0,1)·(-1,1,0) = 1 over sqrt(2·2)).
     * Diagonals and lower triangles are ignored. */
    double a[9] = {9, 1, 2, 1, -5, 3, 2, 3, 0};
    double b1[9] = {0, 2, 4, 2, 0, 6, 4, 6, 0}, b2[9] = {7, 3, 2, 0, 7, 1, 0, 0, 7};
    double b3[9] = {0, 1, 3, 1, 0, 2, 3, 2, 0}, r;
    tr_mrn_offdiag_pearson(&r, a, b1, 3);
    assert_true(rel_err1(r, 1.0) < TOL);
    tr_mrn_offdiag_pearson(&r, a, b2, 3);
    assert_true(rel_err1(r, -1.0) < TOL);
    tr_mrn_offdiag_pearson(&r, a, b3, 3);
    assert_true(rel_err1(r, 0.5) < TOL);
    double flat[9] = {1, 5, 5, 5, 1, 5, 5, 5, 1};
    tr_mrn_offdiag_pearson(&r, a, flat, 3);
    assert_true(isnan(r));
    tr_mrn_offdiag_pearson(&r, a, b1, 2); // one pair
    assert_true(isnan(r));
}

/* ---- options that bound the prior (mrn.mean, mrn.task_scale, mrn.shrink) ---------- */

// d (T, D1, D2) = W - W̄ with W̄ summed by hand; mean (D1, D2)
static void centre_by_hand(double *d, double *mean, const double *w, const shape *s) {
    size_t nn = (size_t)s->d1 * s->d2;
    for (size_t i = 0; i < nn; i++) {
        double m = 0.0;
        for (int t = 0; t < s->t; t++)
            m += w[t * nn + i];
        mean[i] = m / s->t;
        for (int t = 0; t < s->t; t++)
            d[t * nn + i] = w[t * nn + i] - mean[i];
    }
}

// out (T, T) = C m C with C = I - 11ᵀ/T as an explicit matrix
static void centre_matrix_by_hand(double *out, const double *m, int t) {
    double *c = dbuf((size_t)t * t), *cm = dbuf((size_t)t * t);
    for (int i = 0; i < t; i++)
        for (int j = 0; j < t; j++)
            c[i * t + j] = (i == j ? 1.0 : 0.0) - 1.0 / t;
    for (int i = 0; i < t; i++)
        for (int j = 0; j < t; j++) {
            double v = 0.0;
            for (int k = 0; k < t; k++)
                v += c[i * t + k] * m[k * t + j];
            cm[i * t + j] = v;
        }
    for (int i = 0; i < t; i++)
        for (int j = 0; j < t; j++) {
            double v = 0.0;
            for (int k = 0; k < t; k++)
                v += cm[i * t + k] * c[k * t + j];
            out[i * t + j] = v;
        }
    free(c);
    free(cm);
}

/* mrn.mean = shared: the covariances of every mode from the library's centred
 * tensor equal the explicit partial traces of the centred weights' second moment,
 * and Σ3 then has the all-ones vector in its null space. The centred precision
 * C Ω3 C gives the centred penalty's value and gradient from the uncentred W. */
static void test_centred_covariances(void **state) {
    (void)state;
    for (int si = 0; si < N_SHAPES; si++) {
        problem p = make_problem(si, 1100 + 10 * si);
        const shape *s = &p.s;
        size_t n = dim(s), nn = (size_t)s->d1 * s->d2;
        double *d_hand = dbuf(n), *m_hand = dbuf(nn), *d = dbuf(n), *m = dbuf(nn);
        for (size_t i = 0; i < n; i++) /* a shared offset, as identical heads give */
            p.w[i] += 3.0 * sin(0.7 * (double)(i % nn));
        centre_by_hand(d_hand, m_hand, p.w, s);
        tr_mrn_task_mean(m, p.w, s->d1, s->d2, s->t);
        tr_mrn_centre(d, p.w, m, s->d1, s->d2, s->t);
        assert_true(rel_err(m, m_hand, nn) < TOL);
        assert_true(rel_err(d, d_hand, n) < TOL);
        problem pc = p;
        pc.w = d_hand;
        for (int mode = 0; mode < TR_MRN_MODE_COUNT; mode++) {
            int nk = mode == 0 ? s->d1 : mode == 1 ? s->d2 : s->t;
            size_t nk2 = (size_t)nk * nk;
            double *ref = dbuf(nk2), *got = dbuf(nk2), *unc = dbuf(nk2);
            cov_explicit(ref, (tr_mrn_mode)mode, &pc);
            assert_int_equal(tr_mrn_cov_part(got, (tr_mrn_mode)mode, d, p.o1, p.o2, p.o3, s->d1,
                                             s->d2, s->t, 0, s->t),
                             TR_OK);
            assert_true(rel_err(got, ref, nk2) < TOL);
            /* and centring matters: the uncentred estimate is far from it */
            cov_explicit(unc, (tr_mrn_mode)mode, &p);
            if (s->t > 1)
                assert_true(rel_err(unc, ref, nk2) > 0.1);
            if (mode == TR_MRN_MODE_TASK) /* rows of the centred Σ3 sum to 0 */
                for (int i = 0; i < nk; i++) {
                    double r = 0.0, a = 0.0;
                    for (int j = 0; j < nk; j++)
                        r += got[i * nk + j], a += fabs(got[i * nk + j]);
                    assert_true(fabs(r) <= 1e-12 * fmax(a, 1e-300));
                }
            free(ref), free(got), free(unc);
        }
        /* gradient form: C Ω3 C with W = value and gradient of the prior on D */
        double *o3c = dbuf((size_t)s->t * s->t), *o3c_hand = dbuf((size_t)s->t * s->t);
        assert_int_equal(tr_mrn_centre_precision(o3c, p.o3, s->t), TR_OK);
        centre_matrix_by_hand(o3c_hand, p.o3, s->t);
        assert_true(rel_err(o3c, o3c_hand, (size_t)s->t * s->t) < TOL);
        double *k = kron3(p.o1, p.o2, o3c_hand, s), *v = dbuf(n), *kv = dbuf(n), *g_ref = dbuf(n);
        double *g = dbuf(n), val, val_d;
        vec_of(v, p.w, s);
        matvec(kv, k, v, n);
        unvec(g_ref, kv, s);
        assert_int_equal(
            tr_mrn_prior_grad(g, &val, p.w, p.o1, p.o2, o3c, 1.0, s->d1, s->d2, s->t, 0, s->t),
            TR_OK);
        if (s->t > 1)
            assert_true(rel_err(g, g_ref, n) < TOL);
        assert_int_equal(
            tr_mrn_prior_value(&val_d, d, p.o1, p.o2, p.o3, 1.0, s->d1, s->d2, s->t, 0, s->t),
            TR_OK);
        assert_true(fabs(val - val_d) <= TOL * fmax(fabs(val_d), 1e-12));
        free(o3c), free(o3c_hand), free(k), free(v), free(kv), free(g_ref), free(g);
        free(d_hand), free(m_hand), free(d), free(m);
        free_problem(&p);
    }
}

/* mrn.task_scale = fixed: trace T exactly (to rounding), the precision follows. */
static void test_task_scale_fixed(void **state) {
    (void)state;
    for (int t = 1; t <= 6; t++) {
        double *s3 = rand_spd(t, 1200 + t), *o3 = dbuf((size_t)t * t), *o3n = dbuf((size_t)t * t);
        for (int i = 0; i < t * t; i++)
            s3[i] *= 1e-4 * t; /* the scale of shrinking weights */
        assert_int_equal(tr_mrn_precision_floor(o3, NULL, NULL, NULL, s3, 0.1, t), TR_OK);
        double c, tr = 0.0, tr_old = 0.0;
        for (int i = 0; i < t; i++)
            tr_old += s3[i * t + i];
        assert_int_equal(tr_mrn_cov_fix_task_scale(s3, &c, t), TR_OK);
        for (int i = 0; i < t; i++)
            tr += s3[i * t + i];
        assert_true(fabs(tr - t) <= 1e-14 * t);
        assert_true(rel_err1(c, t / tr_old) < TOL);
        assert_int_equal(tr_mrn_precision_floor(o3n, NULL, NULL, NULL, s3, 0.1, t), TR_OK);
        tr_mrn_precision_scale(o3, NULL, NULL, 1.0 / c, t);
        assert_true(rel_err(o3n, o3, (size_t)t * t) < TOL);
        free(s3), free(o3), free(o3n);
    }
    double z[4] = {0, 0, 0, 0};
    assert_int_equal(tr_mrn_cov_fix_task_scale(z, NULL, 2), TR_ERR_NUMERIC);
    tr_error_clear();
}

/* mrn.shrink: the convex combination with tr(Σ)/n I; s = 1 is proportional to I
 * (the identity after the trace normalisation), s = 0 changes nothing. */
static void test_shrink(void **state) {
    (void)state;
    for (int n = 1; n <= 5; n++) {
        double *sig = rand_spd(n, 1300 + n), *ref = dbuf((size_t)n * n), *x = dbuf((size_t)n * n);
        double tr = 0.0;
        for (int i = 0; i < n; i++)
            tr += sig[i * n + i];
        const double ss[3] = {0.0, 0.5, 1.0};
        for (int k = 0; k < 3; k++) {
            memcpy(x, sig, sizeof(double) * n * n);
            assert_int_equal(tr_mrn_cov_shrink(x, ss[k], n), TR_OK);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    ref[i * n + j] = (1 - ss[k]) * sig[i * n + j] + (i == j ? ss[k] * tr / n : 0);
            assert_true(rel_err(x, ref, (size_t)n * n) < TOL);
            if (ss[k] == 1.0) {
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++)
                        assert_true(i == j ? rel_err1(x[i * n + i], tr / n) < 1e-15
                                           : x[i * n + j] == 0.0);
                double one = 1.0, f3;
                assert_int_equal(tr_mrn_cov_normalize(x, NULL, &one, &f3, n, 1, 1), TR_OK);
                for (int i = 0; i < n; i++)
                    assert_true(rel_err1(x[i * n + i], 1.0) < 1e-15);
            }
        }
        assert_int_equal(tr_mrn_cov_shrink(x, 1.5, n), TR_ERR_CONFIG);
        tr_error_clear();
        free(sig), free(ref), free(x);
    }
}

/* The centred proximal step: W̄ + prox(D) equals the exact implicit step of the
 * centred penalty, (I + η λ (CΩ3C)⊗Ω2⊗Ω1)^{-1} vec(W) (dense Cholesky), when Ω3
 * comes from centred weights (1 is then its eigenvector); it keeps Σ_t D_t = 0 and
 * the mean unchanged to rounding, over any split of the tasks. */
static void test_prox_centred(void **state) {
    (void)state;
    const double eta = 0.3, lambda = 1.7, eps = 1e-6;
    for (int si = 0; si < N_SHAPES; si++) {
        shape s = k_shapes[si];
        size_t n = dim(&s), nn = (size_t)s.d1 * s.d2;
        int dk[3] = {s.d1, s.d2, s.t};
        double *om[3], *u[3], *pk[3];
        double *w = dbuf(n), *d = dbuf(n), *mean = dbuf(nn);
        fill_normal(w, n, 1400 + si);
        for (size_t i = 0; i < n; i++)
            w[i] += 2.0 * cos(0.3 * (double)(i % nn)); /* shared component */
        centre_by_hand(d, mean, w, &s);
        for (int m = 0; m < 3; m++) {
            double *sig = rand_spd(dk[m], 1500 + 10 * si + m);
            if (m == 2) { /* Σ3 of the centred weights, as the trainer estimates it */
                assert_int_equal(tr_mrn_cov_part(sig, TR_MRN_MODE_TASK, d, om[0], om[1], NULL, s.d1,
                                                 s.d2, s.t, 0, s.t),
                                 TR_OK);
                tr_mrn_cov_finalize(sig, tr_mrn_cov_scale(TR_MRN_MODE_TASK, s.d1, s.d2, s.t), eps,
                                    s.t);
            }
            om[m] = dbuf((size_t)dk[m] * dk[m]);
            u[m] = dbuf((size_t)dk[m] * dk[m]);
            pk[m] = dbuf(dk[m]);
            assert_int_equal(tr_mrn_precision_floor(om[m], u[m], pk[m], NULL, sig, 0.1, dk[m]),
                             TR_OK);
            free(sig);
        }
        double *o3c = dbuf((size_t)s.t * s.t);
        centre_matrix_by_hand(o3c, om[2], s.t);
        double *ref = dbuf(n);
        prox_dense(ref, w, om[0], om[1], o3c, eta * lambda, &s);
        double *out = dbuf(n);
        for (int c = 0; c <= s.t; c++) {
            memset(out, 0, n * sizeof(double));
            if (c > 0)
                assert_int_equal(tr_mrn_prox_centred(out, w, u[0], u[1], u[2], pk[0], pk[1], pk[2],
                                                     eta, lambda, s.d1, s.d2, s.t, 0, c),
                                 TR_OK);
            assert_int_equal(tr_mrn_prox_centred(out + c * nn, w, u[0], u[1], u[2], pk[0], pk[1],
                                                 pk[2], eta, lambda, s.d1, s.d2, s.t, c, s.t - c),
                             TR_OK);
            assert_true(rel_err(out, ref, n) < TOL);
            /* Σ_t D_t = 0 after the step: the mean is W̄, to rounding */
            double *m2 = dbuf(nn), *d2 = dbuf(n);
            centre_by_hand(d2, m2, out, &s);
            double dn = 0.0, worst = 0.0;
            for (size_t i = 0; i < n; i++)
                dn = fmax(dn, fabs(d2[i]));
            for (size_t i = 0; i < nn; i++)
                worst = fmax(worst, fabs(m2[i] - mean[i]));
            assert_true(worst <= 1e-13 * fmax(dn, 1.0));
            free(m2), free(d2);
        }
        /* tr_mrn_unrotate undoes tr_mrn_prox_rotate */
        double *r1 = dbuf(n);
        assert_int_equal(tr_mrn_prox_rotate(r1, w, u[0], u[1], s.d1, s.d2, s.t), TR_OK);
        assert_int_equal(tr_mrn_unrotate(r1, r1, u[0], u[1], s.d1, s.d2, s.t), TR_OK);
        assert_true(rel_err(r1, w, n) < TOL);
        for (int m = 0; m < 3; m++)
            free(om[m]), free(u[m]), free(pk[m]);
        free(w), free(d), free(mean), free(o3c), free(ref), free(out), free(r1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_convention_by_hand),
        cmocka_unit_test(test_prior_value_and_grad),
        cmocka_unit_test(test_cov_updates),
        cmocka_unit_test(test_cov_normalize),
        cmocka_unit_test(test_prox),
        cmocka_unit_test(test_precision_floor_inverse),
        cmocka_unit_test(test_precision_floor_active),
        cmocka_unit_test(test_precision_floor_continuous_monotone),
        cmocka_unit_test(test_precision_official),
        cmocka_unit_test(test_precision_errors),
        cmocka_unit_test(test_corr_and_pearson),
        cmocka_unit_test(test_centred_covariances),
        cmocka_unit_test(test_task_scale_fixed),
        cmocka_unit_test(test_shrink),
        cmocka_unit_test(test_prox_centred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
