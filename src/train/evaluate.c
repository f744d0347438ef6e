/*
 * Evaluation on the validation or test split: inference mode (batch-norm
 * running statistics, no dropout), each (task, example) pair counted on
 * exactly one rank (tasks by shard, examples by replica), summed over world.
 */
#include <math.h>
#include <string.h>

#include "taskrel/relational.h"
#include "trainer_internal.h"

static tr_status eval_multi_input(tr_trainer *tr, tr_split split, tr_task_stats *local) {
    tr_model *m = &tr->model;
    size_t ss = (size_t)tr->ds.sample_size;
    for (int j = 0; j < tr->tn; j++) {
        int t = tr->t0 + j;
        const tr_split_data *sd = &tr->ds.tasks[t].split[split];
        int lo, n; /* example counts fit an int: permutations are int32 */
        tr_part_range((int)sd->n, tr->grid.R, tr->grid.r, &lo, &n);
        for (int c = 0; c < n; c += tr->eval_chunk) {
            int rows = n - c < tr->eval_chunk ? n - c : tr->eval_chunk;
            int64_t first = (int64_t)lo + c;
            const float *feat;
            TR_CALL(tr_model_trunk_forward(m, &feat, t, j, 0, rows, sd->x + (size_t)first * ss,
                                           NULL, 0, 0));
            TR_CALL(tr_model_head_step(m, &local[t], t, 0, rows, feat, NULL,
                                       sd->y ? sd->y + first : NULL, sd->yf ? sd->yf + first : NULL,
                                       0.0f));
        }
    }
    return TR_OK;
}

static tr_status eval_shared_input(tr_trainer *tr, tr_split split, tr_task_stats *local) {
    tr_model *m = &tr->model;
    size_t ss = (size_t)tr->ds.sample_size;
    const tr_split_data *sd = &tr->ds.shared[split];
    int lo, n;
    tr_part_range((int)sd->n, tr->grid.R, tr->grid.r, &lo, &n);
    for (int c = 0; c < n; c += tr->eval_chunk) {
        int rows = n - c < tr->eval_chunk ? n - c : tr->eval_chunk;
        int64_t first = (int64_t)lo + c;
        const float *x = sd->x + (size_t)first * ss;
        const float *feat = NULL;
        if (m->rel) /* MRAN / MMoE test path: no T-T, no T-F, stored alpha */
            TR_CALL(tr_rel_shared_forward(m, &feat, rows, x, NULL, NULL, NULL, 0, 0));
        else if (!m->trunk_per_task)
            TR_CALL(tr_model_trunk_forward(m, &feat, tr->t0, 0, 0, rows, x, NULL, 0, 0));
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            if (m->trunk_per_task)
                TR_CALL(tr_model_trunk_forward(m, &feat, t, j, 0, rows, x, NULL, 0, 0));
            for (int i = 0; i < rows; i++) {
                if (sd->y)
                    tr->y[i] = sd->y[(first + i) * tr->T + t];
                if (sd->yf)
                    tr->yf[i] = sd->yf[(first + i) * tr->T + t];
            }
            if (m->rel)
                TR_CALL(
                    tr_rel_head_step(m, &local[t], t, 0, rows, feat, NULL, tr->y, tr->yf, 0.0f));
            else
                TR_CALL(
                    tr_model_head_step(m, &local[t], t, 0, rows, feat, NULL, tr->y, tr->yf, 0.0f));
        }
    }
    return TR_OK;
}

tr_status tr_trainer_evaluate(tr_trainer *tr, tr_split split, tr_task_stats *stats) {
    int T = tr->T;
    memset(stats, 0, sizeof(*stats) * (size_t)T);
    if (tr->ds.setting == TR_SETTING_MULTI_INPUT)
        TR_CALL(eval_multi_input(tr, split, stats));
    else
        TR_CALL(eval_shared_input(tr, split, stats));
    double buf[4 * TR_MAX_TASKS];
    for (int t = 0; t < T; t++) {
        buf[4 * t + 0] = stats[t].loss_sum;
        buf[4 * t + 1] = stats[t].abs_sum;
        buf[4 * t + 2] = stats[t].correct;
        buf[4 * t + 3] = stats[t].count;
    }
    TR_CALL(tr_allreduce_f64(&tr->grid, tr->grid.world, buf, (size_t)(4 * T), TR_COLL_EVAL));
    for (int t = 0; t < T; t++) {
        stats[t].loss_sum = buf[4 * t + 0];
        stats[t].abs_sum = buf[4 * t + 1];
        stats[t].correct = buf[4 * t + 2];
        stats[t].count = buf[4 * t + 3];
    }
    return TR_OK;
}

double tr_task_metric(const tr_trainer *tr, const tr_task_stats *st) {
    if (st->count <= 0)
        return NAN;
    return tr->classification ? st->correct / st->count : st->loss_sum / st->count;
}

double tr_mean_metric(const tr_trainer *tr, const tr_task_stats *stats) {
    double s = 0.0;
    for (int t = 0; t < tr->T; t++)
        s += tr_task_metric(tr, &stats[t]);
    return s / tr->T;
}
