/*
 * MRAN, the Multiple Relational Attention Network, as reconstructed in
 * docs/algorithms.md ("MRAN"): F-F attention on the trunk features, T-T
 * attention on the task values, T-F alignment weights alpha, per-task batch
 * norm and towers; plus the state MRAN and MMoE share (struct tr_rel). Layer
 * math is in src/nn/attention.c; collectives come through the sync
 * callbacks; the method row is method_mran.c.
 */
#include <math.h>
#include <string.h>

#include "taskrel/nn.h"

#include "rel_internal.h"

#define TR_REL_INIT_STREAM 4095u /* sub-stream of a tensor's init family (model.c uses 0..T) */

void tr_rel_init_uniform(tr_model *m, int id, float bound) {
    const tr_tensor *t = &m->params.t[id];
    uint64_t stream = (uint64_t)id * 4096u + TR_REL_INIT_STREAM;
    for (int64_t lt = 0; lt < t->tn; lt++)
        tr_init_uniform(tr_params_data(&m->params, id) + (size_t)lt * t->per_task, t->per_task,
                        bound, m->seed, stream);
}

/* ---- declaration ------------------------------------------------------------------------ */

tr_status tr_rel_add_shared(tr_params *p, tr_model *m, int *id, const char *name, int decay,
                            int64_t a, int64_t b) {
    int64_t shape[2] = {a, b};
    return tr_params_add(p, id, name, TR_GROUP_TRUNK, decay, b > 0 ? 2 : 1, shape, 0, m->T, m->t0,
                         m->tn);
}

static tr_status add_task(tr_params *p, tr_model *m, int *id, const char *name, int64_t a) {
    int64_t shape[1] = {a};
    return tr_params_add(p, id, name, TR_GROUP_HEAD, 0, 1, shape, 1, m->T, m->t0, m->tn);
}

static tr_status mran_declare(tr_model *m, const tr_config *cfg) {
    struct tr_rel *r = m->rel;
    int tt = (cfg->mran_modules & TR_MRAN_MODULE_TT) != 0;
    int ff = (cfg->mran_modules & TR_MRAN_MODULE_FF) != 0;
    int tf = (cfg->mran_modules & TR_MRAN_MODULE_TF) != 0;
    TR_ASSERT(cfg->mran_attention != TR_ATTN_MULTIHEAD ||
              cfg->mran_embed_dim % cfg->mran_heads == 0);
    r->tf_on = tf;
    r->alpha_mom = cfg->mran_alpha_momentum;
    r->penalty_w = cfg->mran_relation_weight;
    r->penalty_l1 = cfg->mran_penalty == 1;
    r->plabel = r->balpha = -1;
    /* shared tensors first, then task tensors (params.h) */
    TR_CALL(tr_attn_module_declare(m, &r->ff, "mran.ff", r->d, ff, cfg));
    /* T-T runs when on, or to feed the alignment (then H_T = BN(z)) */
    if (tt || tf) {
        TR_CALL(tr_attn_module_declare(m, &r->tt, "mran.tt", r->T, tt, cfg));
        int any_class = 0; /* label values for the classification tasks */
        for (int t = 0; t < m->T; t++)
            any_class |= m->task_kinds[t] == TR_TASK_CLASSIFICATION;
        if (any_class)
            TR_CALL(tr_rel_add_shared(&m->params, m, &r->plabel, "mran.tt.label_value", 0, r->T,
                                      m->out_dim));
    } else {
        r->tt.d.k = 0;
    }
    if (tf)
        TR_CALL(tr_rel_add_shared(&m->buffers, m, &r->balpha, "mran.alpha", 0, r->T, r->d));
    TR_CALL(add_task(&m->params, m, &r->pkg, "mran.task.bn.gamma", 1));
    TR_CALL(add_task(&m->params, m, &r->pkb, "mran.task.bn.beta", 1));
    TR_CALL(add_task(&m->buffers, m, &r->bkrm, "mran.task.bn.running_mean", 1));
    TR_CALL(add_task(&m->buffers, m, &r->bkrv, "mran.task.bn.running_var", 1));
    TR_CALL(tr_tower_declare(&r->tower, m, r->d, cfg->tower_layers));
    return TR_OK;
}

tr_status tr_rel_create(tr_model *m, const tr_config *cfg) {
    m->rel = tr_calloc(1, sizeof(*m->rel));
    TR_CHECK(m->rel != NULL, TR_ERR_NOMEM, "out of memory");
    m->rel->kind = cfg->model_kind;
    m->rel->T = m->T;
    m->rel->d = m->feat_dim;
    return TR_OK;
}

