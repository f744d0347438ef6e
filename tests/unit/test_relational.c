/*
 * Whole-model gradient check of MRAN (each attention type, and an ablation),
 * MMoE and cross-stitch networks on one process: the parameter gradients of a training step
 * (shared stage, every task's stage, shared backward) against central finite
 * differences of the summed task losses, for a sample of entries of EVERY
 * parameter tensor. The layers are checked one by one in test_attention.c;
 * this test checks the wiring between them (offsets, strides, which gradient
 * goes where, the batch-level alpha and attention paths).
 *
 * Setting: 6 examples, 5 inputs, 3 tasks (regression, and classification for
 * the label-value path), mlp trunk 6 wide, towers 4 wide, embed 4.
 * Cross-stitch: a column per task with two units (mlp 6-5, with and without
 * batch norm) or three (lenet on 16x16 images, fc6 8 wide), so the gradient
 * flows through every alpha into the units before it. The
 * relation penalty is off (its value is not part of the reported loss; its
 * gradient path is covered by the MPI test's 1-rank agreement).
 *
 * Tolerance: the objective is a float32 network of ~8 layers evaluated with
 * h = 1e-2 (as test_nn.c) and summed over examples (scale 1, not 1/B, so the
 * gradients are O(0.1..1)). Inputs are random, so a perturbation may cross a
 * ReLU kink, where the difference quotient is meaningless: an entry whose
 * quotients with h and h/2 disagree (by more than 1e-3 + 2 %) is skipped, and
 * at most a fifth of the entries may be skipped. On the rest the relative L2
 * error of the sampled gradient vector is bounded by 2e-2: rounding (~1e-4)
 * and curvature (~1e-3) stay far below it, while a wrong or missing gradient
 * term gives O(0.1..1). Each tensor is also checked on its own, against 2e-2
 * of its norm plus the FD noise floor (ABS_FD per entry): the float32 loss
 * (~20) carries ~1e-6 of rounding, i.e. ~2.5e-4 in a quotient with 2h = 4e-3.
 * Some attention tensors have gradients of only 1e-4..1e-3, at that floor.
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
#include "taskrel/method.h"

#define N 6
#define DIN 5
#define NT 3
#define H_FD 2e-3f
#define TOL 2e-2
#define ABS_FD 3e-4 /* FD noise per entry: ~1e-6 rounding of L (~20) / 2h */
#define IMG 16      /* cross-stitch lenet: 1x16x16 images */

static int g_xs_lenet, g_xs_bn; /* cross-stitch variants */

typedef struct {
    tr_model m;
    tr_dataset ds;
    float x[N * IMG * IMG];
    int32_t y[N * NT];
    float yf[N * NT];
    float dfeat[N * 64];
} ctx;

/* The MMoE paper's network: no trunk (the experts and gates read the input) and
 * towers of one hidden layer; for MRAN, towers of one hidden layer. */
static int g_paper;

