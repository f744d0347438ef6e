/*
 * The table of train.weighting methods: one row each (weighting_methods.h).
 * A row says what the method does with the numbers every rank already has
 * (the loss history, the Gram matrix of the task gradients, the step's
 * losses); the rank grid, the buffers and the state's life cycle are in
 * weighting.c, the dense solvers in weighting_solvers.c.
 */
#include "weighting_methods.h"

#include <math.h>
#include <stdlib.h>

#include "weighting_solvers.h"

static void ones(double *v, int T) {
    for (int t = 0; t < T; t++)
        v[t] = 1.0;
}

static int begin_plain(tr_weighting *w, const tr_config *cfg, int64_t epoch) {
    (void)cfg;
    (void)epoch;
    ones(w->hw, w->T);
    return 0;
}

static int begin_surgery(tr_weighting *w, const tr_config *cfg, int64_t epoch) {
    begin_plain(w, cfg, epoch);
    return 1;
}

/* The loss weights are in the task gradients already: coefficients 1. */
static void combine_sum(tr_weighting *w, const tr_config *cfg, const double *G, const double *loss,
                        int64_t step) {
    (void)cfg;
    (void)G;
    (void)loss;
    (void)step;
    ones(w->coef, w->T);
}

/* ---- uncertainty: L / (2 e^s) + s / 2 ---------------------------------------------------- */

static int begin_uncertainty(tr_weighting *w, const tr_config *cfg, int64_t epoch) {
    (void)cfg;
    (void)epoch;
    for (int t = 0; t < w->T; t++)
        w->hw[t] = 1.0 / (2.0 * exp((double)w->params.data[t]));
    return 0;
}

static int grad_uncertainty(tr_weighting *w, const double *loss, const float *lambda) {
    for (int t = 0; t < w->T; t++) /* d/ds of lambda L / (2 e^s) + s / 2 */
        w->params.grad[t] = (float)(-(double)lambda[t] * loss[t] * w->hw[t] + 0.5);
    return 1;
}

/* ---- DWA: T softmax of the last two epoch-mean loss ratios --------------------------------- */

static int begin_dwa(tr_weighting *w, const tr_config *cfg, int64_t epoch) {
    int T = w->T;
    ones(w->hw, T);
    if (epoch >= 2 && w->counters[1] >= 2) {
        double z[TR_MAX_TASKS];
        for (int t = 0; t < T; t++)
            z[t] = w->losses[T + t] / w->losses[2 * T + t] / cfg->dwa_temp;
        tr_wsolve_scaled_softmax(w->hw, z, T);
    }
    return 0;
}

/* ---- GradNorm: learned T softmax(z), from the second epoch -------------------------------- */

static int begin_gradnorm(tr_weighting *w, const tr_config *cfg, int64_t epoch) {
    (void)cfg;
    ones(w->hw, w->T);
    w->gn_active = epoch >= 1 && w->counters[1] >= 1; /* the first epoch: the plain sum */
    return w->gn_active;
}

static void combine_gradnorm(tr_weighting *w, const tr_config *cfg, const double *G,
                             const double *loss, int64_t step) {
    int T = w->T;
    (void)step;
    if (!w->gn_active) { /* a grad.cos step of the first epoch */
        ones(w->coef, T);
        return;
    }
    double z[TR_MAX_TASKS], n[TR_MAX_TASKS], r[TR_MAX_TASKS];
    for (int t = 0; t < T; t++) {
        z[t] = w->params.data[t];
        n[t] = sqrt(fmax(G[(size_t)t * T + t], 0.0));
        double l0 = w->losses[3 * T + t];
        r[t] = l0 > 0.0 ? loss[t] / l0 : 1.0;
    }
    tr_wsolve_scaled_softmax(w->coef, z, T);
    tr_wsolve_gradnorm(w->pending, z, n, r, T, cfg->gradnorm_alpha);
    w->stepped = 1;
}

