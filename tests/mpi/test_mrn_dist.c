// mpi-ranks: 1 2 3 4
/*
 * MRN over the rank grid: for every grid P = R x S allows (S <= T), the
 * covariances, precisions and prior values assembled by tr_mrn_layer_update
 * (per-task rows, one all-reduce per covariance), the prior gradient and the
 * proximal step on each rank's own tasks equal a 1-rank run on MPI_COMM_SELF
 * to 1e-10 relative (1e-6 for the float weights of the prox); two flip-flop
 * cycles, all three modes, floor and official numerics. And the ScaLAPACK
 * path (pdsyevd + pdgemm over all ranks) gives the LAPACKE precision of a
 * 512 x 512 covariance to 1e-8. The float32 proximal step (the default,
 * mrn.prox_precision = float) equals the double one at every step of a short
 * run with three covariance updates: from the same weights and state to
 * 2e-6 of the largest weight, and along two separate runs to 1e-5.
 * The options that bound the prior (mrn.mean = shared, mrn.task_scale = fixed,
 * mrn.shrink = 0.5, all at once) meet the same 1e-10 / 1e-6 against the 1-rank
 * run, Σ3 has trace T, and the centred prox (float and double) leaves the task
 * mean of the weights where it was (Σ_t D_t = 0) to float rounding.
 * Where Σ1, Σ2 are scaled identities (the shipped defaults, shrink 1; official
 * numerics) the fast path equals the general one: the update, gradient and prox
 * from the same state as above, and along a run with three updates the
 * weights to 1e-5 of the largest weight (fast, general float, general double),
 * on 5 tasks and on 12 with a rank-2 task structure (the low-rank mixing); and
 * a state the general path wrote takes the fast path at its next update.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mpi_test.h"
#include "taskrel/mrn.h"

#define T 5
#define NL 2
static const int D1[NL] = {6, 4}, D2[NL] = {4, 3};
static const char *const NAMES[NL] = {"fc7", "fc8"};

/* Deterministic weights, identical on every rank: tasks 0-1 and 2-3 related,
 * task 4 anti-correlated with task 0. */
static float weight(int l, int t, int i) {
    int base = t == 1 ? 0 : (t == 3 ? 2 : t);
    double v = sin(1.3 * i + 0.7 * l + 2.1 * base) + 0.3 * cos(0.37 * i * (t + 1));
    return (float)(t == 4 ? -0.8 * sin(1.3 * i + 0.7 * l) + 0.2 * cos(0.5 * i) : v);
}

static void fill(float *w, int l, int t0, int tn) {
    int nn = D1[l] * D2[l];
    for (int k = 0; k < tn; k++)
        for (int i = 0; i < nn; i++)
            w[(size_t)k * nn + i] = weight(l, t0 + k, i);
}