static void make(ctx *c, tr_model_kind kind, tr_attn_kind att, const char *modules, int classify) {
    memset(c, 0, sizeof(*c));
    tr_config cfg;
    tr_config_default(&cfg);
    cfg.model_kind = kind;
    cfg.trunk = TR_TRUNK_MLP;
    cfg.mlp_hidden[0] = 6;
    cfg.mlp_layers = 1;
    cfg.head_hidden = 4;
    cfg.seed = 11;
    cfg.mran_attention = att;
    cfg.mran_embed_dim = 4;
    cfg.mran_concat_hidden = 3;
    cfg.mran_heads = 2;
    cfg.mran_relation_weight = 0.0f;
    char set[64];
    snprintf(set, sizeof(set), "mran.modules=%s", modules);
    assert_int_equal(tr_config_set(&cfg, set), TR_OK);
    cfg.mmoe_experts = 3;
    cfg.mmoe_expert_hidden = 4;
    if (g_paper) {
        cfg.tower_layers = 1;
        if (kind == TR_MODEL_MMOE)
            cfg.trunk = TR_TRUNK_NONE;
    }
    c->ds.setting = TR_SETTING_SHARED_INPUT;
    c->ds.T = NT;
    c->ds.ndim = 1;
    c->ds.dims[0] = DIN;
    c->ds.sample_size = DIN;
    if (kind == TR_MODEL_XSTITCH) {
        /* seed 11 puts a ReLU exactly at a kink of the batch-norm variant,
         * where both difference quotients agree on a one-sided mean */
        cfg.seed = 12;
        cfg.mlp_hidden[1] = 5;
        cfg.mlp_layers = 2;
        cfg.batchnorm = g_xs_bn;
        cfg.xstitch_alpha_self = 0.7f;
        cfg.head_init = TR_HEAD_INIT_INDEPENDENT; /* columns differ */
        if (g_xs_lenet) {
            cfg.trunk = TR_TRUNK_LENET;
            cfg.lenet_fc = 8;
            c->ds.ndim = 3;
            c->ds.dims[0] = 1;
            c->ds.dims[1] = c->ds.dims[2] = IMG;
            c->ds.sample_size = IMG * IMG;
        }
    }
    c->ds.tasks = calloc(NT, sizeof(tr_task_info));
    assert_non_null(c->ds.tasks);
    for (int t = 0; t < NT; t++) {
        c->ds.tasks[t].kind = classify ? TR_TASK_CLASSIFICATION : TR_TASK_REGRESSION;
        c->ds.tasks[t].classes = classify ? 3 : 1;
    }
    tr_rng r;
    tr_rng_init(&r, 77, TR_RNG_TEST, (uint64_t)kind * 16 + (uint64_t)att);
    for (int i = 0; i < N * c->ds.sample_size; i++)
        c->x[i] = (float)tr_rng_normal(&r);
    for (int i = 0; i < N * NT; i++) {
        c->y[i] = (int32_t)tr_rng_below(&r, 3);
        c->yf[i] = (float)tr_rng_normal(&r);
    }
    tr_error_clear();
    tr_status st = tr_model_init(&c->m, &cfg, &c->ds, 0, NT, N, N * NT, 1);
    if (st != TR_OK)
        print_error("%s\n", tr_error_message());
    assert_int_equal(st, TR_OK);
}

/* One training step; returns the summed task losses, gradients in m.params.grad. */
static double step(ctx *c) {
    tr_model *m = &c->m;
    tr_params_zero_grad(&m->params);
    const tr_method *meth = m->method;
    tr_trunk_batch b = {.x = c->x, .yall = c->y, .yfall = c->yf, .rows = N, .train = 1};
    const float *feat;
    assert_int_equal(meth->shared_forward(m, &feat, &b), TR_OK);
    int fd = m->feat_dim;
    assert_true(fd <= 64);
    static float fcopy[N * 64];
    memcpy(fcopy, feat, (size_t)N * fd * sizeof(float));
    memset(c->dfeat, 0, sizeof(c->dfeat));
    double L = 0.0;
    for (int t = 0; t < NT; t++) {
        int32_t yt[N];
        float yft[N];
        for (int i = 0; i < N; i++)
            yt[i] = c->y[i * NT + t], yft[i] = c->yf[i * NT + t];
        tr_task_stats st;
        memset(&st, 0, sizeof(st));
        assert_int_equal(meth->head_forward(m, &st, t, t * N, N, fcopy, yt, yft, 1), TR_OK);
        assert_int_equal(meth->head_backward(m, t, t * N, N, fcopy, c->dfeat, yt, yft, 1.0f),
                         TR_OK);
        L += st.loss_sum;
    }
    assert_int_equal(meth->shared_backward(m, &b, c->dfeat), TR_OK);
    return L;
}

static double step_objective(void *c) {
    return step(c);
}

static void check_model(tr_model_kind kind, tr_attn_kind att, const char *modules, int classify,
                        const char *name) {
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    make(c, kind, att, modules, classify);
    tr_params *p = &c->m.params;
    step(c);
    float *g = malloc(p->total * sizeof(float));
    assert_non_null(g);
    memcpy(g, p->grad, p->total * sizeof(float));
    double num = 0.0, den = 0.0;
    int checked = 0, tensors = 0, skipped = 0, bad_tensors = 0;
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        size_t stride = t->count > 8 ? t->count / 8 : 1; /* ~8 entries per tensor */
        double tn = 0.0, td = 0.0;
        int nk = 0;
        for (size_t k = 0; k < t->count; k += stride) {
            float *w = p->data + t->offset + k;
            double gfd = fd_central(w, H_FD, step_objective, c);
            double ghalf = fd_central(w, 0.5f * H_FD, step_objective, c);
            if (fabs(gfd - ghalf) > 1e-3 + 0.02 * fabs(gfd)) { /* a ReLU kink within h */
                skipped++;
                continue;
            }
            double ga = g[t->offset + k];
            nk++;
            tn += (gfd - ga) * (gfd - ga);
            td += ga * ga;
            checked++;
        }
        num += tn;
        den += td;
        tensors++;
        /* per tensor: relative error, above the FD noise floor of ABS_FD per entry */
        int bad = sqrt(tn) > TOL * sqrt(td) + ABS_FD * sqrt((double)nk);
        if (bad)
            print_message("    %s: %-28s abs err %.1e, gradient norm %.1e (%d entries)\n", name,
                          t->name, sqrt(tn), sqrt(td), nk);
        bad_tensors += bad;
    }
    double e = sqrt(num) / fmax(sqrt(den), 1e-30);
    print_message(
        "  %-22s %3d entries of %2d tensors (%d skipped at kinks): rel err %.2e (tol %.0e)\n", name,
        checked, tensors, skipped, e, TOL);
    assert_true(den > 0.0);
    assert_true(skipped * 5 <= checked); /* the check must cover most entries */
    assert_int_equal(bad_tensors, 0);
    assert_true(e < TOL);
    free(g);
    tr_model_free(&c->m);
    free(c->ds.tasks);
    free(c);
}

