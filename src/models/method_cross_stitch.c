/*
 * Cross-stitch networks (Misra et al., CVPR 2016): a trunk column per task,
 * all held by every rank (trunk tensors of shape (T, ...), data-parallel like
 * HPS's shared trunk), and after each trunk unit a cross-stitch unit that
 * mixes the columns' activations with a learned (T, T) matrix alpha:
 *
 *   x~_t = sum_s alpha[t][s] x_s      (every row, every activation)
 *
 * A unit ends after each pooling layer and after each fc layer's ReLU (the
 * trunk's dropout belongs to the last unit). The features handed to the heads
 * are the last unit's mixed columns side by side, (rows, T d); task t's
 * fc7-ReLU-fc8 head reads its own column. The alphas are trunk tensors
 * "xstitch.<layer>.alpha" (no weight decay, learning rate scaled by
 * xstitch.alpha_lr_mult) and are reported as relation matrices
 * "xstitch.alpha.<layer>" (task, task).
 *
 * Activations: column c of a unit runs at trunk rows [c n, (c + 1) n) of the
 * op buffers (the model is built with T times the rows), so the unit outputs
 * of all columns are one (T, n, size) block that the mixing reads.
 */
#include <stdlib.h>
#include <string.h>

#include "taskrel/nn.h"

#include "method_internal.h"

#define XS_MAX_UNITS 16

typedef struct {
    int T, n_units;
    int lo[XS_MAX_UNITS], hi[XS_MAX_UNITS]; /* trunk ops [lo, hi) of each unit */
    int size[XS_MAX_UNITS];                 /* floats per row of a unit's output */
    int alpha[XS_MAX_UNITS];                /* param ids, (T, T) */
    char layer[XS_MAX_UNITS][16];           /* e.g. "conv1", "fc6" */
    int col_rows;                           /* rows of one column */
    int d;                                  /* width of one column's features */
    float *mix[XS_MAX_UNITS];               /* (T, col_rows, size) mixed outputs */
    float *g[3];                            /* (T, col_rows, max size) gradients */
    float *feat;                            /* (col_rows, T d) features */
    float *hin, *dhin;                      /* (head rows, d) a head's column and its gradient */
    tr_relations *relations;
} xstitch;

static xstitch *xs_of(const tr_model *m) {
    return m->run_state;
}

/* The units of the trunk: a boundary after each pool, and after each ReLU that
 * a pool does not follow; trailing ops (dropout) join the last unit. */
static tr_status find_units(tr_model *m, xstitch *x) {
    int lo = 0;
    x->n_units = 0;
    for (int i = 0; i < m->n_ops; i++) {
        const tr_op *op = &m->ops[i];
        int end =
            op->kind == TR_OP_POOL ||
            (op->kind == TR_OP_RELU && (i + 1 == m->n_ops || m->ops[i + 1].kind != TR_OP_POOL));
        if (!end)
            continue;
        TR_CHECK(x->n_units < XS_MAX_UNITS, TR_ERR_CONFIG,
                 "model.kind = cross_stitch supports at most %d trunk layers", XS_MAX_UNITS);
        int u = x->n_units++;
        x->lo[u] = lo;
        x->hi[u] = i + 1;
        lo = i + 1;
        /* the unit's layer name from its first op's weight, "trunk.<layer>.w" */
        const char *nm = m->params.t[m->ops[x->lo[u]].pw].name + strlen("trunk.");
        snprintf(x->layer[u], sizeof(x->layer[u]), "%.*s", (int)(strchr(nm, '.') - nm), nm);
    }
    TR_CHECK(x->n_units > 0, TR_ERR_INTERNAL, "cross-stitch: a trunk without layers");
    x->hi[x->n_units - 1] = m->n_ops;
    for (int u = 0; u < x->n_units; u++)
        x->size[u] =
            (int)(m->ops[x->hi[u] - 1].oc * m->ops[x->hi[u] - 1].oh * m->ops[x->hi[u] - 1].ow);
    return TR_OK;
}

static tr_status xs_declare(tr_model *m, const tr_config *cfg) {
    xstitch *x = calloc(1, sizeof(*x));
    TR_CHECK(x != NULL, TR_ERR_NOMEM, "out of memory");
    m->run_state = x;
    x->T = m->T;
    TR_CALL(find_units(m, x));
    int64_t tt[2] = {m->T, m->T};
    char name[TR_NAME_LEN];
    for (int u = 0; u < x->n_units; u++) {
        snprintf(name, sizeof(name), "xstitch.%s.alpha", x->layer[u]);
        TR_CALL(
            tr_params_add(&m->params, &x->alpha[u], name, TR_GROUP_TRUNK, 0, 2, tt, 0, m->T, 0, 1));
        m->params.t[x->alpha[u]].lr_scale = cfg->xstitch_alpha_lr_mult;
    }
    /* every column's activations in its own row block; a batch-norm slot per column */
    x->col_rows = m->max_rows;
    m->max_rows *= m->T;
    if (m->slots < m->T)
        m->slots = m->T;
    x->d = m->feat_dim;
    m->head_in = x->d;
    m->feat_dim = m->T * x->d;
    return tr_model_declare_heads(m, cfg);
}

