/*
 * Synthetic builders with known task relations (the recipes are in
 * datasets/README.md):
 *   synthetic-tn    multi-input; task weights drawn from a tensor normal with a
 *                   known task covariance Σ3 (stored as /truth/sigma3), to score
 *                   the Σ3 an MRN model learns;
 *   synthetic-mmoe  shared-input regression; the MMoE paper's generator (Ma et
 *                   al., KDD 2018) extended to T tasks with a given correlation
 *                   matrix R of the task weight vectors (stored as /truth/corr).
 * Every random number comes from a tr_rng stream keyed on (seed, purpose,
 * index): a build is a pure function of its options.
 */
#include "taskrel/data.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/dataset_extra.h"

#define SYN_MAX_TASKS 256

/* synthetic-tn */
#define TN_D1 32           /* random features φ(x) = tanh(A x + c) */
#define TN_RHO_BLOCK 0.8   /* within a block of three */
#define TN_RHO_ANTI (-0.8) /* the anti-correlated pair */
#define TN_NOISE 0.1       /* regression target noise (std) */
#define TN_CLASSES 4       /* D2 for --classification */

/* synthetic-mmoe */
#define MMOE_SINES 10
#define MMOE_CORR_LOW 0.1 /* across pairs (within a pair: --corr, default 0.9) */
#define MMOE_NOISE 0.1    /* std, i.e. N(0, 0.01) */

/* RNG stream indices (purpose TR_RNG_DATA). */
#define STREAM_PARAMS 0    /* A, c (tn); u (mmoe) */
#define STREAM_PARAMS2 1   /* W (tn); alpha, beta (mmoe) */
#define STREAM_EXAMPLES 16 /* + task * TR_SPLIT_COUNT + split */

/* Lower Cholesky factor L of the positive semidefinite matrix a (n, n), both
 * row-major. A zero pivot (a task direction that is a combination of earlier
 * ones, e.g. correlation 1) gives a zero column; a negative one is an error. */
static tr_status cholesky(double *L, const double *a, int n) {
    memset(L, 0, sizeof(double) * (size_t)n * (size_t)n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double s = a[i * n + j];
            for (int k = 0; k < j; k++)
                s -= L[i * n + k] * L[j * n + k];
            if (i == j) {
                TR_CHECK(s > -1e-12, TR_ERR_USAGE,
                         "the task correlation matrix is not positive semidefinite");
                L[i * n + i] = s > 1e-12 ? sqrt(s) : 0.0;
            } else if (L[j * n + j] > 0.0) {
                L[i * n + j] = s / L[j * n + j];
            } else {
                TR_CHECK(fabs(s) < 1e-9, TR_ERR_USAGE,
                         "the task correlation matrix is not positive semidefinite");
            }
        }
    return TR_OK;
}

static tr_status check_common(const tr_builder_opts *o, int T, int64_t n_train) {
    TR_CHECK(o->out && o->out[0], TR_ERR_USAGE, "data: missing --out FILE");
    TR_CHECK(T >= 1 && T <= SYN_MAX_TASKS, TR_ERR_USAGE, "data: --tasks %d out of range [1, %d]", T,
             SYN_MAX_TASKS);
    TR_CHECK(o->dim >= 0 && o->dim <= 100000, TR_ERR_USAGE,
             "data: --dim %d out of range [1, 100000]", o->dim);
    TR_CHECK(n_train >= 1 && o->n_val >= 0 && o->n_test >= 0, TR_ERR_USAGE,
             "data: --n-train/--n-val/--n-test must be positive");
    return TR_OK;
}

/* ---- synthetic-tn ------------------------------------------------------------ */

/* The family of task t: the last two tasks form the anti-correlated pair (if
 * T >= 2), the others are grouped in threes. */
static int tn_family(int t, int T) {
    int nblock = T >= 2 ? T - 2 : T;
    return t < nblock ? t / 3 : -1; /* -1 = the pair */
}

