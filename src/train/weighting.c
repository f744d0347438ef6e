/*
 * train.weighting on the rank grid: loss weights (uncertainty, DWA, GradNorm's
 * first epoch) scale each task's loss gradient; gradient methods (GradNorm,
 * MGDA, PCGrad, CAGrad) take one backward per task and combine the task
 * gradients of the shared parameters:
 *
 *   per task t: head backward of t -> feature exchange -> shared backward
 *               -> the shared gradient, split into P slices
 *   reduce-scatter (world): rank r owns slice r of all T task gradients
 *   partial Gram on the slice + the task losses -> all-reduce (T^2 + 2T doubles)
 *   coefficients a from the Gram (the method's row, the same on every rank)
 *   slice of sum_t a_t g_t -> all-gather (world): every rank has the update
 *
 * MGDA-UB (train.rep_grad) instead all-reduces the per-task feature gradients
 * summed over the rows and backpropagates their combination once.
 * Not here: what each method does with the numbers (its row in
 * weighting_methods.c), the solvers (weighting_solvers.c), the step (step.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/json.h"
#include "trainer_internal.h"
#include "weighting_methods.h"

static int is_gradient_method(tr_weighting_kind k) {
    return tr_weighting_uses_task_grads(k);
}

static tr_status alloc_params(tr_weighting *w, const tr_config *cfg) {
    int id;
    int64_t shape[1] = {w->T};
    tr_params_init(&w->params);
    TR_CALL(
        tr_params_add(&w->params, &id, w->m->param, TR_GROUP_TRUNK, 0, 1, shape, 0, w->T, 0, 1));
    TR_CALL(tr_params_alloc(&w->params));
    for (int t = 0; t < w->T; t++)
        w->params.data[t] = w->m->param_init(cfg);
    w->has_params = 1;
    return tr_opt_init(&w->opt, &cfg->opt, &w->params);
}

/* Multi-input data through a shared stage without batch statistics: the rows
 * of one task are the only ones its loss reaches. */
static int rows_independent(const tr_trainer *tr) {
    const tr_model *m = &tr->model;
    if (tr->batch.shared_input || tr->batch.exchanged || !m->method->shared_backward_rows)
        return 0;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == TR_OP_BN)
            return 0;
    return 1;
}

/* Slices of the shared range per world rank, and the buffers of the step. */
static tr_status alloc_buffers(tr_weighting *w, tr_trainer *tr) {
    int P = tr->grid.size, T = w->T;
    TR_CALL(tr_params_domain_range(&tr->model.params, 0, &w->off, &w->len));
    TR_CHECK((double)w->len * T < 2147483647.0, TR_ERR_CONFIG,
             "train.weighting: %d tasks x %zu shared parameters exceed one MPI message", T, w->len);
    TR_ALLOC(w->counts, (size_t)P, "weighting counts");
    TR_ALLOC(w->displs, (size_t)P, "weighting displacements");
    TR_ALLOC(w->tcounts, (size_t)P, "weighting counts");
    for (int r = 0; r < P; r++) {
        size_t lo = w->len * (size_t)r / (size_t)P, hi = w->len * (size_t)(r + 1) / (size_t)P;
        w->displs[r] = (int)lo;
        w->counts[r] = (int)(hi - lo);
        w->tcounts[r] = T * w->counts[r];
    }
    size_t mine = (size_t)w->counts[tr->grid.rank];
    size_t fd = (size_t)tr->model.feat_dim;
    if (tr->cfg->rep_grad) {
        TR_ALLOC(w->rep, (size_t)T * (size_t)tr->batch.max_rows * fd + 1, "feature gradients");
        TR_ALLOC(w->sums, (size_t)T * fd + 2 * (size_t)T + (size_t)T * T, "weighting sums");
    } else {
        TR_ALLOC(w->send, (size_t)T * w->len + 1, "per-task gradients");
        TR_ALLOC(w->mine, (size_t)T * mine + 1, "per-task gradient slice");
        TR_ALLOC(w->comb, mine + 1, "combined gradient slice");
        TR_ALLOC(w->sums, (size_t)T * T + 2 * (size_t)T, "Gram matrix");
    }
    return TR_OK;
}

