/*
 * The training loop: batches that do not depend on the number of ranks,
 * forward/backward through trunk and task heads, the gradient all-reduces of
 * the rank grid, one fused scalar all-reduce per step, the optimizer, periodic
 * validation with model selection, and the final test.
 *
 * Not here: layer math (src/nn), model structure (src/models), collectives
 * (src/dist), file formats (src/io), output formatting (report.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/relational.h"
#include "taskrel/relations.h"
#include "taskrel/timeline.h"
#include "taskrel/weights.h"
#include "trainer_internal.h"

#define TR_SAMPLE_ID_TASK_SHIFT 40 /* global sample id = task << 40 | index */

/* Accumulate a phase's time on this rank and record it on the timeline. */
static void phase_add(tr_trainer *tr, tr_phase ph, const char *name, double t0, double t1) {
    tr->phase[ph] += t1 - t0;
    tr_timeline_add(tr->timeline, name, t0, t1, tr->step);
}

/* ---- batches ------------------------------------------------------------------- */

/* Permutations of epoch e: one per local task (multi-input), keyed on
 * (seed, epoch, task), or one for the shared examples keyed on (seed, epoch, T). */
static void make_perms(tr_trainer *tr, int64_t epoch) {
    if (tr->perm_epoch == epoch)
        return;
    uint64_t seed = tr->cfg->seed;
    if (tr->ds.setting == TR_SETTING_SHARED_INPUT) {
        tr_rng_permutation(tr->perm, (int32_t)tr->ds.shared[TR_SPLIT_TRAIN].n, seed, TR_RNG_SHUFFLE,
                           (uint64_t)epoch * 65536u + (uint64_t)tr->T);
    } else {
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            tr_rng_permutation(tr->perm + (size_t)j * tr->perm_stride,
                               (int32_t)tr_task_n(tr, t, TR_SPLIT_TRAIN), seed, TR_RNG_SHUFFLE,
                               (uint64_t)epoch * 65536u + (uint64_t)t);
        }
    }
    tr->perm_epoch = epoch;
}

static void copy_example(tr_trainer *tr, int row, const tr_split_data *sd, int64_t idx,
                         int64_t id) {
    size_t ss = (size_t)tr->ds.sample_size;
    memcpy(tr->x + (size_t)row * ss, sd->x + (size_t)idx * ss, ss * sizeof(float));
    tr->ids[row] = id;
}

/* Assemble the rows of global batch k for this rank. */
static void assemble_batch(tr_trainer *tr, int64_t step) {
    int64_t epoch = step / tr->steps_per_epoch, k = step % tr->steps_per_epoch;
    make_perms(tr, epoch);
    if (tr->ds.setting == TR_SETTING_MULTI_INPUT) {
        int lo, n;
        tr_part_range(tr->B, tr->grid.R, tr->grid.r, &lo, &n);
        int row = 0;
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            const tr_split_data *sd = &tr->ds.tasks[t].split[TR_SPLIT_TRAIN];
            const int32_t *perm = tr->perm + (size_t)j * tr->perm_stride;
            tr->seg_off[j] = row;
            tr->seg_n[j] = n;
            for (int i = 0; i < n; i++) {
                int64_t pos = (k * tr->B + lo + i) % sd->n;
                int64_t idx = perm[pos];
                copy_example(tr, row, sd, idx, ((int64_t)t << TR_SAMPLE_ID_TASK_SHIFT) | idx);
                if (sd->y)
                    tr->y[row] = sd->y[idx];
                if (sd->yf)
                    tr->yf[row] = sd->yf[idx];
                row++;
            }
        }
        tr->rows = row;
    } else {
        /* trunk inputs: this rank's sub-slice, or the whole replica part when
         * every task has its own trunk (STL: no feature exchange) */
        const tr_split_data *sd = &tr->ds.shared[TR_SPLIT_TRAIN];
        int lo = tr->model.trunk_per_task ? 0 : tr->my_lo;
        int n = tr->model.trunk_per_task ? tr->rep_n : tr->my_n;
        for (int i = 0; i < n; i++) {
            int64_t pos = (k * tr->B + tr->rep_lo + lo + i) % sd->n;
            int64_t idx = tr->perm[pos];
            copy_example(tr, i, sd, idx, idx);
        }
        tr->rows = n;
        /* labels of the replica part, per local task, laid out task-major */
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            tr->seg_off[j] = j * tr->rep_n;
            tr->seg_n[j] = tr->rep_n;
            for (int i = 0; i < tr->rep_n; i++) {
                int64_t pos = (k * tr->B + tr->rep_lo + i) % sd->n;
                int64_t idx = tr->perm[pos];
                if (sd->y)
                    tr->y[j * tr->rep_n + i] = sd->y[idx * tr->T + t];
                if (sd->yf)
                    tr->yf[j * tr->rep_n + i] = sd->yf[idx * tr->T + t];
            }
        }
    }
}

