/*
 * Trunk and task heads for STL and HPS (see taskrel/model.h).
 * Not here: batching, communication or the training loop (src/train).
 */
#include "taskrel/model.h"

#include <math.h>
#include <string.h>

#include "taskrel/json.h"
#include "taskrel/method.h"
#include "taskrel/nn.h"

/* Parameter initialisation streams: a tensor's draw is keyed on its declaration
 * index; with independent head init each task gets its own sub-stream. */
#define TR_INIT_TASK_STRIDE 4096u

static tr_status add_op(tr_model *m, tr_op **out, tr_op_kind kind, int c, int h, int w) {
    TR_CHECK(m->n_ops < (int)(sizeof(m->ops) / sizeof(m->ops[0])), TR_ERR_CONFIG,
             "model has too many layers");
    tr_op *op = &m->ops[m->n_ops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->c = c;
    op->h = h;
    op->w = w;
    op->oc = c;
    op->oh = h;
    op->ow = w;
    op->pw = op->pb = op->brm = op->brv = -1;
    *out = op;
    return TR_OK;
}

static tr_status declare(tr_model *m, int *id, const char *name, int decay, int ndim,
                         const int64_t *shape, int per_task) {
    return tr_params_add(&m->params, id, name, per_task ? TR_GROUP_HEAD : TR_GROUP_TRUNK, decay,
                         ndim, shape, per_task, m->T, m->t0, m->tn);
}

/* A trunk tensor (or buffer) of the arena p: per task (STL: task axis), a
 * column per task held by every rank (cross-stitch: shape (T, ...), shared),
 * or shared. Grouped as TRUNK even when per task, so that
 * train.lr_mult_trunk applies to them. */
static tr_status add_trunk(tr_model *m, tr_params *p, int *id, const char *name, int decay,
                           int ndim, const int64_t *shape) {
    if (m->columns) {
        int64_t cs[TR_MAX_DIMS] = {m->columns};
        memcpy(cs + 1, shape, (size_t)ndim * sizeof(int64_t));
        return tr_params_add(p, id, name, TR_GROUP_TRUNK, decay, ndim + 1, cs, 0, m->T, 0, 1);
    }
    return tr_params_add(p, id, name, TR_GROUP_TRUNK, decay, ndim, shape, m->trunk_per_task, m->T,
                         m->t0, m->tn);
}

static tr_status declare_trunk(tr_model *m, int *id, const char *name, int decay, int ndim,
                               const int64_t *shape) {
    return add_trunk(m, &m->params, id, name, decay, ndim, shape);
}

static tr_status add_bn(tr_model *m, int idx, int c, int h, int w) {
    tr_op *op = NULL;
    TR_CALL(add_op(m, &op, TR_OP_BN, c, h, w));
    char name[TR_NAME_LEN];
    int64_t shape[1] = {c};
    snprintf(name, sizeof(name), "trunk.bn%d.gamma", idx);
    TR_CALL(declare_trunk(m, &op->pw, name, 0, 1, shape));
    snprintf(name, sizeof(name), "trunk.bn%d.beta", idx);
    TR_CALL(declare_trunk(m, &op->pb, name, 0, 1, shape));
    snprintf(name, sizeof(name), "trunk.bn%d.running_mean", idx);
    TR_CALL(add_trunk(m, &m->buffers, &op->brm, name, 0, 1, shape));
    snprintf(name, sizeof(name), "trunk.bn%d.running_var", idx);
    TR_CALL(add_trunk(m, &m->buffers, &op->brv, name, 0, 1, shape));
    return TR_OK;
}

static tr_status build_trunk(tr_model *m, const tr_config *cfg) {
    int c, h, w;
    if (m->in_ndim == 3) {
        c = (int)m->in_dims[0];
        h = (int)m->in_dims[1];
        w = (int)m->in_dims[2];
    } else {
        c = (int)m->in_dims[0];
        h = w = 1;
    }
    tr_op *op = NULL;
    char name[TR_NAME_LEN];
    int fc_idx = 0, bn_idx = 0;
    if (cfg->trunk == TR_TRUNK_LENET) {
        TR_CHECK(m->in_ndim == 3, TR_ERR_CONFIG,
                 "model.trunk = lenet needs image data (n, C, H, W); this dataset has vector "
                 "samples: use model.trunk = mlp");
        static const int chans[2] = {32, 64};
        for (int i = 0; i < 2; i++) {
            TR_CHECK(h >= 6 && w >= 6, TR_ERR_CONFIG,
                     "images of %dx%d are too small for the lenet trunk", h, w);
            TR_CALL(add_op(m, &op, TR_OP_CONV, c, h, w));
            op->k = 5;
            op->pad = 0;
            op->stride = 1;
            op->oc = chans[i];
            op->oh = tr_conv2d_out_dim(h, 5, 0, 1);
            op->ow = tr_conv2d_out_dim(w, 5, 0, 1);
            int64_t ws[4] = {chans[i], c, 5, 5}, bs[1] = {chans[i]};
            snprintf(name, sizeof(name), "trunk.conv%d.w", i + 1);
            TR_CALL(declare_trunk(m, &op->pw, name, 1, 4, ws));
            /* no bias before batch norm: BN removes it, and its gradient
             * would be pure rounding noise (which AdamW would amplify) */
            snprintf(name, sizeof(name), "trunk.conv%d.b", i + 1);
            if (!cfg->batchnorm)
                TR_CALL(declare_trunk(m, &op->pb, name, 0, 1, bs));
            c = op->oc;
            h = op->oh;
            w = op->ow;
            if (cfg->batchnorm)
                TR_CALL(add_bn(m, bn_idx++, c, h, w));
            TR_CALL(add_op(m, &op, TR_OP_RELU, c, h, w));
            TR_CALL(add_op(m, &op, TR_OP_POOL, c, h, w));
            op->k = 2;
            op->oh = h / 2;
            op->ow = w / 2;
            h = op->oh;
            w = op->ow;
        }
        int din = c * h * w;
        TR_CALL(add_op(m, &op, TR_OP_FC, din, 1, 1));
        op->oc = cfg->lenet_fc;
        int64_t ws[2] = {din, cfg->lenet_fc}, bs[1] = {cfg->lenet_fc};
        TR_CALL(declare_trunk(m, &op->pw, "trunk.fc6.w", 1, 2, ws));
        if (!cfg->batchnorm)
            TR_CALL(declare_trunk(m, &op->pb, "trunk.fc6.b", 0, 1, bs));
        c = cfg->lenet_fc;
        h = w = 1;
        if (cfg->batchnorm)
            TR_CALL(add_bn(m, bn_idx++, c, 1, 1));
        TR_CALL(add_op(m, &op, TR_OP_RELU, c, 1, 1));
    } else if (cfg->trunk == TR_TRUNK_NONE) {
        c = c * h * w; /* the features are the (flattened) input */
        h = w = 1;
    } else {
        int din = c * h * w;
        for (int i = 0; i < cfg->mlp_layers; i++) {
            TR_CALL(add_op(m, &op, TR_OP_FC, din, 1, 1));
            op->oc = cfg->mlp_hidden[i];
            int64_t ws[2] = {din, op->oc}, bs[1] = {op->oc};
            snprintf(name, sizeof(name), "trunk.fc%d.w", ++fc_idx);
            TR_CALL(declare_trunk(m, &op->pw, name, 1, 2, ws));
            snprintf(name, sizeof(name), "trunk.fc%d.b", fc_idx);
            if (!cfg->batchnorm)
                TR_CALL(declare_trunk(m, &op->pb, name, 0, 1, bs));
            din = op->oc;
            if (cfg->batchnorm)
                TR_CALL(add_bn(m, bn_idx++, din, 1, 1));
            TR_CALL(add_op(m, &op, TR_OP_RELU, din, 1, 1));
        }
        c = din;
        h = w = 1;
    }
    if (cfg->dropout > 0.0f) {
        TR_CALL(add_op(m, &op, TR_OP_DROPOUT, c, h, w));
        op->p = cfg->dropout;
    }
    m->feat_dim = c * h * w;
    return TR_OK;
}

static tr_status alloc_buffers(tr_model *m) {
    size_t max_act = (size_t)m->in_size, max_col = 1;
    float *prev_out = NULL;
    for (int i = 0; i < m->n_ops; i++) {
        tr_op *op = &m->ops[i];
        op->in_size = (size_t)op->c * (size_t)op->h * (size_t)op->w;
        op->out_size = (size_t)op->oc * (size_t)op->oh * (size_t)op->ow;
        if (op->out_size > max_act)
            max_act = op->out_size;
        size_t rows = (size_t)m->max_rows;
        if (op->kind == TR_OP_RELU && prev_out) {
            op->out = prev_out; /* in place */
        } else {
            TR_ALLOC(op->out, rows * op->out_size, "activations");
        }
        switch (op->kind) {
        case TR_OP_CONV:
            op->col_size = tr_conv2d_col_size(op->c, op->h, op->w, op->k, op->pad, op->stride);
            TR_ALLOC(op->col, rows * op->col_size, "im2col cache");
            if (op->col_size > max_col)
                max_col = op->col_size;
            break;
        case TR_OP_POOL:
            TR_ALLOC(op->idx, rows * op->out_size, "pool indices");
            break;
        case TR_OP_DROPOUT:
            TR_ALLOC(op->mask, rows * op->out_size, "dropout mask");
            break;
        case TR_OP_BN:
            TR_ALLOC(op->xhat, rows * op->out_size, "batch-norm cache");
            TR_ALLOC(op->rstd, (size_t)m->slots * (size_t)op->c, "batch-norm cache");
            break;
        default:
            break;
        }
        prev_out = op->out;
    }
    size_t rows = (size_t)m->max_rows;
    TR_ALLOC(m->grad_a, rows * max_act, "activation gradients");
    TR_ALLOC(m->grad_b, rows * max_act, "activation gradients");
    TR_ALLOC(m->dcol, max_col, "im2col gradient scratch");
    size_t hr = (size_t)m->max_head_rows;
    if (m->head_hidden > 0) {
        TR_ALLOC(m->h7, hr * (size_t)m->head_hidden, "head activations");
        TR_ALLOC(m->dh7, hr * (size_t)m->head_hidden, "head gradients");
    }
    TR_ALLOC(m->logits, hr * (size_t)m->out_dim, "logits");
    TR_ALLOC(m->probs, hr * (size_t)m->out_dim, "probabilities");
    TR_ALLOC(m->dlogits, hr * (size_t)m->out_dim, "logit gradients");
    int maxc = 1;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == TR_OP_BN && m->ops[i].c > maxc)
            maxc = m->ops[i].c;
    TR_ALLOC(m->sync_buf, (size_t)(2 * maxc + 1), "batch-norm sync buffer");
    return TR_OK;
}

