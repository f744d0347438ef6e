/*
 * The training step of MRAN and MMoE (taskrel/relational.h) on shared-input
 * data, and what the trainer does for them at set-up and at the end:
 *
 *   shared stage on this rank's trunk rows (world collectives inside:
 *   relation matrices, alignment scores, synchronised batch norm)
 *   -> features all-gathered within replica_comm
 *   -> task stage for each local task on the replica's rows (shard_comm
 *      collectives: the task batch norms)
 *   -> feature gradients reduce-scattered within replica_comm
 *   -> shared backward (world: alignment and attention gradients).
 * Gradients are then reduced like HPS's (trainer.c). All MRAN/MMoE
 * collectives are counted under TR_COLL_MRAN.
 * Not here: the layer math (src/nn/attention.c), the model (src/models).
 */
#include <string.h>

#include "taskrel/relational.h"
#include "taskrel/timeline.h"
#include "trainer_internal.h"

static void phase(tr_trainer *tr, tr_phase ph, const char *name, double t0, double t1) {
    tr->phase[ph] += t1 - t0;
    tr_timeline_add(tr->timeline, name, t0, t1, tr->step);
}

static tr_status rel_sync_world(void *ctx, double *buf, int n) {
    tr_trainer *tr = ctx;
    return tr_allreduce_f64(&tr->grid, tr->grid.world, buf, (size_t)n, TR_COLL_MRAN);
}

static tr_status rel_sync_shard(void *ctx, double *buf, int n) {
    tr_trainer *tr = ctx;
    return tr_allreduce_f64(&tr->grid, tr->grid.shard_comm, buf, (size_t)n, TR_COLL_MRAN);
}

tr_status tr_rel_trainer_setup(tr_trainer *tr) {
    const char *kind = tr_model_kind_str(tr->cfg->model_kind);
    TR_CHECK(tr->ds.setting == TR_SETTING_SHARED_INPUT, TR_ERR_CONFIG,
             "model.kind = %s needs shared-input data (every example labelled for every task, "
             "e.g. `taskrel data multifashion` or `synthetic-mmoe`); %s is multi-input",
             kind, tr->cfg->data_path);
    if (tr->grid.size > 1)
        tr_rel_set_sync(&tr->model, rel_sync_world, tr->grid.R > 1 ? rel_sync_shard : NULL, tr);
    size_t n = (size_t)tr->max_rows * (size_t)tr->T;
    TR_ALLOC(tr->yall, n, "task labels");
    TR_ALLOC(tr->yfall, n, "task targets");
    return TR_OK;
}

/* Every task's label (or target) of this rank's trunk rows: T-T attends over them. */
static void gather_task_values(tr_trainer *tr) {
    const tr_split_data *sd = &tr->ds.shared[TR_SPLIT_TRAIN];
    int T = tr->T;
    for (int i = 0; i < tr->my_n; i++) {
        int64_t idx = tr->ids[i]; /* shared-input: the id is the example index */
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)i * T + (size_t)t;
            if (sd->y)
                tr->yall[o] = sd->y[idx * T + t];
            if (sd->yf)
                tr->yfall[o] = sd->yf[idx * T + t];
        }
    }
}

tr_status tr_step_relational(tr_trainer *tr, tr_task_stats *st) {
    tr_model *m = &tr->model;
    tr_grid *g = &tr->grid;
    size_t fd = (size_t)m->feat_dim;
    if (tr->step % tr->steps_per_epoch == 0)
        tr_rel_epoch_begin(m);
    gather_task_values(tr);
    double t0 = tr_time_now();
    const float *feat;
    TR_CALL(tr_rel_shared_forward(m, &feat, tr->my_n, tr->x, tr->ids, tr->yall, tr->yfall, 1,
                                  (uint64_t)tr->step));
    double tc = tr_time_now();
    TR_CALL(tr_allgatherv_f32(g, g->replica_comm, feat, tr->my_n * (int)fd, tr->feat_all,
                              tr->gather_counts, tr->gather_displs, TR_COLL_FEATURES));
    double tc_end = tr_time_now();
    phase(tr, TR_PHASE_FORWARD, "forward", t0, tc);
    phase(tr, TR_PHASE_COMM, "feature_allgather", tc, tc_end);
    memset(tr->dfeat_all, 0, (size_t)tr->rep_n * fd * sizeof(float));
    for (int j = 0; j < tr->tn; j++) {
        int t = tr->t0 + j;
        TR_CALL(tr_rel_head_step(m, &st[j], t, tr->seg_off[j], tr->rep_n, tr->feat_all,
                                 tr->dfeat_all, tr->y + tr->seg_off[j], tr->yf + tr->seg_off[j],
                                 tr->task_weight[t] / (float)tr->B));
    }
    double t1 = tr_time_now();
    phase(tr, TR_PHASE_FORWARD, "forward", tc_end, t1);
    TR_CALL(tr_reduce_scatter_f32(g, g->replica_comm, tr->dfeat_all, tr->dfeat, tr->gather_counts,
                                  TR_COLL_FEATURES));
    double t2 = tr_time_now();
    phase(tr, TR_PHASE_COMM, "feature_reduce_scatter", t1, t2);
    TR_CALL(tr_rel_shared_backward(m, tr->my_n, tr->x, tr->dfeat));
    phase(tr, TR_PHASE_BACKWARD, "backward", t2, tr_time_now());
    return TR_OK;
}