/* ---- one step -------------------------------------------------------------------- */

static tr_status step_multi_input(tr_trainer *tr, tr_task_stats *st) {
    tr_model *m = &tr->model;
    size_t fd = (size_t)m->feat_dim;
    double t0 = tr_time_now();
    const float *feat;
    if (!m->trunk_per_task) {
        TR_CALL(tr_model_trunk_forward(m, &feat, tr->t0, 0, 0, tr->rows, tr->x, tr->ids, 1,
                                       (uint64_t)tr->step));
    }
    memset(tr->dfeat, 0, (size_t)tr->rows * fd * sizeof(float));
    for (int j = 0; j < tr->tn; j++) {
        int t = tr->t0 + j, off = tr->seg_off[j], n = tr->seg_n[j];
        if (m->trunk_per_task)
            TR_CALL(tr_model_trunk_forward(m, &feat, t, j, off, n, tr->x + (size_t)off * m->in_size,
                                           tr->ids + off, 1, (uint64_t)tr->step));
        float scale = tr->task_weight[t] / (float)tr->B;
        TR_CALL(tr_model_head_step(m, &st[j], t, off, n, tr_model_features(m, off),
                                   tr->dfeat + (size_t)off * fd, tr->y + off, tr->yf + off, scale));
    }
    double t1 = tr_time_now();
    phase_add(tr, TR_PHASE_FORWARD, "forward", t0, t1); /* with the heads' backward */
    if (!m->trunk_per_task) {
        TR_CALL(tr_model_trunk_backward(m, tr->t0, 0, 0, tr->rows, tr->x, tr->dfeat));
    } else {
        for (int j = 0; j < tr->tn; j++) {
            int off = tr->seg_off[j];
            TR_CALL(tr_model_trunk_backward(m, tr->t0 + j, j, off, tr->seg_n[j],
                                            tr->x + (size_t)off * m->in_size,
                                            tr->dfeat + (size_t)off * fd));
        }
    }
    phase_add(tr, TR_PHASE_BACKWARD, "backward", t1, tr_time_now());
    return TR_OK;
}

