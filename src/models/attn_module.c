/*
 * One MRAN attention module (T-T on the task values, F-F on the trunk
 * features): token embeddings, relation scores and their global-batch mean,
 * sum-pool softmax or multihead attention, residual and synchronised batch
 * norm, the relation penalty, and the backward of all of it (see
 * docs/algorithms.md, "Attention module"). Collectives go through the
 * model's sync callbacks. Not here: how T-T, F-F and T-F are wired (mran.c).
 */
#include <math.h>
#include <string.h>

#include "taskrel/nn.h"

#include "rel_internal.h"

tr_status tr_attn_module_declare(tr_model *m, tr_attn_module *mod, const char *pre, int k, int on,
                                 const tr_config *cfg) {
    char nm[TR_NAME_LEN];
    memset(mod, 0, sizeof(*mod));
    mod->on = on;
    mod->d.kind = (tr_attn_kind)cfg->mran_attention;
    mod->d.k = k;
    mod->d.m = cfg->mran_embed_dim;
    mod->d.q = cfg->mran_concat_hidden;
    mod->d.heads = cfg->mran_heads;
    mod->pu = mod->pb = mod->pw = mod->pv = mod->pwq = mod->pwk = mod->pwv = mod->pwo = -1;
    mod->ba = -1;
    int64_t mm = mod->d.m, q = mod->d.q;
    tr_params *p = &m->params;
    if (on) {
        snprintf(nm, sizeof(nm), "%s.embed.u", pre);
        TR_CALL(tr_rel_add_shared(p, m, &mod->pu, nm, 0, k, mm));
        snprintf(nm, sizeof(nm), "%s.embed.b", pre);
        TR_CALL(tr_rel_add_shared(p, m, &mod->pb, nm, 0, k, mm));
        switch (mod->d.kind) {
        case TR_ATTN_DOT:
            break;
        case TR_ATTN_GENERAL:
            snprintf(nm, sizeof(nm), "%s.attn.w", pre);
            TR_CALL(tr_rel_add_shared(p, m, &mod->pw, nm, 1, mm, mm));
            break;
        case TR_ATTN_CONCAT:
            snprintf(nm, sizeof(nm), "%s.attn.w", pre);
            TR_CALL(tr_rel_add_shared(p, m, &mod->pw, nm, 1, 2 * mm, q));
            snprintf(nm, sizeof(nm), "%s.attn.v", pre);
            TR_CALL(tr_rel_add_shared(p, m, &mod->pv, nm, 1, q, 0));
            break;
        case TR_ATTN_MULTIHEAD:
            snprintf(nm, sizeof(nm), "%s.attn.wq", pre);
            TR_CALL(tr_rel_add_shared(p, m, &mod->pwq, nm, 1, mm, mm));
            snprintf(nm, sizeof(nm), "%s.attn.wk", pre);
            TR_CALL(tr_rel_add_shared(p, m, &mod->pwk, nm, 1, mm, mm));
            snprintf(nm, sizeof(nm), "%s.attn.wv", pre);
            TR_CALL(tr_rel_add_shared(p, m, &mod->pwv, nm, 1, mm, mm));
            snprintf(nm, sizeof(nm), "%s.attn.wo", pre);
            TR_CALL(tr_rel_add_shared(p, m, &mod->pwo, nm, 1, mm, 0));
            break;
        }
    }
    /* one normalisation channel for all k tokens (docs/algorithms.md: a
     * per-token batch norm would cancel any batch-constant re-weighting) */
    snprintf(nm, sizeof(nm), "%s.bn.gamma", pre);
    TR_CALL(tr_rel_add_shared(p, m, &mod->pgamma, nm, 0, 1, 0));
    snprintf(nm, sizeof(nm), "%s.bn.beta", pre);
    TR_CALL(tr_rel_add_shared(p, m, &mod->pbeta, nm, 0, 1, 0));
    snprintf(nm, sizeof(nm), "%s.bn.running_mean", pre);
    TR_CALL(tr_rel_add_shared(&m->buffers, m, &mod->brm, nm, 0, 1, 0));
    snprintf(nm, sizeof(nm), "%s.bn.running_var", pre);
    TR_CALL(tr_rel_add_shared(&m->buffers, m, &mod->brv, nm, 0, 1, 0));
    if (on && mod->d.kind != TR_ATTN_MULTIHEAD) {
        snprintf(nm, sizeof(nm), "%s.attention", pre);
        TR_CALL(tr_rel_add_shared(&m->buffers, m, &mod->ba, nm, 0, k, 0));
    }
    return TR_OK;
}

