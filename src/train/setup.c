/*
 * Trainer set-up and tear-down: data loading (errors agreed over all ranks),
 * the rank grid, batch and feature buffers, the model and optimizer, the run
 * directory and the timeline. Not here: the step, the loop, evaluation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "taskrel/timeline.h"
#include "trainer_internal.h"

#define TR_EVAL_CHUNK 512 /* rows per evaluation forward */

int64_t tr_task_n(const tr_trainer *tr, int t, tr_split s) {
    if (tr->ds.setting == TR_SETTING_SHARED_INPUT)
        return tr->ds.shared[s].n;
    return tr->ds.tasks[t].split[s].n;
}

/* Rows [lo, lo+n) of a contiguous split of `total` into `parts` parts. */
void tr_part_range(int total, int parts, int index, int *lo, int *n) {
    int a = (int)((int64_t)total * index / parts);
    int b = (int)((int64_t)total * (index + 1) / parts);
    *lo = a;
    *n = b - a;
}

/* ---- setup ---------------------------------------------------------------------- */

static tr_status bn_sync_world(void *ctx, double *buf, int n) {
    tr_trainer *tr = ctx;
    return tr_allreduce_f64(&tr->grid, tr->grid.world, buf, (size_t)n, TR_COLL_OTHER);
}

static tr_status bn_sync_shard(void *ctx, double *buf, int n) {
    tr_trainer *tr = ctx;
    return tr_allreduce_f64(&tr->grid, tr->grid.shard_comm, buf, (size_t)n, TR_COLL_OTHER);
}

static tr_status make_run_dir(tr_trainer *tr) {
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
    /* rank 0 creates it; a path the user cannot write is exit 2 everywhere */
    tr_status st = tr->grid.rank == 0 ? tr_path_make_dir(dir, "run directory") : TR_OK;
    TR_CALL(tr_agree(tr->grid.world, st));
    return TR_OK;
}

static tr_status load_data(tr_trainer *tr, MPI_Comm world) {
    const tr_config *cfg = tr->cfg;
    /* Every rank reads the dataset; validation errors are the same everywhere,
     * but agree anyway so that an unreadable file on one node cannot hang. */
    tr_status st = tr_dataset_load(&tr->ds, cfg->data_path);
    if (st == TR_OK)
        st = tr_dataset_select_tasks(&tr->ds, cfg->data_tasks);
    TR_CALL(tr_agree(world, st));
    return TR_OK;
}

/* tr_mrn_each_state callback: the MRN state rides in every checkpoint. */
static tr_status add_extra(void *ctx, const char *name, double *data, int ndim,
                           const int64_t *dims) {
    return tr_trainer_add_extra(ctx, name, data, ndim, dims);
}

tr_status tr_trainer_init(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                          const tr_train_opts *opts) {
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
    TR_CALL(tr_config_task_weights(cfg, tr->T, tr->task_weight));
    tr->B = cfg->batch_size;
    TR_CHECK(tr->B >= g->R, TR_ERR_CONFIG,
             "train.batch_size = %d is smaller than the %d data replicas: every replica needs "
             "at least one example per step",
             tr->B, g->R);
    int64_t max_n = 0;
    for (int t = 0; t < tr->T; t++)
        if (tr_task_n(tr, t, TR_SPLIT_TRAIN) > max_n)
            max_n = tr_task_n(tr, t, TR_SPLIT_TRAIN);
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
        tr_part_range(tr->B, g->R, g->r, &tr->rep_lo, &tr->rep_n);
        tr_part_range(tr->rep_n, g->S, g->s, &tr->my_lo, &tr->my_n);
        tr->max_rows = trunk_per_task ? rep_max * tr->tn : rep_max;
        tr->max_head_rows = rep_max * tr->tn;
        TR_ALLOC(tr->perm, (size_t)tr->ds.shared[TR_SPLIT_TRAIN].n, "permutation");
    }
    if (tr->max_rows < tr->eval_chunk)
        tr->max_rows = tr->eval_chunk;
    if (tr->max_head_rows < tr->eval_chunk)
        tr->max_head_rows = tr->eval_chunk;
    /* model: slots = local tasks for per-task trunks */
    TR_CALL(tr_model_init(&tr->model, cfg, &tr->ds, tr->t0, tr->tn, tr->max_rows, tr->max_head_rows,
                          tr->tn > 0 ? tr->tn : 1));
    tr_model *m = &tr->model;
    if (g->size > 1) {
        m->sync = trunk_per_task ? bn_sync_shard : bn_sync_world;
        m->sync_ctx = tr;
    }
    if (m->rel)
        TR_CALL(tr_rel_trainer_setup(tr));
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
            tr_part_range(tr->rep_n, g->S, s, &lo, &n);
            tr->gather_counts[s] = n * (int)fd;
            tr->gather_displs[s] = lo * (int)fd;
        }
    }
    TR_ALLOC(tr->scalars, (size_t)(4 * tr->T + 2), "step scalars");
    TR_CALL(tr_opt_init(&tr->opt, &cfg->opt, &m->params));
    size_t len = 0; /* task names of the relation matrices (MRN, MRAN) */
    for (int t = 0; t < tr->T; t++) {
        int k = snprintf(tr->relations.tasks + len, sizeof(tr->relations.tasks) - len, "%s%s",
                         t ? "," : "", tr->ds.tasks[t].name);
        if (k < 0 || (size_t)k >= sizeof(tr->relations.tasks) - len)
            break;
        len += (size_t)k;
    }
    if (cfg->model_kind == TR_MODEL_MRN && !tr->eval_only) {
        double n_mean = 0.0;
        for (int t = 0; t < tr->T; t++)
            n_mean += (double)tr_task_n(tr, t, TR_SPLIT_TRAIN) / tr->T;
        tr_mrn_opts mo;
        TR_CALL(tr_mrn_opts_from_config(&mo, cfg, n_mean));
        tr->has_mrn = 1;
        TR_CALL(tr_mrn_init_model(&tr->mrn, &mo, cfg, m, g));
        TR_CALL(tr_mrn_each_state(&tr->mrn, add_extra, tr));
    }
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

void tr_trainer_free(tr_trainer *tr) {
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
    tr_free(tr->yall);
    tr_free(tr->yfall);
    tr_free(tr->best_params);
    tr_free(tr->best_buffers);
    tr_relations_free(&tr->relations);
    tr_report_close(tr);
    tr_timeline_free(tr->timeline);
    tr_mrn_free(&tr->mrn);
    tr_relations_free(&tr->relations);
    tr_grid_free(&tr->grid);
}
