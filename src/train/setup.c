/*
 * Trainer set-up and tear-down, as a list of named steps: data (errors agreed
 * over all ranks), the rank grid, the steps of the run, the batch, the model
 * and its method, the optimizer, model selection, checkpoint state, reporting.
 * Not here: the step, the loop, evaluation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "taskrel/data.h"
#include "trainer_internal.h"

/* tr_method_env.mark: a method's own phase. */
static void mark_method(void *ctx, const char *event, double t0, double t1) {
    tr_trainer_phase(ctx, TR_PHASE_METHOD, event, t0, t1);
}

/* The dataset's header (tasks, split sizes) on every rank; errors agreed
 * over all ranks so that an unreadable file on one node cannot hang. First
 * rank 0 checks the file's structure in a child process, so that a damaged
 * file that crashes the HDF5 library stops every rank with its message. */
static tr_status load_header(tr_trainer *tr, MPI_Comm world) {
    const tr_config *cfg = tr->cfg;
    TR_CALL(tr_dataset_check_all(cfg->data_path, world));
    tr_status st = tr_dataset_load_header(&tr->ds, cfg->data_path);
    if (st == TR_OK)
        st = tr_dataset_select_tasks(&tr->ds, &cfg->data_tasks);
    if (st == TR_OK && !tr->eval_only) /* eval takes a file with any of the splits */
        for (int s = TR_SPLIT_TRAIN; s <= TR_SPLIT_VAL && st == TR_OK; s++)
            if (!tr->ds.has_split[s])
                st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                                  "data: %s has no %s split: training needs the train and val "
                                  "splits (a file with only some splits can be evaluated with "
                                  "taskrel eval)",
                                  cfg->data_path, tr_split_name((tr_split)s));
    TR_CALL(tr_agree(world, st));
    tr->T = tr->ds.T;
    TR_CHECK(tr->T <= TR_MAX_TASKS, TR_ERR_DATA, "%d tasks exceed the limit of %d", tr->T,
             TR_MAX_TASKS);
    return TR_OK;
}

/* The examples: in the multi-input setting only those of this rank's tasks
 * (memory per rank falls as dist.task_shards grows); with data.load = stream
 * their inputs stay in the file. Every rank then knows every task's digest,
 * so the data fingerprint is the same everywhere. Inputs in memory with at
 * most 256 distinct values are then kept compact. */
static tr_status load_examples(tr_trainer *tr) {
    const char *path = tr->cfg->data_path;
    tr_status st = tr->cfg->data_load == TR_DATA_LOAD_STREAM
                       ? tr_dataset_stream_tasks(&tr->ds, path, tr->t0, tr->tn)
                       : tr_dataset_load_tasks(&tr->ds, path, tr->t0, tr->tn);
    TR_CALL(tr_agree(tr->grid.world, st));
    if (tr->ds.setting != TR_SETTING_MULTI_INPUT)
        return TR_OK;
    TR_CALL(tr_agree(tr->grid.world, tr_dataset_task_digests(&tr->ds)));
    /* each task's digest from its owner in replica 0, as two exact 32-bit halves */
    double dig[2 * TR_MAX_TASKS];
    memset(dig, 0, sizeof(double) * 2 * (size_t)tr->T);
    for (int t = tr->t0; tr->grid.r == 0 && t < tr->t0 + tr->tn; t++) {
        dig[2 * t] = (double)(tr->ds.tasks[t].digest >> 32);
        dig[2 * t + 1] = (double)(tr->ds.tasks[t].digest & 0xffffffffu);
    }
    TR_CALL(tr_allreduce_f64(&tr->grid, tr->grid.world, dig, 2 * (size_t)tr->T, TR_COLL_OTHER));
    for (int t = 0; t < tr->T; t++)
        tr->ds.tasks[t].digest = ((uint64_t)dig[2 * t] << 32) | (uint64_t)dig[2 * t + 1];
    return tr_dataset_compact(&tr->ds); /* 8-bit images: a byte per value */
}

