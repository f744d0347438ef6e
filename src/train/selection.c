/*
 * Model selection on validation: the best model so far (a copy of the
 * parameter and buffer arenas), its score and step, and the training
 * statistics gathered since the last validation.
 */
#include <math.h>
#include <string.h>

#include "trainer_internal.h"

tr_status tr_selection_init(tr_selection *s, const tr_model *m) {
    memset(s, 0, sizeof(*s));
    s->best_score = NAN;
    s->mixed = m->mixed_kinds;
    s->classification = !m->mixed_kinds && m->task_kind == TR_TASK_CLASSIFICATION;
    s->kinds = m->task_kinds;
    TR_ALLOC(s->best_params, m->params.total, "best parameters");
    TR_ALLOC(s->best_buffers, m->buffers.total ? m->buffers.total : 1, "best buffers");
    return TR_OK;
}

void tr_selection_free(tr_selection *s) {
    tr_free(s->best_params);
    tr_free(s->best_buffers);
    s->best_params = s->best_buffers = NULL;
}

static int improves(const tr_selection *s, double score) {
    if (isnan(s->best_score))
        return 1;
    return s->classification ? score > s->best_score : score < s->best_score;
}

void tr_selection_consider(tr_selection *s, const tr_model *m, int64_t step, double score) {
    if (!improves(s, score))
        return;
    memcpy(s->best_params, m->params.data, m->params.total * sizeof(float));
    if (m->buffers.total)
        memcpy(s->best_buffers, m->buffers.data, m->buffers.total * sizeof(float));
    s->best_score = score;
    s->best_step = step;
}

void tr_selection_restore(const tr_selection *s, tr_model *m) {
    memcpy(m->params.data, s->best_params, m->params.total * sizeof(float));
    if (m->buffers.total)
        memcpy(m->buffers.data, s->best_buffers, m->buffers.total * sizeof(float));
}

double tr_task_metric(const tr_selection *s, int t, const tr_task_stats *st) {
    if (st->count <= 0)
        return NAN;
    return s->kinds[t] == TR_TASK_CLASSIFICATION ? st->correct / st->count
                                                 : st->loss_sum / st->count;
}

double tr_mean_metric(const tr_selection *s, const tr_task_stats *stats, int T) {
    double sum = 0.0;
    for (int t = 0; t < T; t++)
        sum += s->mixed ? (stats[t].count > 0 ? stats[t].loss_sum / stats[t].count : NAN)
                        : tr_task_metric(s, t, &stats[t]);
    return sum / T;
}
