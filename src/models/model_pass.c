/*
 * The trunk's and the heads' forward and backward passes (see taskrel/model.h):
 * the ops built in model.c run on a batch's rows; with the grad_ready hook
 * set the trunk's backward reports each op as it finishes (dist.overlap).
 * Convolutions keep no im2col columns (the backward rebuilds them), and a
 * conv-ReLU-pool block runs one sample at a time (see taskrel/model.h).
 * Not here: building the model and its parameters (model.c), batching,
 * communication or the training loop (src/train).
 */
#include "taskrel/model.h"

#include <string.h>

#include "taskrel/nn.h"

static float *pdata(const tr_model *m, int id, int task) {
    return id < 0 ? NULL : tr_params_task_data(&m->params, id, task);
}
static float *pgrad(const tr_model *m, int id, int task) {
    return id < 0 ? NULL : tr_params_task_grad(&m->params, id, task);
}

/* A trunk tensor's slice of task `task` (its column with cross-stitch). */
static float *tslice(const tr_model *m, const tr_params *p, int id, int task, int grad) {
    if (id < 0)
        return NULL;
    if (m->columns) {
        float *base = grad ? tr_params_grad(p, id) : tr_params_data(p, id);
        return base + (size_t)task * (p->t[id].count / (size_t)m->columns);
    }
    return grad ? tr_params_task_grad(p, id, task) : tr_params_task_data(p, id, task);
}
static float *tdata(const tr_model *m, int id, int task) {
    return tslice(m, &m->params, id, task, 0);
}
static float *tgrad(const tr_model *m, int id, int task) {
    return tslice(m, &m->params, id, task, 1);
}

static tr_status bn_forward(tr_model *m, tr_op *op, int task, int slot, float *out, float *xhat,
                            const float *in, int n, int train) {
    int c = op->c, s = op->h * op->w;
    float *gamma = tdata(m, op->pw, task), *beta = tdata(m, op->pb, task);
    float *rm = tslice(m, &m->buffers, op->brm, task, 0);
    float *rv = tslice(m, &m->buffers, op->brv, task, 0);
    if (!train) {
        tr_bn_forward_eval(out, in, rm, rv, gamma, beta, n, c, s, m->bn_eps);
        return TR_OK;
    }
    double *sum = m->sync_buf, *sumsq = m->sync_buf + c;
    tr_bn_stats(sum, sumsq, in, n, c, s);
    sumsq[c] = (double)n * s; /* count rides after sumsq */
    if (m->sync)
        TR_CALL(m->sync(m->sync_ctx, m->sync_buf, 2 * c + 1));
    double count = sumsq[c];
    TR_CHECK(count > 0, TR_ERR_INTERNAL, "batch norm over an empty global batch");
    tr_bn_forward(out, xhat, op->rstd + (size_t)slot * c, in, sum, sumsq, count, gamma, beta, n, c,
                  s, m->bn_eps);
    tr_bn_update_running(rm, rv, sum, sumsq, count, c, m->bn_momentum);
    return TR_OK;
}

/* A range of ops may not start or end inside a conv-ReLU-pool block. */
static tr_status check_range(const tr_model *m, int lo, int hi) {
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].fused)
            TR_CHECK(!((lo > i && lo <= i + 2) || (hi > i && hi <= i + 2)), TR_ERR_INTERNAL,
                     "trunk ops [%d, %d) split the conv-ReLU-pool block at op %d", lo, hi, i);
    return TR_OK;
}

/* The conv-ReLU-pool block at op (conv, ReLU, pool) on n rows, one sample at
 * a time: the conv output and its ReLU in m->cact, then pooled into the
 * pool's rows. The same numbers as the three ops over the whole batch. */
static void block_forward(tr_model *m, const tr_op *op, int task, int row0, int n,
                          const float *in) {
    const tr_op *pool = op + 2;
    const float *w = tdata(m, op->pw, task), *b = tdata(m, op->pb, task);
    for (int r = 0; r < n; r++) {
        size_t row = (size_t)(row0 + r);
        tr_conv2d_forward(m->cact, m->col, in + (size_t)r * op->in_size, w, b, 1, op->c, op->h,
                          op->w, op->oc, op->k, op->pad, op->stride);
        tr_relu_forward(m->cact, m->cact, op->out_size);
        tr_maxpool_forward(pool->out + row * pool->out_size, pool->idx + row * pool->out_size,
                           m->cact, 1, pool->c, pool->h, pool->w, pool->k);
    }
}