static void tn_sigma3(double *S, int T) // (T, T)
{
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            int fi = tn_family(i, T), fj = tn_family(j, T);
            S[i * T + j] = i == j ? 1.0 : fi != fj ? 0.0 : fi < 0 ? TN_RHO_ANTI : TN_RHO_BLOCK;
        }
}

typedef struct {
    int T, d, D2;
    double *a; /* (D1, d) */
    double *c; /* (D1) */
    double *w; /* (T, D1, D2) */
} tn_truth;

static tr_status tn_params(tn_truth *tr, const double *sigma3, uint64_t seed) {
    int T = tr->T, d = tr->d, D2 = tr->D2;
    TR_ALLOC(tr->a, (size_t)TN_D1 * d, "synthetic-tn features");
    TR_ALLOC(tr->c, TN_D1, "synthetic-tn features");
    TR_ALLOC(tr->w, (size_t)T * TN_D1 * D2, "synthetic-tn weights");
    double *chol;
    TR_ALLOC(chol, (size_t)T * T, "Cholesky factor");
    tr_status s = cholesky(chol, sigma3, T);
    if (s == TR_OK) {
        tr_rng r;
        tr_rng_init(&r, seed, TR_RNG_DATA, STREAM_PARAMS);
        for (int i = 0; i < TN_D1 * d; i++)
            tr->a[i] = tr_rng_normal(&r) / sqrt((double)d);
        for (int i = 0; i < TN_D1; i++)
            tr->c[i] = tr_rng_normal(&r);
        /* W ~ TN(0, I, I, Σ3): each fibre W[a, b, :] ~ N(0, Σ3) = L z. */
        tr_rng_init(&r, seed, TR_RNG_DATA, STREAM_PARAMS2);
        double z[SYN_MAX_TASKS];
        for (int ab = 0; ab < TN_D1 * D2; ab++) {
            for (int k = 0; k < T; k++)
                z[k] = tr_rng_normal(&r);
            for (int t = 0; t < T; t++) {
                double v = 0.0;
                for (int k = 0; k <= t; k++)
                    v += chol[t * T + k] * z[k];
                tr->w[(int64_t)t * TN_D1 * D2 + ab] = v;
            }
        }
    }
    tr_free(chol);
    TR_CALL(s);
    return TR_OK;
}

/* n examples of task t: x ~ N(0, I_d), target from φ(x) W_t. */
static void tn_examples(tr_split_data *sd, const tn_truth *tr, int t, tr_split sp, uint64_t seed) {
    int d = tr->d, D2 = tr->D2;
    const double *wt = tr->w + (int64_t)t * TN_D1 * D2; // (D1, D2)
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_DATA, STREAM_EXAMPLES + (uint64_t)t * TR_SPLIT_COUNT + sp);
    for (int64_t i = 0; i < sd->n; i++) {
        float *x = sd->x + i * d;
        for (int k = 0; k < d; k++)
            x[k] = (float)tr_rng_normal(&r);
        double phi[TN_D1];
        for (int a = 0; a < TN_D1; a++) {
            double v = tr->c[a];
            for (int k = 0; k < d; k++)
                v += tr->a[a * d + k] * x[k];
            phi[a] = tanh(v);
        }
        int best = 0;
        double best_v = -INFINITY;
        for (int b = 0; b < D2; b++) {
            double v = 0.0;
            for (int a = 0; a < TN_D1; a++)
                v += phi[a] * wt[a * D2 + b];
            if (sd->yf) {
                sd->yf[i] = (float)(v + TN_NOISE * tr_rng_normal(&r));
            } else {
                double u = tr_rng_uniform(&r);
                v += -log(-log(u > 0.0 ? u : 0x1.0p-53)); /* Gumbel(0, 1): softmax sampling */
                if (v > best_v) {
                    best_v = v;
                    best = b;
                }
            }
        }
        if (sd->y)
            sd->y[i] = best;
    }
}