/* PyTorch's default for conv and linear layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * for weight and bias, so that taskrel and the PyTorch reference start alike. */
static void init_params(tr_model *m, tr_head_init head_init) {
    tr_params *p = &m->params;
    for (int i = 0; i < p->n; i++) {
        tr_tensor *t = &p->t[i];
        const char *nm = t->name;
        const char *leaf = strrchr(nm, '.');
        leaf = leaf ? leaf + 1 : nm;
        float *data = tr_params_data(p, i);
        if (strcmp(leaf, "gamma") == 0) {
            for (size_t k = 0; k < t->count; k++)
                data[k] = 1.0f;
            continue;
        }
        if (strcmp(leaf, "beta") == 0)
            continue;
        /* fan_in: the weight tensor of this layer (the bias shares its stream
         * family); conv weight (oc, c, k, k) -> c*k*k; fc weight (din, dout) -> din */
        char wname[TR_NAME_LEN];
        snprintf(wname, sizeof(wname), "%.*s.w", (int)(leaf - 1 - nm), nm);
        int wid = tr_params_find(p, wname);
        const tr_tensor *wt = &p->t[wid < 0 ? i : wid];
        /* cross-stitch columns: the leading axis is drawn like a task axis */
        int cols = m->columns && strncmp(nm, "trunk.", 6) == 0;
        int base = wt->task_axis || cols ? 1 : 0;
        int64_t fan_in;
        if (wt->ndim - base == 4)
            fan_in = wt->shape[base + 1] * wt->shape[base + 2] * wt->shape[base + 3];
        else
            fan_in = wt->shape[base];
        float bound = 1.0f / sqrtf((float)fan_in);
        int64_t slices = cols ? m->columns : t->tn;
        size_t per = cols ? t->count / (size_t)m->columns : t->per_task;
        for (int64_t lt = 0; lt < slices; lt++) {
            int64_t task = cols ? lt : t->t0 + lt;
            uint64_t stream = (uint64_t)i * TR_INIT_TASK_STRIDE;
            if ((t->task_axis || cols) && head_init == TR_HEAD_INIT_INDEPENDENT)
                stream += (uint64_t)task + 1;
            tr_init_uniform(data + (size_t)lt * per, per, bound, m->seed, stream);
        }
    }
    for (int i = 0; i < m->buffers.n; i++) {
        const char *nm = m->buffers.t[i].name;
        if (strstr(nm, "running_var")) {
            float *d = tr_params_data(&m->buffers, i);
            for (size_t k = 0; k < m->buffers.t[i].count; k++)
                d[k] = 1.0f;
        }
    }
}

