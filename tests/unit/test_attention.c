/*
 * Finite-difference tests of the attention layers (taskrel/attention.h) and
 * of synchronised batch norm, as in test_nn.c: every backward is checked
 * against central differences of the scalar objective L = sum(out .* R) with a
 * fixed random R (so dL/dout = R). Forwards run in float32, L is summed in
 * double; the error is the relative error of the whole gradient vector.
 *
 * Tolerances (same reasoning as test_nn.c, h = 1e-2):
 *  - TOL_PL (1e-3): objectives that are linear or quadratic in the perturbed
 *    variable (embeddings, dot and general scores, re-weighting, alignment,
 *    the mixture): the central difference has no truncation error, only
 *    float32 rounding (~1e-4 relative).
 *  - TOL_SMOOTH (5e-3): tanh, softmax and batch norm are smooth but curved;
 *    truncation h^2/6 |f'''| ~ 2e-5 |f'''| with |f'''| = O(10) for inputs of
 *    size ~1, plus rounding: ~5e-4, so a 10x margin. A wrong index, sign or
 *    missing term gives O(0.1..1).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fd_check.h"
#include "taskrel/attention.h"
#include "taskrel/nn.h"

#define H_FD 1e-2f
#define TOL_PL 1e-3
#define TOL_SMOOTH 5e-3

static float *frand(size_t n, float lo, float hi, uint64_t stream) {
    float *x = fd_buf(n);
    fd_fill_uniform(x, n, lo, hi, 4321, stream);
    return x;
}

/* Every check here also requires a gradient that is not all zero. */
static void check_fd(const char *what, float *x, const float *g, size_t n, fd_objective f,
                     void *ctx, double tol) {
    fd_check(what, x, g, n, f, ctx, H_FD, tol, 1);
}

/* ---- embeddings ------------------------------------------------------------------------- */

typedef struct {
    int n, k, m;
    float *z, *u, *b, *e, *R;
} emb_ctx;

static double emb_obj(void *p) {
    emb_ctx *c = p;
    tr_embed_forward(c->e, c->z, c->u, c->b, c->n, c->k, c->m);
    return fd_dot(c->e, c->R, (size_t)c->n * c->k * c->m);
}

static void test_embed(void **state) {
    (void)state;
    emb_ctx c = {.n = 3, .k = 5, .m = 4};
    size_t nk = (size_t)c.n * c.k, km = (size_t)c.k * c.m;
    c.z = frand(nk, -1, 1, 1);
    c.u = frand(km, -1, 1, 2);
    c.b = frand(km, -1, 1, 3);
    c.e = fd_buf(nk * c.m);
    c.R = frand(nk * c.m, -1, 1, 4);
    float *dz = fd_buf(nk), *du = fd_buf(km), *db = fd_buf(km);
    tr_embed_backward(dz, du, db, c.R, c.z, c.u, c.n, c.k, c.m);
    check_fd("embed dz", c.z, dz, nk, emb_obj, &c, TOL_PL);
    check_fd("embed du", c.u, du, km, emb_obj, &c, TOL_PL);
    check_fd("embed db", c.b, db, km, emb_obj, &c, TOL_PL);
    free(c.z), free(c.u), free(c.b), free(c.e), free(c.R), free(dz), free(du), free(db);
}

/* ---- relation scores ------------------------------------------------------------------------ */

typedef struct {
    tr_attn_dims d;
    int n;
    float *e, *R, *scratch;
    tr_attn_w w;
    double *S;
} sc_ctx;

static double sc_obj(void *p) {
    sc_ctx *c = p;
    size_t kk = (size_t)c->d.k * c->d.k;
    memset(c->S, 0, kk * sizeof(double));
    tr_attn_scores_sum(c->S, c->e, &c->w, &c->d, c->n, c->scratch);
    double L = 0.0;
    for (size_t i = 0; i < kk; i++)
        L += c->S[i] * c->R[i];
    return L;
}

