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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "taskrel/timeline.h"
#include "taskrel/weights.h"
#include "trainer_internal.h"

#define TR_EVAL_CHUNK 512
#define TR_SAMPLE_ID_TASK_SHIFT 40 /* global sample id = task << 40 | index */

/* Accumulate a phase's time on this rank and record it on the timeline. */
static void phase_add(tr_trainer *tr, tr_phase ph, const char *name, double t0, double t1)
{
    tr->phase[ph] += t1 - t0;
    tr_timeline_add(tr->timeline, name, t0, t1, tr->step);
}

/* ---- batches ------------------------------------------------------------------- */

static int64_t task_n(const tr_trainer *tr, int t, tr_split s)
{
    if (tr->ds.setting == TR_SETTING_SHARED_INPUT)
        return tr->ds.shared[s].n;
    return tr->ds.tasks[t].split[s].n;
}

/* Permutations of epoch e: one per local task (multi-input), keyed on
 * (seed, epoch, task), or one for the shared examples keyed on (seed, epoch, T). */
static void make_perms(tr_trainer *tr, int64_t epoch)
{
    if (tr->perm_epoch == epoch)
        return;
    uint64_t seed = tr->cfg->seed;
    if (tr->ds.setting == TR_SETTING_SHARED_INPUT) {
        tr_rng_permutation(tr->perm, (int32_t)tr->ds.shared[TR_SPLIT_TRAIN].n, seed,
                           TR_RNG_SHUFFLE, (uint64_t)epoch * 65536u + (uint64_t)tr->T);
    } else {
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            tr_rng_permutation(tr->perm + (size_t)j * tr->perm_stride,
                               (int32_t)task_n(tr, t, TR_SPLIT_TRAIN), seed, TR_RNG_SHUFFLE,
                               (uint64_t)epoch * 65536u + (uint64_t)t);
        }
    }
    tr->perm_epoch = epoch;
}

/* Rows [lo, lo+n) of a contiguous split of `total` into `parts` parts. */
static void part_range(int total, int parts, int index, int *lo, int *n)
{
    int a = (int)((int64_t)total * index / parts);
    int b = (int)((int64_t)total * (index + 1) / parts);
    *lo = a;
    *n = b - a;
}

static void copy_example(tr_trainer *tr, int row, const tr_split_data *sd, int64_t idx, int t,
                         int64_t id)
{
    size_t ss = (size_t)tr->ds.sample_size;
    memcpy(tr->x + (size_t)row * ss, sd->x + (size_t)idx * ss, ss * sizeof(float));
    tr->ids[row] = id;
    (void)t;
}

/* Assemble the rows of global batch k for this rank. */
static void assemble_batch(tr_trainer *tr, int64_t step)
{
    int64_t epoch = step / tr->steps_per_epoch, k = step % tr->steps_per_epoch;
    make_perms(tr, epoch);
    if (tr->ds.setting == TR_SETTING_MULTI_INPUT) {
        int lo, n;
        part_range(tr->B, tr->grid.R, tr->grid.r, &lo, &n);
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
                copy_example(tr, row, sd, idx, t, ((int64_t)t << TR_SAMPLE_ID_TASK_SHIFT) | idx);
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
            copy_example(tr, i, sd, idx, -1, idx);
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

static tr_status step_multi_input(tr_trainer *tr, tr_task_stats *st)
{
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
                                   tr->dfeat + (size_t)off * fd, tr->y + off, tr->yf + off,
                                   scale));
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

static tr_status step_shared_input(tr_trainer *tr, tr_task_stats *st)
{
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
                                   tr->dfeat_all, tr->y + tr->seg_off[j],
                                   tr->yf + tr->seg_off[j], tr->task_weight[t] / (float)tr->B));
    }
    double t1 = tr_time_now();
    phase_add(tr, TR_PHASE_FORWARD, "forward", tc_end, t1);
    TR_CALL(tr_reduce_scatter_f32(g, g->replica_comm, tr->dfeat_all, tr->dfeat,
                                  tr->gather_counts, TR_COLL_FEATURES));
    double t2 = tr_time_now();
    phase_add(tr, TR_PHASE_COMM, "feature_reduce_scatter", t1, t2);
    TR_CALL(tr_model_trunk_backward(m, tr->t0, 0, 0, tr->my_n, tr->x, tr->dfeat));
    phase_add(tr, TR_PHASE_BACKWARD, "backward", t2, tr_time_now());
    return TR_OK;
}