static tr_status tn_extra(tr_data_file *file, const tr_dataset *ds, const void *ctx) {
    const tn_truth *tr = ctx;
    TR_CALL(tr_data_write_array(file, "/truth/w", 3, (int64_t[]){tr->T, TN_D1, tr->D2}, tr->w));
    TR_CALL(tr_data_write_array(file, "/truth/feat_a", 2, (int64_t[]){TN_D1, tr->d}, tr->a));
    TR_CALL(tr_data_write_array(file, "/truth/feat_c", 1, (int64_t[]){TN_D1}, tr->c));
    for (int t = 0; t < ds->T; t++) {
        char path[96], fam[32];
        snprintf(path, sizeof(path), "/tasks/%s", ds->tasks[t].name);
        int f = tn_family(t, ds->T);
        if (f < 0)
            snprintf(fam, sizeof(fam), "anti");
        else
            snprintf(fam, sizeof(fam), "block%d", f);
        TR_CALL(tr_data_attr_str(file, path, "family", fam));
    }
    return TR_OK;
}

static tr_status tn_make(tr_dataset *ds, tn_truth *tr, const tr_builder_opts *o,
                         const int64_t n[TR_SPLIT_COUNT]) {
    tr_task_kind kind = o->regression ? TR_TASK_REGRESSION : TR_TASK_CLASSIFICATION;
    ds->setting = TR_SETTING_MULTI_INPUT;
    ds->ndim = 1;
    ds->dims[0] = tr->d;
    ds->sample_size = tr->d;
    TR_CALL(tr_data_alloc_tasks(ds, tr->T));
    TR_ALLOC(ds->sigma3, (size_t)tr->T * tr->T, "sigma3");
    tn_sigma3(ds->sigma3, tr->T);
    TR_CALL(tn_params(tr, ds->sigma3, o->seed));
    for (int t = 0; t < tr->T; t++) {
        tr_task_info *ti = &ds->tasks[t];
        snprintf(ti->name, sizeof(ti->name), "task%d", t);
        ti->kind = kind;
        ti->classes = o->regression ? 1 : TN_CLASSES;
        for (int s = 0; s < TR_SPLIT_COUNT; s++) {
            TR_CALL(tr_data_alloc_split(&ti->split[s], n[s], tr->d, kind, 1));
            tn_examples(&ti->split[s], tr, t, (tr_split)s, o->seed);
        }
    }
    return TR_OK;
}

tr_status tr_build_synthetic_tn(const tr_builder_opts *o) {
    int T = o->tasks ? o->tasks : 8;
    int64_t n[TR_SPLIT_COUNT] = {o->n_train ? o->n_train : 200, o->n_val ? o->n_val : 200,
                                 o->n_test ? o->n_test : 1000};
    TR_CALL(check_common(o, T, n[0]));
    tn_truth tr = {.T = T, .d = o->dim ? o->dim : 16, .D2 = o->regression ? 1 : TN_CLASSES};
    char options[512];
    snprintf(options, sizeof(options), "tasks=%d dim=%d %s n_train=%lld n_val=%lld n_test=%lld", T,
             tr.d, o->regression ? "regression" : "classification", (long long)n[0],
             (long long)n[1], (long long)n[2]);
    tr_dataset ds = {0};
    tr_status s = tn_make(&ds, &tr, o, n);
    if (s == TR_OK)
        s = tr_data_save_ex(&ds, o->out, "synthetic-tn", o->seed, options, tn_extra, &tr);
    tr_dataset_free(&ds);
    tr_free(tr.a);
    tr_free(tr.c);
    tr_free(tr.w);
    TR_CALL(s);
    return TR_OK;
}

/* ---- synthetic-mmoe ------------------------------------------------------------ */

typedef struct {
    int T, d;
    double corr_high; /* within a pair: the paper's correlation score p */
    double *corr;     /* (T, T) target correlation R of the weight vectors */
    double *w;        /* (T, d) w_t = Σ_k L[t, k] u_k, unit norm */
    double alpha[MMOE_SINES], beta[MMOE_SINES];
} mmoe_truth;