tr_status tr_mran_declare(tr_model *m, const tr_config *cfg) {
    TR_CALL(tr_rel_create(m, cfg));
    return mran_declare(m, cfg);
}

/* ---- set-up --------------------------------------------------------------------------- */

static size_t max_sz(size_t a, size_t b) {
    return a > b ? a : b;
}

tr_status tr_mran_setup(tr_model *m, const tr_config *cfg) {
    struct tr_rel *r = m->rel;
    TR_CALL(tr_tower_alloc(&r->tower, m->max_head_rows));
    int rows = m->max_rows, hrows = m->max_head_rows, T = r->T, d = r->d;
    TR_CALL(tr_attn_module_alloc(&r->ff, rows));
    if (r->tt.d.k > 0)
        TR_CALL(tr_attn_module_alloc(&r->tt, rows));
    size_t scr = tr_attn_scratch_size(&r->ff.d);
    if (r->tt.d.k > 0)
        scr = max_sz(scr, tr_attn_scratch_size(&r->tt.d));
    TR_ALLOC(r->scratch, scr, "attention scratch");
    size_t sb = max_sz(2 * (size_t)d + 1, 2 * (size_t)T + 1);
    sb = max_sz(sb, (size_t)T * d + 1);
    TR_ALLOC(r->sbuf, sb, "attention sync buffer");
    TR_ALLOC(r->alpha, (size_t)T * d, "alignment weights");
    TR_ALLOC(r->salign, (size_t)T * d + 1, "alignment sums");
    TR_ALLOC(r->dalpha, (size_t)T * d, "alignment gradients");
    TR_ALLOC(r->galign, (size_t)T * d, "alignment gradients");
    size_t hd = (size_t)hrows * d;
    TR_ALLOC(r->xk, hd, "task features");
    TR_ALLOC(r->xkhat, hd, "task batch norm");
    TR_ALLOC(r->hk, hd, "task features");
    TR_ALLOC(r->dhk, hd, "task feature gradients");
    TR_ALLOC(r->dxk, hd, "task feature gradients");
    TR_ALLOC(r->krstd, (size_t)(m->tn > 0 ? m->tn : 1), "task batch norm");
    tr_attn_module_init(m, &r->ff);
    tr_attn_module_init(m, &r->tt);
    if (r->plabel >= 0)
        tr_rel_init_uniform(m, r->plabel, 1.0f);
    if (r->balpha >= 0) {
        float *al = buffer_data(m, r->balpha);
        for (size_t i = 0; i < (size_t)T * d; i++)
            al[i] = 1.0f / (float)d;
    }
    (void)cfg;
    return TR_OK;
}

void tr_rel_free(tr_model *m) {
    struct tr_rel *r = m->rel;
    if (!r)
        return;
    tr_tower_free(&r->tower);
    tr_attn_module_free(&r->ff);
    tr_attn_module_free(&r->tt);
    tr_free(r->scratch);
    tr_free(r->sbuf);
    tr_free(r->alpha);
    tr_free(r->salign);
    tr_free(r->dalpha);
    tr_free(r->galign);
    tr_free(r->xk);
    tr_free(r->xkhat);
    tr_free(r->hk);
    tr_free(r->dhk);
    tr_free(r->dxk);
    tr_free(r->krstd);
    tr_mmoe_free(r);
    tr_free(r);
    m->rel = NULL;
}

void tr_rel_epoch_begin(tr_model *m) {
    struct tr_rel *r = m->rel;
    tr_attn_module *mods[2] = {&r->ff, &r->tt};
    for (int i = 0; i < 2; i++)
        if (mods[i]->sum) {
            memset(mods[i]->sum, 0, (size_t)mods[i]->d.k * mods[i]->d.k * sizeof(double));
            mods[i]->nsum = 0.0;
        }
    if (r->gate_sum) {
        memset(r->gate_sum, 0, (size_t)r->T * r->E * sizeof(double));
        memset(r->gate_n, 0, (size_t)r->T * sizeof(double));
    }
}

/* ---- shared stage ------------------------------------------------------------------------ */

