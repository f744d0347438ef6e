/*
 * The training loop. Each step: assemble the batch, forward, backward, reduce
 * the gradients, the method's after-reduce op, one fused scalar all-reduce
 * (losses and the agreed action), the optimizer, the method's after-step op,
 * bookkeeping, and when due a validation with model selection and a
 * checkpoint. At the end: the selected model is tested and saved.
 *
 * Not here: the step's forward and backward (step.c), the rows (batch.c),
 * layer math (src/nn), models and methods (src/models), collectives
 * (src/comm), file formats (src/io), output formatting (report.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskrel/relations.h"
#include "taskrel/timeline.h"
#include "taskrel/weights.h"
#include "trainer_internal.h"

/* The per-step action slot of the fused all-reduce, combined with MAX:
 * a stop signal on any rank (checkpoint and stop) beats rank 0's clock saying
 * a timed checkpoint is due (checkpoint and go on). */
enum { ACT_NONE = 0, ACT_CHECKPOINT = 1, ACT_STOP = 2 };

/* What the loop carries from step to step. */
typedef struct {
    tr_schedule sched;
    int64_t eval_every;
    tr_task_stats st[TR_MAX_TASKS]; /* this step's local task statistics */
    float lr;
    int action; /* the agreed ACT_* of this step */
    double t_begin;
} loop_state;

static double local_action(const tr_trainer *tr, int64_t step) {
    if (tr_signals_pending() ||
        (tr->opts.stop_after_steps == step + 1 && tr->grid.rank == tr->grid.size - 1))
        return ACT_STOP;
    float every = tr->cfg->ckpt_every_seconds;
    if (tr->grid.rank == 0 && every > 0 && tr_time_now() - tr->ckpt.last_time >= every)
        return ACT_CHECKPOINT;
    return ACT_NONE;
}

static int all_finite(const float *v, size_t n) {
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += v[i] * 0.0f; /* NaN or inf poisons the sum */
    return acc == 0.0f;
}

/* The step's rows; a streamed read that failed on one rank stops every rank
 * here, before the step's collectives. */
static tr_status begin_step(tr_trainer *tr, loop_state *ls, int64_t step) {
    ls->t_begin = tr_time_now();
    ls->lr = tr_schedule_lr(&ls->sched, step);
    tr->step = step;
    tr_watchdog_set_step(step);
    tr_status st = tr_batch_assemble(&tr->batch, &tr->ds, &tr->grid, tr->cfg->seed, step);
    if (tr->cfg->data_load == TR_DATA_LOAD_STREAM)
        TR_CALL(tr_agree(tr->grid.world, st));
    TR_CALL(st);
    tr_trainer_phase(tr, TR_PHASE_DATA, "data", ls->t_begin, tr_time_now());
    tr_params_zero_grad(&tr->model.params);
    tr_weighting_begin_step(tr, step);
    memset(ls->st, 0, sizeof(ls->st[0]) * (size_t)(tr->tn > 0 ? tr->tn : 1));
    if (step % tr->batch.steps_per_epoch == 0)
        tr_method_epoch_begin(&tr->model);
    return TR_OK;
}

/* The fused all-reduce: every task's statistics (summed), a non-finite flag
 * and the action (max). Raises TR_ERR_NUMERIC on every rank alike. */
