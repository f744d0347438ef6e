/*
 * HPS, hard parameter sharing: one trunk shared by every task, a head
 * fc7-ReLU-fc8 per task. Its ops are the base of MRN's row (method_mrn.c).
 */
#include "method_internal.h"

tr_status tr_shared_trunk_forward(tr_model *m, const float **feat, const tr_trunk_batch *b) {
    return tr_model_trunk_forward(m, feat, m->t0, 0, 0, b->rows, b->x, b->ids, b->train, b->step);
}

tr_status tr_shared_trunk_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat) {
    return tr_model_trunk_backward(m, m->t0, 0, 0, b->rows, b->x, dfeat);
}

tr_status tr_shared_trunk_backward_rows(tr_model *m, const tr_trunk_batch *b, int row0, int n,
                                        const float *dfeat) {
    return tr_model_trunk_backward(m, m->t0, 0, row0, n, b->x + (size_t)row0 * (size_t)m->in_size,
                                   dfeat);
}

tr_status tr_fc_heads_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                              const float *feat, const int32_t *y, const float *yf, int train) {
    (void)train; /* the heads have no batch statistics */
    return tr_model_head_forward(m, st, task, hrow0, n, feat, y, yf);
}

tr_status tr_fc_heads_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                               float *dfeat, const int32_t *y, const float *yf, float scale) {
    return tr_model_head_backward(m, task, hrow0, n, feat, dfeat, y, yf, scale);
}

const tr_method tr_method_hps = {
    .name = "hps",
    .kind = TR_MODEL_HPS,
    .layout = TR_LAYOUT_SHARED_TRUNK,
    .declare = tr_model_declare_heads,
    .shared_forward = tr_shared_trunk_forward,
    .head_forward = tr_fc_heads_forward,
    .head_backward = tr_fc_heads_backward,
    .shared_backward = tr_shared_trunk_backward,
    .shared_backward_rows = tr_shared_trunk_backward_rows,
};