static void alloc_weights(tr_attn_w *w, tr_attn_w *dw, const tr_attn_dims *d, uint64_t stream) {
    size_t m = (size_t)d->m, q = (size_t)d->q;
    memset(w, 0, sizeof(*w));
    memset(dw, 0, sizeof(*dw));
    float b = 1.0f / sqrtf((float)m);
    if (d->kind == TR_ATTN_GENERAL) {
        w->w = frand(m * m, -b, b, stream);
        dw->w = fd_buf(m * m);
    } else if (d->kind == TR_ATTN_CONCAT) {
        w->w = frand(2 * m * q, -b, b, stream);
        w->v = frand(q, -1, 1, stream + 1);
        dw->w = fd_buf(2 * m * q);
        dw->v = fd_buf(q);
    } else if (d->kind == TR_ATTN_MULTIHEAD) {
        w->wq = frand(m * m, -b, b, stream);
        w->wk = frand(m * m, -b, b, stream + 1);
        w->wv = frand(m * m, -b, b, stream + 2);
        w->wo = frand(m, -b, b, stream + 3);
        dw->wq = fd_buf(m * m);
        dw->wk = fd_buf(m * m);
        dw->wv = fd_buf(m * m);
        dw->wo = fd_buf(m);
    }
}

static void free_weights(tr_attn_w *w) {
    free(w->w), free(w->v), free(w->wq), free(w->wk), free(w->wv), free(w->wo);
}

static void check_scores(tr_attn_kind kind, const char *name) {
    sc_ctx c = {.d = {.kind = kind, .k = 5, .m = 4, .q = 3, .heads = 2}, .n = 3};
    size_t kk = (size_t)c.d.k * c.d.k, ne = (size_t)c.n * c.d.k * c.d.m;
    c.e = frand(ne, -1, 1, 10);
    c.R = frand(kk, -1, 1, 11);
    c.S = calloc(kk, sizeof(double));
    c.scratch = fd_buf(tr_attn_scratch_size(&c.d));
    tr_attn_w dw;
    alloc_weights(&c.w, &dw, &c.d, 20);
    float *de = fd_buf(ne);
    tr_attn_scores_backward(de, &dw, c.R, c.e, &c.w, &c.d, c.n, c.scratch);
    double tol = (kind == TR_ATTN_DOT || kind == TR_ATTN_GENERAL) ? TOL_PL : TOL_SMOOTH;
    char what[64];
    snprintf(what, sizeof(what), "%s scores de", name);
    check_fd(what, c.e, de, ne, sc_obj, &c, tol);
    size_t m = (size_t)c.d.m;
    if (kind == TR_ATTN_GENERAL) {
        check_fd("general scores dW", c.w.w, dw.w, m * m, sc_obj, &c, TOL_PL);
    } else if (kind == TR_ATTN_CONCAT) {
        check_fd("concat scores dW", c.w.w, dw.w, 2 * m * (size_t)c.d.q, sc_obj, &c, tol);
        check_fd("concat scores dv", c.w.v, dw.v, (size_t)c.d.q, sc_obj, &c, tol);
    } else if (kind == TR_ATTN_MULTIHEAD) {
        check_fd("multihead scores dWq", c.w.wq, dw.wq, m * m, sc_obj, &c, tol);
        check_fd("multihead scores dWk", c.w.wk, dw.wk, m * m, sc_obj, &c, tol);
    }
    free(c.e), free(c.R), free(c.S), free(c.scratch), free(de);
    free_weights(&c.w);
    free_weights(&dw);
}

static void test_scores_dot(void **s) {
    (void)s;
    check_scores(TR_ATTN_DOT, "dot");
}
static void test_scores_general(void **s) {
    (void)s;
    check_scores(TR_ATTN_GENERAL, "general");
}
static void test_scores_concat(void **s) {
    (void)s;
    check_scores(TR_ATTN_CONCAT, "concat");
}
static void test_scores_multihead(void **s) {
    (void)s;
    check_scores(TR_ATTN_MULTIHEAD, "multihead");
}

/* ---- multihead value path -------------------------------------------------------------------- */

typedef struct {
    tr_attn_dims d;
    int n;
    float *e, *zhat, *R, *scratch;
    tr_attn_w w;
} mha_ctx;

static double mha_obj(void *p) {
    mha_ctx *c = p;
    tr_mha_forward(c->zhat, c->e, &c->w, &c->d, c->n, c->scratch);
    return fd_dot(c->zhat, c->R, (size_t)c->n * c->d.k);
}