tr_status tr_mran_shared_forward(tr_model *m, const float **feat, const tr_trunk_batch *b) {
    struct tr_rel *r = m->rel;
    int T = r->T, d = r->d, n = b->rows, train = b->train;
    const int32_t *yall = b->yall;
    const float *yfall = b->yfall;
    TR_ASSERT(n <= m->max_rows);
    const float *h;
    TR_CALL(tr_model_trunk_forward(m, &h, m->t0, 0, 0, n, b->x, b->ids, train, b->step));
    memcpy(r->ff.z, h, (size_t)n * d * sizeof(float));
    TR_CALL(tr_attn_module_forward(m, &r->ff, n, train));
    *feat = r->ff.out;
    if (!train || r->tt.d.k == 0)
        return TR_OK;
    r->yall = yall;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)i * T + t;
            r->tt.z[o] = m->task_kinds[t] == TR_TASK_CLASSIFICATION
                             ? param_data(m, r->plabel)[(size_t)t * m->out_dim + yall[o]]
                             : yfall[o];
        }
    TR_CALL(tr_attn_module_forward(m, &r->tt, n, 1));
    memset(r->dalpha, 0, (size_t)T * d * sizeof(double));
    if (!r->tf_on)
        return TR_OK;
    size_t td = (size_t)T * d;
    memset(r->salign, 0, (td + 1) * sizeof(double));
    tr_align_scores_sum(r->salign, r->tt.out, r->ff.out, n, T, d);
    r->salign[td] = n;
    TR_CALL(sync_world(r, r->salign, (int)td + 1));
    r->align_cnt = r->salign[td];
    for (size_t i = 0; i < td; i++)
        r->alpha[i] = (float)(r->salign[i] / r->align_cnt);
    tr_softmax_forward(r->alpha, r->alpha, T, d);
    float *arun = buffer_data(m, r->balpha);
    for (size_t i = 0; i < td; i++)
        arun[i] = (1.0f - r->alpha_mom) * arun[i] + r->alpha_mom * r->alpha[i];
    return TR_OK;
}

tr_status tr_mran_shared_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat) {
    struct tr_rel *r = m->rel;
    int T = r->T, d = r->d, n = b->rows;
    memcpy(r->ff.dout, dfeat, (size_t)n * d * sizeof(float));
    if (r->tt.d.k > 0) {
        memset(r->tt.dout, 0, (size_t)n * T * sizeof(float));
        if (r->tf_on) {
            size_t td = (size_t)T * d;
            TR_CALL(sync_world(r, r->dalpha, (int)td));
            float *dp = r->galign; /* dalpha as float, then the softmax backward in place */
            float tmp[d > 0 ? d : 1];
            for (int t = 0; t < T; t++) {
                for (int j = 0; j < d; j++)
                    tmp[j] = (float)r->dalpha[(size_t)t * d + j];
                memset(dp + (size_t)t * d, 0, (size_t)d * sizeof(float));
                tr_softmax_backward(dp + (size_t)t * d, tmp, r->alpha + (size_t)t * d, 1, d);
            }
            float inv = (float)(1.0 / r->align_cnt);
            for (size_t i = 0; i < td; i++)
                dp[i] *= inv;
            tr_align_backward(r->tt.dout, r->ff.dout, dp, r->tt.out, r->ff.out, n, T, d);
        }
        TR_CALL(tr_attn_module_backward(m, &r->tt, n));
        if (r->plabel >= 0) {
            float *dl = param_grad(m, r->plabel);
            for (int i = 0; i < n; i++)
                for (int t = 0; t < T; t++) {
                    size_t o = (size_t)i * T + t;
                    if (m->task_kinds[t] == TR_TASK_CLASSIFICATION)
                        dl[(size_t)t * m->out_dim + r->yall[o]] += r->tt.dz[o];
                }
        }
    }
    TR_CALL(tr_attn_module_backward(m, &r->ff, n));
    return tr_model_trunk_backward(m, m->t0, 0, 0, n, b->x, r->ff.dz);
}

/* ---- task stage ------------------------------------------------------------------------------ */

/* The alignment weights of task `task`: this batch's in training, else the stored ones. */
static const float *task_alpha(tr_model *m, int task, int train) {
    struct tr_rel *r = m->rel;
    return (train ? r->alpha : buffer_data(m, r->balpha)) + (size_t)task * r->d;
}