static int all_finite(const float *v, size_t n)
{
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += v[i] * 0.0f; /* NaN or inf poisons the sum */
    return acc == 0.0f;
}

/* Reduce gradients: shared tensors over world, task tensors over shard_comm. */
static tr_status reduce_gradients(tr_trainer *tr)
{
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

/* ---- setup ---------------------------------------------------------------------- */

static tr_status bn_sync_world(void *ctx, double *buf, int n)
{
    tr_trainer *tr = ctx;
    return tr_allreduce_f64(&tr->grid, tr->grid.world, buf, (size_t)n, TR_COLL_OTHER);
}

static tr_status bn_sync_shard(void *ctx, double *buf, int n)
{
    tr_trainer *tr = ctx;
    return tr_allreduce_f64(&tr->grid, tr->grid.shard_comm, buf, (size_t)n, TR_COLL_OTHER);
}

static tr_status parse_task_weights(tr_trainer *tr)
{
    for (int t = 0; t < tr->T; t++)
        tr->task_weight[t] = 1.0f;
    const char *s = tr->cfg->task_weights;
    if (!s[0])
        return TR_OK;
    int t = 0;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        TR_CHECK(end != s && v >= 0.0 && isfinite(v), TR_ERR_CONFIG,
                 "train.task_weights: '%s' is not a list of non-negative numbers",
                 tr->cfg->task_weights);
        TR_CHECK(t < tr->T, TR_ERR_CONFIG,
                 "train.task_weights has more entries than the dataset's %d tasks", tr->T);
        tr->task_weight[t++] = (float)v;
        s = end;
        while (*s == ',' || *s == ' ')
            s++;
    }
    TR_CHECK(t == tr->T, TR_ERR_CONFIG,
             "train.task_weights has %d entries but the dataset has %d tasks", t, tr->T);
    return TR_OK;
}

static tr_status make_run_dir(tr_trainer *tr)
{
    char dir[TR_PATH_LEN];
    const char *want = tr->opts.run_dir ? tr->opts.run_dir : tr->cfg->run_dir;
    if (want && want[0]) {
        snprintf(dir, sizeof(dir), "%s", want);
    } else if (tr->grid.rank == 0) {
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        char stamp[32];
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tmv);
        snprintf(dir, sizeof(dir), "runs/%s-%s", tr_model_kind_str(tr->cfg->model_kind), stamp);
    }
    TR_MPI(MPI_Bcast(dir, (int)sizeof(dir), MPI_CHAR, 0, tr->grid.world));
    snprintf(tr->run_dir, sizeof(tr->run_dir), "%s", dir);
    tr_status st = TR_OK;
    if (tr->grid.rank == 0) {
        /* mkdir -p */
        char tmp[TR_PATH_LEN];
        snprintf(tmp, sizeof(tmp), "%s", dir);
        for (char *p = tmp + 1; *p && st == TR_OK; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && access(tmp, F_OK) != 0)
                st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                                  "cannot create run directory %s", tmp);
            *p = '/';
        }
        if (st == TR_OK && mkdir(tmp, 0755) != 0 && access(tmp, W_OK) != 0)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                              "cannot create run directory %s", dir);
    }
    TR_CALL(tr_agree(tr->grid.world, st));
    return TR_OK;
}

static tr_status load_data(tr_trainer *tr, MPI_Comm world)
{
    const tr_config *cfg = tr->cfg;
    /* Every rank reads the dataset; validation errors are the same everywhere,
     * but agree anyway so that an unreadable file on one node cannot hang. */
    tr_status st = tr_dataset_load(&tr->ds, cfg->data_path);
    if (st == TR_OK)
        st = tr_dataset_select_tasks(&tr->ds, cfg->data_tasks);
    TR_CALL(tr_agree(world, st));
    return TR_OK;
}