static void test_mha_values(void **state) {
    (void)state;
    mha_ctx c = {.d = {.kind = TR_ATTN_MULTIHEAD, .k = 5, .m = 6, .q = 1, .heads = 3}, .n = 2};
    size_t ne = (size_t)c.n * c.d.k * c.d.m, m = (size_t)c.d.m;
    c.e = frand(ne, -1, 1, 30);
    c.zhat = fd_buf((size_t)c.n * c.d.k);
    c.R = frand((size_t)c.n * c.d.k, -1, 1, 31);
    c.scratch = fd_buf(tr_attn_scratch_size(&c.d));
    tr_attn_w dw;
    alloc_weights(&c.w, &dw, &c.d, 40);
    float *de = fd_buf(ne);
    tr_mha_backward(de, &dw, c.R, c.e, &c.w, &c.d, c.n, c.scratch);
    check_fd("multihead values de", c.e, de, ne, mha_obj, &c, TOL_SMOOTH);
    check_fd("multihead values dWq", c.w.wq, dw.wq, m * m, mha_obj, &c, TOL_SMOOTH);
    check_fd("multihead values dWk", c.w.wk, dw.wk, m * m, mha_obj, &c, TOL_SMOOTH);
    check_fd("multihead values dWv", c.w.wv, dw.wv, m * m, mha_obj, &c, TOL_SMOOTH);
    check_fd("multihead values dwo", c.w.wo, dw.wo, m, mha_obj, &c, TOL_SMOOTH);
    free(c.e), free(c.zhat), free(c.R), free(c.scratch), free(de);
    free_weights(&c.w);
    free_weights(&dw);
}

/* ---- sum-pool softmax and row softmax
 * ------------------------------------------------------------ */

typedef struct {
    int k;
    float *S, *a, *R;
} sp_ctx;

static double sp_obj(void *p) {
    sp_ctx *c = p;
    tr_sumpool_softmax_forward(c->a, c->S, c->k);
    return fd_dot(c->a, c->R, (size_t)c->k);
}

static void test_sumpool_softmax(void **state) {
    (void)state;
    sp_ctx c = {.k = 6};
    size_t kk = (size_t)c.k * c.k;
    c.S = frand(kk, -0.5f, 0.5f, 50);
    c.a = fd_buf((size_t)c.k);
    c.R = frand((size_t)c.k, -1, 1, 51);
    float *G = fd_buf(kk);
    sp_obj(&c);
    tr_sumpool_softmax_backward(G, c.R, c.a, c.k);
    check_fd("sum-pool softmax dS", c.S, G, kk, sp_obj, &c, TOL_SMOOTH);
    free(c.S), free(c.a), free(c.R), free(G);
}

typedef struct {
    int n, c;
    float *x, *p, *R;
} sm_ctx;

static double sm_obj(void *pp) {
    sm_ctx *c = pp;
    tr_softmax_forward(c->p, c->x, c->n, c->c);
    return fd_dot(c->p, c->R, (size_t)c->n * c->c);
}

static void test_softmax_rows(void **state) {
    (void)state;
    sm_ctx c = {.n = 3, .c = 5};
    size_t nc = (size_t)c.n * c.c;
    c.x = frand(nc, -2, 2, 60);
    c.p = fd_buf(nc);
    c.R = frand(nc, -1, 1, 61);
    float *dx = fd_buf(nc);
    sm_obj(&c);
    tr_softmax_backward(dx, c.R, c.p, c.n, c.c);
    check_fd("row softmax dx", c.x, dx, nc, sm_obj, &c, TOL_SMOOTH);
    free(c.x), free(c.p), free(c.R), free(dx);
}

/* ---- Hadamard re-weighting
 * --------------------------------------------------------------------------- */

typedef struct {
    int n, k;
    float *z, *a, *out, *R;
} rw_ctx;

static double rw_obj(void *p) {
    rw_ctx *c = p;
    tr_reweight_forward(c->out, c->z, c->a, c->n, c->k);
    return fd_dot(c->out, c->R, (size_t)c->n * c->k);
}

static void test_reweight(void **state) {
    (void)state;
    rw_ctx c = {.n = 4, .k = 5};
    size_t nk = (size_t)c.n * c.k;
    c.z = frand(nk, -1, 1, 70);
    c.a = frand((size_t)c.k, 0, 1, 71);
    c.out = fd_buf(nk);
    c.R = frand(nk, -1, 1, 72);
    float *dz = fd_buf(nk), *da = fd_buf((size_t)c.k);
    double *dad = calloc((size_t)c.k, sizeof(double));
    tr_reweight_backward(dz, dad, c.R, c.z, c.a, c.n, c.k);
    for (int j = 0; j < c.k; j++)
        da[j] = (float)dad[j];
    check_fd("re-weighting dz", c.z, dz, nk, rw_obj, &c, TOL_PL);
    check_fd("re-weighting da", c.a, da, (size_t)c.k, rw_obj, &c, TOL_PL);
    free(c.z), free(c.a), free(c.out), free(c.R), free(dz), free(da), free(dad);
}