static tr_status agree_scalars(tr_trainer *tr, loop_state *ls, int64_t step) {
    int T = tr->T, flags = TR_STAT_FIELDS * T;
    double *sc = tr->scalars;
    tr_task_stats all[TR_MAX_TASKS];
    memset(all, 0, sizeof(all));
    int nonfinite = !all_finite(tr->model.params.grad, tr->model.params.total);
    for (int j = 0; j < tr->tn; j++) {
        nonfinite |= !isfinite(ls->st[j].loss_sum);
        all[tr->t0 + j] = ls->st[j];
    }
    if (nonfinite)
        memset(all, 0, sizeof(all));
    tr_stats_pack(sc, all, T);
    sc[flags + TR_FUSED_NONFINITE] = nonfinite;
    sc[flags + TR_FUSED_ACTION] = local_action(tr, step);
    double t0 = tr_time_now();
    TR_CALL(tr_allreduce_fused(&tr->grid, sc, flags, TR_FUSED_FLAGS));
    tr_trainer_phase(tr, TR_PHASE_COMM, "scalar_allreduce", t0, tr_time_now());
    TR_CHECK(sc[flags + TR_FUSED_NONFINITE] <= 0.0, TR_ERR_NUMERIC,
             "non-finite loss or gradient at step %lld (lr %.3g): lower train.lr or check the "
             "data%s",
             (long long)step, (double)ls->lr, tr_method_nonfinite_hint(&tr->model));
    ls->action = (int)sc[flags + TR_FUSED_ACTION];
    return TR_OK;
}

static tr_status optimizer_step(tr_trainer *tr, const loop_state *ls, int64_t step) {
    double t0 = tr_time_now();
    tr_opt_step(&tr->opt, &tr->model.params, ls->lr);
    tr_task_stats all[TR_MAX_TASKS];
    tr_stats_unpack(all, tr->scalars, tr->T);
    tr_weighting_after_losses(tr, all, ls->lr);
    tr_trainer_phase(tr, TR_PHASE_OPTIMIZER, "optimizer", t0, tr_time_now());
    int64_t done = step + 1;
    tr_step_info info = {step, ls->lr, done % ls->eval_every == 0 || done == tr->total_steps};
    return tr_method_after_step(&tr->model, &info);
}

/* Losses of the step into the result and the selection window; clocks. */
static void record_step(tr_trainer *tr, const loop_state *ls, int64_t step, tr_train_result *res) {
    int T = tr->T;
    tr_task_stats all[TR_MAX_TASKS];
    tr_stats_unpack(all, tr->scalars, T);
    double mean_loss = 0.0;
    for (int t = 0; t < T; t++) {
        double l = all[t].count > 0 ? all[t].loss_sum / all[t].count : 0.0;
        mean_loss += l / T;
        if (res->losses)
            res->losses[(size_t)step * T + t] = l;
        tr_task_stats *w = &tr->sel.window[t];
        w->loss_sum += all[t].loss_sum;
        w->count += all[t].count;
        w->correct += all[t].correct;
        w->abs_sum += all[t].abs_sum;
    }
    tr->rep.samples += (int64_t)tr->batch.B * (tr->batch.shared_input ? 1 : T);
    tr->rep.train_seconds += tr_time_now() - ls->t_begin;
    res->steps = step + 1;
    tr_loss_watch_step(tr, step, mean_loss);
    if (tr->grid.rank == 0 && !tr->opts.quiet)
        tr_report_progress(tr, step + 1, mean_loss, 0);
    if (tr->grid.rank == 0)
        tr_report_train_line(tr, step + 1, ls->lr, all);
}

static tr_status validate_and_select(tr_trainer *tr, int64_t step, double lr) {
    double t0 = tr_time_now();
    tr_task_stats val[TR_MAX_TASKS];
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_VAL, val));
    tr_selection_consider(&tr->sel, &tr->model, step, tr_mean_metric(&tr->sel, val, tr->T));
    tr_trainer_phase(tr, TR_PHASE_EVAL, "eval", t0, tr_time_now());
    if (tr->grid.rank == 0)
        tr_report_eval(tr, step, tr->sel.window, val, lr);
    memset(tr->sel.window, 0, sizeof(tr->sel.window));
    return TR_OK;
}