static tr_status step_shared_input(tr_trainer *tr, tr_task_stats *st) {
    tr_model *m = &tr->model;
    tr_grid *g = &tr->grid;
    size_t fd = (size_t)m->feat_dim;
    double t0 = tr_time_now();
    const float *feat;
    if (m->trunk_per_task) {
        /* STL: each task's own trunk on the replica part (no feature exchange). */
        memset(tr->dfeat_all, 0, (size_t)tr->rep_n * fd * sizeof(float));
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            TR_CALL(tr_model_trunk_forward(m, &feat, t, j, j * tr->rep_n, tr->rep_n, tr->x, tr->ids,
                                           1, (uint64_t)tr->step));
            float *df = tr->dfeat + (size_t)j * tr->rep_n * fd;
            memset(df, 0, (size_t)tr->rep_n * fd * sizeof(float));
            TR_CALL(tr_model_head_step(m, &st[j], t, tr->seg_off[j], tr->rep_n, feat, df,
                                       tr->y + tr->seg_off[j], tr->yf + tr->seg_off[j],
                                       tr->task_weight[t] / (float)tr->B));
        }
        double t1 = tr_time_now();
        phase_add(tr, TR_PHASE_FORWARD, "forward", t0, t1);
        for (int j = 0; j < tr->tn; j++)
            TR_CALL(tr_model_trunk_backward(m, tr->t0 + j, j, j * tr->rep_n, tr->rep_n, tr->x,
                                            tr->dfeat + (size_t)j * tr->rep_n * fd));
        phase_add(tr, TR_PHASE_BACKWARD, "backward", t1, tr_time_now());
        return TR_OK;
    }
    TR_CALL(tr_model_trunk_forward(m, &feat, tr->t0, 0, 0, tr->my_n, tr->x, tr->ids, 1,
                                   (uint64_t)tr->step));
    /* features of the whole replica part, gathered over the shards */
    double tc = tr_time_now();
    TR_CALL(tr_allgatherv_f32(g, g->replica_comm, feat, tr->my_n * (int)fd, tr->feat_all,
                              tr->gather_counts, tr->gather_displs, TR_COLL_FEATURES));
    double tc_end = tr_time_now();
    phase_add(tr, TR_PHASE_COMM, "feature_allgather", tc, tc_end);
    phase_add(tr, TR_PHASE_FORWARD, "forward", t0, tc);
    memset(tr->dfeat_all, 0, (size_t)tr->rep_n * fd * sizeof(float));
    for (int j = 0; j < tr->tn; j++) {
        int t = tr->t0 + j;
        TR_CALL(tr_model_head_step(m, &st[j], t, tr->seg_off[j], tr->rep_n, tr->feat_all,
                                   tr->dfeat_all, tr->y + tr->seg_off[j], tr->yf + tr->seg_off[j],
                                   tr->task_weight[t] / (float)tr->B));
    }
    double t1 = tr_time_now();
    phase_add(tr, TR_PHASE_FORWARD, "forward", tc_end, t1);
    TR_CALL(tr_reduce_scatter_f32(g, g->replica_comm, tr->dfeat_all, tr->dfeat, tr->gather_counts,
                                  TR_COLL_FEATURES));
    double t2 = tr_time_now();
    phase_add(tr, TR_PHASE_COMM, "feature_reduce_scatter", t1, t2);
    TR_CALL(tr_model_trunk_backward(m, tr->t0, 0, 0, tr->my_n, tr->x, tr->dfeat));
    phase_add(tr, TR_PHASE_BACKWARD, "backward", t2, tr_time_now());
    return TR_OK;
}

static int all_finite(const float *v, size_t n) {
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += v[i] * 0.0f; /* NaN or inf poisons the sum */
    return acc == 0.0f;
}

/* Reduce gradients: shared tensors over world, task tensors over shard_comm. */
static tr_status reduce_gradients(tr_trainer *tr) {
    tr_params *p = &tr->model.params;
    size_t off, len;
    double t0 = tr_time_now();
    TR_CALL(tr_params_domain_range(p, 0, &off, &len));
    TR_CALL(tr_allreduce_f32(&tr->grid, tr->grid.world, p->grad + off, len, TR_COLL_TRUNK));
    double t1 = tr_time_now();
    phase_add(tr, TR_PHASE_COMM, "trunk_allreduce", t0, t1);
    TR_CALL(tr_params_domain_range(p, 1, &off, &len));
    TR_CALL(tr_allreduce_f32(&tr->grid, tr->grid.shard_comm, p->grad + off, len, TR_COLL_HEAD));
    phase_add(tr, TR_PHASE_COMM, "head_allreduce", t1, tr_time_now());
    return TR_OK;
}

/* ---- loop ------------------------------------------------------------------------- */

/* MRN after the optimizer: the proximal prior step (eta = the head learning
 * rate; with mrn.prox_every = N, every N steps with the summed eta, and always
 * before a covariance update, a validation and the end), then every
 * mrn.update_every steps the covariance updates. */
