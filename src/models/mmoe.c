/*
 * MMoE (Ma et al., KDD 2018) on the trunk features: E experts fc(d->de)-ReLU
 * shared by all tasks (data-parallel, in the shared stage), and per task a
 * softmax gate g = softmax(h W_k + b_k) over the experts and a tower on the
 * gated mixture (task-sharded, in the task stage). The features exchanged
 * between the stages are [h | expert outputs] per row, so the gate and the
 * mixture run where the task lives. Not here: layer math (attention.c).
 */
#include <math.h>
#include <string.h>

#include "taskrel/nn.h"

#include "rel_internal.h"

tr_status tr_mmoe_declare(tr_model *m, const tr_config *cfg) {
    TR_CALL(tr_rel_create(m, cfg));
    struct tr_rel *r = m->rel;
    r->E = cfg->mmoe_experts;
    r->de = cfg->mmoe_expert_hidden;
    int64_t ws[3] = {r->E, r->d, r->de}, bs[2] = {r->E, r->de};
    TR_CALL(tr_params_add(&m->params, &r->pew, "mmoe.expert.w", TR_GROUP_TRUNK, 1, 3, ws, 0, m->T,
                          m->t0, m->tn));
    TR_CALL(tr_params_add(&m->params, &r->peb, "mmoe.expert.b", TR_GROUP_TRUNK, 0, 2, bs, 0, m->T,
                          m->t0, m->tn));
    int64_t gw[2] = {r->d, r->E}, gb[1] = {r->E};
    TR_CALL(tr_params_add(&m->params, &r->pgw, "head.gate.w", TR_GROUP_HEAD, 1, 2, gw, 1, m->T,
                          m->t0, m->tn));
    TR_CALL(tr_params_add(&m->params, &r->pgb, "head.gate.b", TR_GROUP_HEAD, 0, 1, gb, 1, m->T,
                          m->t0, m->tn));
    TR_CALL(tr_tower_declare(&r->tower, m, r->de, cfg->tower_layers));
    /* the features exchanged between the stages: [h | E expert outputs] */
    m->feat_dim = r->d + r->E * r->de;
    return TR_OK;
}

tr_status tr_mmoe_setup(tr_model *m, const tr_config *cfg) {
    (void)cfg;
    struct tr_rel *r = m->rel;
    TR_CALL(tr_tower_alloc(&r->tower, m->max_head_rows));
    size_t rows = (size_t)m->max_rows, hr = (size_t)m->max_head_rows;
    size_t E = (size_t)r->E, de = (size_t)r->de, d = (size_t)r->d;
    TR_ALLOC(r->ex, rows * E * de, "expert outputs");
    TR_ALLOC(r->feat, rows * (size_t)m->feat_dim, "mmoe features");
    TR_ALLOC(r->dh, rows * d, "trunk feature gradients");
    TR_ALLOC(r->gh, hr * d, "gate inputs");
    TR_ALLOC(r->glog, hr * E, "gate logits");
    TR_ALLOC(r->gate, hr * E, "gates");
    TR_ALLOC(r->dgate, hr * E, "gate gradients");
    TR_ALLOC(r->dglog, hr * E, "gate gradients");
    TR_ALLOC(r->comb, hr * de, "expert mixture");
    TR_ALLOC(r->dcomb, hr * de, "expert mixture gradients");
    TR_ALLOC(r->gate_sum, (size_t)r->T * E, "gate statistics");
    TR_ALLOC(r->gate_n, (size_t)r->T, "gate statistics");
    TR_ALLOC(r->sbuf, (size_t)r->T * E + r->T, "gate sync buffer");
    /* experts: PyTorch's default for a d -> de linear layer */
    tr_rel_init_uniform(m, r->pew, 1.0f / sqrtf((float)r->d));
    tr_rel_init_uniform(m, r->peb, 1.0f / sqrtf((float)r->d));
    return TR_OK;
}