static tr_status xs_setup(tr_model *m, const tr_config *cfg) {
    xstitch *x = xs_of(m);
    size_t T = (size_t)x->T, rows = (size_t)x->col_rows, maxs = 0;
    for (int u = 0; u < x->n_units; u++) {
        TR_ALLOC(x->mix[u], T * rows * (size_t)x->size[u], "cross-stitch activations");
        if ((size_t)x->size[u] > maxs)
            maxs = (size_t)x->size[u];
    }
    for (int i = 0; i < 3; i++)
        TR_ALLOC(x->g[i], T * rows * maxs, "cross-stitch gradients");
    TR_ALLOC(x->feat, rows * T * (size_t)x->d, "cross-stitch features");
    TR_ALLOC(x->hin, (size_t)m->max_head_rows * (size_t)x->d, "head inputs");
    TR_ALLOC(x->dhin, (size_t)m->max_head_rows * (size_t)x->d, "head input gradients");
    /* alpha near the identity: alpha_tt = alpha_self, the rest shared equally */
    float self = x->T > 1 ? cfg->xstitch_alpha_self : 1.0f;
    float other = x->T > 1 ? (1.0f - self) / (float)(x->T - 1) : 0.0f;
    for (int u = 0; u < x->n_units; u++) {
        float *a = tr_params_data(&m->params, x->alpha[u]);
        for (int t = 0; t < x->T; t++)
            for (int s = 0; s < x->T; s++)
                a[t * x->T + s] = t == s ? self : other;
    }
    return TR_OK;
}

static tr_status xs_attach(tr_model *m, const tr_method_env *env) {
    xs_of(m)->relations = env->relations;
    return TR_OK;
}

/* out_t = sum_s a[t][s] in_s over blocks of len floats (trans: a[s][t]). */
static void mix(float *out, const float *a, const float *in, int T, size_t len, int trans) {
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * len;
        memset(o, 0, len * sizeof(float));
        for (int s = 0; s < T; s++) {
            float w = trans ? a[s * T + t] : a[t * T + s];
            const float *x = in + (size_t)s * len;
            for (size_t k = 0; k < len; k++)
                o[k] += w * x[k];
        }
    }
}

/* Given g_t = dL/dout_t: din_s = sum_t a[t][s] g_t and da[t][s] += <g_t, in_s>. */
static void mix_backward(float *din, float *da, const float *a, const float *g, const float *in,
                         int T, size_t len) {
    mix(din, a, g, T, len, 1);
    for (int t = 0; t < T; t++)
        for (int s = 0; s < T; s++) {
            const float *gt = g + (size_t)t * len, *x = in + (size_t)s * len;
            double acc = 0.0;
            for (size_t k = 0; k < len; k++)
                acc += (double)gt[k] * (double)x[k];
            da[t * T + s] += (float)acc;
        }
}

/* Every row through every column, mixing after each unit. */
static tr_status xs_forward(tr_model *m, const float **feat, const tr_trunk_batch *b) {
    xstitch *x = xs_of(m);
    int T = x->T, n = b->rows;
    TR_ASSERT(n <= x->col_rows);
    for (int u = 0; u < x->n_units; u++) {
        const float *out = NULL;
        for (int c = 0; c < T; c++) {
            const float *in = u == 0 ? b->x : x->mix[u - 1] + (size_t)c * n * x->size[u - 1];
            TR_CALL(tr_model_trunk_forward_ops(m, &out, c, c, c * n, n, x->lo[u], x->hi[u], in,
                                               b->ids, b->train, b->step));
        }
        /* the columns' outputs are consecutive row blocks of the unit's last op */
        const float *all = m->ops[x->hi[u] - 1].out;
        mix(x->mix[u], tr_params_data(&m->params, x->alpha[u]), all, T, (size_t)n * x->size[u], 0);
    }
    const float *last = x->mix[x->n_units - 1];
    size_t d = (size_t)x->d;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < T; c++)
            memcpy(x->feat + ((size_t)i * T + c) * d, last + ((size_t)c * n + i) * d,
                   d * sizeof(float));
    *feat = x->feat;
    return TR_OK;
}