static tr_status mrn_after_step(tr_trainer *tr, int64_t step, float lr, int64_t eval_every) {
    double t0 = tr_time_now();
    int64_t done = step + 1;
    int update = done % tr->mrn.o.update_every == 0;
    if (tr->mrn.o.prox) {
        tr->mrn.counters[1] += (double)lr * tr->cfg->opt.lr_mult[TR_GROUP_HEAD];
        if (done % tr->mrn.o.prox_every == 0 || update || done % eval_every == 0 ||
            done == tr->total_steps) {
            TR_CALL(tr_mrn_step_prox(&tr->mrn, &tr->model, &tr->grid, tr->mrn.counters[1]));
            tr->mrn.counters[1] = 0.0;
            phase_add(tr, TR_PHASE_MRN, "mrn_prox", t0, tr_time_now());
        }
    }
    if (update) {
        double t1 = tr_time_now();
        TR_CALL(tr_mrn_step_update(&tr->mrn, &tr->model, &tr->grid));
        TR_CALL(tr_mrn_relations(&tr->mrn, &tr->relations)); /* for the next checkpoint */
        phase_add(tr, TR_PHASE_MRN, "mrn_update", t1, tr_time_now());
    }
    return TR_OK;
}

/* The relation matrices of the trained model: MRN's task correlations (from
 * the last covariance update, and of W - W_init of the selected weights). */
static tr_status collect_relations(tr_trainer *tr) {
    if (!tr->has_mrn)
        return TR_OK;
    tr_mrn *mrn = &tr->mrn;
    for (int l = 0; l < mrn->n_layers; l++)
        TR_CALL(tr_mrn_layer_gather(
            mrn, l, &tr->grid, tr_params_task_data(&tr->model.params, mrn->layer[l].pid, mrn->t0)));
    TR_CALL(tr_mrn_relations(mrn, &tr->relations));
    return TR_OK;
}

/* The per-step action slot of the fused all-reduce, combined with MAX:
 * a stop signal on any rank (checkpoint and stop) beats rank 0's clock saying
 * a timed checkpoint is due (checkpoint and go on). */
enum { ACT_NONE = 0, ACT_CHECKPOINT = 1, ACT_STOP = 2 };

static double local_action(const tr_trainer *tr, int64_t step) {
    if (tr_signals_pending() ||
        (tr->opts.stop_after_steps == step + 1 && tr->grid.rank == tr->grid.size - 1))
        return ACT_STOP;
    float every = tr->cfg->ckpt_every_seconds;
    if (tr->grid.rank == 0 && every > 0 && tr_time_now() - tr->last_ckpt_time >= every)
        return ACT_CHECKPOINT;
    return ACT_NONE;
}

static void snapshot_best(tr_trainer *tr, int64_t step, double score) {
    tr_model *m = &tr->model;
    memcpy(tr->best_params, m->params.data, m->params.total * sizeof(float));
    if (m->buffers.total)
        memcpy(tr->best_buffers, m->buffers.data, m->buffers.total * sizeof(float));
    tr->best_score = score;
    tr->best_step = step;
}

static int improves(const tr_trainer *tr, double score) {
    if (isnan(tr->best_score))
        return 1;
    return tr->classification ? score > tr->best_score : score < tr->best_score;
}

static tr_status validate_and_select(tr_trainer *tr, int64_t step, const tr_task_stats *train_st,
                                     double lr) {
    double t0 = tr_time_now();
    tr_task_stats val[TR_MAX_TASKS];
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_VAL, val));
    double score = tr_mean_metric(tr, val);
    if (improves(tr, score))
        snapshot_best(tr, step, score);
    phase_add(tr, TR_PHASE_EVAL, "eval", t0, tr_time_now());
    if (tr->grid.rank == 0)
        tr_report_eval(tr, step, train_st, val, lr);
    return TR_OK;
}