/* Every rank takes these branches from the same agreed action. */
static tr_status checkpoint_or_stop(tr_trainer *tr, const loop_state *ls, int64_t step) {
    int64_t every = tr->cfg->ckpt_every_steps;
    if (ls->action >= ACT_CHECKPOINT || (every > 0 && (step + 1) % every == 0))
        TR_CALL(tr_trainer_ckpt_write(tr, step + 1));
    if (ls->action < ACT_STOP)
        return TR_OK;
    if (tr->grid.rank == 0 && tr->rep.progress_tty && !tr->opts.quiet)
        fprintf(stderr, "\n");
    TR_RAISE(TR_STOPPED,
             "stopped by a signal after step %lld of %lld: checkpoint %s written; continue "
             "with --resume auto (exit code 3)",
             (long long)(step + 1), (long long)tr->total_steps, tr->ckpt.last);
}

static tr_status train_loop(tr_trainer *tr, tr_train_result *res) {
    loop_state ls;
    memset(&ls, 0, sizeof(ls));
    ls.sched = tr->cfg->sched;
    ls.sched.total_steps = tr->total_steps;
    ls.eval_every = tr->cfg->eval_every > 0 ? tr->cfg->eval_every : tr->batch.steps_per_epoch;
    if (tr->opts.record_losses)
        TR_ALLOC(res->losses, (size_t)tr->total_steps * (size_t)tr->T, "loss history");
    tr_grid_reset_stats(&tr->grid);
    for (int64_t step = tr->ckpt.start_step; step < tr->total_steps; step++) {
        TR_CALL(begin_step(tr, &ls, step));
        TR_CALL(tr_step_forward(tr, ls.st));
        TR_CALL(tr_step_backward(tr, ls.st));
        TR_CALL(tr_step_reduce_gradients(tr));
        TR_CALL(tr_method_after_reduce(&tr->model));
        TR_CALL(agree_scalars(tr, &ls, step));
        TR_CALL(optimizer_step(tr, &ls, step));
        record_step(tr, &ls, step, res);
        if ((step + 1) % ls.eval_every == 0 || step + 1 == tr->total_steps)
            TR_CALL(validate_and_select(tr, step + 1, ls.lr));
        TR_CALL(checkpoint_or_stop(tr, &ls, step));
    }
    return TR_OK;
}

/* ---- the end ------------------------------------------------------------------------ */

static void fill_metrics(const tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test,
                         tr_train_result *res) {
    res->T = tr->T;
    res->classification = tr->sel.classification;
    res->mixed = tr->sel.mixed;
    for (int t = 0; t < tr->T; t++) {
        res->val_metric[t] = tr_task_metric(&tr->sel, t, &val[t]);
        res->test_metric[t] = tr_task_metric(&tr->sel, t, &test[t]);
        res->task_regression[t] = tr->model.task_kinds[t] == TR_TASK_REGRESSION;
    }
    res->val_mean = tr_mean_metric(&tr->sel, val, tr->T);
    res->test_mean = tr_mean_metric(&tr->sel, test, tr->T);
}

/* rank 0: relations.h5, the final metrics line, the table. */
static tr_status write_final(tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test) {
    char path[TR_PATH_LEN + 16];
    tr_status st = TR_OK;
    if (tr->relations.n > 0) {
        snprintf(path, sizeof(path), "%s/relations.h5", tr->rep.run_dir);
        st = tr_relations_save(path, &tr->relations);
    }
    tr_report_final(tr, val, test);
    if (!tr->opts.quiet) {
        tr_report_table(tr, val, test, tr_time_now() - tr->rep.t_start);
        tr_report_relations(tr, stdout);
        if (tr->relations.n > 0)
            printf("\nrelations: %s/relations.h5 (taskrel inspect / taskrel plot relations)\n",
                   tr->rep.run_dir);
    }
    return st;
}