tr_status tr_mran_head_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                               const float *feat, const int32_t *y, const float *yf, int train) {
    struct tr_rel *r = m->rel;
    TR_ASSERT(hrow0 + n <= m->max_head_rows);
    TR_ASSERT(task >= m->t0 && task < m->t0 + m->tn);
    int d = r->d, j = task - m->t0;
    size_t off = (size_t)hrow0 * d, nd = (size_t)n * d;
    float *xk = r->xk + off, *xkhat = r->xkhat + off, *hk = r->hk + off;
    if (r->tf_on)
        tr_reweight_forward(xk, feat, task_alpha(m, task, train), n, d);
    else
        memcpy(xk, feat, nd * sizeof(float));
    const float *g = tr_params_task_data(&m->params, r->pkg, task);
    const float *b = tr_params_task_data(&m->params, r->pkb, task);
    float *rm = tr_params_task_data(&m->buffers, r->bkrm, task);
    float *rv = tr_params_task_data(&m->buffers, r->bkrv, task);
    if (!train) {
        tr_bn_forward_eval(hk, xk, rm, rv, g, b, n, 1, d, m->bn_eps);
        tr_tower_forward(&r->tower, m, st, task, hrow0, n, hk, y, yf);
        return TR_OK;
    }
    double *sum = r->sbuf, *sq = r->sbuf + 1; /* one channel per task: (n, 1, d) */
    tr_bn_stats(sum, sq, xk, n, 1, d);
    sq[1] = (double)n * d;
    TR_CALL(sync_shard(r, r->sbuf, 3));
    tr_bn_forward(hk, xkhat, r->krstd + j, xk, sum, sq, sq[1], g, b, n, 1, d, m->bn_eps);
    tr_bn_update_running(rm, rv, sum, sq, sq[1], 1, m->bn_momentum);
    tr_tower_forward(&r->tower, m, st, task, hrow0, n, hk, y, yf);
    return TR_OK;
}

tr_status tr_mran_head_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                                float *dfeat, const int32_t *y, const float *yf, float scale) {
    struct tr_rel *r = m->rel;
    int d = r->d, j = task - m->t0;
    size_t off = (size_t)hrow0 * d, nd = (size_t)n * d;
    float *xkhat = r->xkhat + off, *hk = r->hk + off;
    float *dhk = r->dhk + off, *dxk = r->dxk + off;
    memset(dhk, 0, nd * sizeof(float));
    tr_tower_backward(&r->tower, m, task, hrow0, n, hk, dhk, y, yf, scale);
    double *sum = r->sbuf, *sq = r->sbuf + 1;
    tr_bn_backward_stats(sum, sq, dhk, xkhat, n, 1, d);
    sq[1] = (double)n * d;
    TR_CALL(sync_shard(r, r->sbuf, 3));
    memset(dxk, 0, nd * sizeof(float));
    tr_bn_backward(dxk, tr_params_task_grad(&m->params, r->pkg, task),
                   tr_params_task_grad(&m->params, r->pkb, task), dhk, xkhat, r->krstd + j, sum, sq,
                   sq[1], tr_params_task_data(&m->params, r->pkg, task), n, 1, d);
    if (r->tf_on) {
        tr_reweight_backward(dfeat, r->dalpha + (size_t)task * d, dxk, feat, task_alpha(m, task, 1),
                             n, d);
    } else {
        for (size_t i = 0; i < nd; i++)
            dfeat[i] += dxk[i];
    }
    return TR_OK;
}

tr_status tr_mran_relations(tr_model *m, tr_relations *out) {
    struct tr_rel *r = m->rel;
    const tr_attn_module *mods[2] = {&r->tt, &r->ff};
    const char *names[2] = {"mran.tt", "mran.ff"};
    const char *titles[2] = {"MRAN task-task relation matrix S_T (mean over the last epoch)",
                             "MRAN feature-feature relation matrix S_F (mean over the last epoch)"};
    const char *axes[2] = {"task,task", "feature,feature"};
    for (int i = 0; i < 2; i++) {
        const tr_attn_module *mod = mods[i];
        if (!mod->on || mod->d.k == 0 || mod->nsum <= 0)
            continue;
        size_t kk = (size_t)mod->d.k * mod->d.k;
        double *mean = tr_calloc(kk, sizeof(double));
        TR_CHECK(mean != NULL, TR_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < kk; j++)
            mean[j] = mod->sum[j] / mod->nsum;
        tr_status st =
            tr_relations_add(out, names[i], titles[i], axes[i], mean, mod->d.k, mod->d.k);
        tr_free(mean);
        TR_CALL(st);
    }
    if (r->tf_on) {
        size_t td = (size_t)r->T * r->d;
        double *al = tr_calloc(td, sizeof(double));
        TR_CHECK(al != NULL, TR_ERR_NOMEM, "out of memory");
        const float *a = buffer_data(m, r->balpha);
        for (size_t j = 0; j < td; j++)
            al[j] = a[j];
        tr_status st =
            tr_relations_add(out, "mran.alpha", "MRAN stored task-feature alignment weights alpha",
                             "task,feature", al, r->T, r->d);
        tr_free(al);
        TR_CALL(st);
    }
    return TR_OK;
}