/* Its backward (op i the conv) from dout (n, pool out_size): per sample, the
 * pool's gradient scattered to the argmax positions and masked by the ReLU
 * (its output there is the pooled value), as the two ops' backward would
 * compute it (0 + ...: they add into zeroed buffers), then the conv's with
 * rebuilt columns. Calls the grad_ready hook as the three ops would. */
static tr_status block_backward(tr_model *m, const tr_op *op, int i, int task, float *din,
                                const float *dout, const float *in, int row0, int n) {
    const tr_op *pool = op + 2;
    if (m->grad_ready) {
        TR_CALL(m->grad_ready(m->grad_ready_ctx, i + 2));
        TR_CALL(m->grad_ready(m->grad_ready_ctx, i + 1));
    }
    float *dw = tgrad(m, op->pw, task), *db = tgrad(m, op->pb, task);
    const float *w = tdata(m, op->pw, task);
    int k = pool->k, pw = pool->w; /* pool->w: the conv output's width */
    size_t plane = (size_t)op->oh * op->ow, pplane = (size_t)pool->oh * pool->ow;
    size_t off[256]; /* the plane offset of each window place */
    for (int q = 0; q < k * k; q++)
        off[q] = tr_maxpool_offset(0, (uint8_t)q, pw, k);
    float *d = m->cact;
    for (int r = 0; r < n; r++) {
        size_t row = (size_t)(row0 + r);
        const float *g = dout + (size_t)r * pool->out_size;
        const float *pv = pool->out + row * pool->out_size;
        const uint8_t *win = pool->idx + row * pool->out_size;
        memset(d, 0, op->out_size * sizeof(float));
        for (int c = 0; c < op->oc; c++) {
            float *dc = d + (size_t)c * plane;
            size_t j = (size_t)c * pplane;
            for (int oy = 0; oy < pool->oh; oy++)
                for (int ox = 0; ox < pool->ow; ox++, j++)
                    dc[(size_t)(oy * k * pw + ox * k) + off[win[j]]] =
                        0.0f + (pv[j] > 0.0f ? 0.0f + g[j] : 0.0f);
        }
        tr_conv2d_backward_in(din ? din + (size_t)r * op->in_size : NULL, dw, db, m->col, m->dcol,
                              d, in + (size_t)r * op->in_size, w, 1, op->c, op->h, op->w, op->oc,
                              op->k, op->pad, op->stride);
        if (m->grad_ready && r + 1 < n)
            TR_CALL(m->grad_ready(m->grad_ready_ctx, i + 1));
    }
    return TR_OK;
}

tr_status tr_model_trunk_forward(tr_model *m, const float **feat, int task, int slot, int row0,
                                 int n, const float *x, const int64_t *ids, int train,
                                 uint64_t step) {
    return tr_model_trunk_forward_ops(m, feat, task, slot, row0, n, 0, m->n_ops, x, ids, train,
                                      step);
}

tr_status tr_model_trunk_forward_ops(tr_model *m, const float **out_p, int task, int slot, int row0,
                                     int n, int lo, int hi, const float *x, const int64_t *ids,
                                     int train, uint64_t step) {
    TR_ASSERT(row0 + n <= m->max_rows && slot < m->slots && 0 <= lo && lo <= hi && hi <= m->n_ops);
    TR_CALL(check_range(m, lo, hi));
    /* dropout masks: a stream per op, and per column with cross-stitch */
    uint32_t stream0 = m->columns ? (uint32_t)task * 32u : 0u;
    const float *in = x;
    for (int i = lo; i < hi; i++) {
        tr_op *op = &m->ops[i];
        if (op->fused) {
            block_forward(m, op, task, row0, n, in);
            i += 2;
            in = m->ops[i].out + (size_t)row0 * m->ops[i].out_size;
            continue;
        }
        float *out = op->out + (size_t)row0 * op->out_size;
        switch (op->kind) {
        case TR_OP_CONV: {
            const float *w = tdata(m, op->pw, task), *b = tdata(m, op->pb, task);
            for (int r = 0; r < n; r++) /* one sample at a time: a one-sample im2col */
                tr_conv2d_forward(out + (size_t)r * op->out_size, m->col,
                                  in + (size_t)r * op->in_size, w, b, 1, op->c, op->h, op->w,
                                  op->oc, op->k, op->pad, op->stride);
            break;
        }
        case TR_OP_FC:
            tr_linear_forward(out, in, tdata(m, op->pw, task), tdata(m, op->pb, task), n, op->c,
                              op->oc);
            break;
        case TR_OP_BN:
            TR_CALL(bn_forward(m, op, task, slot, out, op->xhat + (size_t)row0 * op->out_size, in,
                               n, train));
            break;
        case TR_OP_RELU:
            tr_relu_forward(out, in, (size_t)n * op->out_size);
            break;
        case TR_OP_POOL:
            tr_maxpool_forward(out, op->idx + (size_t)row0 * op->out_size, in, n, op->c, op->h,
                               op->w, op->k);
            break;
        case TR_OP_DROPOUT:
            if (train)
                tr_dropout_forward(out, op->mask + (size_t)row0 * op->out_size, in, n,
                                   (int)op->out_size, op->p, m->seed, stream0 + (uint32_t)i, step,
                                   ids);
            else
                memcpy(out, in, (size_t)n * op->out_size * sizeof(float));
            break;
        }
        in = out;
    }
    *out_p = in;
    return TR_OK;
}

