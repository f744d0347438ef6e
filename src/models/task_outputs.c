/*
 * Each task's outputs on the shared output layer (taskrel/model.h): its kind
 * and class count, the loss over its own columns, the check of the methods
 * that need heads of one shape, and the copy of predictions for
 * `taskrel eval --predictions`. Not here: the layers (model_pass.c, tower.c).
 */
#include <string.h>

#include "taskrel/model.h"
#include "taskrel/nn.h"

/* Every task's kind and class count. The heads of all tasks share one shape
 * (a task axis): the output layer has the largest class count, and a task
 * with fewer classes (or a regression task, one value) uses its first
 * columns; the others get no gradient and never reach a prediction. */
tr_status tr_model_set_task_outputs(tr_model *m, const tr_dataset *ds) {
    TR_ALLOC(m->task_kinds, (size_t)ds->T, "task kinds");
    TR_ALLOC(m->task_outputs, (size_t)ds->T, "task outputs");
    TR_ALLOC(m->task_names, (size_t)ds->T, "task names");
    m->task_kind = ds->tasks[0].kind;
    m->out_dim = 1;
    m->uniform_heads = 1;
    for (int t = 0; t < ds->T; t++) {
        const tr_task_info *ti = &ds->tasks[t];
        m->task_kinds[t] = ti->kind;
        memcpy(m->task_names[t], ti->name, sizeof(m->task_names[t]));
        m->task_outputs[t] = ti->kind == TR_TASK_CLASSIFICATION ? ti->classes : 1;
        if (m->task_outputs[t] > m->out_dim)
            m->out_dim = m->task_outputs[t];
        if (ti->kind != m->task_kind)
            m->mixed_kinds = 1;
        if (ti->kind != m->task_kind || m->task_outputs[t] != m->task_outputs[0])
            m->uniform_heads = 0;
    }
    return TR_OK;
}

tr_status tr_model_check_uniform_heads(const tr_model *m, const char *why) {
    for (int t = 1; t < m->T && !m->uniform_heads; t++) {
        if (m->task_kinds[t] == m->task_kinds[0] && m->task_outputs[t] == m->task_outputs[0])
            continue;
        char a[48], b[48];
        snprintf(a, sizeof(a), "%s",
                 m->task_kinds[0] == TR_TASK_REGRESSION ? "a regression task" : "");
        if (!a[0])
            snprintf(a, sizeof(a), "%d classes", m->task_outputs[0]);
        snprintf(b, sizeof(b), "%s",
                 m->task_kinds[t] == TR_TASK_REGRESSION ? "a regression task" : "");
        if (!b[0])
            snprintf(b, sizeof(b), "%d classes", m->task_outputs[t]);
        TR_RAISE(TR_ERR_DATA,
                 "model.kind = %s cannot train task '%s' (%s) next to task '%s' (%s): %s; use "
                 "model.kind = hps or stl, or tasks of one kind and class count",
                 tr_model_kind_str(m->kind), m->task_names[t], b, m->task_names[0], a, why);
    }
    return TR_OK;
}

void tr_model_task_loss_forward(const tr_model *m, tr_task_stats *st, int task, float *probs,
                                const float *out, int n, const int32_t *y, const float *yf) {
    int C = m->out_dim, c = m->task_outputs[task];
    if (m->task_kinds[task] == TR_TASK_CLASSIFICATION) {
        int64_t correct = 0;
        if (c == C) {
            st->loss_sum += tr_softmax_xent_forward(probs, &correct, out, y, n, C);
        } else {
            for (int i = 0; i < n; i++) { /* the task's first c columns */
                float *p = probs + (size_t)i * C;
                st->loss_sum +=
                    tr_softmax_xent_forward(p, &correct, out + (size_t)i * C, y + i, 1, c);
                memset(p + c, 0, (size_t)(C - c) * sizeof(float));
            }
        }
        st->correct += (double)correct;
    } else if (C == 1) {
        st->loss_sum += tr_mse_forward(&st->abs_sum, out, yf, n, 1);
    } else {
        for (int i = 0; i < n; i++) /* column 0 */
            st->loss_sum += tr_mse_forward(&st->abs_sum, out + (size_t)i * C, yf + i, 1, 1);
    }
    st->count += n;
}

void tr_model_task_loss_backward(const tr_model *m, int task, float *dout, const float *probs,
                                 const float *out, int n, const int32_t *y, const float *yf,
                                 float scale) {
    int C = m->out_dim, c = m->task_outputs[task];
    if (m->task_kinds[task] == TR_TASK_CLASSIFICATION) {
        if (c == C)
            tr_softmax_xent_backward(dout, probs, y, n, C, scale);
        else
            for (int i = 0; i < n; i++)
                tr_softmax_xent_backward(dout + (size_t)i * C, probs + (size_t)i * C, y + i, 1, c,
                                         scale);
    } else if (C == 1) {
        tr_mse_backward(dout, out, yf, n, 1, scale);
    } else {
        for (int i = 0; i < n; i++)
            tr_mse_backward(dout + (size_t)i * C, out + (size_t)i * C, yf + i, 1, 1, scale);
    }
}

void tr_model_copy_predictions(tr_model *m, int task, int hrow0, int n, const float *probs,
                               const float *out) {
    int C = m->out_dim;
    const float *src = m->task_kinds[task] == TR_TASK_CLASSIFICATION ? probs : out;
    memcpy(m->pred + (size_t)hrow0 * C, src, (size_t)n * C * sizeof(float));
    m->pred_rows += n;
}