/* Restore the model selected on validation, test it, save it and its relations. */
static tr_status finish(tr_trainer *tr, tr_train_result *res) {
    tr_model *m = &tr->model;
    tr_selection_restore(&tr->sel, m);
    tr_task_stats val[TR_MAX_TASKS], test[TR_MAX_TASKS];
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_VAL, val));
    TR_CALL(tr_trainer_evaluate(tr, TR_SPLIT_TEST, test));
    fill_metrics(tr, val, test, res);
    res->best_step = tr->sel.best_step;
    res->train_seconds = tr->rep.train_seconds;
    res->samples_per_s =
        tr->rep.train_seconds > 0 ? (double)tr->rep.samples / tr->rep.train_seconds : 0.0;
    memcpy(res->comm, tr->grid.stats, sizeof(res->comm));
    snprintf(res->run_dir, sizeof(res->run_dir), "%s", tr->rep.run_dir);
    char path[TR_PATH_LEN + 16];
    snprintf(path, sizeof(path), "%s/model.h5", tr->rep.run_dir);
    TR_CALL(tr_weights_save(path, &m->params, &m->buffers, &tr->grid, tr->cfg, &tr->ckpt.prov));
    TR_CALL(tr_method_final_relations(m));
    TR_CALL(tr_weighting_relations(tr));
    snprintf(path, sizeof(path), "%s/timeline.json", tr->rep.run_dir);
    TR_CALL(tr_timeline_write(tr->rep.timeline, tr->grid.world, path));
    tr_status st = tr->grid.rank == 0 ? write_final(tr, val, test) : TR_OK;
    TR_CALL(tr_agree(tr->grid.world, st));
    return TR_OK;
}

/* Checkpoint figures into the result (also after a stop). */
static void ckpt_result(const tr_trainer *tr, tr_train_result *res) {
    res->first_step = tr->ckpt.start_step;
    res->checkpoints = tr->ckpt.written;
    res->ckpt_io_collective = tr->ckpt.io.collective;
    res->ckpt_io_independent = tr->ckpt.io.independent;
    snprintf(res->checkpoint, sizeof(res->checkpoint), "%s", tr->ckpt.last);
}

static tr_status train_body(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                            const tr_train_opts *opts, tr_train_result *res) {
    TR_CALL(tr_trainer_init(tr, cfg, world, opts));
    tr->rep.t_start = tr_time_now();
    TR_CALL(tr_trainer_ckpt_prepare(tr));
    TR_CALL(tr_trainer_resume(tr, opts ? opts->resume : NULL));
    res->steps = tr->ckpt.start_step;
    if (tr->grid.rank == 0)
        TR_CALL(tr_report_open(tr));
    tr_status st = train_loop(tr, res);
    ckpt_result(tr, res);
    if (tr->ckpt.io.independent > 0 && tr->grid.rank == 0)
        tr_log(TR_LOG_WARN, "checkpoint I/O fell back to independent I/O %lld time(s): %s",
               (long long)tr->ckpt.io.independent, tr->ckpt.io.cause);
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

/* eval --predictions: a path rank 0 can write (checked before any work, so
 * a bad path exits 2 at once on every rank). */
static tr_status check_predictions_path(tr_trainer *tr, const char *path) {
    tr_status st = TR_OK;
    if (tr->grid.rank == 0) {
        FILE *f = fopen(path, "wb");
        if (!f)
            st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                              "eval --predictions: cannot write %s: %s", path, strerror(errno));
        else
            fclose(f);
    }
    tr->pred_created = st == TR_OK;
    return tr_agree(tr->grid.world, st);
}

