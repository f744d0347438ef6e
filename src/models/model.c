/*
 * Trunk and task heads for STL and HPS (see taskrel/model.h): the ops, the
 * parameters and their initialisation; the passes are in model_pass.c.
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

/* The floats per row of grad_a and grad_b: the trunk's backward over ops
 * [lo, hi) writes the input gradient of each op (of each conv-ReLU-pool block
 * as a whole) after lo into them in turn, from hi - 1 down (model_pass.c). */
static void grad_sizes(const tr_model *m, size_t din[2]) {
    din[0] = din[1] = 1;
    for (int hi = 1; hi <= m->n_ops; hi++) {
        if (m->ops[hi - 1].fused || (hi >= 2 && m->ops[hi - 2].fused))
            continue; /* not a valid end: inside a block */
        int cur = 0;
        for (int i = hi - 1; i >= 1; i--) {
            i = i >= 2 && m->ops[i - 2].fused ? i - 2 : i; /* a block's conv */
            if (i >= 1 && m->ops[i].in_size > din[cur])
                din[cur] = m->ops[i].in_size;
            cur ^= 1;
        }
    }
}

/* Conv-ReLU-pool blocks run one sample at a time (model_pass.c): their conv
 * and ReLU outputs live in one-sample scratch (m->cact). */
static tr_status alloc_buffers(tr_model *m) {
    size_t max_col = 1, max_cact = 1, rows = (size_t)m->max_rows;
    float *prev_out = NULL;
    for (int i = 0; i < m->n_ops; i++) {
        tr_op *op = &m->ops[i];
        op->fused = i + 2 < m->n_ops && op->kind == TR_OP_CONV && op[1].kind == TR_OP_RELU &&
                    op[2].kind == TR_OP_POOL;
    }
    for (int i = 0; i < m->n_ops; i++) {
        tr_op *op = &m->ops[i];
        op->in_size = (size_t)op->c * (size_t)op->h * (size_t)op->w;
        op->out_size = (size_t)op->oc * (size_t)op->oh * (size_t)op->ow;
        int after1 = i >= 1 && m->ops[i - 1].fused;
        if (op->fused || after1) {
            op->out = NULL; /* one sample at a time in m->cact */
            if (op->out_size > max_cact)
                max_cact = op->out_size;
        } else if (op->kind == TR_OP_RELU && prev_out) {
            op->out = prev_out; /* in place */
        } else {
            TR_ALLOC(op->out, rows * op->out_size, "activations");
        }
        switch (op->kind) {
        case TR_OP_CONV:
            op->col_size = tr_conv2d_col_size(op->c, op->h, op->w, op->k, op->pad, op->stride);
            if (op->col_size > max_col)
                max_col = op->col_size;
            break;
        case TR_OP_POOL:
            TR_CHECK(op->k <= 16, TR_ERR_INTERNAL, "pool window %d: at most 16", op->k);
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
    size_t din[2];
    grad_sizes(m, din);
    TR_ALLOC(m->grad_a, rows * din[0], "activation gradients");
    TR_ALLOC(m->grad_b, rows * din[1], "activation gradients");
    TR_ALLOC(m->col, max_col, "im2col scratch");
    TR_ALLOC(m->dcol, max_col, "im2col gradient scratch");
    TR_ALLOC(m->cact, max_cact, "convolution output scratch");
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
        tr_free(op->idx);
        tr_free(op->mask);
        tr_free(op->xhat);
        tr_free(op->rstd);
    }
    tr_free(m->grad_a);
    tr_free(m->grad_b);
    tr_free(m->col);
    tr_free(m->dcol);
    tr_free(m->cact);
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