tr_status tr_model_init(tr_model *m, const tr_config *cfg, const tr_dataset *ds, int t0, int tn,
                        int max_rows, int max_head_rows, int slots) {
    memset(m, 0, sizeof(*m));
    tr_params_init(&m->params);
    tr_params_init(&m->buffers);
    m->method = tr_method_find(cfg->model_kind);
    TR_CHECK(m->method != NULL, TR_ERR_CONFIG, "model.kind = %s is not available in this build",
             tr_model_kind_str(cfg->model_kind));
    m->kind = cfg->model_kind;
    m->T = ds->T;
    m->t0 = t0;
    m->tn = tn;
    m->in_ndim = ds->ndim;
    memcpy(m->in_dims, ds->dims, sizeof(m->in_dims));
    m->in_size = ds->sample_size;
    TR_CALL(tr_model_set_task_outputs(m, ds));
    m->trunk_per_task = m->method->layout == TR_LAYOUT_TASK_TRUNKS;
    m->columns = m->method->layout == TR_LAYOUT_TASK_COLUMNS ? m->T : 0;
    m->head_hidden = cfg->head_hidden;
    m->max_rows = max_rows;
    m->max_head_rows = max_head_rows;
    m->slots = slots;
    m->bn_eps = 1e-5f;
    m->bn_momentum = 0.1f;
    m->dropout = cfg->dropout;
    m->seed = cfg->seed;
    TR_CALL(build_trunk(m, cfg));
    m->head_in = m->feat_dim;
    m->h7w = m->h7b = m->h8w = m->h8b = -1;
    TR_CALL(m->method->declare(m, cfg));
    TR_CALL(tr_params_alloc(&m->params));
    TR_CALL(tr_params_alloc(&m->buffers));
    TR_CALL(alloc_buffers(m));
    init_params(m, cfg->head_init);
    return m->method->setup ? m->method->setup(m, cfg) : TR_OK;
}