static tr_status trainer_init(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                              const tr_train_opts *opts)
{
    int eval_only = tr->eval_only;
    memset(tr, 0, sizeof(*tr));
    tr->eval_only = eval_only;
    tr->cfg = cfg;
    if (opts)
        tr->opts = *opts;
    tr->perm_epoch = -1;
    tr->best_score = NAN;
    TR_CALL(load_data(tr, world));
    tr->T = tr->ds.T;
    TR_CHECK(tr->T <= TR_MAX_TASKS, TR_ERR_DATA, "%d tasks exceed the limit of %d", tr->T,
             TR_MAX_TASKS);
    TR_CALL(tr_grid_init(&tr->grid, world, tr->T, cfg->task_shards, NULL));
    tr_grid *g = &tr->grid;
    tr->t0 = g->t0;
    tr->tn = g->tn;
    TR_CALL(parse_task_weights(tr));
    tr->B = cfg->batch_size;
    TR_CHECK(tr->B >= g->R, TR_ERR_CONFIG,
             "train.batch_size = %d is smaller than the %d data replicas: every replica needs "
             "at least one example per step",
             tr->B, g->R);
    int64_t max_n = 0;
    for (int t = 0; t < tr->T; t++)
        if (task_n(tr, t, TR_SPLIT_TRAIN) > max_n)
            max_n = task_n(tr, t, TR_SPLIT_TRAIN);
    tr->steps_per_epoch = (max_n + tr->B - 1) / tr->B;
    tr->total_steps = tr->steps_per_epoch * cfg->epochs;
    if (cfg->max_steps > 0 && cfg->max_steps < tr->total_steps)
        tr->total_steps = cfg->max_steps;

    int trunk_per_task = cfg->model_kind == TR_MODEL_STL;
    tr->eval_chunk = TR_EVAL_CHUNK;
    int rep_max = (tr->B + g->R - 1) / g->R; /* largest replica slice */
    if (tr->ds.setting == TR_SETTING_MULTI_INPUT) {
        tr->max_rows = rep_max * tr->tn;
        tr->max_head_rows = tr->max_rows;
        tr->perm_stride = max_n;
        TR_ALLOC(tr->perm, (size_t)max_n * (size_t)tr->tn, "permutations");
    } else {
        part_range(tr->B, g->R, g->r, &tr->rep_lo, &tr->rep_n);
        part_range(tr->rep_n, g->S, g->s, &tr->my_lo, &tr->my_n);
        tr->max_rows = trunk_per_task ? rep_max * tr->tn : rep_max;
        tr->max_head_rows = rep_max * tr->tn;
        TR_ALLOC(tr->perm, (size_t)tr->ds.shared[TR_SPLIT_TRAIN].n, "permutation");
    }
    if (tr->max_rows < tr->eval_chunk)
        tr->max_rows = tr->eval_chunk;
    if (tr->max_head_rows < tr->eval_chunk)
        tr->max_head_rows = tr->eval_chunk;
    /* model: slots = local tasks for per-task trunks */
    TR_CALL(tr_model_init(&tr->model, cfg, &tr->ds, tr->t0, tr->tn, tr->max_rows,
                          tr->max_head_rows, tr->tn > 0 ? tr->tn : 1));
    tr_model *m = &tr->model;
    if (g->size > 1) {
        m->sync = trunk_per_task ? bn_sync_shard : bn_sync_world;
        m->sync_ctx = tr;
    }
    tr->classification = m->task_kind == TR_TASK_CLASSIFICATION;
    size_t fd = (size_t)m->feat_dim;
    TR_ALLOC(tr->x, (size_t)tr->max_rows * (size_t)tr->ds.sample_size, "batch inputs");
    TR_ALLOC(tr->ids, (size_t)tr->max_rows, "batch ids");
    TR_ALLOC(tr->y, (size_t)tr->max_head_rows, "batch labels");
    TR_ALLOC(tr->yf, (size_t)tr->max_head_rows, "batch targets");
    TR_ALLOC(tr->dfeat, (size_t)tr->max_rows * fd, "feature gradients");
    if (tr->ds.setting == TR_SETTING_SHARED_INPUT) {
        TR_ALLOC(tr->feat_all, (size_t)rep_max * fd, "gathered features");
        TR_ALLOC(tr->dfeat_all, (size_t)rep_max * fd, "gathered feature gradients");
        TR_ALLOC(tr->gather_counts, (size_t)g->S, "gather counts");
        TR_ALLOC(tr->gather_displs, (size_t)g->S, "gather displacements");
        for (int s = 0; s < g->S; s++) {
            int lo, n;
            part_range(tr->rep_n, g->S, s, &lo, &n);
            tr->gather_counts[s] = n * (int)fd;
            tr->gather_displs[s] = lo * (int)fd;
        }
    }
    TR_ALLOC(tr->scalars, (size_t)(4 * tr->T + 2), "step scalars");
    TR_CALL(tr_opt_init(&tr->opt, &cfg->opt, &m->params));
    TR_ALLOC(tr->best_params, m->params.total, "best parameters");
    TR_ALLOC(tr->best_buffers, m->buffers.total ? m->buffers.total : 1, "best buffers");
    if (!tr->eval_only) {
        TR_CALL(make_run_dir(tr));
        /* ~10 events a step; a long run keeps its most recent events */
        int64_t cap = tr->total_steps * 12 + 64;
        TR_CALL(tr_timeline_create(&tr->timeline, (int)(cap < 1000000 ? cap : 1000000)));
    }
    return TR_OK;
}