static tr_status train_loop(tr_trainer *tr, tr_train_result *res) {
    const tr_config *cfg = tr->cfg;
    tr_model *m = &tr->model;
    int T = tr->T;
    tr_schedule sched = cfg->sched;
    sched.total_steps = tr->total_steps;
    int64_t eval_every = cfg->eval_every > 0 ? cfg->eval_every : tr->steps_per_epoch;
    tr_task_stats st[TR_MAX_TASKS];
    tr_task_stats *window = tr->window; /* training stats since the last validation */
    if (tr->opts.record_losses)
        TR_ALLOC(res->losses, (size_t)tr->total_steps * (size_t)T, "loss history");
    tr_grid_reset_stats(&tr->grid);
    double t_train = tr->train_seconds;
    for (int64_t step = tr->start_step; step < tr->total_steps; step++) {
        double ts = tr_time_now();
        float lr = tr_schedule_lr(&sched, step);
        tr->step = step;
        assemble_batch(tr, step);
        phase_add(tr, TR_PHASE_DATA, "data", ts, tr_time_now());
        tr_params_zero_grad(&m->params);
        memset(st, 0, sizeof(st[0]) * (size_t)(tr->tn > 0 ? tr->tn : 1));
        if (m->rel)
            TR_CALL(tr_step_relational(tr, st));
        else if (tr->ds.setting == TR_SETTING_MULTI_INPUT)
            TR_CALL(step_multi_input(tr, st));
        else
            TR_CALL(step_shared_input(tr, st));
        TR_CALL(reduce_gradients(tr));
        if (tr->has_mrn && !tr->mrn.o.prox) {
            double tm = tr_time_now();
            TR_CALL(tr_mrn_step_gradient(&tr->mrn, m, &tr->grid));
            phase_add(tr, TR_PHASE_MRN, "mrn_prior_gradient", tm, tr_time_now());
        }
        /* fused scalars: per task loss, count, correct, abs; then non-finite and stop flags */
        double *sc = tr->scalars;
        memset(sc, 0, (size_t)(4 * T + 2) * sizeof(double));
        int nonfinite = !all_finite(m->params.grad, m->params.total);
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            if (!isfinite(st[j].loss_sum))
                nonfinite = 1;
            sc[4 * t + 0] = st[j].loss_sum;
            sc[4 * t + 1] = st[j].count;
            sc[4 * t + 2] = st[j].correct;
            sc[4 * t + 3] = st[j].abs_sum;
        }
        if (nonfinite)
            memset(sc, 0, (size_t)(4 * T) * sizeof(double));
        sc[4 * T] = nonfinite;
        sc[4 * T + 1] = local_action(tr, step);
        double tc = tr_time_now();
        TR_CALL(tr_allreduce_fused(&tr->grid, sc, 4 * T, 2));
        phase_add(tr, TR_PHASE_COMM, "scalar_allreduce", tc, tr_time_now());
        if (sc[4 * T] > 0.0)
            TR_RAISE(TR_ERR_NUMERIC,
                     "non-finite loss or gradient at step %lld (lr %.3g): lower train.lr or "
                     "check the data%s",
                     (long long)step, (double)lr,
                     tr->has_mrn && !tr->mrn.o.prox
                         ? " (with mrn.prior_step = gradient the prior's curvature can exceed "
                           "2 / lr once tasks correlate: use mrn.prior_step = prox or a smaller "
                           "mrn.lambda)"
                         : "");
        double to = tr_time_now();
        tr_opt_step(&tr->opt, &m->params, lr);
        phase_add(tr, TR_PHASE_OPTIMIZER, "optimizer", to, tr_time_now());
        if (tr->has_mrn)
            TR_CALL(mrn_after_step(tr, step, lr, eval_every));
        double mean_loss = 0.0;
        for (int t = 0; t < T; t++) {
            double l = sc[4 * t + 1] > 0 ? sc[4 * t] / sc[4 * t + 1] : 0.0;
            mean_loss += l / T;
            if (res->losses)
                res->losses[(size_t)step * T + t] = l;
            window[t].loss_sum += sc[4 * t];
            window[t].count += sc[4 * t + 1];
            window[t].correct += sc[4 * t + 2];
            window[t].abs_sum += sc[4 * t + 3];
        }
        tr_loss_watch_step(tr, step, mean_loss);
        tr->samples += (int64_t)tr->B * (tr->ds.setting == TR_SETTING_MULTI_INPUT ? T : 1);
        t_train += tr_time_now() - ts;
        tr->train_seconds = t_train;
        res->steps = step + 1;
        if (tr->grid.rank == 0 && !tr->opts.quiet)
            tr_report_progress(tr, step + 1, mean_loss, 0);
        if ((step + 1) % eval_every == 0 || step + 1 == tr->total_steps) {
            TR_CALL(validate_and_select(tr, step + 1, window, lr));
            memset(window, 0, sizeof(tr->window));
        }
        /* every rank takes this branch from the same agreed action */
        int action = (int)sc[4 * T + 1];
        int64_t every = cfg->ckpt_every_steps;
        if (action >= ACT_CHECKPOINT || (every > 0 && (step + 1) % every == 0))
            TR_CALL(tr_ckpt_write(tr, step + 1));
        if (action >= ACT_STOP) {
            if (tr->grid.rank == 0 && tr->progress_tty && !tr->opts.quiet)
                fprintf(stderr, "\n");
            TR_RAISE(TR_STOPPED,
                     "stopped by a signal after step %lld of %lld: checkpoint %s written; "
                     "continue with --resume auto (exit code 3)",
                     (long long)(step + 1), (long long)tr->total_steps, tr->ckpt_last);
        }
    }
    return TR_OK;
}

