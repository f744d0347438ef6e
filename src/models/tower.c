/*
 * Per-task towers of MRAN and MMoE: fc(din->H)-ReLU-fc(H->H)-ReLU-fc(H->C)
 * with H = model.head_hidden (model.tower_layers = 1: fc(din->H)-ReLU-fc(H->C),
 * the MMoE paper's tower), stored as task-axis tensors, plus the loss
 * (softmax cross-entropy or squared error) as in the HPS heads of model_pass.c.
 * Not here: what feeds the tower (mran.c, mmoe.c).
 */
#include <string.h>

#include "taskrel/nn.h"

#include "rel_internal.h"

static tr_status add_task(tr_model *m, int *id, const char *name, int decay, int64_t a, int64_t b) {
    int64_t shape[2] = {a, b};
    int nd = b > 0 ? 2 : 1;
    return tr_params_add(&m->params, id, name, TR_GROUP_HEAD, decay, nd, shape, 1, m->T, m->t0,
                         m->tn);
}

tr_status tr_tower_declare(tr_tower *tw, tr_model *m, int din, int layers) {
    memset(tw, 0, sizeof(*tw));
    TR_ASSERT(layers == 1 || layers == 2);
    tw->din = din;
    tw->L = layers;
    tw->H = m->head_hidden;
    tw->C = m->out_dim;
    TR_CHECK(tw->H > 0, TR_ERR_CONFIG,
             "model.head_hidden = 0: model.kind = %s needs towers with hidden layers "
             "(model.head_hidden >= 1)",
             tr_model_kind_str(m->kind));
    TR_CALL(add_task(m, &tw->w1, "head.tower1.w", 1, din, tw->H));
    TR_CALL(add_task(m, &tw->b1, "head.tower1.b", 0, tw->H, 0));
    tw->w2 = tw->b2 = -1;
    if (layers == 2) {
        TR_CALL(add_task(m, &tw->w2, "head.tower2.w", 1, tw->H, tw->H));
        TR_CALL(add_task(m, &tw->b2, "head.tower2.b", 0, tw->H, 0));
    }
    TR_CALL(add_task(m, &tw->wo, "head.out.w", 1, tw->H, tw->C));
    TR_CALL(add_task(m, &tw->bo, "head.out.b", 0, tw->C, 0));
    return TR_OK;
}

tr_status tr_tower_alloc(tr_tower *tw, int rows) {
    size_t r = (size_t)rows, H = (size_t)tw->H, C = (size_t)tw->C;
    TR_ALLOC(tw->h1, r * H, "tower activations");
    TR_ALLOC(tw->h2, r * H, "tower activations");
    TR_ALLOC(tw->dh1, r * H, "tower gradients");
    TR_ALLOC(tw->dh2, r * H, "tower gradients");
    TR_ALLOC(tw->logits, r * C, "tower logits");
    TR_ALLOC(tw->probs, r * C, "tower probabilities");
    TR_ALLOC(tw->dlog, r * C, "tower logit gradients");
    return TR_OK;
}

void tr_tower_free(tr_tower *tw) {
    tr_free(tw->h1);
    tr_free(tw->h2);
    tr_free(tw->dh1);
    tr_free(tw->dh2);
    tr_free(tw->logits);
    tr_free(tw->probs);
    tr_free(tw->dlog);
    memset(tw, 0, sizeof(*tw));
}

void tr_tower_forward(tr_tower *tw, tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                      const float *in, const int32_t *y, const float *yf) {
    const tr_params *p = &m->params;
    int H = tw->H, C = tw->C;
    float *h1 = tw->h1 + (size_t)hrow0 * H, *h2 = tw->h2 + (size_t)hrow0 * H;
    float *logits = tw->logits + (size_t)hrow0 * C, *probs = tw->probs + (size_t)hrow0 * C;
    tr_linear_forward(h1, in, tr_params_task_data(p, tw->w1, task),
                      tr_params_task_data(p, tw->b1, task), n, tw->din, H);
    tr_relu_forward(h1, h1, (size_t)n * H);
    if (tw->L == 2) {
        tr_linear_forward(h2, h1, tr_params_task_data(p, tw->w2, task),
                          tr_params_task_data(p, tw->b2, task), n, H, H);
        tr_relu_forward(h2, h2, (size_t)n * H);
    } else {
        h2 = h1; /* the output layer reads the only hidden layer */
    }
    tr_linear_forward(logits, h2, tr_params_task_data(p, tw->wo, task),
                      tr_params_task_data(p, tw->bo, task), n, H, C);
    tr_model_task_loss_forward(m, st, task, probs, logits, n, y, yf);
    if (m->pred)
        tr_model_copy_predictions(m, task, hrow0, n, probs, logits);
}

void tr_tower_backward(tr_tower *tw, tr_model *m, int task, int hrow0, int n, const float *in,
                       float *din_grad, const int32_t *y, const float *yf, float scale) {
    const tr_params *p = &m->params;
    int H = tw->H, C = tw->C;
    float *h1 = tw->h1 + (size_t)hrow0 * H, *h2 = tw->h2 + (size_t)hrow0 * H;
    float *logits = tw->logits + (size_t)hrow0 * C, *probs = tw->probs + (size_t)hrow0 * C;
    const float *w1 = tr_params_task_data(p, tw->w1, task);
    const float *w2 = tw->L == 2 ? tr_params_task_data(p, tw->w2, task) : NULL;
    const float *wo = tr_params_task_data(p, tw->wo, task);
    float *dlog = tw->dlog + (size_t)hrow0 * C;
    float *dh1 = tw->dh1 + (size_t)hrow0 * H, *dh2 = tw->dh2 + (size_t)hrow0 * H;
    memset(dlog, 0, (size_t)n * C * sizeof(float));
    tr_model_task_loss_backward(m, task, dlog, probs, logits, n, y, yf, scale);
    memset(dh2, 0, (size_t)n * H * sizeof(float));
    memset(dh1, 0, (size_t)n * H * sizeof(float));
    if (tw->L == 1) { /* one hidden layer: the output layer reads h1 */
        h2 = h1;
        dh2 = dh1;
    }
    tr_linear_backward(dh2, tr_params_task_grad(p, tw->wo, task),
                       tr_params_task_grad(p, tw->bo, task), dlog, h2, wo, n, H, C);
    for (size_t i = 0; i < (size_t)n * H; i++) /* ReLU backward in place */
        if (h2[i] <= 0.0f)
            dh2[i] = 0.0f;
    if (tw->L == 2)
        tr_linear_backward(dh1, tr_params_task_grad(p, tw->w2, task),
                           tr_params_task_grad(p, tw->b2, task), dh2, h1, w2, n, H, H);
    for (size_t i = 0; i < (size_t)n * H; i++)
        if (h1[i] <= 0.0f)
            dh1[i] = 0.0f;
    tr_linear_backward(din_grad, tr_params_task_grad(p, tw->w1, task),
                       tr_params_task_grad(p, tw->b1, task), dh1, in, w1, n, tw->din, H);
}