static double rel_diff(const double *a, const double *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs(a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return den > 0 ? num / den : num;
}

/* variants of the options; DEFAULTS: the shipped bounded prior (shrink 1) */
enum { FLOOR, OFFICIAL, BOUNDED, DEFAULTS };

static tr_mrn_opts opts(int variant) {
    int official = variant == OFFICIAL;
    tr_mrn_opts o = {0};
    o.lambda = 0.7;
    o.modes = official ? 1u << TR_MRN_MODE_TASK : 7u;
    o.update_every = 1;
    o.flipflop_iters = 2;
    o.prox = 1;
    o.prox_every = 1;
    o.official = official;
    o.eps = official ? TR_MRN_OFFICIAL_EPS : 1e-6;
    o.eig_floor = 0.1;
    o.scalapack_min_dim = 1 << 20;
    if (variant == BOUNDED || variant == DEFAULTS) {
        o.centred = 1;
        o.task_fixed = 1;
        o.shrink = variant == DEFAULTS ? 1.0 : 0.5;
    }
    return o;
}

typedef struct {
    tr_grid g;
    tr_mrn mrn;
    float *w[NL], *grad[NL];
} run;

/* Two updates, a prior gradient and a prox step on grid (world, S); dense: the
 * general path even where Σ1, Σ2 are scaled identities. */
static void run_on_path(run *r, MPI_Comm world, int S, int variant, int prox_f64, int dense) {
    memset(r, 0, sizeof *r);
    assert_int_equal(tr_grid_init(&r->g, world, T, S, NULL), TR_OK);
    tr_mrn_opts o = opts(variant);
    o.prox_f64 = prox_f64;
    o.dense = dense;
    assert_int_equal(tr_mrn_init(&r->mrn, &o, &r->g, NL, NAMES, D1, D2), TR_OK);
    for (int l = 0; l < NL; l++) {
        size_t n = (size_t)r->g.tn * D1[l] * D2[l];
        r->w[l] = calloc(n, sizeof(float));
        r->grad[l] = calloc(n, sizeof(float));
        fill(r->w[l], l, r->g.t0, r->g.tn);
        for (int rep = 0; rep < 2; rep++) {
            assert_int_equal(tr_mrn_layer_gather(&r->mrn, l, &r->g, r->w[l]), TR_OK);
            assert_int_equal(tr_mrn_layer_update(&r->mrn, l, &r->g), TR_OK);
        }
        assert_int_equal(tr_mrn_layer_prior_grad(&r->mrn, l, r->grad[l]), TR_OK);
        assert_int_equal(tr_mrn_layer_prox(&r->mrn, l, &r->g, r->w[l], 0.05), TR_OK);
    }
}

static void run_on(run *r, MPI_Comm world, int S, int variant, int prox_f64) {
    run_on_path(r, world, S, variant, prox_f64, 0);
}

static void run_free(run *r) {
    for (int l = 0; l < NL; l++) {
        free(r->w[l]);
        free(r->grad[l]);
    }
    tr_mrn_free(&r->mrn);
    tr_grid_free(&r->g);
}

static void compare(const run *ref, const run *r, double *worst) {
    for (int l = 0; l < NL; l++) {
        const tr_mrn_layer *A = &r->mrn.layer[l], *B = &ref->mrn.layer[l];
        for (int k = 0; k < TR_MRN_MODE_COUNT; k++) {
            size_t nn = (size_t)A->n[k] * A->n[k];
            double ds = rel_diff(A->sigma[k], B->sigma[k], nn);
            double dw = rel_diff(A->omega[k], B->omega[k], nn);
            *worst = fmax(*worst, fmax(ds, dw));
            MPI_ASSERT(ds <= 1e-10 && dw <= 1e-10);
            MPI_ASSERT(fabs(A->logdet[k] - B->logdet[k]) <= 1e-10 * fmax(1.0, fabs(B->logdet[k])));
        }
        MPI_ASSERT(fabs(A->prior_value - B->prior_value) <= 1e-10 * fabs(B->prior_value));
        /* own tasks of the gradient (double in the math, float here) and the prox */
        size_t nn = (size_t)D1[l] * D2[l], off = (size_t)r->g.t0 * nn, n = (size_t)r->g.tn * nn;
        double gmax = 0.0, gd = 0.0, wmax = 0.0, wd = 0.0;
        for (size_t i = 0; i < n; i++) {
            gmax = fmax(gmax, fabs(ref->grad[l][off + i]));
            gd = fmax(gd, fabs(r->grad[l][i] - ref->grad[l][off + i]));
            wmax = fmax(wmax, fabs(ref->w[l][off + i]));
            wd = fmax(wd, fabs(r->w[l][i] - ref->w[l][off + i]));
        }
        MPI_ASSERT(gd <= 1e-6 * gmax && wd <= 1e-6 * wmax);
    }
}

/* The bounded options on the 1-rank run: Σ3 has trace T, and the prox kept the
 * task mean of the weights (what it left of Σ_t D_t, relative to max |D|). */
static double check_bounded(const run *ref) {
    double worst = 0.0;
    for (int l = 0; l < NL; l++) {
        const tr_mrn_layer *L = &ref->mrn.layer[l];
        double tr3 = 0.0;
        for (int i = 0; i < T; i++)
            tr3 += L->sigma[2][i * T + i];
        MPI_ASSERT(fabs(tr3 - T) <= 1e-12 * T);
        int nn = D1[l] * D2[l];
        float *w0 = calloc((size_t)T * nn, sizeof(float));
        fill(w0, l, 0, T);
        double dmax = 0.0, drift = 0.0;
        for (int i = 0; i < nn; i++) {
            double m0 = 0.0, m1 = 0.0;
            for (int t = 0; t < T; t++) {
                m0 += w0[t * nn + i];
                m1 += ref->w[l][t * nn + i];
            }
            drift = fmax(drift, fabs(m1 - m0) / T);
            for (int t = 0; t < T; t++)
                dmax = fmax(dmax, fabs(ref->w[l][t * nn + i] - m1 / T));
        }
        worst = fmax(worst, drift / dmax);
        free(w0);
    }
    MPI_ASSERT(worst <= 1e-6);
    return worst;
}

static void check_grids(int variant, int prox_f64) {
    static const char *const names[3] = {"floor", "official",
                                         "mean shared, task_scale fixed, "
                                         "shrink 0.5"};
    int P;
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    run ref;
    run_on(&ref, MPI_COMM_SELF, 1, variant, prox_f64);
    /* the prior must have done something, or the comparison is vacuous */
    MPI_ASSERT(ref.mrn.layer[0].rotated[TR_MRN_MODE_TASK]);
    double worst = 0.0, drift = variant == BOUNDED ? check_bounded(&ref) : 0.0;
    for (int S = 1; S <= P && S <= T; S++) {
        if (P % S)
            continue;
        run r;
        run_on(&r, MPI_COMM_WORLD, S, variant, prox_f64);
        compare(&ref, &r, &worst);
        run_free(&r);
    }
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        printf("P=%d %s%s: worst covariance/precision relative difference %.3g%s", P,
               names[variant], prox_f64 ? " (double prox)" : "", worst,
               variant == BOUNDED ? "" : "\n");
    if (rank == 0 && variant == BOUNDED)
        printf("; task mean moved by the prox %.3g of max |D|\n", drift);
    run_free(&ref);
}

static void test_assembly_floor(void **state) {
    (void)state;
    check_grids(FLOOR, 0);
}

static void test_assembly_official(void **state) {
    (void)state;
    check_grids(OFFICIAL, 0);
}

static void test_assembly_bounded(void **state) {
    (void)state;
    check_grids(BOUNDED, 0);
    check_grids(BOUNDED, 1);
}

/* Where Σ1 and Σ2 are scaled identities (the shipped defaults: shrink 1; official
 * numerics: the task mode only) the Gram-matrix update, the T x T mixing prox and
 * the gradient form equal the general path (rotations, D1 x D1 covariances,
 * their eigendecompositions) of a 1-rank run, on every grid, with the same
 * tolerances as the assembly: 1e-10 for the covariances, precisions and prior
 * value, 1e-6 of the largest value for the float gradient and prox. */
static void check_iso_vs_dense(int variant) {
    int P;
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    run ref;
    run_on_path(&ref, MPI_COMM_SELF, 1, variant, 0, 1);
    MPI_ASSERT(ref.mrn.layer[0].rotated[TR_MRN_MODE_TASK]);
    double worst = 0.0;
    for (int S = 1; S <= P && S <= T; S++) {
        if (P % S)
            continue;
        run r;
        run_on_path(&r, MPI_COMM_WORLD, S, variant, 0, 0);
        /* the fast path was taken: U1 = U2 = I */
        MPI_ASSERT(!r.mrn.layer[0].rotated[TR_MRN_MODE_FEATURE] &&
                   !r.mrn.layer[0].rotated[TR_MRN_MODE_CLASS]);
        compare(&ref, &r, &worst);
        run_free(&r);
    }
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        printf("P=%d %s, scaled identities against the general path: worst covariance/precision "
               "relative difference %.3g\n",
               P, variant == OFFICIAL ? "official" : "defaults", worst);
    run_free(&ref);
}

static void test_iso_vs_dense(void **state) {
    (void)state;
    check_iso_vs_dense(DEFAULTS);
    check_iso_vs_dense(OFFICIAL);
}

/* A 512 x 512 covariance with a decaying spectrum (so the floor is active):
 * ScaLAPACK (P > 1) against LAPACKE on every rank. */
static void test_scalapack_precision(void **state) {
    (void)state;
    const int n = 512, r = 96;
    int P;
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    tr_grid g;
    assert_int_equal(tr_grid_init(&g, MPI_COMM_WORLD, T, 1, NULL), TR_OK);
    tr_mrn_opts o = opts(FLOOR);
    o.scalapack_min_dim = 256;
    int d1[1] = {n}, d2[1] = {2};
    const char *names[1] = {"fc7"};
    tr_mrn mrn;
    assert_int_equal(tr_mrn_init(&mrn, &o, &g, 1, names, d1, d2), TR_OK);
    MPI_ASSERT(mrn.use_blacs == (P > 1));
    double *b = malloc(sizeof(double) * n * r), *sigma = malloc(sizeof(double) * n * n);
    double *om_s = malloc(sizeof(double) * n * n), *om_l = malloc(sizeof(double) * n * n);
    double *u = malloc(sizeof(double) * n * n), *p = malloc(sizeof(double) * n);
    for (int i = 0; i < n * r; i++)
        b[i] = sin(0.001 * i * i + 0.3 * i) * exp(-0.02 * (i % r));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < r; k++)
                s += b[i * r + k] * b[j * r + k];
            sigma[i * n + j] = s / r + (i == j ? 1e-3 : 0.0);
        }
    double ld_s = 0.0, ld_l = 0.0;
    assert_int_equal(tr_mrn_precision(&mrn, om_s, u, p, &ld_s, sigma, n), TR_OK);
    MPI_ASSERT(mrn.scalapack_calls == (P > 1 ? 1 : 0));
    assert_int_equal(tr_mrn_precision_floor(om_l, NULL, NULL, &ld_l, sigma, 0.1, n), TR_OK);
    double d = rel_diff(om_s, om_l, (size_t)n * n);
    MPI_ASSERT(d <= 1e-8);
    MPI_ASSERT(fabs(ld_s - ld_l) <= 1e-8 * fabs(ld_l));
    /* U diag(p) Uᵀ of the returned eigenvectors is the precision too */
    double *chk = malloc(sizeof(double) * n * n);
    assert_int_equal(tr_mrn_precision_from_eig(chk, u, p, n), TR_OK);
    MPI_ASSERT(rel_diff(chk, om_l, (size_t)n * n) <= 1e-8);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        printf("P=%d: ScaLAPACK vs LAPACKE precision, relative difference %.3g\n", P, d);
    free(chk);
    free(b);
    free(sigma);
    free(om_s);
    free(om_l);
    free(u);
    free(p);
    tr_mrn_free(&mrn);
    tr_grid_free(&g);
}