static tr_status finish(tr_trainer *tr, tr_train_result *res) {
    tr_model *m = &tr->model;
    /* restore the model selected on validation, then test it */
    memcpy(m->params.data, tr->best_params, m->params.total * sizeof(float));
    if (m->buffers.total)
        memcpy(m->buffers.data, tr->best_buffers, m->buffers.total * sizeof(float));
    tr_task_stats val[TR_MAX_TASKS], test[TR_MAX_TASKS];
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_VAL, val));
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_TEST, test));
    res->T = tr->T;
    res->best_step = tr->best_step;
    res->classification = tr->classification;
    for (int t = 0; t < tr->T; t++) {
        res->val_metric[t] = tr_task_metric(tr, &val[t]);
        res->test_metric[t] = tr_task_metric(tr, &test[t]);
    }
    res->val_mean = tr_mean_metric(tr, val);
    res->test_mean = tr_mean_metric(tr, test);
    res->train_seconds = tr->train_seconds;
    res->samples_per_s = tr->train_seconds > 0 ? (double)tr->samples / tr->train_seconds : 0.0;
    memcpy(res->comm, tr->grid.stats, sizeof(res->comm));
    snprintf(res->run_dir, sizeof(res->run_dir), "%s", tr->run_dir);
    char path[TR_PATH_LEN + 16];
    snprintf(path, sizeof(path), "%s/model.h5", tr->run_dir);
    TR_CALL(tr_weights_save(path, &m->params, &m->buffers, &tr->grid, tr->cfg));
    if (m->rel) /* MRAN / MMoE: relation matrices and alignment of the selected model */
        TR_CALL(tr_rel_relations(&tr->model, &tr->relations));
    snprintf(path, sizeof(path), "%s/timeline.json", tr->run_dir);
    TR_CALL(tr_timeline_write(tr->timeline, tr->grid.world, path));
    TR_CALL(collect_relations(tr));
    tr_status st = TR_OK;
    if (tr->grid.rank == 0) {
        if (tr->relations.n > 0) {
            snprintf(path, sizeof(path), "%s/relations.h5", tr->run_dir);
            st = tr_relations_save(path, &tr->relations);
        }
        tr_report_final(tr, val, test);
        if (!tr->opts.quiet) {
            tr_report_table(tr, val, test, tr_time_now() - tr->t_start);
            tr_report_relations(tr, stdout);
            if (tr->relations.n > 0)
                printf("\nrelations: %s/relations.h5 (taskrel inspect / taskrel plot relations)\n",
                       tr->run_dir);
        }
    }
    TR_CALL(tr_agree(tr->grid.world, st));
    return TR_OK;
}