tr_status tr_weighting_init(tr_trainer *tr) {
    tr_weighting *w = &tr->wt;
    const tr_config *cfg = tr->cfg;
    memset(w, 0, sizeof(*w));
    w->kind = cfg->weighting;
    w->T = tr->T;
    for (int t = 0; t < w->T; t++)
        w->hw[t] = w->coef[t] = 1.0;
    if (tr->eval_only)
        return TR_OK;
    w->m = tr_weighting_method_find(w->kind);
    TR_CHECK(w->m != NULL, TR_ERR_CONFIG, "train.weighting = %s is not available in this build",
             tr_weighting_kind_str(w->kind));
    w->every = cfg->grad_every >= 0 ? cfg->grad_every : is_gradient_method(w->kind) ? 1 : 0;
    if (w->kind == TR_WEIGHT_EQUAL && w->every == 0)
        return TR_OK; /* today's step, bitwise */
    if (w->m->param)
        TR_CALL(alloc_params(w, cfg));
    w->by_rows = rows_independent(tr);
    TR_ALLOC(w->saved, 3 * (size_t)w->T, "weighting state");
    TR_ALLOC(w->losses, 4 * (size_t)w->T, "weighting loss history");
    TR_ALLOC(w->cos_sum, (size_t)w->T * w->T, "grad.cos");
    return alloc_buffers(w, tr);
}

void tr_weighting_free(tr_weighting *w) {
    if (w->has_params) {
        tr_opt_free(&w->opt);
        tr_params_free(&w->params);
    }
    tr_free(w->counts);
    tr_free(w->displs);
    tr_free(w->tcounts);
    tr_free(w->saved);
    tr_free(w->losses);
    tr_free(w->cos_sum);
    tr_free(w->send);
    tr_free(w->mine);
    tr_free(w->comb);
    tr_free(w->sums);
    tr_free(w->rep);
    memset(w, 0, sizeof(*w));
}

/* ---- the weights of a step ------------------------------------------------------------- */

/* At an epoch boundary: the finished epoch's mean loss moves into the history. */
static void close_epoch(tr_weighting *w) {
    int T = w->T;
    double *sum = w->losses, *last = sum + T, *before = sum + 2 * T, *first = sum + 3 * T;
    for (int t = 0; t < T; t++) {
        double mean = sum[t] / w->counters[0];
        before[t] = last[t];
        last[t] = mean;
        if (w->counters[1] == 0)
            first[t] = mean;
        sum[t] = 0.0;
    }
    w->counters[0] = 0;
    w->counters[1] += 1;
}

void tr_weighting_begin_step(tr_trainer *tr, int64_t step) {
    tr_weighting *w = &tr->wt;
    w->per_task = w->combined = w->stepped = w->gn_active = 0;
    if (!w->losses)
        return;
    int64_t spe = tr->batch.steps_per_epoch, epoch = step / spe;
    if (step % spe == 0 && w->counters[0] > 0)
        close_epoch(w);
    w->per_task = w->m->begin(w, tr->cfg, epoch);
    if (w->every > 0 && step % w->every == 0)
        w->per_task = 1;
}

float tr_weighting_head_scale(const tr_trainer *tr, int t) {
    double hw = tr->wt.hw[t];
    float lambda = tr->task_weight[t];
    if (hw == 1.0)
        return lambda / (float)tr->batch.B; /* equal: today's expression, bitwise */
    return (float)((double)lambda * hw) / (float)tr->batch.B;
}

/* grad.cos: one sample of the cosine similarities. */
static void sample_cos(tr_weighting *w, const double *G, int64_t step) {
    int T = w->T;
    if (w->every <= 0 || step % w->every != 0)
        return;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            double d = G[(size_t)i * T + i] * G[(size_t)j * T + j];
            w->cos_sum[(size_t)i * T + j] += d > 0.0 ? G[(size_t)i * T + j] / sqrt(d) : 0.0;
        }
    w->counters[3] += 1;
}

/* This rank's loss sums of its tasks into buf (T sums, T counts), zero elsewhere. */
static void put_losses(const tr_trainer *tr, double *buf, const tr_task_stats *st) {
    memset(buf, 0, 2 * (size_t)tr->T * sizeof(double));
    for (int j = 0; j < tr->tn; j++) {
        buf[tr->t0 + j] = st[j].loss_sum;
        buf[tr->T + tr->t0 + j] = st[j].count;
    }
}

static void mean_losses(double *loss, const double *buf, int T) {
    for (int t = 0; t < T; t++)
        loss[t] = buf[T + t] > 0 ? buf[t] / buf[T + t] : 0.0;
}

/* ---- the per-task backward ------------------------------------------------------------- */

/* Gradient of the shared parameters: one backward per task, reduce-scatter,
 * Gram, combination, all-gather. */