/* ---- task-feature alignment
 * -------------------------------------------------------------------------- */

typedef struct {
    int n, T, d;
    float *ht, *hf, *R;
    double *s;
} al_ctx;

static double al_obj(void *p) {
    al_ctx *c = p;
    size_t td = (size_t)c->T * c->d;
    memset(c->s, 0, td * sizeof(double));
    tr_align_scores_sum(c->s, c->ht, c->hf, c->n, c->T, c->d);
    double L = 0.0;
    for (size_t i = 0; i < td; i++)
        L += c->s[i] * c->R[i];
    return L;
}

static void test_align(void **state) {
    (void)state;
    al_ctx c = {.n = 4, .T = 3, .d = 5};
    c.ht = frand((size_t)c.n * c.T, -1, 1, 80);
    c.hf = frand((size_t)c.n * c.d, -1, 1, 81);
    c.R = frand((size_t)c.T * c.d, -1, 1, 82);
    c.s = calloc((size_t)c.T * c.d, sizeof(double));
    float *dht = fd_buf((size_t)c.n * c.T), *dhf = fd_buf((size_t)c.n * c.d);
    tr_align_backward(dht, dhf, c.R, c.ht, c.hf, c.n, c.T, c.d);
    check_fd("alignment dH_T", c.ht, dht, (size_t)c.n * c.T, al_obj, &c, TOL_PL);
    check_fd("alignment dH_F", c.hf, dhf, (size_t)c.n * c.d, al_obj, &c, TOL_PL);
    free(c.ht), free(c.hf), free(c.R), free(c.s), free(dht), free(dhf);
}

/* ---- synchronised batch norm: two "ranks" share the batch statistics
 * ------------------------------------ */

typedef struct {
    int n1, n2, c;
    float *in, *out, *xhat, *rstd1, *rstd2, *gamma, *beta, *R;
} sbn_ctx;

/* Forward of both halves with the summed statistics (what the all-reduce gives). */
static double sbn_obj(void *p) {
    sbn_ctx *c = p;
    double s1[8], q1[8], s2[8], q2[8];
    tr_bn_stats(s1, q1, c->in, c->n1, c->c, 1);
    tr_bn_stats(s2, q2, c->in + (size_t)c->n1 * c->c, c->n2, c->c, 1);
    for (int j = 0; j < c->c; j++)
        s1[j] += s2[j], q1[j] += q2[j];
    double count = c->n1 + c->n2;
    size_t o = (size_t)c->n1 * c->c;
    tr_bn_forward(c->out, c->xhat, c->rstd1, c->in, s1, q1, count, c->gamma, c->beta, c->n1, c->c,
                  1, 1e-5f);
    tr_bn_forward(c->out + o, c->xhat + o, c->rstd2, c->in + o, s1, q1, count, c->gamma, c->beta,
                  c->n2, c->c, 1, 1e-5f);
    return fd_dot(c->out, c->R, (size_t)(c->n1 + c->n2) * c->c);
}

static void test_sync_batchnorm(void **state) {
    (void)state;
    sbn_ctx c = {.n1 = 3, .n2 = 4, .c = 5};
    size_t N = (size_t)(c.n1 + c.n2) * c.c, o = (size_t)c.n1 * c.c;
    c.in = frand(N, -1, 1, 90);
    c.out = fd_buf(N);
    c.xhat = fd_buf(N);
    c.rstd1 = fd_buf((size_t)c.c);
    c.rstd2 = fd_buf((size_t)c.c);
    c.gamma = frand((size_t)c.c, 0.5f, 1.5f, 91);
    c.beta = frand((size_t)c.c, -0.5f, 0.5f, 92);
    c.R = frand(N, -1, 1, 93);
    sbn_obj(&c);
    /* backward: local dsum/dxsum of each half, summed (the all-reduce), then
     * each half's input gradient and its share of dgamma/dbeta */
    double d1[8], x1[8], d2[8], x2[8];
    tr_bn_backward_stats(d1, x1, c.R, c.xhat, c.n1, c.c, 1);
    tr_bn_backward_stats(d2, x2, c.R + o, c.xhat + o, c.n2, c.c, 1);
    for (int j = 0; j < c.c; j++)
        d1[j] += d2[j], x1[j] += x2[j];
    float *din = fd_buf(N), *dg = fd_buf((size_t)c.c), *db = fd_buf((size_t)c.c);
    double count = c.n1 + c.n2;
    tr_bn_backward(din, dg, db, c.R, c.xhat, c.rstd1, d1, x1, count, c.gamma, c.n1, c.c, 1);
    tr_bn_backward(din + o, dg, db, c.R + o, c.xhat + o, c.rstd2, d1, x1, count, c.gamma, c.n2, c.c,
                   1);
    check_fd("synchronised BN din", c.in, din, N, sbn_obj, &c, TOL_SMOOTH);
    check_fd("synchronised BN dgamma", c.gamma, dg, (size_t)c.c, sbn_obj, &c, TOL_PL);
    check_fd("synchronised BN dbeta", c.beta, db, (size_t)c.c, sbn_obj, &c, TOL_PL);
    free(c.in), free(c.out), free(c.xhat), free(c.rstd1), free(c.rstd2), free(c.gamma);
    free(c.beta), free(c.R), free(din), free(dg), free(db);
}