/* Orthonormal u_0..u_{T-1} (T, d) by Gram-Schmidt (applied twice) of gaussian vectors. */
static tr_status mmoe_basis(double *u, int T, int d, uint64_t seed) {
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_DATA, STREAM_PARAMS);
    for (int i = 0; i < T * d; i++)
        u[i] = tr_rng_normal(&r);
    for (int t = 0; t < T; t++) {
        double *ut = u + (int64_t)t * d;
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < t; k++) {
                const double *uk = u + (int64_t)k * d;
                double dot = 0.0;
                for (int i = 0; i < d; i++)
                    dot += ut[i] * uk[i];
                for (int i = 0; i < d; i++)
                    ut[i] -= dot * uk[i];
            }
        double nrm = 0.0;
        for (int i = 0; i < d; i++)
            nrm += ut[i] * ut[i];
        nrm = sqrt(nrm);
        TR_CHECK(nrm > 1e-8, TR_ERR_INTERNAL, "synthetic-mmoe: degenerate random basis");
        for (int i = 0; i < d; i++)
            ut[i] /= nrm;
    }
    return TR_OK;
}

static tr_status mmoe_params(mmoe_truth *tr, uint64_t seed) {
    int T = tr->T, d = tr->d;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            tr->corr[i * T + j] = i == j ? 1.0 : i / 2 == j / 2 ? tr->corr_high : MMOE_CORR_LOW;
    double *u, *chol;
    TR_ALLOC(u, (size_t)T * d, "synthetic-mmoe basis");
    chol = tr_calloc((size_t)T * T, sizeof(double));
    tr_status s =
        chol ? TR_OK : tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
    if (s == TR_OK && cholesky(chol, tr->corr, T) != TR_OK) {
        tr_error_clear();
        s = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                         "data: synthetic-mmoe --corr %g: with %d tasks the task correlation "
                         "matrix (%g within a pair, %g across pairs) is not positive "
                         "semidefinite; use --tasks 2 or a --corr of at least %g",
                         tr->corr_high, T, tr->corr_high, MMOE_CORR_LOW, 2 * MMOE_CORR_LOW - 1);
    }
    if (s == TR_OK)
        s = mmoe_basis(u, T, d, seed);
    if (s == TR_OK) {
        for (int t = 0; t < T; t++)
            for (int i = 0; i < d; i++) {
                double v = 0.0;
                for (int k = 0; k <= t; k++)
                    v += chol[t * T + k] * u[(int64_t)k * d + i];
                tr->w[(int64_t)t * d + i] = v;
            }
        tr_rng r;
        tr_rng_init(&r, seed, TR_RNG_DATA, STREAM_PARAMS2);
        for (int i = 0; i < MMOE_SINES; i++)
            tr->alpha[i] = tr_rng_normal(&r);
        for (int i = 0; i < MMOE_SINES; i++)
            tr->beta[i] = tr_rng_normal(&r);
    }
    tr_free(u);
    tr_free(chol);
    TR_CALL(s);
    return TR_OK;
}

static void mmoe_examples(tr_split_data *sd, const mmoe_truth *tr, tr_split sp, uint64_t seed) {
    int T = tr->T, d = tr->d;
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_DATA, STREAM_EXAMPLES + (uint64_t)sp);
    for (int64_t i = 0; i < sd->n; i++) {
        float *x = sd->x + i * d;
        for (int k = 0; k < d; k++)
            x[k] = (float)tr_rng_normal(&r);
        for (int t = 0; t < T; t++) {
            const double *wt = tr->w + (int64_t)t * d;
            double z = 0.0;
            for (int k = 0; k < d; k++)
                z += wt[k] * x[k];
            double y = z;
            for (int m = 0; m < MMOE_SINES; m++)
                y += sin(tr->alpha[m] * z + tr->beta[m]);
            sd->yf[i * T + t] = (float)(y + MMOE_NOISE * tr_rng_normal(&r));
        }
    }
}