static tr_status param_path(tr_trainer *tr, const tr_task_stats *st) {
    tr_weighting *w = &tr->wt;
    tr_grid *g = &tr->grid;
    int T = w->T, P = g->size, me = g->rank;
    float *grad = tr->model.params.grad + w->off;
    for (int t = 0; t < T; t++) {
        memset(grad, 0, w->len * sizeof(float));
        int j = t - tr->t0;
        if (!w->by_rows) {
            TR_CALL(tr_step_task_dfeat(tr, t));
            TR_CALL(tr_step_shared_backward(tr));
        } else if (j >= 0 && j < tr->tn && tr->batch.seg_n[j] > 0) {
            TR_CALL(tr_step_task_dfeat(tr, t));
            TR_CALL(tr_step_shared_backward_rows(tr, tr->batch.seg_off[j], tr->batch.seg_n[j]));
        }
        for (int r = 0; r < P; r++)
            memcpy(w->send + (size_t)T * w->displs[r] + (size_t)t * w->counts[r],
                   grad + w->displs[r], (size_t)w->counts[r] * sizeof(float));
    }
    double t0 = tr_time_now();
    TR_CALL(tr_reduce_scatter_f32(g, g->world, w->send, w->mine, w->tcounts, TR_COLL_WEIGHTING));
    size_t n = (size_t)w->counts[me];
    double *G = w->sums;
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            const float *a = w->mine + (size_t)i * n, *b = w->mine + (size_t)j * n;
            double s = 0.0;
            for (size_t k = 0; k < n; k++)
                s += (double)a[k] * (double)b[k];
            G[(size_t)i * T + j] = G[(size_t)j * T + i] = s;
        }
    put_losses(tr, G + (size_t)T * T, st);
    TR_CALL(tr_allreduce_f64(g, g->world, G, (size_t)T * T + 2 * (size_t)T, TR_COLL_WEIGHTING));
    double loss[TR_MAX_TASKS];
    mean_losses(loss, G + (size_t)T * T, T);
    w->m->combine(w, tr->cfg, G, loss, tr->step);
    sample_cos(w, G, tr->step);
    for (size_t k = 0; k < n; k++) {
        double s = 0.0;
        for (int t = 0; t < T; t++)
            s += w->coef[t] * (double)w->mine[(size_t)t * n + k];
        w->comb[k] = (float)s;
    }
    TR_CALL(tr_allgatherv_f32(g, g->world, w->comb, (int)n, grad, w->counts, w->displs,
                              TR_COLL_WEIGHTING));
    tr_trainer_phase(tr, TR_PHASE_COMM, "weighting", t0, tr_time_now());
    w->combined = 1;
    return TR_OK;
}

/* MGDA-UB: the feature gradients of every task, summed over the global
 * batch, give the Gram; their combination is backpropagated once. */
static tr_status rep_path(tr_trainer *tr, const tr_task_stats *st) {
    tr_weighting *w = &tr->wt;
    tr_grid *g = &tr->grid;
    int T = w->T, rows = tr->batch.trunk.rows;
    size_t fd = (size_t)tr->model.feat_dim, one = (size_t)rows * fd;
    double *v = w->sums, *G = w->sums + (size_t)T * fd + 2 * (size_t)T;
    memset(v, 0, (size_t)T * fd * sizeof(double));
    for (int t = 0; t < T; t++) {
        TR_CALL(tr_step_task_dfeat(tr, t));
        memcpy(w->rep + (size_t)t * one, tr->batch.dfeat, one * sizeof(float));
        for (int i = 0; i < rows; i++)
            for (size_t f = 0; f < fd; f++)
                v[(size_t)t * fd + f] += tr->batch.dfeat[(size_t)i * fd + f];
    }
    put_losses(tr, v + (size_t)T * fd, st);
    double t0 = tr_time_now();
    TR_CALL(tr_allreduce_f64(g, g->world, v, (size_t)T * fd + 2 * (size_t)T, TR_COLL_WEIGHTING));
    tr_trainer_phase(tr, TR_PHASE_COMM, "weighting", t0, tr_time_now());
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0.0;
            for (size_t f = 0; f < fd; f++)
                s += v[(size_t)i * fd + f] * v[(size_t)j * fd + f];
            G[(size_t)i * T + j] = G[(size_t)j * T + i] = s;
        }
    double loss[TR_MAX_TASKS];
    mean_losses(loss, v + (size_t)T * fd, T);
    w->m->combine(w, tr->cfg, G, loss, tr->step);
    sample_cos(w, G, tr->step);
    float *dfeat = tr->batch.dfeat;
    for (size_t k = 0; k < one; k++) {
        double s = 0.0;
        for (int t = 0; t < T; t++)
            s += w->coef[t] * (double)w->rep[(size_t)t * one + k];
        dfeat[k] = (float)s;
    }
    return tr_step_shared_backward(tr);
}

tr_status tr_weighting_backward(tr_trainer *tr, const tr_task_stats *st) {
    return tr->cfg->rep_grad ? rep_path(tr, st) : param_path(tr, st);
}