/* ---- float32 prox against the double prox ----------------------------------- */

#define PD1 48
#define PD2 24
#define PSTEPS 12

static float pweight(int t, int i, int step) {
    int base = t == 1 ? 0 : (t == 3 ? 2 : t);
    return (float)(sin(0.13 * i + 2.1 * base) + 0.3 * cos(0.037 * i * (t + 1)) +
                   0.05 * sin(0.7 * i + 1.3 * t + 0.9 * step));
}

static void test_prox_float_vs_double(void **state) {
    (void)state;
    int P;
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    int S = P <= T && T % P == 0 ? P : 1;
    const int d1[1] = {PD1}, d2[1] = {PD2};
    const char *const names[1] = {"fc7"};
    tr_grid g;
    assert_int_equal(tr_grid_init(&g, MPI_COMM_WORLD, T, S, NULL), TR_OK);
    tr_mrn mf, md;
    tr_mrn_opts o = opts(FLOOR);
    o.flipflop_iters = 1;
    assert_int_equal(tr_mrn_init(&mf, &o, &g, 1, names, d1, d2), TR_OK);
    o.prox_f64 = 1;
    assert_int_equal(tr_mrn_init(&md, &o, &g, 1, names, d1, d2), TR_OK);
    size_t nn = (size_t)PD1 * PD2, n = (size_t)g.tn * nn;
    float *wf = calloc(n ? n : 1, sizeof(float)), *wd = calloc(n ? n : 1, sizeof(float)),
          *w1 = calloc(n ? n : 1, sizeof(float));
    for (size_t k = 0; k < n; k++)
        wf[k] = wd[k] = pweight(g.t0 + (int)(k / nn), (int)(k % nn), 0);
    double step_worst = 0.0, run_worst = 0.0;
    int updates = 0;
    for (int step = 1; step <= PSTEPS; step++) {
        /* an "optimizer step": the same increment on both runs */
        for (size_t k = 0; k < n; k++) {
            float dlt = 0.02f * (pweight(g.t0 + (int)(k / nn), (int)(k % nn), step) -
                                 pweight(g.t0 + (int)(k / nn), (int)(k % nn), step - 1));
            wf[k] += dlt;
            wd[k] += dlt;
        }
        /* one step from the same weights and state: float path against double */
        memcpy(w1, wf, n * sizeof(float));
        mf.o.prox_f64 = 1;
        assert_int_equal(tr_mrn_layer_prox(&mf, 0, &g, w1, 0.5), TR_OK);
        mf.o.prox_f64 = 0;
        assert_int_equal(tr_mrn_layer_prox(&mf, 0, &g, wf, 0.5), TR_OK);
        assert_int_equal(tr_mrn_layer_prox(&md, 0, &g, wd, 0.5), TR_OK);
        double wmax = 0.0, d1s = 0.0, d2s = 0.0;
        for (size_t k = 0; k < n; k++) {
            wmax = fmax(wmax, fabs(wd[k]));
            d1s = fmax(d1s, fabs(wf[k] - w1[k]));
            d2s = fmax(d2s, fabs(wf[k] - wd[k]));
        }
        double m[3] = {wmax, d1s, d2s};
        MPI_Allreduce(MPI_IN_PLACE, m, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        step_worst = fmax(step_worst, m[1] / m[0]);
        run_worst = fmax(run_worst, m[2] / m[0]);
        MPI_ASSERT(m[1] <= 2e-6 * m[0]);
        MPI_ASSERT(m[2] <= 1e-5 * m[0]);
        if (step % 4 == 0) {
            tr_mrn *both[2] = {&mf, &md};
            float *ws[2] = {wf, wd};
            for (int b = 0; b < 2; b++) {
                assert_int_equal(tr_mrn_layer_gather(both[b], 0, &g, ws[b]), TR_OK);
                assert_int_equal(tr_mrn_layer_update(both[b], 0, &g), TR_OK);
                both[b]->counters[0] += 1.0;
            }
            updates++;
        }
    }
    MPI_ASSERT(updates >= 2 && mf.layer[0].rotated[TR_MRN_MODE_TASK]);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        print_message("float prox vs double: %d covariance updates, one step %.2e, run %.2e "
                      "(of the largest weight)\n",
                      updates, step_worst, run_worst);
    free(wf);
    free(wd);
    free(w1);
    tr_mrn_free(&mf);
    tr_mrn_free(&md);
    tr_grid_free(&g);
}

/* Weights for the runs below: nt == T, pweight; otherwise nt tasks made of a
 * shared pattern and two task patterns with task coefficients, plus a little
 * noise, so that the centred task covariance has rank 2 and the floor gives
 * the other nt - 2 eigenvalues one precision (the low-rank mixing). */
static float dweight(int nt, int t, int i, int step) {
    if (nt == T)
        return pweight(t, i, step);
    double a = sin(0.9 * t + 0.3), b = cos(1.7 * t);
    return (float)(sin(0.13 * i) + 0.5 * a * sin(0.29 * i + 0.1 * step) +
                   0.4 * b * cos(0.07 * i * (1 + 0.05 * step)) +
                   1e-3 * sin(12.9898 * i + 78.233 * t + 3.1 * step));
}

/* The shipped defaults along a run of PSTEPS steps with a covariance update every
 * 4 on nt tasks: the fast path (T x T Gram update, mixing prox), the general
 * float path and the general double path, each from its own weights, stay within
 * 1e-5 of the largest weight of each other; one prox from the same weights and
 * state, fast against general float, within 2e-6; the task covariances and prior
 * values within 1e-4. Returns the fast run's low-rank prox steps after its first
 * update. */
static int defaults_run(int nt) {
    int P;
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    int S = P <= nt ? P : 1; /* task shards, uneven for T = 5 */
    const int d1[1] = {PD1}, d2[1] = {PD2};
    const char *const names[1] = {"fc7"};
    tr_grid g;
    assert_int_equal(tr_grid_init(&g, MPI_COMM_WORLD, nt, S, NULL), TR_OK);
    enum { FAST, DENSE, DENSE64, NRUN };
    tr_mrn m[NRUN];
    float *w[NRUN];
    size_t nn = (size_t)PD1 * PD2, n = (size_t)g.tn * nn;
    for (int v = 0; v < NRUN; v++) {
        tr_mrn_opts o = opts(DEFAULTS);
        o.flipflop_iters = 1;
        o.dense = v != FAST;
        o.prox_f64 = v == DENSE64;
        assert_int_equal(tr_mrn_init(&m[v], &o, &g, 1, names, d1, d2), TR_OK);
        w[v] = calloc(n ? n : 1, sizeof(float));
        for (size_t k = 0; k < n; k++)
            w[v][k] = dweight(nt, g.t0 + (int)(k / nn), (int)(k % nn), 0);
    }
    float *w1 = calloc(n ? n : 1, sizeof(float));
    double step_worst = 0.0, run_worst = 0.0, cov_worst = 0.0;
    int updates = 0, low_rank_before = 0;
    for (int step = 1; step <= PSTEPS; step++) {
        for (int v = 0; v < NRUN; v++)
            for (size_t k = 0; k < n; k++) {
                int t = g.t0 + (int)(k / nn), i = (int)(k % nn);
                w[v][k] += 0.02f * (dweight(nt, t, i, step) - dweight(nt, t, i, step - 1));
            }
        memcpy(w1, w[FAST], n * sizeof(float));
        m[FAST].o.dense = 1; /* the general float step from the fast run's state */
        assert_int_equal(tr_mrn_layer_prox(&m[FAST], 0, &g, w1, 0.5), TR_OK);
        m[FAST].o.dense = 0;
        for (int v = 0; v < NRUN; v++)
            assert_int_equal(tr_mrn_layer_prox(&m[v], 0, &g, w[v], 0.5), TR_OK);
        double d[4] = {0.0, 0.0, 0.0, 0.0}; /* max |w|, one step, fast-dense, fast-dense64 */
        for (size_t k = 0; k < n; k++) {
            d[0] = fmax(d[0], fabs(w[DENSE64][k]));
            d[1] = fmax(d[1], fabs(w[FAST][k] - w1[k]));
            d[2] = fmax(d[2], fabs(w[FAST][k] - w[DENSE][k]));
            d[3] = fmax(d[3], fabs(w[FAST][k] - w[DENSE64][k]));
        }
        MPI_Allreduce(MPI_IN_PLACE, d, 4, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        step_worst = fmax(step_worst, d[1] / d[0]);
        run_worst = fmax(run_worst, fmax(d[2], d[3]) / d[0]);
        MPI_ASSERT(d[1] <= 2e-6 * d[0]);
        MPI_ASSERT(d[2] <= 1e-5 * d[0] && d[3] <= 1e-5 * d[0]);
        if (step % 4 == 0) {
            if (updates == 0)
                low_rank_before = m[FAST].low_rank_proxes;
            for (int v = 0; v < NRUN; v++) {
                assert_int_equal(tr_mrn_layer_gather(&m[v], 0, &g, w[v]), TR_OK);
                assert_int_equal(tr_mrn_layer_update(&m[v], 0, &g), TR_OK);
                m[v].counters[0] += 1.0;
            }
            for (int v = DENSE; v < NRUN; v++) {
                const tr_mrn_layer *A = &m[FAST].layer[0], *B = &m[v].layer[0];
                double dc = rel_diff(A->sigma[2], B->sigma[2], (size_t)nt * nt);
                cov_worst = fmax(cov_worst, dc);
                MPI_ASSERT(dc <= 1e-4);
                MPI_ASSERT(fabs(A->prior_value - B->prior_value) <= 1e-4 * B->prior_value);
            }
            updates++;
        }
    }
    MPI_ASSERT(updates >= 2 && m[FAST].layer[0].rotated[TR_MRN_MODE_TASK] &&
               !m[FAST].layer[0].rotated[TR_MRN_MODE_FEATURE] &&
               m[DENSE].layer[0].rotated[TR_MRN_MODE_FEATURE]);
    /* state the general path wrote (a run resumed from an older checkpoint) has
     * exact scaled identities, so its next update takes the fast path */
    m[DENSE].o.dense = 0;
    assert_int_equal(tr_mrn_layer_gather(&m[DENSE], 0, &g, w[DENSE]), TR_OK);
    assert_int_equal(tr_mrn_layer_update(&m[DENSE], 0, &g), TR_OK);
    MPI_ASSERT(!m[DENSE].layer[0].rotated[TR_MRN_MODE_FEATURE] &&
               !m[DENSE].layer[0].rotated[TR_MRN_MODE_CLASS]);
    int low_rank = m[FAST].low_rank_proxes - low_rank_before, rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        print_message("defaults, %d tasks, fast path vs general float/double: %d covariance "
                      "updates, %d low-rank steps after the first; one step %.2e, run %.2e (of "
                      "the largest weight), task covariance %.2e\n",
                      nt, updates, low_rank, step_worst, run_worst, cov_worst);
    for (int v = 0; v < NRUN; v++) {
        free(w[v]);
        tr_mrn_free(&m[v]);
    }
    free(w1);
    tr_grid_free(&g);
    return low_rank;
}

static void test_defaults_run(void **state) {
    (void)state;
    defaults_run(T);
    /* rank-2 task structure: after the first update the step is low rank */
    MPI_ASSERT(defaults_run(12) == PSTEPS - 4);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assembly_floor),       cmocka_unit_test(test_assembly_official),
        cmocka_unit_test(test_assembly_bounded),     cmocka_unit_test(test_scalapack_precision),
        cmocka_unit_test(test_prox_float_vs_double), cmocka_unit_test(test_iso_vs_dense),
        cmocka_unit_test(test_defaults_run),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