static void test_mran_dot(void **s) {
    (void)s;
    check_model(TR_MODEL_MRAN, TR_ATTN_DOT, "tt,ff,tf", 0, "mran dot");
}
static void test_mran_general(void **s) {
    (void)s;
    check_model(TR_MODEL_MRAN, TR_ATTN_GENERAL, "tt,ff,tf", 0, "mran general");
}
static void test_mran_concat(void **s) {
    (void)s;
    check_model(TR_MODEL_MRAN, TR_ATTN_CONCAT, "tt,ff,tf", 0, "mran concat");
}
static void test_mran_multihead(void **s) {
    (void)s;
    check_model(TR_MODEL_MRAN, TR_ATTN_MULTIHEAD, "tt,ff,tf", 0, "mran multihead");
}
static void test_mran_classification(void **s) {
    (void)s;
    check_model(TR_MODEL_MRAN, TR_ATTN_DOT, "tt,ff,tf", 1, "mran dot classif.");
}
static void test_mran_ablation(void **s) {
    (void)s;
    check_model(TR_MODEL_MRAN, TR_ATTN_GENERAL, "tf", 1, "mran tf only");
}
static void test_mmoe(void **s) {
    (void)s;
    check_model(TR_MODEL_MMOE, TR_ATTN_DOT, "", 0, "mmoe");
}
static void test_mmoe_classification(void **s) {
    (void)s;
    check_model(TR_MODEL_MMOE, TR_ATTN_DOT, "", 1, "mmoe classif.");
}
static void test_mmoe_paper(void **s) {
    (void)s;
    g_paper = 1;
    check_model(TR_MODEL_MMOE, TR_ATTN_DOT, "", 0, "mmoe no trunk, 1-layer");
    check_model(TR_MODEL_MRAN, TR_ATTN_DOT, "tt,ff,tf", 0, "mran 1-layer towers");
    g_paper = 0;
}

static void test_cross_stitch(void **s) {
    (void)s;
    g_xs_lenet = g_xs_bn = 0;
    check_model(TR_MODEL_XSTITCH, TR_ATTN_DOT, "", 0, "cross-stitch mlp");
}
static void test_cross_stitch_bn(void **s) {
    (void)s;
    g_xs_lenet = 0;
    g_xs_bn = 1;
    check_model(TR_MODEL_XSTITCH, TR_ATTN_DOT, "", 1, "cross-stitch mlp bn");
}
static void test_cross_stitch_lenet(void **s) {
    (void)s;
    g_xs_lenet = 1;
    g_xs_bn = 0;
    check_model(TR_MODEL_XSTITCH, TR_ATTN_DOT, "", 1, "cross-stitch lenet");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mran_dot),
        cmocka_unit_test(test_mran_general),
        cmocka_unit_test(test_mran_concat),
        cmocka_unit_test(test_mran_multihead),
        cmocka_unit_test(test_mran_classification),
        cmocka_unit_test(test_mran_ablation),
        cmocka_unit_test(test_mmoe),
        cmocka_unit_test(test_mmoe_classification),
        cmocka_unit_test(test_mmoe_paper),
        cmocka_unit_test(test_cross_stitch),
        cmocka_unit_test(test_cross_stitch_bn),
        cmocka_unit_test(test_cross_stitch_lenet),
    };
    return cmocka_run_group_tests_name("relational", tests, NULL, NULL);
}