tr_status tr_attn_module_alloc(tr_attn_module *mod, int rows) {
    size_t r = (size_t)rows, k = (size_t)mod->d.k, km = k * (size_t)mod->d.m;
    TR_ALLOC(mod->z, r * k, "attention inputs");
    TR_ALLOC(mod->x, r * k, "attention outputs");
    TR_ALLOC(mod->xhat, r * k, "attention batch norm");
    TR_ALLOC(mod->out, r * k, "attention outputs");
    TR_ALLOC(mod->dout, r * k, "attention gradients");
    TR_ALLOC(mod->dz, r * k, "attention gradients");
    TR_ALLOC(mod->dx, r * k, "attention gradients");
    TR_ALLOC(mod->rstd, 1, "attention batch norm");
    if (mod->on) {
        TR_ALLOC(mod->e, r * km, "token embeddings");
        TR_ALLOC(mod->de, r * km, "token embedding gradients");
        TR_ALLOC(mod->zhat, r * k, "attention values");
        TR_ALLOC(mod->Sf, k * k, "relation matrix");
        TR_ALLOC(mod->G, k * k, "relation gradient");
        TR_ALLOC(mod->a, k, "attention weights");
        TR_ALLOC(mod->S, k * k + 1, "relation sums");
        TR_ALLOC(mod->da, k, "attention gradient");
        TR_ALLOC(mod->sum, k * k, "relation statistics");
    }
    return TR_OK;
}

void tr_attn_module_free(tr_attn_module *mod) {
    float *f[] = {mod->z,  mod->e,  mod->zhat, mod->x,    mod->xhat, mod->out, mod->dout,
                  mod->dz, mod->dx, mod->de,   mod->rstd, mod->Sf,   mod->a,   mod->G};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        tr_free(f[i]);
    tr_free(mod->S);
    tr_free(mod->da);
    tr_free(mod->sum);
}

void tr_attn_module_init(tr_model *m, tr_attn_module *mod) {
    if (mod->d.k == 0)
        return;
    if (mod->ba >= 0) { /* stored attention starts uniform */
        float *a = buffer_data(m, mod->ba);
        for (int j = 0; j < mod->d.k; j++)
            a[j] = 1.0f / (float)mod->d.k;
    }
    if (!mod->on)
        return;
    float rm = 1.0f / sqrtf((float)mod->d.m);
    tr_rel_init_uniform(m, mod->pu, 1.0f);
    memset(param_data(m, mod->pb), 0, m->params.t[mod->pb].count * sizeof(float));
    if (mod->pw >= 0)
        tr_rel_init_uniform(m, mod->pw, mod->d.kind == TR_ATTN_CONCAT ? rm / sqrtf(2.0f) : rm);
    if (mod->pv >= 0)
        tr_rel_init_uniform(m, mod->pv, 1.0f / sqrtf((float)mod->d.q));
    int mh[4] = {mod->pwq, mod->pwk, mod->pwv, mod->pwo};
    for (int i = 0; i < 4; i++)
        if (mh[i] >= 0)
            tr_rel_init_uniform(m, mh[i], rm);
}

/* ---- one attention module ------------------------------------------------------------------ */

static void module_weights(const tr_model *m, const tr_attn_module *mod, tr_attn_w *w, int grad) {
    float *(*get)(const tr_model *, int) = grad ? param_grad : param_data;
    w->w = get(m, mod->pw);
    w->v = get(m, mod->pv);
    w->wq = get(m, mod->pwq);
    w->wk = get(m, mod->pwk);
    w->wv = get(m, mod->pwv);
    w->wo = get(m, mod->pwo);
}

/* Relation matrix of the global batch: local score sums, all-reduced, / count. */
static tr_status module_relation(tr_model *m, tr_attn_module *mod, int n, const tr_attn_w *w) {
    struct tr_rel *r = m->rel;
    size_t kk = (size_t)mod->d.k * mod->d.k;
    memset(mod->S, 0, (kk + 1) * sizeof(double));
    tr_attn_scores_sum(mod->S, mod->e, w, &mod->d, n, r->scratch);
    mod->S[kk] = n;
    TR_CALL(sync_world(r, mod->S, (int)kk + 1));
    mod->cnt = mod->S[kk];
    TR_CHECK(mod->cnt > 0, TR_ERR_INTERNAL, "attention over an empty global batch");
    for (size_t i = 0; i < kk; i++) {
        mod->Sf[i] = (float)(mod->S[i] / mod->cnt);
        mod->sum[i] += mod->S[i] / mod->cnt;
    }
    mod->nsum += 1.0;
    return TR_OK;
}

