/*
 * Per-task statistics as doubles: the one packing that the fused step
 * all-reduce, the evaluation all-reduce and checkpoints (/train/window) use.
 */
#include "trainer_internal.h"

void tr_stats_pack(double *buf, const tr_task_stats *st, int n) {
    for (int t = 0; t < n; t++) {
        double *o = buf + (size_t)t * TR_STAT_FIELDS;
        o[TR_STAT_LOSS] = st[t].loss_sum;
        o[TR_STAT_ABS] = st[t].abs_sum;
        o[TR_STAT_CORRECT] = st[t].correct;
        o[TR_STAT_COUNT] = st[t].count;
    }
}

void tr_stats_unpack(tr_task_stats *st, const double *buf, int n) {
    for (int t = 0; t < n; t++) {
        const double *o = buf + (size_t)t * TR_STAT_FIELDS;
        st[t].loss_sum = o[TR_STAT_LOSS];
        st[t].abs_sum = o[TR_STAT_ABS];
        st[t].correct = o[TR_STAT_CORRECT];
        st[t].count = o[TR_STAT_COUNT];
    }
}