/* ---- MMoE gate: softmax(h W + b) mixing expert outputs
 * ----------------------------------------------- */

typedef struct {
    int n, din, E, de, ld;
    float *h, *w, *b, *ex, *logits, *g, *out, *R;
} moe_ctx;

static double moe_obj(void *p) {
    moe_ctx *c = p;
    tr_linear_forward(c->logits, c->h, c->w, c->b, c->n, c->din, c->E);
    tr_softmax_forward(c->g, c->logits, c->n, c->E);
    tr_moe_combine_forward(c->out, c->g, c->ex, c->n, c->E, c->de, c->ld);
    return fd_dot(c->out, c->R, (size_t)c->n * c->de);
}

static void test_moe_gate(void **state) {
    (void)state;
    moe_ctx c = {.n = 4, .din = 5, .E = 3, .de = 4};
    c.ld = c.E * c.de + 2; /* experts inside a wider feature row */
    c.h = frand((size_t)c.n * c.din, -1, 1, 100);
    c.w = frand((size_t)c.din * c.E, -1, 1, 101);
    c.b = frand((size_t)c.E, -1, 1, 102);
    c.ex = frand((size_t)c.n * c.ld, -1, 1, 103);
    c.logits = fd_buf((size_t)c.n * c.E);
    c.g = fd_buf((size_t)c.n * c.E);
    c.out = fd_buf((size_t)c.n * c.de);
    c.R = frand((size_t)c.n * c.de, -1, 1, 104);
    moe_obj(&c);
    float *dg = fd_buf((size_t)c.n * c.E), *dl = fd_buf((size_t)c.n * c.E);
    float *dex = fd_buf((size_t)c.n * c.ld), *dh = fd_buf((size_t)c.n * c.din);
    float *dw = fd_buf((size_t)c.din * c.E), *dbias = fd_buf((size_t)c.E);
    tr_moe_combine_backward(dg, dex, c.R, c.g, c.ex, c.n, c.E, c.de, c.ld);
    tr_softmax_backward(dl, dg, c.g, c.n, c.E);
    tr_linear_backward(dh, dw, dbias, dl, c.h, c.w, c.n, c.din, c.E);
    check_fd("MMoE gate dexperts", c.ex, dex, (size_t)c.n * c.ld, moe_obj, &c, TOL_PL);
    check_fd("MMoE gate dW", c.w, dw, (size_t)c.din * c.E, moe_obj, &c, TOL_SMOOTH);
    check_fd("MMoE gate db", c.b, dbias, (size_t)c.E, moe_obj, &c, TOL_SMOOTH);
    check_fd("MMoE gate dinput", c.h, dh, (size_t)c.n * c.din, moe_obj, &c, TOL_SMOOTH);
    free(c.h), free(c.w), free(c.b), free(c.ex), free(c.logits), free(c.g), free(c.out);
    free(c.R), free(dg), free(dl), free(dex), free(dh), free(dw), free(dbias);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed),
        cmocka_unit_test(test_scores_dot),
        cmocka_unit_test(test_scores_general),
        cmocka_unit_test(test_scores_concat),
        cmocka_unit_test(test_scores_multihead),
        cmocka_unit_test(test_mha_values),
        cmocka_unit_test(test_sumpool_softmax),
        cmocka_unit_test(test_softmax_rows),
        cmocka_unit_test(test_reweight),
        cmocka_unit_test(test_align),
        cmocka_unit_test(test_sync_batchnorm),
        cmocka_unit_test(test_moe_gate),
    };
    return cmocka_run_group_tests_name("attention", tests, NULL, NULL);
}