tr_status tr_model_declare_heads(tr_model *m, const tr_config *cfg) {
    (void)cfg;
    int din = m->head_in;
    if (m->head_hidden > 0) {
        int64_t ws[2] = {din, m->head_hidden}, bs[1] = {m->head_hidden};
        TR_CALL(declare(m, &m->h7w, "head.fc7.w", 1, 2, ws, 1));
        TR_CALL(declare(m, &m->h7b, "head.fc7.b", 0, 1, bs, 1));
        din = m->head_hidden;
    }
    int64_t ws[2] = {din, m->out_dim}, bs[1] = {m->out_dim};
    TR_CALL(declare(m, &m->h8w, "head.fc8.w", 1, 2, ws, 1));
    TR_CALL(declare(m, &m->h8b, "head.fc8.b", 0, 1, bs, 1));
    return TR_OK;
}

void tr_model_free(tr_model *m) {
    if (!m)
        return;
    if (m->method && m->method->free)
        m->method->free(m);
    float *prev = NULL;
    for (int i = 0; i < m->n_ops; i++) {
        tr_op *op = &m->ops[i];
        if (op->out != prev)
            tr_free(op->out);
        prev = op->out;
        tr_free(op->col);
        tr_free(op->idx);
        tr_free(op->mask);
        tr_free(op->xhat);
        tr_free(op->rstd);
    }
    tr_free(m->grad_a);
    tr_free(m->grad_b);
    tr_free(m->dcol);
    tr_free(m->h7);
    tr_free(m->dh7);
    tr_free(m->logits);
    tr_free(m->probs);
    tr_free(m->dlogits);
    tr_free(m->sync_buf);
    tr_free(m->task_kinds);
    tr_free(m->task_outputs);
    tr_free(m->task_names);
    tr_params_free(&m->params);
    tr_params_free(&m->buffers);
    memset(m, 0, sizeof(*m));
}

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
    /* dropout masks: a stream per op, and per column with cross-stitch */
    uint32_t stream0 = m->columns ? (uint32_t)task * 32u : 0u;
    const float *in = x;
    for (int i = lo; i < hi; i++) {
        tr_op *op = &m->ops[i];
        float *out = op->out + (size_t)row0 * op->out_size;
        switch (op->kind) {
        case TR_OP_CONV:
            tr_conv2d_forward(out, op->col + (size_t)row0 * op->col_size, in,
                              tdata(m, op->pw, task), tdata(m, op->pb, task), n, op->c, op->h,
                              op->w, op->oc, op->k, op->pad, op->stride);
            break;
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

/* Conv op i's backward on n rows. With the grad_ready hook set it runs one
 * example at a time and calls the hook between examples (ops after i are
 * done): the convolution accumulates its weight gradient example by example
 * anyway, so the sums and their order are the same as in one call. */
static tr_status conv_backward(tr_model *m, tr_op *op, int i, int task, float *din,
                               const float *dout, int row0, int n) {
    float *dw = tgrad(m, op->pw, task), *db = tgrad(m, op->pb, task);
    const float *w = tdata(m, op->pw, task), *col = op->col + (size_t)row0 * op->col_size;
    int step = m->grad_ready ? 1 : n;
    for (int r = 0; r < n; r += step) {
        int k = n - r < step ? n - r : step;
        tr_conv2d_backward(din ? din + (size_t)r * op->in_size : NULL, dw, db, m->dcol,
                           dout + (size_t)r * op->out_size, col + (size_t)r * op->col_size, w, k,
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
    const float *dout = dfeat;
    float *bufs[2] = {m->grad_a, m->grad_b};
    int cur = 0;
    for (int i = hi - 1; i >= lo; i--) {
        tr_op *op = &m->ops[i];
        const float *in = i > lo ? m->ops[i - 1].out + (size_t)row0 * m->ops[i - 1].out_size : x;
        float *din = i > lo ? bufs[cur] : dx;
        if (i > lo)
            cur ^= 1;
        if (din)
            memset(din, 0, (size_t)n * op->in_size * sizeof(float));
        float *out = op->out + (size_t)row0 * op->out_size;
        switch (op->kind) {
        case TR_OP_CONV:
            TR_CALL(conv_backward(m, op, i, task, din, dout, row0, n));
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

void tr_model_write_sizes(const tr_model *m, FILE *f) {
    const tr_params *p = &m->params;
    size_t off = 0, trunk = 0, per_task = 0;
    if (tr_params_domain_range(p, 0, &off, &trunk) != TR_OK)
        trunk = 0;
    for (int i = 0; i < p->n; i++)
        if (p->t[i].task_axis)
            per_task += p->t[i].per_task;
    fprintf(f,
            "\"in_size\":%lld,\"feat_dim\":%d,\"trunk_floats\":%zu,\"task_floats_per_task\":%zu,"
            "\"trunk_per_task\":%d,\"tensors\":[",
            (long long)m->in_size, m->feat_dim, trunk, per_task, m->trunk_per_task);
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        fprintf(f, "%s{\"name\":", i ? "," : "");
        tr_json_write_string(f, t->name);
        fprintf(f, ",\"task_axis\":%d,\"shape\":[", t->task_axis);
        for (int d = 0; d < t->ndim; d++)
            fprintf(f, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        fprintf(f, "]}");
    }
    fprintf(f, "]");
}