static tr_status mmoe_extra(tr_data_file *file, const tr_dataset *ds, const void *ctx) {
    const mmoe_truth *tr = ctx;
    TR_CALL(tr_data_write_array(file, "/truth/corr", 2, (int64_t[]){tr->T, tr->T}, tr->corr));
    TR_CALL(tr_data_write_array(file, "/truth/w", 2, (int64_t[]){tr->T, tr->d}, tr->w));
    TR_CALL(tr_data_write_array(file, "/truth/alpha", 1, (int64_t[]){MMOE_SINES}, tr->alpha));
    TR_CALL(tr_data_write_array(file, "/truth/beta", 1, (int64_t[]){MMOE_SINES}, tr->beta));
    for (int t = 0; t < ds->T; t++) {
        char path[96], fam[32];
        snprintf(path, sizeof(path), "/tasks/%s", ds->tasks[t].name);
        snprintf(fam, sizeof(fam), "pair%d", t / 2);
        TR_CALL(tr_data_attr_str(file, path, "family", fam));
    }
    return TR_OK;
}

static tr_status mmoe_make(tr_dataset *ds, mmoe_truth *tr, const tr_builder_opts *o,
                           const int64_t n[TR_SPLIT_COUNT]) {
    TR_ALLOC(tr->corr, (size_t)tr->T * tr->T, "synthetic-mmoe correlation");
    TR_ALLOC(tr->w, (size_t)tr->T * tr->d, "synthetic-mmoe weights");
    TR_CALL(mmoe_params(tr, o->seed));
    ds->setting = TR_SETTING_SHARED_INPUT;
    ds->ndim = 1;
    ds->dims[0] = tr->d;
    ds->sample_size = tr->d;
    TR_CALL(tr_data_alloc_tasks(ds, tr->T));
    for (int t = 0; t < tr->T; t++) {
        snprintf(ds->tasks[t].name, sizeof(ds->tasks[t].name), "task%d", t);
        ds->tasks[t].kind = TR_TASK_REGRESSION;
        ds->tasks[t].classes = 1;
    }
    for (int s = 0; s < TR_SPLIT_COUNT; s++) {
        TR_CALL(tr_data_alloc_split(&ds->shared[s], n[s], tr->d, TR_TASK_REGRESSION, tr->T));
        mmoe_examples(&ds->shared[s], tr, (tr_split)s, o->seed);
    }
    return TR_OK;
}

tr_status tr_build_synthetic_mmoe(const tr_builder_opts *o) {
    int T = o->tasks ? o->tasks : 4;
    int64_t n[TR_SPLIT_COUNT] = {o->n_train ? o->n_train : 10000, o->n_val ? o->n_val : 2000,
                                 o->n_test ? o->n_test : 2000};
    TR_CALL(check_common(o, T, n[0]));
    mmoe_truth tr = {.T = T, .d = o->dim ? o->dim : 100, .corr_high = o->corr};
    TR_CHECK(o->corr >= -1.0 && o->corr <= 1.0, TR_ERR_USAGE,
             "data: synthetic-mmoe --corr %g out of range [-1, 1]", o->corr);
    TR_CHECK(T <= tr.d, TR_ERR_USAGE,
             "data: synthetic-mmoe needs --tasks (%d) <= --dim (%d) for orthogonal task directions",
             T, tr.d);
    char options[512];
    snprintf(options, sizeof(options),
             "tasks=%d dim=%d corr_high=%g corr_low=%g n_train=%lld n_val=%lld n_test=%lld", T,
             tr.d, tr.corr_high, MMOE_CORR_LOW, (long long)n[0], (long long)n[1], (long long)n[2]);
    tr_dataset ds = {0};
    tr_status s = mmoe_make(&ds, &tr, o, n);
    if (s == TR_OK)
        s = tr_data_save_ex(&ds, o->out, "synthetic-mmoe", o->seed, options, mmoe_extra, &tr);
    tr_dataset_free(&ds);
    tr_free(tr.corr);
    tr_free(tr.w);
    TR_CALL(s);
    return TR_OK;
}