static tr_status make_grid(tr_trainer *tr, MPI_Comm world) {
    TR_CALL(tr_grid_init(&tr->grid, world, tr->T, tr->cfg->task_shards, NULL));
    TR_CALL(tr_watchdog_start(tr->grid.world, tr->cfg->stall_timeout));
    tr->t0 = tr->grid.t0;
    tr->tn = tr->grid.tn;
    TR_CALL(load_examples(tr));
    return tr_config_task_weights(tr->cfg, tr->T, tr->task_weight);
}

static tr_status make_batch(tr_trainer *tr) {
    const tr_method *meth = tr_method_find(tr->cfg->model_kind);
    TR_CHECK(meth != NULL, TR_ERR_CONFIG, "model.kind = %s is not available in this build",
             tr_model_kind_str(tr->cfg->model_kind));
    TR_CALL(tr_batch_plan(&tr->batch, &tr->ds, &tr->grid, tr->cfg->batch_size, meth->layout));
    tr->total_steps = tr->batch.steps_per_epoch * tr->cfg->epochs;
    if (tr->cfg->max_steps > 0 && tr->cfg->max_steps < tr->total_steps)
        tr->total_steps = tr->cfg->max_steps;
    return TR_OK;
}

/* The relation matrices are named after the tasks. */
static void name_relation_tasks(tr_trainer *tr) {
    size_t len = 0, cap = sizeof(tr->relations.tasks);
    for (int t = 0; t < tr->T; t++) {
        int k = snprintf(tr->relations.tasks + len, cap - len, "%s%s", t ? "," : "",
                         tr->ds.tasks[t].name);
        if (k < 0 || (size_t)k >= cap - len)
            break;
        len += (size_t)k;
    }
}

/* The model (slots = local tasks for task trunks), its method connected to the run. */
static tr_status make_model(tr_trainer *tr) {
    tr_batch *b = &tr->batch;
    TR_CALL(tr_model_init(&tr->model, tr->cfg, &tr->ds, tr->t0, tr->tn, b->max_rows,
                          b->max_head_rows, tr->tn > 0 ? tr->tn : 1));
    name_relation_tasks(tr);
    double n_mean = 0.0;
    for (int t = 0; t < tr->T; t++)
        n_mean += (double)tr_task_n(&tr->ds, t, TR_SPLIT_TRAIN) / tr->T;
    tr_method_env env = {.grid = &tr->grid,
                         .cfg = tr->cfg,
                         .relations = &tr->relations,
                         .n_mean = n_mean,
                         .training = !tr->eval_only,
                         .shared_input = b->shared_input,
                         .mark = mark_method,
                         .mark_ctx = tr};
    return tr_model_attach(&tr->model, &env);
}

tr_status tr_trainer_init(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                          const tr_train_opts *opts) {
    int eval_only = tr->eval_only;
    memset(tr, 0, sizeof(*tr));
    tr->eval_only = eval_only;
    tr->cfg = cfg;
    if (opts)
        tr->opts = *opts;
    TR_CALL(load_header(tr, world));
    TR_CALL(make_grid(tr, world));
    TR_CALL(make_batch(tr));
    TR_CALL(make_model(tr));
    TR_CALL(tr_batch_alloc(&tr->batch, &tr->ds, &tr->grid, tr->model.feat_dim));
    TR_ALLOC(tr->scalars, (size_t)(TR_STAT_FIELDS * tr->T + TR_FUSED_FLAGS), "step scalars");
    TR_CALL(tr_opt_init(&tr->opt, &cfg->opt, &tr->model.params));
    TR_CALL(tr_selection_init(&tr->sel, &tr->model));
    TR_CALL(tr_weighting_init(tr));
    TR_CALL(tr_overlap_init(tr));
    TR_CALL(tr_trainer_ckpt_register(tr));
    return tr->eval_only ? TR_OK : tr_reporting_init(tr);
}

void tr_trainer_free(tr_trainer *tr) {
    tr_opt_free(&tr->opt);
    tr_weighting_free(&tr->wt);
    tr_overlap_free(&tr->ov);
    tr_model_free(&tr->model);
    tr_dataset_free(&tr->ds);
    tr_batch_free(&tr->batch);
    tr_free(tr->scalars);
    tr_selection_free(&tr->sel);
    tr_relations_free(&tr->relations);
    free(tr->ckpt.own);
    tr_reporting_free(&tr->rep);
    tr_grid_free(&tr->grid);
}