/* Evaluate val and test; with predictions, keep every row and write them. */
static tr_status eval_splits(tr_trainer *tr, const char *weights, const char *predictions,
                             tr_task_stats *val, tr_task_stats *test) {
    double *rows[TR_SPLIT_COUNT] = {NULL, NULL, NULL};
    tr_status st = TR_OK;
    if (predictions) {
        TR_ALLOC(tr->model.pred, (size_t)tr->batch.max_head_rows * (size_t)tr->model.out_dim,
                 "predictions");
        for (int s = TR_SPLIT_VAL; s <= TR_SPLIT_TEST && st == TR_OK; s++) {
            size_t n = tr_predictions_offset(&tr->ds, (tr_split)s, tr->T);
            if (tr->ds.has_split[s] && !(rows[s] = tr_calloc(n ? n : 1, sizeof(double))))
                st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__,
                                  "out of memory (predictions, %zu values)", n);
        }
    }
    tr->pred_rows = rows[TR_SPLIT_VAL];
    if (st == TR_OK)
        st = tr_trainer_evaluate(tr, TR_SPLIT_VAL, val);
    tr->pred_rows = rows[TR_SPLIT_TEST];
    if (st == TR_OK)
        st = tr_trainer_evaluate(tr, TR_SPLIT_TEST, test);
    tr->pred_rows = NULL;
    if (st == TR_OK && predictions && tr->model.pred_rows == 0 &&
        (tr->ds.has_split[TR_SPLIT_VAL] || tr->ds.has_split[TR_SPLIT_TEST]))
        st = tr_error_set(TR_ERR_CONFIG, __FILE__, __LINE__, __func__,
                          "eval --predictions: model.kind = %s does not hand out its outputs",
                          tr_model_kind_str(tr->cfg->model_kind));
    if (st == TR_OK && predictions && tr->grid.rank == 0) {
        const double *const out[TR_SPLIT_COUNT] = {NULL, rows[TR_SPLIT_VAL], rows[TR_SPLIT_TEST]};
        st = tr_predictions_write(predictions, &tr->ds, weights, out);
        if (st == TR_OK)
            tr_log(TR_LOG_INFO, "eval: wrote predictions to %s", predictions);
    }
    for (int s = 0; s < TR_SPLIT_COUNT; s++)
        tr_free(rows[s]);
    tr_free(tr->model.pred);
    tr->model.pred = NULL;
    return st;
}

static tr_status eval_body(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                           const char *weights, const char *predictions, tr_train_result *res) {
    tr->eval_only = 1;
    TR_CALL(tr_trainer_init(tr, cfg, world, NULL));
    TR_CHECK(tr->ds.has_split[TR_SPLIT_VAL] || tr->ds.has_split[TR_SPLIT_TEST], TR_ERR_DATA,
             "data: %s has neither a val nor a test split: nothing to evaluate", cfg->data_path);
    if (predictions)
        TR_CALL(check_predictions_path(tr, predictions));
    tr->rep.t_start = tr_time_now();
    TR_CALL(tr_weights_load(weights, &tr->model.params, &tr->model.buffers, &tr->grid));
    tr_task_stats val[TR_MAX_TASKS], test[TR_MAX_TASKS];
    TR_CALL(eval_splits(tr, weights, predictions, val, test));
    fill_metrics(tr, val, test, res);
    snprintf(tr->rep.run_dir, sizeof(tr->rep.run_dir), "%s", weights);
    if (tr->grid.rank == 0)
        tr_report_table(tr, val, test, tr_time_now() - tr->rep.t_start);
    return TR_OK;
}

tr_status tr_eval_run_ex(const tr_config *cfg, MPI_Comm world, const char *weights_path,
                         const char *predictions, tr_train_result *res) {
    memset(res, 0, sizeof(*res));
    tr_trainer *tr = calloc(1, sizeof(*tr));
    TR_CHECK(tr != NULL, TR_ERR_NOMEM, "out of memory");
    tr_status st = eval_body(tr, cfg, world, weights_path, predictions, res);
    st = tr_agree(world, st);
    if (st != TR_OK && predictions && tr->grid.rank == 0 && tr->pred_created)
        unlink(predictions); /* no partial or empty predictions file is left */
    tr_trainer_free(tr);
    free(tr);
    return st;
}

tr_status tr_eval_run(const tr_config *cfg, MPI_Comm world, const char *weights_path,
                      tr_train_result *res) {
    return tr_eval_run_ex(cfg, world, weights_path, NULL, res);
}

void tr_train_result_free(tr_train_result *r) {
    if (!r)
        return;
    tr_free(r->losses);
    r->losses = NULL;
}