// mod->z (n, k) filled by the caller -> mod->out (n, k) = BN(z + zhat)
tr_status tr_attn_module_forward(tr_model *m, tr_attn_module *mod, int n, int train) {
    struct tr_rel *r = m->rel;
    int k = mod->d.k;
    size_t nk = (size_t)n * k;
    if (mod->on) {
        tr_attn_w w;
        module_weights(m, mod, &w, 0);
        tr_embed_forward(mod->e, mod->z, param_data(m, mod->pu), param_data(m, mod->pb), n, k,
                         mod->d.m);
        if (train)
            TR_CALL(module_relation(m, mod, n, &w));
        if (mod->d.kind == TR_ATTN_MULTIHEAD) {
            tr_mha_forward(mod->zhat, mod->e, &w, &mod->d, n, r->scratch);
            for (size_t i = 0; i < nk; i++)
                mod->x[i] = mod->z[i] + mod->zhat[i];
        } else {
            float *arun = buffer_data(m, mod->ba);
            if (train) {
                tr_sumpool_softmax_forward(mod->a, mod->Sf, k);
                for (int j = 0; j < k; j++)
                    arun[j] = (1.0f - r->alpha_mom) * arun[j] + r->alpha_mom * mod->a[j];
            }
            tr_reweight_forward(mod->x, mod->z, train ? mod->a : arun, n, k);
        }
    } else {
        memcpy(mod->x, mod->z, nk * sizeof(float));
    }
    float *g = param_data(m, mod->pgamma), *b = param_data(m, mod->pbeta);
    float *rm = buffer_data(m, mod->brm), *rv = buffer_data(m, mod->brv);
    if (!train) {
        tr_bn_forward_eval(mod->out, mod->x, rm, rv, g, b, n, 1, k, m->bn_eps);
        return TR_OK;
    }
    double *sum = r->sbuf, *sq = r->sbuf + 1; /* (n, 1, k): one channel */
    tr_bn_stats(sum, sq, mod->x, n, 1, k);
    sq[1] = (double)n * k;
    TR_CALL(sync_world(r, r->sbuf, 3));
    tr_bn_forward(mod->out, mod->xhat, mod->rstd, mod->x, sum, sq, sq[1], g, b, n, 1, k, m->bn_eps);
    tr_bn_update_running(rm, rv, sum, sq, sq[1], 1, m->bn_momentum);
    return TR_OK;
}

/* Penalty gradient gamma2 * d||S||/dS added to G (k, k). */
static void add_penalty(const struct tr_rel *r, tr_attn_module *mod) {
    size_t kk = (size_t)mod->d.k * mod->d.k;
    for (size_t i = 0; i < kk; i++) {
        float s = mod->Sf[i];
        mod->G[i] += r->penalty_l1 ? r->penalty_w * (float)((s > 0.0f) - (s < 0.0f))
                                   : 2.0f * r->penalty_w * s;
    }
}

// mod->dout (n, k) -> mod->dz (n, k); parameter gradients added. Collective.
tr_status tr_attn_module_backward(tr_model *m, tr_attn_module *mod, int n) {
    struct tr_rel *r = m->rel;
    int k = mod->d.k;
    size_t nk = (size_t)n * k, kk = (size_t)k * k;
    double *ds = r->sbuf, *dxs = r->sbuf + 1;
    tr_bn_backward_stats(ds, dxs, mod->dout, mod->xhat, n, 1, k);
    dxs[1] = (double)n * k;
    TR_CALL(sync_world(r, r->sbuf, 3));
    memset(mod->dx, 0, nk * sizeof(float));
    tr_bn_backward(mod->dx, param_grad(m, mod->pgamma), param_grad(m, mod->pbeta), mod->dout,
                   mod->xhat, mod->rstd, ds, dxs, dxs[1], param_data(m, mod->pgamma), n, 1, k);
    memset(mod->dz, 0, nk * sizeof(float));
    if (!mod->on) {
        memcpy(mod->dz, mod->dx, nk * sizeof(float));
        return TR_OK;
    }
    tr_attn_w w, dw;
    module_weights(m, mod, &w, 0);
    module_weights(m, mod, &dw, 1);
    memset(mod->de, 0, nk * (size_t)mod->d.m * sizeof(float));
    memset(mod->G, 0, kk * sizeof(float));
    if (mod->d.kind == TR_ATTN_MULTIHEAD) {
        for (size_t i = 0; i < nk; i++)
            mod->dz[i] = mod->dx[i]; /* residual */
        tr_mha_backward(mod->de, &dw, mod->dx, mod->e, &w, &mod->d, n, r->scratch);
    } else {
        memset(mod->da, 0, (size_t)k * sizeof(double));
        tr_reweight_backward(mod->dz, mod->da, mod->dx, mod->z, mod->a, n, k);
        TR_CALL(sync_world(r, mod->da, k));
        float daf[k > 0 ? k : 1];
        for (int j = 0; j < k; j++)
            daf[j] = (float)mod->da[j];
        tr_sumpool_softmax_backward(mod->G, daf, mod->a, k);
    }
    if (r->penalty_w > 0.0f)
        add_penalty(r, mod);
    /* the batch mean: each sample's scores enter S with weight 1 / count */
    float inv = (float)(1.0 / mod->cnt);
    for (size_t i = 0; i < kk; i++)
        mod->G[i] *= inv;
    tr_attn_scores_backward(mod->de, &dw, mod->G, mod->e, &w, &mod->d, n, r->scratch);
    tr_embed_backward(mod->dz, param_grad(m, mod->pu), param_grad(m, mod->pb), mod->de, mod->z,
                      param_data(m, mod->pu), n, k, mod->d.m);
    return TR_OK;
}