void tr_mmoe_free(struct tr_rel *r) {
    float *f[] = {r->ex,   r->feat,  r->dh,    r->gh,   r->glog,
                  r->gate, r->dgate, r->dglog, r->comb, r->dcomb};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        tr_free(f[i]);
    tr_free(r->gate_sum);
    tr_free(r->gate_n);
    tr_free(r->gate_saved);
}

tr_status tr_mmoe_shared_forward(tr_model *m, const float **feat, const tr_trunk_batch *b) {
    struct tr_rel *r = m->rel;
    int d = r->d, E = r->E, de = r->de, fd = m->feat_dim, n = b->rows;
    TR_ASSERT(n <= m->max_rows);
    const float *h;
    TR_CALL(tr_model_trunk_forward(m, &h, m->t0, 0, 0, n, b->x, b->ids, b->train, b->step));
    const float *w = tr_params_data(&m->params, r->pew), *bias = tr_params_data(&m->params, r->peb);
    for (int e = 0; e < E; e++) {
        float *ex = r->ex + (size_t)e * n * de; /* (E, n, de) while computing */
        tr_linear_forward(ex, h, w + (size_t)e * d * de, bias + (size_t)e * de, n, d, de);
        tr_relu_forward(ex, ex, (size_t)n * de);
    }
    for (int i = 0; i < n; i++) {
        float *row = r->feat + (size_t)i * fd;
        memcpy(row, h + (size_t)i * d, (size_t)d * sizeof(float));
        for (int e = 0; e < E; e++)
            memcpy(row + d + (size_t)e * de, r->ex + ((size_t)e * n + i) * de,
                   (size_t)de * sizeof(float));
    }
    *feat = r->feat;
    return TR_OK;
}

tr_status tr_mmoe_shared_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat) {
    struct tr_rel *r = m->rel;
    int d = r->d, E = r->E, de = r->de, fd = m->feat_dim, n = b->rows;
    const float *h = m->n_ops > 0 ? tr_model_features(m, 0) : b->x; /* trunk = none: x */
    const float *w = tr_params_data(&m->params, r->pew);
    float *dw = tr_params_grad(&m->params, r->pew), *db = tr_params_grad(&m->params, r->peb);
    for (int i = 0; i < n; i++)
        memcpy(r->dh + (size_t)i * d, dfeat + (size_t)i * fd, (size_t)d * sizeof(float));
    /* (n, de) gradient of one expert at a time, in the feature buffer: the
     * task stage read the exchanged copy, so ours is free by now */
    float *dex = r->feat;
    for (int e = 0; e < E; e++) {
        const float *ex = r->ex + (size_t)e * n * de;
        memset(dex, 0, (size_t)n * de * sizeof(float));
        for (int i = 0; i < n; i++)
            tr_relu_backward(dex + (size_t)i * de, dfeat + (size_t)i * fd + d + (size_t)e * de,
                             ex + (size_t)i * de, (size_t)de);
        tr_linear_backward(m->n_ops > 0 ? r->dh : NULL, dw + (size_t)e * d * de,
                           db + (size_t)e * de, dex, h, w + (size_t)e * d * de, n, d, de);
    }
    if (m->n_ops == 0) /* trunk = none: nothing below the experts */
        return TR_OK;
    return tr_model_trunk_backward(m, m->t0, 0, 0, n, b->x, r->dh);
}