/* Checkpoint figures into the result (also after a stop). */
static void ckpt_result(const tr_trainer *tr, tr_train_result *res) {
    res->first_step = tr->start_step;
    res->checkpoints = tr->ckpt_written;
    res->ckpt_io_collective = tr->ckpt_io.collective;
    res->ckpt_io_independent = tr->ckpt_io.independent;
    snprintf(res->checkpoint, sizeof(res->checkpoint), "%s", tr->ckpt_last);
}

static tr_status train_body(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                            const tr_train_opts *opts, tr_train_result *res) {
    TR_CALL(tr_trainer_init(tr, cfg, world, opts));
    tr->t_start = tr_time_now();
    TR_CALL(tr_ckpt_prepare(tr));
    TR_CALL(tr_ckpt_resume(tr, opts ? opts->resume : NULL));
    res->steps = tr->start_step;
    if (tr->grid.rank == 0)
        TR_CALL(tr_report_open(tr));
    tr_status st = train_loop(tr, res);
    ckpt_result(tr, res);
    if (tr->ckpt_io.independent > 0 && tr->grid.rank == 0)
        tr_log(TR_LOG_WARN, "checkpoint I/O fell back to independent I/O %lld time(s): %s",
               (long long)tr->ckpt_io.independent, tr->ckpt_io.cause);
    TR_CALL(st);
    TR_CALL(finish(tr, res));
    return TR_OK;
}

tr_status tr_train_run(const tr_config *cfg, MPI_Comm world, const tr_train_opts *opts,
                       tr_train_result *res) {
    memset(res, 0, sizeof(*res));
    tr_trainer *tr = calloc(1, sizeof(*tr));
    TR_CHECK(tr != NULL, TR_ERR_NOMEM, "out of memory");
    tr_signals_install();
    tr_status st = train_body(tr, cfg, world, opts, res);
    tr_signals_restore();
    /* Every failure that can differ between ranks is agreed on here, so no
     * rank leaves while another waits in a collective. Failures inside a
     * collective on one rank surface as MPI errors on the others. */
    st = tr_agree(world, st);
    tr_trainer_free(tr);
    free(tr);
    return st;
}

static tr_status eval_body(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                           const char *weights, tr_train_result *res) {
    tr->eval_only = 1;
    TR_CALL(tr_trainer_init(tr, cfg, world, NULL));
    tr->t_start = tr_time_now();
    TR_CALL(tr_weights_load(weights, &tr->model.params, &tr->model.buffers, &tr->grid));
    tr_task_stats val[TR_MAX_TASKS], test[TR_MAX_TASKS];
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_VAL, val));
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_TEST, test));
    res->T = tr->T;
    res->classification = tr->classification;
    for (int t = 0; t < tr->T; t++) {
        res->val_metric[t] = tr_task_metric(tr, &val[t]);
        res->test_metric[t] = tr_task_metric(tr, &test[t]);
    }
    res->val_mean = tr_mean_metric(tr, val);
    res->test_mean = tr_mean_metric(tr, test);
    snprintf(tr->run_dir, sizeof(tr->run_dir), "%s", weights);
    if (tr->grid.rank == 0)
        tr_report_table(tr, val, test, tr_time_now() - tr->t_start);
    return TR_OK;
}

tr_status tr_eval_run(const tr_config *cfg, MPI_Comm world, const char *weights_path,
                      tr_train_result *res) {
    memset(res, 0, sizeof(*res));
    tr_trainer *tr = calloc(1, sizeof(*tr));
    TR_CHECK(tr != NULL, TR_ERR_NOMEM, "out of memory");
    tr_status st = eval_body(tr, cfg, world, weights_path, res);
    st = tr_agree(world, st);
    tr_trainer_free(tr);
    free(tr);
    return st;
}

void tr_train_result_free(tr_train_result *r) {
    if (!r)
        return;
    tr_free(r->losses);
    r->losses = NULL;
}
