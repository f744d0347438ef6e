/*
 * MRN, multilinear relationship networks: HPS (method_hps.c) plus
 * tensor-normal priors on the chosen head layers (taskrel/mrn.h, mrn.c):
 * the prior's gradient after the gradient all-reduce, or its proximal step
 * after the optimizer, and the covariance updates every mrn.update_every
 * steps. The covariances ride in every checkpoint.
 */
#include <stdlib.h>

#include "taskrel/mrn.h"

#include "method_internal.h"

/* MRN's state of a run (m->run_state; none in evaluation). */
typedef struct {
    tr_mrn mrn;
    tr_method_env env;
} mrn_run;

static mrn_run *run_of(const tr_model *m) {
    return m->run_state;
}

static void mark(const mrn_run *r, const char *event, double t0) {
    if (r->env.mark)
        r->env.mark(r->env.mark_ctx, event, t0, tr_time_now());
}

static tr_status mrn_attach(tr_model *m, const tr_method_env *env) {
    if (!env->training)
        return TR_OK;
    mrn_run *r = calloc(1, sizeof(*r));
    TR_CHECK(r != NULL, TR_ERR_NOMEM, "out of memory");
    m->run_state = r;
    r->env = *env;
    tr_mrn_opts mo;
    TR_CALL(tr_mrn_opts_from_config(&mo, env->cfg, env->n_mean));
    return tr_mrn_init_model(&r->mrn, &mo, env->cfg, m, env->grid);
}

/* prior_step = gradient: add the prior's gradient to the reduced gradients. */
static tr_status mrn_after_reduce(tr_model *m) {
    mrn_run *r = run_of(m);
    if (!r || r->mrn.o.prox)
        return TR_OK;
    double t0 = tr_time_now();
    TR_CALL(tr_mrn_step_gradient(&r->mrn, m, r->env.grid));
    mark(r, "mrn_prior_gradient", t0);
    return TR_OK;
}

/* After the optimizer: the proximal prior step (eta = the head learning
 * rate; with mrn.prox_every = N, every N steps with the summed eta, and always
 * before a covariance update, a validation and the end), then every
 * mrn.update_every steps the covariance updates. */
static tr_status mrn_after_step(tr_model *m, const tr_step_info *s) {
    mrn_run *r = run_of(m);
    if (!r)
        return TR_OK;
    tr_mrn *mrn = &r->mrn;
    double t0 = tr_time_now();
    int64_t done = s->step + 1;
    int update = done % mrn->o.update_every == 0;
    if (mrn->o.prox) {
        mrn->counters[1] += (double)s->lr * r->env.cfg->opt.lr_mult[TR_GROUP_HEAD];
        if (done % mrn->o.prox_every == 0 || update || s->boundary) {
            TR_CALL(tr_mrn_step_prox(mrn, m, r->env.grid, mrn->counters[1]));
            mrn->counters[1] = 0.0;
            mark(r, "mrn_prox", t0);
        }
    }
    if (update) {
        double t1 = tr_time_now();
        TR_CALL(tr_mrn_step_update(mrn, m, r->env.grid));
        TR_CALL(tr_mrn_relations(mrn, r->env.relations)); /* for the next checkpoint */
        mark(r, "mrn_update", t1);
    }
    return TR_OK;
}

/* The task correlations (from the last covariance update, and of W - W_init
 * of the selected weights). */
static tr_status mrn_final_relations(tr_model *m) {
    mrn_run *r = run_of(m);
    if (!r)
        return TR_OK;
    tr_mrn *mrn = &r->mrn;
    for (int l = 0; l < mrn->n_layers; l++)
        TR_CALL(tr_mrn_layer_gather(mrn, l, r->env.grid,
                                    tr_params_task_data(&m->params, mrn->layer[l].pid, mrn->t0)));
    return tr_mrn_relations(mrn, r->env.relations);
}

static tr_status mrn_each_state(tr_model *m, tr_state_fn fn, void *ctx) {
    mrn_run *r = run_of(m);
    return r ? tr_mrn_each_state(&r->mrn, fn, ctx) : TR_OK;
}

static void mrn_write_json(const tr_model *m, FILE *f) {
    const mrn_run *r = run_of(m);
    if (!r)
        return;
    fprintf(f, ",\"mrn\":");
    tr_mrn_write_json(&r->mrn, f);
}

static const char *mrn_nonfinite_hint(const tr_model *m) {
    const mrn_run *r = run_of(m);
    if (!r || r->mrn.o.prox)
        return "";
    return " (with mrn.prior_step = gradient the prior's curvature can exceed 2 / lr once tasks "
           "correlate: use mrn.prior_step = prox or a smaller mrn.lambda)";
}

static void mrn_free(tr_model *m) {
    mrn_run *r = run_of(m);
    if (!r)
        return;
    tr_mrn_free(&r->mrn);
    free(r);
    m->run_state = NULL;
}

/* The heads, after checking that the prior's layers have one shape per task:
 * with fc8 under the prior every task needs the same kind and class count
 * (fc7 alone is the same for every task). */
static tr_status mrn_declare(tr_model *m, const tr_config *cfg) {
    if (cfg->mrn_layers & TR_MRN_LAYER_FC8)
        TR_CALL(tr_model_check_uniform_heads(
            m, "MRN's prior stacks the tasks' fc8 layers into one tensor, so every task needs "
               "the same outputs (mrn.layers = fc7 leaves fc8 out of the prior)"));
    return tr_model_declare_heads(m, cfg);
}

const tr_method tr_method_mrn = {
    .name = "mrn",
    .kind = TR_MODEL_MRN,
    .layout = TR_LAYOUT_SHARED_TRUNK,
    .declare = mrn_declare,
    .attach = mrn_attach,
    .shared_forward = tr_shared_trunk_forward,
    .head_forward = tr_fc_heads_forward,
    .head_backward = tr_fc_heads_backward,
    .shared_backward = tr_shared_trunk_backward,
    .shared_backward_rows = tr_shared_trunk_backward_rows,
    .after_reduce = mrn_after_reduce,
    .after_step = mrn_after_step,
    .final_relations = mrn_final_relations,
    .each_state = mrn_each_state,
    .write_json = mrn_write_json,
    .nonfinite_hint = mrn_nonfinite_hint,
    .free = mrn_free,
};
