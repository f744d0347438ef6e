/*
 * Private to the method rows of src/models: ops that several rows share.
 */
#ifndef TASKREL_METHOD_INTERNAL_H
#define TASKREL_METHOD_INTERNAL_H

#include "taskrel/method.h"

/* method_hps.c: one trunk over every row, the fc7-ReLU-fc8 heads. */
tr_status tr_shared_trunk_forward(tr_model *m, const float **feat, const tr_trunk_batch *b);
tr_status tr_shared_trunk_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat);
tr_status tr_shared_trunk_backward_rows(tr_model *m, const tr_trunk_batch *b, int row0, int n,
                                        const float *dfeat);
tr_status tr_fc_heads_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                              const float *feat, const int32_t *y, const float *yf, int train);
tr_status tr_fc_heads_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                               float *dfeat, const int32_t *y, const float *yf, float scale);

#endif