static void trainer_free(tr_trainer *tr)
{
    tr_opt_free(&tr->opt);
    tr_model_free(&tr->model);
    tr_dataset_free(&tr->ds);
    tr_free(tr->perm);
    tr_free(tr->x);
    tr_free(tr->ids);
    tr_free(tr->y);
    tr_free(tr->yf);
    tr_free(tr->dfeat);
    tr_free(tr->feat_all);
    tr_free(tr->dfeat_all);
    tr_free(tr->gather_counts);
    tr_free(tr->gather_displs);
    tr_free(tr->scalars);
    tr_free(tr->best_params);
    tr_free(tr->best_buffers);
    tr_report_close(tr);
    tr_timeline_free(tr->timeline);
    tr_grid_free(&tr->grid);
}

/* ---- loop ------------------------------------------------------------------------- */

static void snapshot_best(tr_trainer *tr, int64_t step, double score)
{
    tr_model *m = &tr->model;
    memcpy(tr->best_params, m->params.data, m->params.total * sizeof(float));
    if (m->buffers.total)
        memcpy(tr->best_buffers, m->buffers.data, m->buffers.total * sizeof(float));
    tr->best_score = score;
    tr->best_step = step;
}

static int improves(const tr_trainer *tr, double score)
{
    if (isnan(tr->best_score))
        return 1;
    return tr->classification ? score > tr->best_score : score < tr->best_score;
}