static tr_status xs_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat) {
    xstitch *x = xs_of(m);
    int T = x->T, n = b->rows;
    size_t d = (size_t)x->d;
    float *g = x->g[0], *gu = x->g[1], *gin = x->g[2];
    for (int c = 0; c < T; c++) /* (n, T d) -> (T, n, d) */
        for (int i = 0; i < n; i++)
            memcpy(g + ((size_t)c * n + i) * d, dfeat + ((size_t)i * T + c) * d, d * sizeof(float));
    for (int u = x->n_units - 1; u >= 0; u--) {
        size_t len = (size_t)n * x->size[u];
        mix_backward(gu, tr_params_grad(&m->params, x->alpha[u]),
                     tr_params_data(&m->params, x->alpha[u]), g, m->ops[x->hi[u] - 1].out, T, len);
        for (int c = 0; c < T; c++) {
            size_t pin = u > 0 ? (size_t)n * x->size[u - 1] : 0;
            const float *in = u == 0 ? b->x : x->mix[u - 1] + c * pin;
            TR_CALL(tr_model_trunk_backward_ops(m, c, c, c * n, n, x->lo[u], x->hi[u], in,
                                                gu + c * len, u > 0 ? gin + c * pin : NULL));
        }
        float *tmp = g; /* the input gradient is the previous unit's output gradient */
        g = gin;
        gin = tmp;
    }
    return TR_OK;
}

/* Task t's head on its own column of the features. */
static tr_status xs_head_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                                 const float *feat, const int32_t *y, const float *yf, int train) {
    (void)train;
    xstitch *x = xs_of(m);
    size_t d = (size_t)x->d, fd = (size_t)m->feat_dim;
    TR_ASSERT(hrow0 + n <= m->max_head_rows);
    float *hin = x->hin + (size_t)hrow0 * d;
    for (int i = 0; i < n; i++)
        memcpy(hin + i * d, feat + i * fd + (size_t)task * d, d * sizeof(float));
    return tr_model_head_forward(m, st, task, hrow0, n, hin, y, yf);
}

static tr_status xs_head_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                                  float *dfeat, const int32_t *y, const float *yf, float scale) {
    (void)feat; /* the column copied by the forward */
    xstitch *x = xs_of(m);
    size_t d = (size_t)x->d, fd = (size_t)m->feat_dim;
    float *dh = x->dhin + (size_t)hrow0 * d;
    memset(dh, 0, (size_t)n * d * sizeof(float));
    TR_CALL(
        tr_model_head_backward(m, task, hrow0, n, x->hin + (size_t)hrow0 * d, dh, y, yf, scale));
    for (int i = 0; i < n; i++) {
        float *o = dfeat + i * fd + (size_t)task * d;
        for (size_t k = 0; k < d; k++)
            o[k] += dh[i * d + k];
    }
    return TR_OK;
}

/* The alphas (replicated parameters) as relation matrices. */
static tr_status xs_relations(tr_model *m) {
    xstitch *x = xs_of(m);
    if (!x->relations)
        return TR_OK;
    int T = x->T;
    double *a = malloc((size_t)T * T * sizeof(double));
    TR_CHECK(a != NULL, TR_ERR_NOMEM, "out of memory");
    tr_status st = TR_OK;
    for (int u = 0; u < x->n_units && st == TR_OK; u++) {
        const float *w = tr_params_data(&m->params, x->alpha[u]);
        for (int k = 0; k < T * T; k++)
            a[k] = w[k];
        char name[TR_RELATION_NAME_LEN], title[TR_RELATION_TITLE_LEN];
        snprintf(name, sizeof(name), "xstitch.alpha.%s", x->layer[u]);
        snprintf(title, sizeof(title),
                 "Cross-stitch alpha after %s (row: task's column, col: column mixed in)",
                 x->layer[u]);
        st = tr_relations_add(x->relations, name, title, "task,task", a, T, T);
    }
    free(a);
    return st;
}

static void xs_free(tr_model *m) {
    xstitch *x = xs_of(m);
    if (!x)
        return;
    for (int u = 0; u < XS_MAX_UNITS; u++)
        tr_free(x->mix[u]);
    for (int i = 0; i < 3; i++)
        tr_free(x->g[i]);
    tr_free(x->feat);
    tr_free(x->hin);
    tr_free(x->dhin);
    free(x);
    m->run_state = NULL;
}

const tr_method tr_method_cross_stitch = {
    .name = "cross_stitch",
    .kind = TR_MODEL_XSTITCH,
    .layout = TR_LAYOUT_TASK_COLUMNS,
    .declare = xs_declare,
    .setup = xs_setup,
    .attach = xs_attach,
    .shared_forward = xs_forward,
    .head_forward = xs_head_forward,
    .head_backward = xs_head_backward,
    .shared_backward = xs_backward,
    .final_relations = xs_relations,
    .before_save = xs_relations,
    .free = xs_free,
};