/* ---- after the step's losses ------------------------------------------------------------ */

void tr_weighting_after_losses(tr_trainer *tr, const tr_task_stats *all, float lr) {
    tr_weighting *w = &tr->wt;
    int T = w->T;
    if (!w->losses)
        return;
    double loss[TR_MAX_TASKS];
    for (int t = 0; t < T; t++) {
        loss[t] = all[t].count > 0 ? all[t].loss_sum / all[t].count : 0.0;
        w->losses[t] += loss[t];
    }
    w->counters[0] += 1;
    if (!w->has_params || !w->m->param_grad || !w->m->param_grad(w, loss, tr->task_weight))
        return;
    w->opt.t = (int64_t)w->counters[2];
    tr_opt_step(&w->opt, &w->params, lr);
    w->counters[2] = (double)w->opt.t;
}

/* ---- checkpoints and relations ---------------------------------------------------------- */

tr_status tr_weighting_each_state(tr_trainer *tr, tr_state_fn fn, void *ctx) {
    tr_weighting *w = &tr->wt;
    if (!w->losses)
        return TR_OK;
    int64_t d3[2] = {3, w->T}, d4[2] = {4, w->T}, dc[1] = {4}, dt[2] = {w->T, w->T};
    TR_CALL(fn(ctx, "/weighting/params", w->saved, 2, d3));
    TR_CALL(fn(ctx, "/weighting/losses", w->losses, 2, d4));
    TR_CALL(fn(ctx, "/weighting/counters", w->counters, 1, dc));
    return fn(ctx, "/weighting/grad_cos_sum", w->cos_sum, 2, dt);
}

void tr_weighting_before_save(tr_trainer *tr) {
    tr_weighting *w = &tr->wt;
    if (!w->saved)
        return;
    memset(w->saved, 0, 3 * (size_t)w->T * sizeof(double));
    for (int t = 0; w->has_params && t < w->T; t++) {
        w->saved[t] = w->params.data[t];
        w->saved[w->T + t] = w->opt.m ? w->opt.m[t] : 0.0;
        w->saved[2 * w->T + t] = w->opt.v ? w->opt.v[t] : 0.0;
    }
}

void tr_weighting_after_load(tr_trainer *tr) {
    tr_weighting *w = &tr->wt;
    for (int t = 0; w->has_params && t < w->T; t++) { /* float -> double -> float: exact */
        w->params.data[t] = (float)w->saved[t];
        if (w->opt.m)
            w->opt.m[t] = (float)w->saved[w->T + t];
        if (w->opt.v)
            w->opt.v[t] = (float)w->saved[2 * w->T + t];
    }
}

static void json_vec(FILE *f, const char *name, const double *v, int n) {
    fprintf(f, "\"%s\":[", name);
    for (int i = 0; i < n; i++) {
        fputs(i ? "," : "", f);
        tr_json_write_number(f, v[i], 6);
    }
    fputs("]", f);
}

void tr_weighting_write_json(const tr_trainer *tr, FILE *f) {
    const tr_weighting *w = &tr->wt;
    if (!w->losses || w->kind == TR_WEIGHT_EQUAL)
        return;
    fprintf(f, ",\"weighting\":{\"kind\":\"%s\",", tr_weighting_kind_str(w->kind));
    json_vec(f, "loss_weights", w->hw, w->T);
    fputs(",", f);
    json_vec(f, "trunk_coef", w->coef, w->T);
    if (w->has_params) {
        double p[TR_MAX_TASKS];
        for (int t = 0; t < w->T; t++)
            p[t] = w->params.data[t];
        fputs(",", f);
        json_vec(f, w->m->param + strlen("weighting."), p, w->T); /* log_var, logits */
    }
    fputs("}", f);
}

tr_status tr_weighting_relations(tr_trainer *tr) {
    tr_weighting *w = &tr->wt;
    int T = w->T;
    if (!w->cos_sum || w->counters[3] <= 0)
        return TR_OK;
    double *c = malloc((size_t)T * T * sizeof(double));
    TR_CHECK(c != NULL, TR_ERR_NOMEM, "out of memory (grad.cos)");
    for (size_t i = 0; i < (size_t)T * T; i++)
        c[i] = w->cos_sum[i] / w->counters[3];
    char title[128];
    snprintf(title, sizeof(title), "Cosine of the task gradients%s (mean over %.0f steps)",
             tr->cfg->rep_grad ? " of the shared features" : " of the shared layers",
             w->counters[3]);
    tr_status st = tr_relations_add(&tr->relations, "grad.cos", title, "task,task", c, T, T);
    free(c);
    return st;
}