static tr_status validate_and_select(tr_trainer *tr, int64_t step, const tr_task_stats *train_st,
                                     double lr)
{
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

static tr_status train_loop(tr_trainer *tr, tr_train_result *res)
{
    const tr_config *cfg = tr->cfg;
    tr_model *m = &tr->model;
    int T = tr->T;
    tr_schedule sched = cfg->sched;
    sched.total_steps = tr->total_steps;
    int64_t eval_every = cfg->eval_every > 0 ? cfg->eval_every : tr->steps_per_epoch;
    tr_task_stats st[TR_MAX_TASKS];
    tr_task_stats window[TR_MAX_TASKS]; /* training stats since the last validation */
    memset(window, 0, sizeof(window));
    if (tr->opts.record_losses)
        TR_ALLOC(res->losses, (size_t)tr->total_steps * (size_t)T, "loss history");
    tr_grid_reset_stats(&tr->grid);
    double t_train = 0.0;
    for (int64_t step = 0; step < tr->total_steps; step++) {
        double ts = tr_time_now();
        float lr = tr_schedule_lr(&sched, step);
        tr->step = step;
        assemble_batch(tr, step);
        phase_add(tr, TR_PHASE_DATA, "data", ts, tr_time_now());
        tr_params_zero_grad(&m->params);
        memset(st, 0, sizeof(st[0]) * (size_t)(tr->tn > 0 ? tr->tn : 1));
        if (tr->ds.setting == TR_SETTING_MULTI_INPUT)
            TR_CALL(step_multi_input(tr, st));
        else
            TR_CALL(step_shared_input(tr, st));
        TR_CALL(reduce_gradients(tr));
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
        sc[4 * T + 1] = 0.0; /* stop flag (signals: checkpoint issue) */
        double tc = tr_time_now();
        TR_CALL(tr_allreduce_fused(&tr->grid, sc, 4 * T, 2));
        phase_add(tr, TR_PHASE_COMM, "scalar_allreduce", tc, tr_time_now());
        if (sc[4 * T] > 0.0)
            TR_RAISE(TR_ERR_NUMERIC,
                     "non-finite loss or gradient at step %lld (lr %.3g): lower train.lr or "
                     "check the data",
                     (long long)step, (double)lr);
        double to = tr_time_now();
        tr_opt_step(&tr->opt, &m->params, lr);
        phase_add(tr, TR_PHASE_OPTIMIZER, "optimizer", to, tr_time_now());
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
        tr->samples += (int64_t)tr->B * (tr->ds.setting == TR_SETTING_MULTI_INPUT ? T : 1);
        t_train += tr_time_now() - ts;
        tr->train_seconds = t_train;
        res->steps = step + 1;
        if (tr->grid.rank == 0 && !tr->opts.quiet)
            tr_report_progress(tr, step + 1, mean_loss, 0);
        if ((step + 1) % eval_every == 0 || step + 1 == tr->total_steps) {
            TR_CALL(validate_and_select(tr, step + 1, window, lr));
            memset(window, 0, sizeof(window));
        }
    }
    return TR_OK;
}

static tr_status finish(tr_trainer *tr, tr_train_result *res)
{
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
    snprintf(path, sizeof(path), "%s/timeline.json", tr->run_dir);
    TR_CALL(tr_timeline_write(tr->timeline, tr->grid.world, path));
    if (tr->grid.rank == 0) {
        tr_report_final(tr, val, test);
        if (!tr->opts.quiet)
            tr_report_table(tr, val, test, tr_time_now() - tr->t_start);
    }
    return TR_OK;
}

static tr_status train_body(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                            const tr_train_opts *opts, tr_train_result *res)
{
    TR_CALL(trainer_init(tr, cfg, world, opts));
    tr->t_start = tr_time_now();
    if (tr->grid.rank == 0)
        TR_CALL(tr_report_open(tr));
    TR_CALL(train_loop(tr, res));
    TR_CALL(finish(tr, res));
    return TR_OK;
}

tr_status tr_train_run(const tr_config *cfg, MPI_Comm world, const tr_train_opts *opts,
                       tr_train_result *res)
{
    memset(res, 0, sizeof(*res));
    tr_trainer *tr = calloc(1, sizeof(*tr));
    TR_CHECK(tr != NULL, TR_ERR_NOMEM, "out of memory");
    tr_status st = train_body(tr, cfg, world, opts, res);
    /* Every failure that can differ between ranks is agreed on here, so no
     * rank leaves while another waits in a collective. Failures inside a
     * collective on one rank surface as MPI errors on the others. */
    st = tr_agree(world, st);
    trainer_free(tr);
    free(tr);
    return st;
}

static tr_status eval_body(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                           const char *weights, tr_train_result *res)
{
    tr->eval_only = 1;
    TR_CALL(trainer_init(tr, cfg, world, NULL));
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
                      tr_train_result *res)
{
    memset(res, 0, sizeof(*res));
    tr_trainer *tr = calloc(1, sizeof(*tr));
    TR_CHECK(tr != NULL, TR_ERR_NOMEM, "out of memory");
    tr_status st = eval_body(tr, cfg, world, weights_path, res);
    st = tr_agree(world, st);
    trainer_free(tr);
    free(tr);
    return st;
}

void tr_train_result_free(tr_train_result *r)
{
    if (!r)
        return;
    tr_free(r->losses);
    r->losses = NULL;
}
