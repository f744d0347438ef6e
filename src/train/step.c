/*
 * One training step up to the optimizer, for every method alike (the
 * method's ops come from its row, taskrel/method.h):
 *
 *   forward:  shared stage on this rank's trunk rows -> [features all-gathered
 *             within replica_comm] -> every local task's head forward
 *   backward: every local task's head backward -> [feature gradients
 *             reduce-scattered within replica_comm] -> shared stage backward
 *   reduce:   shared gradients over world, task gradients over shard_comm
 *
 * With a train.weighting that needs per-task gradients, the backward runs once
 * per task and weighting.c combines the shared gradients instead of the
 * shared all-reduce.
 * The bracketed exchanges happen on shared-input data with a shared trunk.
 * Not here: the rows (batch.c), the loop around the step (trainer.c).
 */
#include <string.h>

#include "trainer_internal.h"

/* Head rows of local task j read their features here. */
static const float *head_features(const tr_trainer *tr, const float *feat, int j) {
    const tr_batch *b = &tr->batch;
    if (b->exchanged) /* every task on the gathered replica part */
        return feat;
    return feat + (size_t)b->seg_off[j] * (size_t)tr->model.feat_dim;
}

/* The feature gradients the heads add into, and their rows. */
static float *head_dfeat(const tr_trainer *tr, int *rows) {
    const tr_batch *b = &tr->batch;
    if (b->exchanged) {
        *rows = b->rep_n;
        return b->dfeat_all;
    }
    *rows = b->tn > 0 ? b->seg_off[b->tn - 1] + b->seg_n[b->tn - 1] : 0;
    return b->dfeat;
}

static tr_status exchange_features(tr_trainer *tr, const float **feat) {
    tr_batch *b = &tr->batch;
    tr_grid *g = &tr->grid;
    double t0 = tr_time_now();
    TR_CALL(tr_allgatherv_f32(g, g->replica_comm, *feat, b->my_n * tr->model.feat_dim, b->feat_all,
                              b->gather_counts, b->gather_displs, TR_COLL_FEATURES));
    tr_trainer_phase(tr, TR_PHASE_COMM, "feature_allgather", t0, tr_time_now());
    *feat = b->feat_all;
    return TR_OK;
}

static tr_status exchange_gradients(tr_trainer *tr) {
    tr_batch *b = &tr->batch;
    tr_grid *g = &tr->grid;
    double t0 = tr_time_now();
    TR_CALL(tr_reduce_scatter_f32(g, g->replica_comm, b->dfeat_all, b->dfeat, b->gather_counts,
                                  TR_COLL_FEATURES));
    tr_trainer_phase(tr, TR_PHASE_COMM, "feature_reduce_scatter", t0, tr_time_now());
    return TR_OK;
}

tr_status tr_step_forward(tr_trainer *tr, tr_task_stats *st) {
    tr_model *m = &tr->model;
    const tr_method *meth = m->method;
    tr_batch *b = &tr->batch;
    double t0 = tr_time_now();
    const float *feat;
    TR_CALL(meth->shared_forward(m, &feat, &b->trunk));
    tr_trainer_phase(tr, TR_PHASE_FORWARD, "forward", t0, tr_time_now());
    if (b->exchanged)
        TR_CALL(exchange_features(tr, &feat));
    double t1 = tr_time_now();
    for (int j = 0; j < tr->tn; j++) {
        int off = b->seg_off[j];
        TR_CALL(meth->head_forward(m, &st[j], tr->t0 + j, off, b->seg_n[j],
                                   head_features(tr, feat, j), b->y + off, b->yf + off, 1));
    }
    tr_trainer_phase(tr, TR_PHASE_FORWARD, "forward", t1, tr_time_now());
    b->head_feat = feat;
    return TR_OK;
}

/* Heads backward of local task `task` (-1: every local task) into the feature
 * gradients, exchanged within the replica: b->dfeat then holds the gradient of
 * this rank's trunk rows. Every rank calls it alike (the exchange is collective). */
static tr_status heads_backward(tr_trainer *tr, int task) {
    tr_model *m = &tr->model;
    const tr_method *meth = m->method;
    tr_batch *b = &tr->batch;
    size_t fd = (size_t)m->feat_dim;
    double t0 = tr_time_now();
    int rows;
    float *dfeat = head_dfeat(tr, &rows);
    memset(dfeat, 0, (size_t)rows * fd * sizeof(float));
    for (int j = 0; j < tr->tn; j++) {
        int t = tr->t0 + j, off = b->seg_off[j];
        if (task >= 0 && t != task)
            continue;
        float *df = b->exchanged ? dfeat : dfeat + (size_t)off * fd;
        TR_CALL(meth->head_backward(m, t, off, b->seg_n[j], head_features(tr, b->head_feat, j), df,
                                    b->y + off, b->yf + off, tr_weighting_head_scale(tr, t)));
    }
    tr_trainer_phase(tr, TR_PHASE_BACKWARD, "backward", t0, tr_time_now());
    if (b->exchanged)
        TR_CALL(exchange_gradients(tr));
    return TR_OK;
}

tr_status tr_step_task_dfeat(tr_trainer *tr, int task) {
    return heads_backward(tr, task);
}

tr_status tr_step_shared_backward(tr_trainer *tr) {
    tr_batch *b = &tr->batch;
    double t0 = tr_time_now();
    TR_CALL(tr->model.method->shared_backward(&tr->model, &b->trunk, b->dfeat));
    tr_trainer_phase(tr, TR_PHASE_BACKWARD, "backward", t0, tr_time_now());
    return TR_OK;
}

tr_status tr_step_shared_backward_rows(tr_trainer *tr, int row0, int n) {
    double t0 = tr_time_now();
    const float *dfeat = tr->batch.dfeat + (size_t)row0 * (size_t)tr->model.feat_dim;
    TR_CALL(tr->model.method->shared_backward_rows(&tr->model, &tr->batch.trunk, row0, n, dfeat));
    tr_trainer_phase(tr, TR_PHASE_BACKWARD, "backward", t0, tr_time_now());
    return TR_OK;
}

tr_status tr_step_backward(tr_trainer *tr, const tr_task_stats *st) {
    if (tr->wt.per_task) /* per-task gradients of the shared layers, combined */
        return tr_weighting_backward(tr, st);
    TR_CALL(heads_backward(tr, -1));
    TR_CALL(tr_overlap_arm(tr)); /* the trunk's buckets may start from here on */
    tr_status rc = tr_step_shared_backward(tr);
    tr_overlap_disarm(tr);
    return rc;
}

/* Shared tensors over world (in buckets, some maybe started during the
 * backward: overlap.c), task tensors over shard_comm. */
tr_status tr_step_reduce_gradients(tr_trainer *tr) {
    tr_params *p = &tr->model.params;
    size_t off, len;
    if (!tr->wt.combined) /* else the weighting's all-gather left the world's gradient */
        TR_CALL(tr_overlap_reduce(tr));
    double t1 = tr_time_now();
    TR_CALL(tr_params_domain_range(p, 1, &off, &len));
    TR_CALL(tr_allreduce_f32(&tr->grid, tr->grid.shard_comm, p->grad + off, len, TR_COLL_HEAD));
    tr_trainer_phase(tr, TR_PHASE_COMM, "head_allreduce", t1, tr_time_now());
    return TR_OK;
}
