/*
 * SGD with momentum (PyTorch convention, optional Nesterov) and AdamW over a
 * parameter arena. State arenas share the parameters' layout, so the update
 * runs tensor by tensor over contiguous ranges; padding between tensors is
 * never touched. Each tensor's step uses lr * lr_mult[group] * lr_scale; a multiplier of
 * 0 skips the tensor entirely (parameters and state stay as they are).
 * Not here: the learning-rate schedule (schedule.c), gradient clipping, MPI.
 */
#include <math.h>
#include <string.h>

#include "taskrel/optim.h"

tr_status tr_opt_init(tr_optimizer *o, const tr_opt_config *cfg, const tr_params *p) {
    memset(o, 0, sizeof(*o));
    TR_CHECK(cfg->kind == TR_OPT_SGD || cfg->kind == TR_OPT_ADAMW, TR_ERR_CONFIG,
             "unknown optimizer kind %d", (int)cfg->kind);
    TR_CHECK(cfg->weight_decay >= 0.0f, TR_ERR_CONFIG, "weight decay must be >= 0 (got %g)",
             (double)cfg->weight_decay);
    for (int g = 0; g < TR_GROUP_COUNT; g++)
        TR_CHECK(cfg->lr_mult[g] >= 0.0f, TR_ERR_CONFIG,
                 "learning-rate multiplier of group %d must be >= 0 (got %g)", g,
                 (double)cfg->lr_mult[g]);
    if (cfg->kind == TR_OPT_SGD) {
        TR_CHECK(cfg->momentum >= 0.0f && cfg->momentum < 1.0f, TR_ERR_CONFIG,
                 "momentum must be in [0, 1) (got %g)", (double)cfg->momentum);
        TR_CHECK(!cfg->nesterov || cfg->momentum > 0.0f, TR_ERR_CONFIG,
                 "nesterov needs momentum > 0");
    } else {
        TR_CHECK(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f && cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f,
                 TR_ERR_CONFIG, "AdamW betas must be in [0, 1) (got %g, %g)", (double)cfg->beta1,
                 (double)cfg->beta2);
        TR_CHECK(cfg->eps > 0.0f, TR_ERR_CONFIG, "AdamW eps must be > 0 (got %g)",
                 (double)cfg->eps);
    }
    o->cfg = *cfg;
    o->n = p->total;
    TR_ALLOC(o->m, o->n, "optimizer first moment");
    if (cfg->kind == TR_OPT_ADAMW) {
        o->v = tr_calloc(o->n, sizeof(float));
        if (!o->v && o->n) {
            tr_free(o->m);
            o->m = NULL;
            TR_RAISE(TR_ERR_NOMEM, "out of memory allocating optimizer second moment (%zu)", o->n);
        }
    }
    return TR_OK;
}

void tr_opt_free(tr_optimizer *o) {
    if (!o)
        return;
    tr_free(o->m);
    tr_free(o->v);
    memset(o, 0, sizeof(*o));
}

/* v = mu*v + g + wd*w; w -= lr * (nesterov ? g + wd*w + mu*v : v).
 * Without momentum the buffer is unused: w -= lr * (g + wd*w). */
static void sgd_update(float *w, float *m, const float *g, size_t n, float lr, float wd, float mu,
                       int nesterov) {
    if (mu == 0.0f) {
        for (size_t i = 0; i < n; i++)
            w[i] -= lr * (g[i] + wd * w[i]);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = mu * m[i] + gi;
        m[i] = vi;
        w[i] -= lr * (nesterov ? gi + mu * vi : vi);
    }
}

/* Decoupled decay w *= 1 - lr*wd, then the Adam step with bias-corrected
 * moments: w -= lr * mhat / (sqrt(vhat) + eps). bc1, bc2 = 1 - beta^t. */
static void adamw_update(float *w, float *m, float *v, const float *g, size_t n, float lr, float wd,
                         float b1, float b2, float eps, float bc1, float bc2) {
    float decay = 1.0f - lr * wd;
    float step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
    for (size_t i = 0; i < n; i++) {
        float mi = b1 * m[i] + (1.0f - b1) * g[i];
        float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] * decay - step * mi / (sqrtf(vi) * rbc2 + eps);
    }
}

void tr_opt_step(tr_optimizer *o, tr_params *p, float lr) {
    const tr_opt_config *c = &o->cfg;
    float bc1 = 1.0f, bc2 = 1.0f;
    o->t++;
    if (c->kind == TR_OPT_ADAMW) {
        bc1 = (float)(1.0 - pow((double)c->beta1, (double)o->t));
        bc2 = (float)(1.0 - pow((double)c->beta2, (double)o->t));
    }
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        float mult = c->lr_mult[t->group];
        if (mult == 0.0f || t->count == 0)
            continue; // frozen: no step, no decay, no state change
        float lr_t = lr * mult * t->lr_scale, wd = t->decay ? c->weight_decay : 0.0f;
        float *w = p->data + t->offset, *g = p->grad + t->offset, *m = o->m + t->offset;
        if (c->kind == TR_OPT_SGD)
            sgd_update(w, m, g, t->count, lr_t, wd, c->momentum, c->nesterov);
        else
            adamw_update(w, m, o->v + t->offset, g, t->count, lr_t, wd, c->beta1, c->beta2, c->eps,
                         bc1, bc2);
    }
}
