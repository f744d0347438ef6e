/*
 * Unit tests of taskrel/optim.h: SGD (momentum, Nesterov, weight decay only
 * on decay = 1 tensors), AdamW, per-group learning-rate multipliers
 * (0 = frozen) and the learning-rate schedules.
 *
 * Expected values were computed by hand in float64 (a few lines of Python
 * following the PyTorch update rules, quoted next to each constant), so they
 * are independent of the code under test. The updates run in float32 over
 * values of size ~1, so they match to ~1e-7; TOL = 2e-6 allows for a few
 * roundings per step over 3 steps.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "taskrel/optim.h"

#define TOL 2e-6

/* Per-step gradients of the test tensors w (3, decay) and b (2, no decay). */
static const float G_W[3][3] = {{0.1f, 0.2f, -0.3f}, {-0.2f, 0.1f, 0.4f}, {0.3f, -0.1f, 0.05f}};
static const float G_B[3][2] = {{0.5f, -0.5f}, {0.25f, 0.0f}, {-1.0f, 0.75f}};
static const float W0[3] = {1.0f, -2.0f, 0.5f};
static const float B0[2] = {0.3f, -0.7f};

typedef struct {
    tr_params p;
    int w, b, hw; // trunk weight (decay), trunk bias (no decay), head weight (decay)
} fixture;

static void fixture_init(fixture *f) {
    tr_params_init(&f->p);
    int64_t s3 = 3, s2 = 2;
    assert_int_equal(tr_params_add(&f->p, &f->w, "trunk.w", TR_GROUP_TRUNK, 1, 1, &s3, 0, 1, 0, 1),
                     TR_OK);
    assert_int_equal(tr_params_add(&f->p, &f->b, "trunk.b", TR_GROUP_TRUNK, 0, 1, &s2, 0, 1, 0, 1),
                     TR_OK);
    // task tensor: global (4, 2), this "rank" holds tasks [1, 3)
    assert_int_equal(tr_params_add(&f->p, &f->hw, "head.w", TR_GROUP_HEAD, 1, 1, &s2, 1, 4, 1, 2),
                     TR_OK);
    assert_int_equal(tr_params_alloc(&f->p), TR_OK);
    memcpy(tr_params_data(&f->p, f->w), W0, sizeof(W0));
    memcpy(tr_params_data(&f->p, f->b), B0, sizeof(B0));
    float *hw = tr_params_data(&f->p, f->hw);
    for (int i = 0; i < 4; i++)
        hw[i] = 0.1f * (float)(i + 1);
}

static void set_grads(fixture *f, int step) {
    memcpy(tr_params_grad(&f->p, f->w), G_W[step], sizeof(G_W[step]));
    memcpy(tr_params_grad(&f->p, f->b), G_B[step], sizeof(G_B[step]));
    float *g = tr_params_grad(&f->p, f->hw);
    for (int i = 0; i < 4; i++)
        g[i] = 0.3f - 0.2f * (float)i;
}

static void assert_close(const float *got, const double *want, int n) {
    for (int i = 0; i < n; i++) {
        if (fabs(got[i] - want[i]) > TOL)
            print_error("element %d: got %.9g want %.9g\n", i, (double)got[i], want[i]);
        assert_true(fabs(got[i] - want[i]) <= TOL);
    }
}

static tr_opt_config sgd_config(int nesterov) {
    tr_opt_config c = {.kind = TR_OPT_SGD,
                       .momentum = 0.9f,
                       .nesterov = nesterov,
                       .weight_decay = 0.01f,
                       .lr_mult = {1.0f, 1.0f}};
    return c;
}

static void run_sgd(int nesterov, const double *want_w, const double *want_b, const double *want_mw,
                    const double *want_mb) {
    fixture f;
    fixture_init(&f);
    tr_opt_config cfg = sgd_config(nesterov);
    tr_optimizer o;
    assert_int_equal(tr_opt_init(&o, &cfg, &f.p), TR_OK);
    assert_null(o.v);
    for (int t = 0; t < 3; t++) {
        set_grads(&f, t);
        tr_opt_step(&o, &f.p, 0.1f);
    }
    assert_close(tr_params_data(&f.p, f.w), want_w, 3);
    assert_close(tr_params_data(&f.p, f.b), want_b, 2);
    assert_close(o.m + f.p.t[f.w].offset, want_mw, 3);
    assert_close(o.m + f.p.t[f.b].offset, want_mb, 2);
    tr_opt_free(&o);
    tr_params_free(&f.p);
}

/* lr 0.1, momentum 0.9, weight decay 0.01 (w only), 3 steps:
 * g' = g + wd*w (decay tensors); v = mu*v + g'; w -= lr*v (Nesterov: lr*(g' + mu*v)) */