tr_status tr_mmoe_head_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                               const float *feat, const int32_t *y, const float *yf, int train) {
    struct tr_rel *r = m->rel;
    TR_ASSERT(hrow0 + n <= m->max_head_rows);
    TR_ASSERT(task >= m->t0 && task < m->t0 + m->tn);
    int d = r->d, E = r->E, de = r->de, fd = m->feat_dim;
    float *gh = r->gh + (size_t)hrow0 * d, *glog = r->glog + (size_t)hrow0 * E;
    float *gate = r->gate + (size_t)hrow0 * E, *comb = r->comb + (size_t)hrow0 * de;
    for (int i = 0; i < n; i++)
        memcpy(gh + (size_t)i * d, feat + (size_t)i * fd, (size_t)d * sizeof(float));
    const float *gw = tr_params_task_data(&m->params, r->pgw, task);
    tr_linear_forward(glog, gh, gw, tr_params_task_data(&m->params, r->pgb, task), n, d, E);
    tr_softmax_forward(gate, glog, n, E);
    tr_moe_combine_forward(comb, gate, feat + d, n, E, de, fd);
    if (train) { /* the gate statistics of the epoch */
        for (int i = 0; i < n; i++)
            for (int e = 0; e < E; e++)
                r->gate_sum[(size_t)task * E + e] += gate[(size_t)i * E + e];
        r->gate_n[task] += n;
    }
    tr_tower_forward(&r->tower, m, st, task, hrow0, n, comb, y, yf);
    return TR_OK;
}

tr_status tr_mmoe_head_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                                float *dfeat, const int32_t *y, const float *yf, float scale) {
    struct tr_rel *r = m->rel;
    int d = r->d, E = r->E, de = r->de, fd = m->feat_dim;
    const float *gh = r->gh + (size_t)hrow0 * d, *gate = r->gate + (size_t)hrow0 * E;
    const float *comb = r->comb + (size_t)hrow0 * de;
    const float *gw = tr_params_task_data(&m->params, r->pgw, task);
    float *dcomb = r->dcomb + (size_t)hrow0 * de;
    float *dgate = r->dgate + (size_t)hrow0 * E, *dglog = r->dglog + (size_t)hrow0 * E;
    memset(dcomb, 0, (size_t)n * de * sizeof(float));
    tr_tower_backward(&r->tower, m, task, hrow0, n, comb, dcomb, y, yf, scale);
    memset(dgate, 0, (size_t)n * E * sizeof(float));
    memset(dglog, 0, (size_t)n * E * sizeof(float));
    tr_moe_combine_backward(dgate, dfeat + d, dcomb, gate, feat + d, n, E, de, fd);
    tr_softmax_backward(dglog, dgate, gate, n, E);
    /* the gate input's gradient goes straight into the feature rows' first d columns */
    for (int i = 0; i < n; i++) {
        const float *dl = dglog + (size_t)i * E;
        float *dfi = dfeat + (size_t)i * fd;
        for (int c = 0; c < d; c++) {
            const float *wc = gw + (size_t)c * E;
            float acc = 0.0f;
            for (int e = 0; e < E; e++)
                acc += dl[e] * wc[e];
            dfi[c] += acc;
        }
    }
    tr_linear_backward(NULL, tr_params_task_grad(&m->params, r->pgw, task),
                       tr_params_task_grad(&m->params, r->pgb, task), dglog, gh, gw, n, d, E);
    return TR_OK;
}

tr_status tr_mmoe_relations(tr_model *m, tr_relations *out) {
    struct tr_rel *r = m->rel;
    int T = r->T, E = r->E;
    double *buf = r->sbuf; /* (T E) gate sums then (T) counts, summed over the shards */
    memcpy(buf, r->gate_sum, (size_t)T * E * sizeof(double));
    memcpy(buf + (size_t)T * E, r->gate_n, (size_t)T * sizeof(double));
    if (r->world)
        TR_CALL(r->world(r->ctx, buf, T * E + T));
    /* replicas of a task all counted their own rows: the sums are global */
    double *mean = tr_calloc((size_t)T * E, sizeof(double));
    TR_CHECK(mean != NULL, TR_ERR_NOMEM, "out of memory");
    for (int t = 0; t < T; t++)
        for (int e = 0; e < E; e++) {
            double c = buf[(size_t)T * E + t];
            mean[t * E + e] = c > 0 ? buf[t * E + e] / c : 0.0;
        }
    tr_status st =
        tr_relations_add(out, "mmoe.gates", "MMoE mean gate weight per task (last epoch)",
                         "task,expert", mean, T, E);
    tr_free(mean);
    return st;
}