float *tr_model_features(const tr_model *m, int row0) {
    if (m->n_ops == 0) /* model.trunk = none: the caller has the input */
        return NULL;
    const tr_op *op = &m->ops[m->n_ops - 1];
    return op->out + (size_t)row0 * op->out_size;
}

/* Conv op i's backward on n rows, its im2col columns rebuilt from its input.
 * With the grad_ready hook set it runs one example at a time and calls the
 * hook between examples (ops after i are done): the convolution accumulates
 * its weight gradient example by example anyway, so the sums and their
 * order are the same as in one call. */
static tr_status conv_backward(tr_model *m, tr_op *op, int i, int task, float *din,
                               const float *dout, const float *in, int n) {
    float *dw = tgrad(m, op->pw, task), *db = tgrad(m, op->pb, task);
    const float *w = tdata(m, op->pw, task);
    int step = m->grad_ready ? 1 : n;
    for (int r = 0; r < n; r += step) {
        int k = n - r < step ? n - r : step;
        tr_conv2d_backward_in(din ? din + (size_t)r * op->in_size : NULL, dw, db, m->col, m->dcol,
                              dout + (size_t)r * op->out_size, in + (size_t)r * op->in_size, w, k,
                              op->c, op->h, op->w, op->oc, op->k, op->pad, op->stride);
        if (m->grad_ready && r + k < n)
            TR_CALL(m->grad_ready(m->grad_ready_ctx, i + 1));
    }
    return TR_OK;
}

tr_status tr_model_trunk_backward(tr_model *m, int task, int slot, int row0, int n, const float *x,
                                  const float *dfeat) {
    return tr_model_trunk_backward_ops(m, task, slot, row0, n, 0, m->n_ops, x, dfeat, NULL);
}

tr_status tr_model_trunk_backward_ops(tr_model *m, int task, int slot, int row0, int n, int lo,
                                      int hi, const float *x, const float *dfeat, float *dx) {
    TR_ASSERT(0 <= lo && lo <= hi && hi <= m->n_ops);
    TR_CALL(check_range(m, lo, hi));
    const float *dout = dfeat;
    float *bufs[2] = {m->grad_a, m->grad_b};
    int cur = 0;
    for (int i = hi - 1; i >= lo; i--) {
        int first = i >= 2 && m->ops[i - 2].fused ? i - 2 : i; /* a block's conv */
        tr_op *op = &m->ops[first];
        const float *in =
            first > lo ? m->ops[first - 1].out + (size_t)row0 * m->ops[first - 1].out_size : x;
        float *din = first > lo ? bufs[cur] : dx;
        if (first > lo)
            cur ^= 1;
        if (din)
            memset(din, 0, (size_t)n * op->in_size * sizeof(float));
        if (first < i) {
            TR_CALL(block_backward(m, op, first, task, din, dout, in, row0, n));
            i = first;
            dout = din;
            if (m->grad_ready)
                TR_CALL(m->grad_ready(m->grad_ready_ctx, i));
            continue;
        }
        float *out = op->out + (size_t)row0 * op->out_size;
        switch (op->kind) {
        case TR_OP_CONV:
            TR_CALL(conv_backward(m, op, i, task, din, dout, in, n));
            break;
        case TR_OP_FC:
            tr_linear_backward(din, tgrad(m, op->pw, task), tgrad(m, op->pb, task), dout, in,
                               tdata(m, op->pw, task), n, op->c, op->oc);
            break;
        case TR_OP_BN: {
            int c = op->c, s = op->h * op->w;
            double *dsum = m->sync_buf, *dxsum = m->sync_buf + c;
            const float *xhat = op->xhat + (size_t)row0 * op->out_size;
            tr_bn_backward_stats(dsum, dxsum, dout, xhat, n, c, s);
            dxsum[c] = (double)n * s;
            if (m->sync)
                TR_CALL(m->sync(m->sync_ctx, m->sync_buf, 2 * c + 1));
            if (din)
                tr_bn_backward(din, tgrad(m, op->pw, task), tgrad(m, op->pb, task), dout, xhat,
                               op->rstd + (size_t)slot * c, dsum, dxsum, dxsum[c],
                               tdata(m, op->pw, task), n, c, s);
            break;
        }
        case TR_OP_RELU:
            if (din)
                tr_relu_backward(din, dout, out, (size_t)n * op->out_size);
            break;
        case TR_OP_POOL:
            if (din)
                tr_maxpool_backward(din, dout, op->idx + (size_t)row0 * op->out_size, n, op->c,
                                    op->h, op->w, op->k);
            break;
        case TR_OP_DROPOUT:
            if (din)
                tr_dropout_backward(din, dout, op->mask + (size_t)row0 * op->out_size, n,
                                    (int)op->out_size, op->p);
            break;
        }
        dout = din;
        if (m->grad_ready)
            TR_CALL(m->grad_ready(m->grad_ready_ctx, i));
    }
    return TR_OK;
}