static void test_sgd_momentum(void **state) {
    (void)state;
    const double w[3] = {0.975312789, -2.051903618, 0.4974234295};
    const double b[2] = {0.217, -0.6395}; // no decay on b: plain momentum
    const double mw[3] = {0.22798211, 0.09721618, 0.180970705};
    const double mb[2] = {-0.37, 0.345};
    run_sgd(0, w, b, mw, mb);
}

static void test_sgd_nesterov(void **state) {
    (void)state;
    const double w[3] = {0.9548056125509999, -2.060567879462, 0.4810881163405};
    const double b[2] = {0.2503, -0.67055};
    const double mw[3] = {0.2279751971, 0.0968530498, 0.18108333505};
    const double mb[2] = {-0.37, 0.345};
    run_sgd(1, w, b, mw, mb);
}

static void test_sgd_plain(void **state) {
    (void)state;
    // momentum 0, no decay: one step is w -= lr * g exactly
    fixture f;
    fixture_init(&f);
    tr_opt_config cfg = {.kind = TR_OPT_SGD, .lr_mult = {1.0f, 1.0f}};
    tr_optimizer o;
    assert_int_equal(tr_opt_init(&o, &cfg, &f.p), TR_OK);
    set_grads(&f, 0);
    tr_opt_step(&o, &f.p, 0.5f);
    double want[3];
    for (int i = 0; i < 3; i++)
        want[i] = W0[i] - 0.5 * G_W[0][i];
    assert_close(tr_params_data(&f.p, f.w), want, 3);
    tr_opt_free(&o);
    tr_params_free(&f.p);
}

/* lr 0.01, betas (0.9, 0.999), eps 1e-8, weight decay 0.1 (w only), 3 steps:
 * w *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) */
static void test_adamw(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    tr_opt_config cfg = {.kind = TR_OPT_ADAMW,
                         .weight_decay = 0.1f,
                         .beta1 = 0.9f,
                         .beta2 = 0.999f,
                         .eps = 1e-8f,
                         .lr_mult = {1.0f, 1.0f}};
    tr_optimizer o;
    assert_int_equal(tr_opt_init(&o, &cfg, &f.p), TR_OK);
    assert_non_null(o.v);
    for (int t = 0; t < 3; t++) {
        set_grads(&f, t);
        tr_opt_step(&o, &f.p, 0.01f);
    }
    assert_int_equal(o.t, 3);
    const double w[3] = {0.9872479533577363, -2.017265533615772, 0.5044238612774024};
    const double b[2] = {0.28274177428854114, -0.6857451852841507};
    const double mw[3] = {0.0201, 0.0152, 0.0167};
    const double vw[3] = {0.00013994001, 5.991004e-05, 0.00025216009};
    const double mb[2] = {-0.037, 0.0345};
    const double vb[2] = {0.00131193775, 0.00081200025};
    assert_close(tr_params_data(&f.p, f.w), w, 3);
    assert_close(tr_params_data(&f.p, f.b), b, 2);
    assert_close(o.m + f.p.t[f.w].offset, mw, 3);
    assert_close(o.v + f.p.t[f.w].offset, vw, 3);
    assert_close(o.m + f.p.t[f.b].offset, mb, 2);
    assert_close(o.v + f.p.t[f.b].offset, vb, 2);
    tr_opt_free(&o);
    tr_params_free(&f.p);
}

/* A frozen group (multiplier 0) keeps its parameters and state bit for bit;
 * a multiplier of 0.5 equals a run at half the learning rate. */
static void run_lr_mult(tr_opt_kind kind) {
    fixture a, b;
    fixture_init(&a);
    fixture_init(&b);
    tr_opt_config ca = {.kind = kind,
                        .momentum = 0.9f,
                        .weight_decay = 0.05f,
                        .beta1 = 0.9f,
                        .beta2 = 0.999f,
                        .eps = 1e-8f,
                        .lr_mult = {0.5f, 0.0f}};
    tr_opt_config cb = ca;
    cb.lr_mult[TR_GROUP_TRUNK] = 1.0f;
    cb.lr_mult[TR_GROUP_HEAD] = 1.0f;
    tr_optimizer oa, ob;
    assert_int_equal(tr_opt_init(&oa, &ca, &a.p), TR_OK);
    assert_int_equal(tr_opt_init(&ob, &cb, &b.p), TR_OK);
    float hw0[4];
    memcpy(hw0, tr_params_data(&a.p, a.hw), sizeof(hw0));
    for (int t = 0; t < 3; t++) {
        set_grads(&a, t);
        set_grads(&b, t);
        tr_opt_step(&oa, &a.p, 0.2f);
        tr_opt_step(&ob, &b.p, 0.1f);
    }
    size_t off = a.p.t[a.hw].offset;
    assert_memory_equal(tr_params_data(&a.p, a.hw), hw0, sizeof(hw0));
    float zeros[4] = {0};
    assert_memory_equal(oa.m + off, zeros, sizeof(zeros));
    if (oa.v)
        assert_memory_equal(oa.v + off, zeros, sizeof(zeros));
    // trunk at 0.2 * 0.5 is trunk at 0.1
    for (int id = 0; id < 2; id++) {
        size_t o = a.p.t[id].offset, n = a.p.t[id].count;
        assert_memory_equal(a.p.data + o, b.p.data + o, n * sizeof(float));
        assert_memory_equal(oa.m + o, ob.m + o, n * sizeof(float));
    }
    tr_opt_free(&oa);
    tr_opt_free(&ob);
    tr_params_free(&a.p);
    tr_params_free(&b.p);
}