static int grad_gradnorm(tr_weighting *w, const double *loss, const float *lambda) {
    (void)loss;
    (void)lambda;
    for (int t = 0; w->stepped && t < w->T; t++)
        w->params.grad[t] = (float)w->pending[t];
    return w->stepped;
}

/* ---- MGDA, PCGrad, CAGrad ---------------------------------------------------------------- */

/* MGDA's normaliser of task t (train.mgda_norm), from its squared norm and loss. */
static double mgda_normaliser(tr_mgda_norm kind, double sq, double loss) {
    double gn = kind == TR_MGDA_L2          ? sqrt(sq)
                : kind == TR_MGDA_LOSS      ? loss
                : kind == TR_MGDA_LOSS_PLUS ? loss * sqrt(sq)
                                            : 1.0;
    return gn > 0.0 && isfinite(gn) ? gn : 1.0;
}

static void combine_mgda(tr_weighting *w, const tr_config *cfg, const double *G, const double *loss,
                         int64_t step) {
    int T = w->T;
    double gn[TR_MAX_TASKS], sol[TR_MAX_TASKS];
    (void)step;
    double *Gn = calloc((size_t)T * T, sizeof(double));
    if (!Gn) { /* no memory for T^2 doubles: the mean gradient */
        for (int t = 0; t < T; t++)
            w->coef[t] = 1.0 / T;
        return;
    }
    for (int t = 0; t < T; t++)
        gn[t] = mgda_normaliser(cfg->mgda_norm, G[(size_t)t * T + t], loss[t]);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            Gn[(size_t)i * T + j] = G[(size_t)i * T + j] / (gn[i] * gn[j]);
    tr_wsolve_mgda(sol, Gn, T);
    free(Gn);
    for (int t = 0; t < T; t++)
        w->coef[t] = sol[t] / gn[t];
}

static void combine_pcgrad(tr_weighting *w, const tr_config *cfg, const double *G,
                           const double *loss, int64_t step) {
    (void)loss;
    tr_wsolve_pcgrad(w->coef, G, w->T, cfg->seed, step);
}

static void combine_cagrad(tr_weighting *w, const tr_config *cfg, const double *G,
                           const double *loss, int64_t step) {
    double ww[TR_MAX_TASKS];
    (void)loss;
    (void)step;
    tr_wsolve_cagrad(w->coef, ww, G, w->T, cfg->cagrad_c, cfg->cagrad_rescale);
}

/* ---- the table ----------------------------------------------------------------------------- */

static float init_uncertainty(const tr_config *cfg) {
    return cfg->uw_init;
}

static float init_zero(const tr_config *cfg) {
    (void)cfg;
    return 0.0f; /* gradnorm: w = T softmax(0) = 1 */
}

static const tr_weighting_method k_rows[] = {
    {TR_WEIGHT_EQUAL, NULL, NULL, begin_plain, combine_sum, NULL},
    {TR_WEIGHT_UNCERTAINTY, "weighting.log_var", init_uncertainty, begin_uncertainty, combine_sum,
     grad_uncertainty},
    {TR_WEIGHT_DWA, NULL, NULL, begin_dwa, combine_sum, NULL},
    {TR_WEIGHT_GRADNORM, "weighting.logits", init_zero, begin_gradnorm, combine_gradnorm,
     grad_gradnorm},
    {TR_WEIGHT_MGDA, NULL, NULL, begin_surgery, combine_mgda, NULL},
    {TR_WEIGHT_PCGRAD, NULL, NULL, begin_surgery, combine_pcgrad, NULL},
    {TR_WEIGHT_CAGRAD, NULL, NULL, begin_surgery, combine_cagrad, NULL},
};

const tr_weighting_method *tr_weighting_method_find(tr_weighting_kind k) {
    for (size_t i = 0; i < sizeof(k_rows) / sizeof(k_rows[0]); i++)
        if (k_rows[i].kind == k)
            return &k_rows[i];
    return NULL;
}