tr_status tr_model_head_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                                const float *feat, const int32_t *y, const float *yf) {
    TR_ASSERT(hrow0 + n <= m->max_head_rows);
    TR_ASSERT(task >= m->t0 && task < m->t0 + m->tn);
    int C = m->out_dim, H = m->head_hidden;
    const float *hin = feat;
    int din = m->head_in;
    if (H > 0) {
        float *h7 = m->h7 + (size_t)hrow0 * H;
        tr_linear_forward(h7, feat, pdata(m, m->h7w, task), pdata(m, m->h7b, task), n, m->head_in,
                          H);
        tr_relu_forward(h7, h7, (size_t)n * H);
        hin = h7;
        din = H;
    }
    float *logits = m->logits + (size_t)hrow0 * C;
    float *probs = m->probs + (size_t)hrow0 * C;
    tr_linear_forward(logits, hin, pdata(m, m->h8w, task), pdata(m, m->h8b, task), n, din, C);
    tr_model_task_loss_forward(m, st, task, probs, logits, n, y, yf);
    if (m->pred)
        tr_model_copy_predictions(m, task, hrow0, n, probs, logits);
    return TR_OK;
}

tr_status tr_model_head_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                                 float *dfeat, const int32_t *y, const float *yf, float scale) {
    TR_ASSERT(hrow0 + n <= m->max_head_rows);
    TR_ASSERT(task >= m->t0 && task < m->t0 + m->tn);
    int C = m->out_dim, H = m->head_hidden;
    float *logits = m->logits + (size_t)hrow0 * C;
    float *probs = m->probs + (size_t)hrow0 * C;
    float *dlogits = m->dlogits + (size_t)hrow0 * C;
    memset(dlogits, 0, (size_t)n * C * sizeof(float));
    tr_model_task_loss_backward(m, task, dlogits, probs, logits, n, y, yf, scale);
    if (H > 0) {
        float *h7 = m->h7 + (size_t)hrow0 * H;
        float *dh7 = m->dh7 + (size_t)hrow0 * H;
        memset(dh7, 0, (size_t)n * H * sizeof(float));
        tr_linear_backward(dh7, pgrad(m, m->h8w, task), pgrad(m, m->h8b, task), dlogits, h7,
                           pdata(m, m->h8w, task), n, H, C);
        for (size_t i = 0; i < (size_t)n * H; i++) /* ReLU backward, in place */
            if (h7[i] <= 0.0f)
                dh7[i] = 0.0f;
        tr_linear_backward(dfeat, pgrad(m, m->h7w, task), pgrad(m, m->h7b, task), dh7, feat,
                           pdata(m, m->h7w, task), n, m->head_in, H);
    } else {
        tr_linear_backward(dfeat, pgrad(m, m->h8w, task), pgrad(m, m->h8b, task), dlogits, feat,
                           pdata(m, m->h8w, task), n, m->head_in, C);
    }
    return TR_OK;
}