static void test_lr_mult(void **state) {
    (void)state;
    run_lr_mult(TR_OPT_SGD);
    run_lr_mult(TR_OPT_ADAMW);
}

static void test_opt_config_errors(void **state) {
    (void)state;
    fixture f;
    fixture_init(&f);
    tr_optimizer o;
    tr_opt_config c = sgd_config(1);
    c.momentum = 0.0f; // Nesterov without momentum
    assert_int_equal(tr_opt_init(&o, &c, &f.p), TR_ERR_CONFIG);
    c = sgd_config(0);
    c.lr_mult[TR_GROUP_HEAD] = -1.0f;
    assert_int_equal(tr_opt_init(&o, &c, &f.p), TR_ERR_CONFIG);
    tr_opt_config a = {.kind = TR_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 1.0f, .eps = 1e-8f};
    assert_int_equal(tr_opt_init(&o, &a, &f.p), TR_ERR_CONFIG);
    tr_error_clear();
    tr_optimizer zero;
    memset(&zero, 0, sizeof(zero));
    tr_opt_free(&zero); // no-op
    tr_opt_free(NULL);
    tr_params_free(&f.p);
}

/* ---- schedules ------------------------------------------------------------------ */

static void assert_lr(const tr_schedule *s, int64_t step, double want) {
    float got = tr_schedule_lr(s, step);
    if (fabs(got - want) > 1e-6 * fmax(1.0, fabs(want)))
        print_error("step %lld: got %.9g want %.9g\n", (long long)step, (double)got, want);
    assert_true(fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want)));
}

static void test_schedules(void **state) {
    (void)state;
    tr_schedule c = {.kind = TR_SCHED_CONST, .base_lr = 0.05f};
    assert_lr(&c, 0, 0.05);
    assert_lr(&c, 123456, 0.05);

    tr_schedule st = {.kind = TR_SCHED_STEP, .base_lr = 0.1f, .step_size = 10, .gamma = 0.5f};
    assert_lr(&st, 0, 0.1);
    assert_lr(&st, 9, 0.1);
    assert_lr(&st, 10, 0.05);
    assert_lr(&st, 25, 0.025);

    tr_schedule co = {
        .kind = TR_SCHED_COSINE, .base_lr = 0.1f, .total_steps = 100, .min_lr = 0.001f};
    assert_lr(&co, 0, 0.1);                 // start: base
    assert_lr(&co, 25, 0.0855017856687341); // min + (base-min)/2 * (1 + cos(pi/4))
    assert_lr(&co, 50, 0.0505);             // midpoint: (base + min) / 2
    assert_lr(&co, 100, 0.001);             // end: min
    assert_lr(&co, 250, 0.001);             // past the end: stays at min

    // Caffe "inv": base * (1 + gamma*iter)^(-power), the LeNet solver values
    tr_schedule inv = {.kind = TR_SCHED_INV, .base_lr = 0.01f, .gamma = 1e-4f, .power = 0.75f};
    assert_lr(&inv, 0, 0.01);
    assert_lr(&inv, 2500, 0.008458970107524513);
    assert_lr(&inv, 10000, 0.005946035575013605); // 0.01 * 2^-0.75

    // warm-up: linear from 0 over 10 steps, then the schedule itself
    tr_schedule w = {.kind = TR_SCHED_CONST, .base_lr = 0.2f, .warmup_steps = 10};
    assert_lr(&w, 0, 0.0);
    assert_lr(&w, 5, 0.1);
    assert_lr(&w, 9, 0.18);
    assert_lr(&w, 10, 0.2);
    assert_lr(&w, 1000, 0.2);
    tr_schedule ws = st;
    ws.warmup_steps = 4;
    assert_lr(&ws, 2, 0.05);  // 0.1 * 2/4
    assert_lr(&ws, 12, 0.05); // after warm-up: the step schedule
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum), cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_sgd_plain),    cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_lr_mult),      cmocka_unit_test(test_opt_config_errors),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
