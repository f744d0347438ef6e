/*
 * Evaluation on the validation or test split: inference mode (batch-norm
 * running statistics, no dropout, a method's test path), each (task, example)
 * pair counted on exactly one rank (tasks by shard, examples by replica),
 * summed over world. One path for every method: the method's shared stage
 * and heads, as in training, without gradients.
 */
#include <string.h>

#include "trainer_internal.h"

/* eval --predictions: task t's rows [first, first + rows) of the split: the
 * label and the head's outputs (m->pred) into tr->pred_rows. */
static void keep_predictions(tr_trainer *tr, tr_split split, int t, int64_t first, int rows,
                             const int32_t *y, const float *yf) {
    if (!tr->pred_rows)
        return;
    const tr_model *m = &tr->model;
    int C = m->task_outputs[t];
    double *out =
        tr->pred_rows + tr_predictions_offset(&tr->ds, split, t) + (size_t)first * (size_t)(1 + C);
    for (int i = 0; i < rows; i++) {
        double *r = out + (size_t)i * (size_t)(1 + C);
        r[0] = y ? (double)y[i] : (double)yf[i];
        for (int c = 0; c < C; c++)
            r[1 + c] = m->pred[(size_t)i * m->out_dim + c];
    }
}

/* The inputs of rows [first, first + rows) of sd: in place, or compact or
 * streamed inputs read into the batch's evaluation buffer. After a failed
 * streamed read (*rd) nothing more is read: the chunks still run (on stale
 * inputs), so that every rank takes the same collectives until the failure
 * is agreed on. */
static const float *eval_inputs(tr_trainer *tr, const tr_split_data *sd, int64_t first, int rows,
                                tr_status *rd) {
    size_t ss = (size_t)tr->ds.sample_size;
    if (sd->x)
        return sd->x + (size_t)first * ss;
    if (*rd == TR_OK)
        *rd = tr_split_x_read(tr->batch.xeval, sd, (size_t)first * ss, (size_t)rows * ss);
    return tr->batch.xeval;
}

/* An inference trunk batch of `rows` inputs x, task j's segment at row 0. */
static void eval_trunk(tr_trunk_batch *tb, const tr_trainer *tr, const float *x, int rows, int j) {
    memset(tb, 0, sizeof(*tb));
    tb->x = x;
    tb->rows = rows;
    tb->n_seg = 1;
    tb->seg[0] = (tr_trunk_segment){tr->t0 + j, j, 0, rows, 0};
}

static tr_status eval_multi_input(tr_trainer *tr, tr_split split, tr_task_stats *local,
                                  tr_status *rd) {
    tr_model *m = &tr->model;
    int chunk = tr->batch.eval_chunk;
    for (int j = 0; j < tr->tn; j++) {
        int t = tr->t0 + j;
        const tr_split_data *sd = &tr->ds.tasks[t].split[split];
        int lo, n; /* example counts fit an int: permutations are int32 */
        tr_part_range((int)sd->n, tr->grid.R, tr->grid.r, &lo, &n);
        for (int c = 0; c < n; c += chunk) {
            int rows = n - c < chunk ? n - c : chunk;
            int64_t first = (int64_t)lo + c;
            tr_trunk_batch tb;
            eval_trunk(&tb, tr, eval_inputs(tr, sd, first, rows, rd), rows, j);
            const float *feat;
            TR_CALL(m->method->shared_forward(m, &feat, &tb));
            TR_CALL(m->method->head_forward(m, &local[t], t, 0, rows, feat,
                                            sd->y ? sd->y + first : NULL,
                                            sd->yf ? sd->yf + first : NULL, 0));
            keep_predictions(tr, split, t, first, rows, sd->y ? sd->y + first : NULL,
                             sd->yf ? sd->yf + first : NULL);
        }
    }
    return TR_OK;
}

/* Task t's labels of rows [first, first + rows) into the batch's label rows. */
static void task_labels(tr_trainer *tr, const tr_split_data *sd, int t, int64_t first, int rows) {
    for (int i = 0; i < rows; i++) {
        if (sd->y)
            tr->batch.y[i] = sd->y[(first + i) * tr->T + t];
        if (sd->yf)
            tr->batch.yf[i] = sd->yf[(first + i) * tr->T + t];
    }
}

static tr_status eval_shared_input(tr_trainer *tr, tr_split split, tr_task_stats *local,
                                   tr_status *rd) {
    tr_model *m = &tr->model;
    const tr_split_data *sd = &tr->ds.shared[split];
    int chunk = tr->batch.eval_chunk, lo, n;
    tr_part_range((int)sd->n, tr->grid.R, tr->grid.r, &lo, &n);
    for (int c = 0; c < n; c += chunk) {
        int rows = n - c < chunk ? n - c : chunk;
        int64_t first = (int64_t)lo + c;
        const float *feat = NULL, *x = eval_inputs(tr, sd, first, rows, rd);
        for (int j = 0; j < tr->tn; j++) {
            int t = tr->t0 + j;
            if (j == 0 || tr->batch.task_trunks) { /* a shared trunk runs once per chunk */
                tr_trunk_batch tb;
                eval_trunk(&tb, tr, x, rows, j);
                TR_CALL(m->method->shared_forward(m, &feat, &tb));
            }
            task_labels(tr, sd, t, first, rows);
            TR_CALL(m->method->head_forward(m, &local[t], t, 0, rows, feat, tr->batch.y,
                                            tr->batch.yf, 0));
            keep_predictions(tr, split, t, first, rows,
                             m->task_kinds[t] == TR_TASK_CLASSIFICATION ? tr->batch.y : NULL,
                             tr->batch.yf);
        }
    }
    return TR_OK;
}

tr_status tr_trainer_evaluate(tr_trainer *tr, tr_split split, tr_task_stats *stats) {
    int T = tr->T;
    memset(stats, 0, sizeof(*stats) * (size_t)T);
    tr_status rd = TR_OK; /* a streamed read that failed, agreed on before the reduce */
    if (tr->ds.setting == TR_SETTING_MULTI_INPUT)
        TR_CALL(eval_multi_input(tr, split, stats, &rd));
    else
        TR_CALL(eval_shared_input(tr, split, stats, &rd));
    if (tr->cfg->data_load == TR_DATA_LOAD_STREAM)
        TR_CALL(tr_agree(tr->grid.world, rd));
    TR_CALL(rd);
    double buf[TR_STAT_FIELDS * TR_MAX_TASKS];
    tr_stats_pack(buf, stats, T);
    TR_CALL(tr_allreduce_f64(&tr->grid, tr->grid.world, buf, (size_t)(TR_STAT_FIELDS * T),
                             TR_COLL_EVAL));
    tr_stats_unpack(stats, buf, T);
    if (tr->pred_rows) /* each row was filled by one rank, zeros elsewhere */
        TR_CALL(tr_allreduce_f64(&tr->grid, tr->grid.world, tr->pred_rows,
                                 tr_predictions_offset(&tr->ds, split, T), TR_COLL_EVAL));
    return TR_OK;
}
