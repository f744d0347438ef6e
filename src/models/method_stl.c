/*
 * STL, single-task learning: every task its own trunk (trunk tensors carry
 * the task axis) and its own fc7-ReLU-fc8 head; nothing is shared, so no
 * features are exchanged between ranks.
 */
#include "method_internal.h"

/* Each segment through its task's trunk; features at the segment's rows. */
static tr_status task_trunks_forward(tr_model *m, const float **feat, const tr_trunk_batch *b) {
    const float *f;
    for (int i = 0; i < b->n_seg; i++) {
        const tr_trunk_segment *s = &b->seg[i];
        TR_CALL(tr_model_trunk_forward(m, &f, s->task, s->slot, s->feat_row, s->n,
                                       b->x + (size_t)s->x_row * m->in_size,
                                       b->ids ? b->ids + s->x_row : NULL, b->train, b->step));
    }
    *feat = tr_model_features(m, 0);
    return TR_OK;
}

static tr_status task_trunks_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat) {
    for (int i = 0; i < b->n_seg; i++) {
        const tr_trunk_segment *s = &b->seg[i];
        TR_CALL(tr_model_trunk_backward(m, s->task, s->slot, s->feat_row, s->n,
                                        b->x + (size_t)s->x_row * m->in_size,
                                        dfeat + (size_t)s->feat_row * m->feat_dim));
    }
    return TR_OK;
}

const tr_method tr_method_stl = {
    .name = "stl",
    .kind = TR_MODEL_STL,
    .layout = TR_LAYOUT_TASK_TRUNKS,
    .declare = tr_model_declare_heads,
    .shared_forward = task_trunks_forward,
    .head_forward = tr_fc_heads_forward,
    .head_backward = tr_fc_heads_backward,
    .shared_backward = task_trunks_backward,
};
