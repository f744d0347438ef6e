/*
 * Private to src/models: MRAN (relational attention) and MMoE (mixture of
 * experts) on top of the trunk of taskrel/model.h, behind the method rows
 * method_mran.c and method_mmoe.c. Both run only on shared-input data, in
 * two stages that match the trainer's step (taskrel/method.h):
 *
 *   shared stage (this rank's trunk rows, data-parallel):
 *     MRAN: trunk -> F-F module -> H_F; T-T module on the task values; T-F
 *           alignment scores -> alpha (T, d). Features exchanged: H_F (d).
 *     MMoE: trunk -> h; E experts fc-ReLU(h). Features exchanged: [h | experts].
 *   task stage (the replica's rows, task-sharded): per task
 *     MRAN: H_k = BN_k(H_F .* (1 + alpha_k)), tower, loss.
 *     MMoE: g = softmax(h W_k + b_k), mixture of the experts, tower, loss.
 *   A tower is fc-ReLU-fc-ReLU-fc (widths model.head_hidden; model.tower_layers = 1:
 *   fc-ReLU-fc).
 *
 * Relation matrices and alignment scores are means over the GLOBAL batch: the
 * shared stage sums them over its rows and all-reduces through the `world`
 * callback; batch norms of the shared stage synchronise over `world`, the
 * task batch norms over `shard` (the ranks holding the same tasks). With no
 * callbacks (one rank) everything is local. Every rank makes the same calls in
 * the same order whatever its row count (which may be 0).
 *
 * Test path (train = 0): T-T and T-F are not run; the stored alpha (buffer
 * "mran.alpha") and the stored F-F attention ("mran.ff.attention") are used,
 * so model.h5 holds all a test needs.
 */
#ifndef TASKREL_REL_INTERNAL_H
#define TASKREL_REL_INTERNAL_H

#include "taskrel/attention.h"
#include "taskrel/method.h"

/* Per-task tower fc(din->H)-ReLU-fc(H->H)-ReLU-fc(H->C), task-axis tensors;
 * with model.tower_layers = 1 fc(din->H)-ReLU-fc(H->C) (no w2, b2, h2). */
typedef struct {
    int din, H, C, L;
    int w1, b1, w2, b2, wo, bo;             /* param ids */
    float *h1, *h2, *logits, *probs, *dlog; /* (head rows, H|C) caches */
    float *dh1, *dh2;                       /* (head rows, H) */
} tr_tower;

tr_status tr_tower_declare(tr_tower *tw, tr_model *m, int din, int layers);
tr_status tr_tower_alloc(tr_tower *tw, int rows);
void tr_tower_free(tr_tower *tw);
/* Forward and loss of task `task` on n rows of in (n, din) at head-row hrow0. */
void tr_tower_forward(tr_tower *tw, tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                      const float *in, const int32_t *y, const float *yf);
/* Its backward with loss gradient `scale` * d(sum of losses): parameter
 * gradients added, din_grad (n, din) += input gradient. */
void tr_tower_backward(tr_tower *tw, tr_model *m, int task, int hrow0, int n, const float *in,
                       float *din_grad, const int32_t *y, const float *yf, float scale);

/* One attention module (T-T or F-F): k tokens with values z, H = BN(z + zhat). */
typedef struct {
    int on; /* attention enabled (else H = BN(z)) */
    tr_attn_dims d;
    int pu, pb;                           /* embedding (k, m) */
    int pw, pv, pwq, pwk, pwv, pwo;       /* score weights (-1 unused) */
    int pgamma, pbeta;                    /* BN (k) */
    int brm, brv, ba;                     /* buffers: BN running mean/var, attention EMA (k) */
    float *z, *e, *zhat, *x, *xhat, *out; /* (rows, k | k m) caches */
    float *dout, *dz, *dx, *de;           /* (rows, k | k m) gradients */
    double cnt;                           /* global rows of the last training forward */
    float *rstd;                          /* (k) */
    float *Sf, *a, *G;                    /* (k, k), (k), (k, k) batch relation, attention */
    double *S;                            /* (k * k + 1) all-reduce buffer (count last) */
    double *da;                           /* (k) */
    double *sum;                          /* (k, k) relation sum over the epoch */
    double nsum;                          /* steps in sum */
} tr_attn_module;

struct tr_rel {
    tr_model_kind kind;
    int T, d; /* tasks, trunk feature width */
    tr_sync_fn world, shard;
    void *ctx;
    float *scratch; /* attention per-sample scratch */
    double *sbuf;   /* sync scratch: max(2 k + 1, T d + 1, T E + T) */
    tr_tower tower;
    /* MRAN */
    tr_attn_module ff, tt;
    int tf_on;
    int plabel;     /* (T, C) label values (classification), -1 otherwise */
    int pkg, pkb;   /* task BN gamma/beta (T, d) task axis */
    int bkrm, bkrv; /* task BN running stats (T, d) task axis */
    int balpha;     /* buffer alpha (T, d) shared */
    float alpha_mom, penalty_w;
    int penalty_l1;
    float *alpha;        /* (T, d) alignment weights of this batch */
    double *salign;      /* (T d + 1) alignment score sums (count last) */
    double *dalpha;      /* (T, d) */
    float *galign;       /* (T, d) */
    float *xk, *xkhat;   /* (head rows, d) task features before/after BN */
    float *hk, *dhk;     /* (head rows, d) BN output, its gradient */
    float *dxk;          /* (head rows, d) */
    float *krstd;        /* (tn, d) per local task */
    double align_cnt;    /* global rows behind alpha */
    const int32_t *yall; /* (rows, T) labels of the last training forward */
    /* MMoE */
    int E, de;    /* experts, expert width */
    int pew, peb; /* experts (E, d, de), (E, de) shared */
    int pgw, pgb; /* gates (T, d, E), (T, E) task axis */
    float *ex;    /* (rows, E, de) expert outputs (post ReLU) */
    float *feat;  /* (rows, feat_dim) exchanged features */
    float *dh;    /* (rows, d) */
    float *gh, *glog, *gate, *dgate, *dglog, *comb, *dcomb; /* head-row caches */
    double *gate_sum;   /* (T, E) local tasks' gate sums over the epoch, this rank's rows */
    double *gate_n;     /* (T) */
    double *gate_saved; /* (T E + T) the sums over all ranks, as checkpoints hold them */
    /* the run (method_mran.c: tr_rel_attach) */
    tr_relations *relations;
    int world_rank;
};

/* Helpers shared by mran.c and attn_module.c. */
static inline tr_status sync_world(struct tr_rel *r, double *buf, int n) {
    return r->world ? r->world(r->ctx, buf, n) : TR_OK;
}
static inline tr_status sync_shard(struct tr_rel *r, double *buf, int n) {
    return r->shard ? r->shard(r->ctx, buf, n) : TR_OK;
}
static inline float *param_data(const tr_model *m, int id) {
    return id < 0 ? NULL : tr_params_data(&m->params, id);
}
static inline float *param_grad(const tr_model *m, int id) {
    return id < 0 ? NULL : tr_params_grad(&m->params, id);
}
static inline float *buffer_data(const tr_model *m, int id) {
    return tr_params_data(&m->buffers, id);
}

/* mran.c: declare a shared (non task-axis) tensor of shape (a) or (a, b) in p. */
tr_status tr_rel_add_shared(tr_params *p, tr_model *m, int *id, const char *name, int decay,
                            int64_t a, int64_t b);
/* mran.c: m->rel for model.kind = mran | mmoe; its free; the start of an epoch
 * (the relation statistics restart: they describe the last epoch). */
tr_status tr_rel_create(tr_model *m, const tr_config *cfg);
void tr_rel_free(tr_model *m);
void tr_rel_epoch_begin(tr_model *m);
/* method_mran.c: the run set-up of MRAN and MMoE (shared-input data only;
 * relation matrices and batch norms synchronised over the grid). */
tr_status tr_rel_attach(tr_model *m, const tr_method_env *env);

/* mran.c: the MRAN ops of its method row (taskrel/method.h). Relations:
 *   mran.tt (T, T)  task-task relation matrix, mean over the last epoch
 *   mran.ff (d, d)  feature-feature relation matrix, mean over the last epoch
 *   mran.alpha (T, d) stored alignment weights (the model's buffer)
 * (only the matrices of enabled modules). */
tr_status tr_mran_declare(tr_model *m, const tr_config *cfg);
tr_status tr_mran_setup(tr_model *m, const tr_config *cfg);
tr_status tr_mran_shared_forward(tr_model *m, const float **feat, const tr_trunk_batch *b);
tr_status tr_mran_shared_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat);
tr_status tr_mran_head_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                               const float *feat, const int32_t *y, const float *yf, int train);
tr_status tr_mran_head_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                                float *dfeat, const int32_t *y, const float *yf, float scale);
tr_status tr_mran_relations(tr_model *m, tr_relations *out);

/* attn_module.c: one attention module (T-T or F-F), see taskrel/relational.h.
 * declare: tensors named <pre>.* for k tokens (on = attention enabled);
 * forward: mod->z (n, k) -> mod->out (n, k), collective over world if train;
 * backward: mod->dout (n, k) -> mod->dz (n, k), parameter gradients added. */
tr_status tr_attn_module_declare(tr_model *m, tr_attn_module *mod, const char *pre, int k, int on,
                                 const tr_config *cfg);
tr_status tr_attn_module_alloc(tr_attn_module *mod, int rows);
void tr_attn_module_free(tr_attn_module *mod);
void tr_attn_module_init(tr_model *m, tr_attn_module *mod);
tr_status tr_attn_module_forward(tr_model *m, tr_attn_module *mod, int n, int train);
tr_status tr_attn_module_backward(tr_model *m, tr_attn_module *mod, int n);

/* mmoe.c: the MMoE ops of its method row. Relations: mmoe.gates (T, E) mean
 * gate weights per task over the last epoch (collective over world: the gate
 * sums are summed over the ranks). */
tr_status tr_mmoe_declare(tr_model *m, const tr_config *cfg);
tr_status tr_mmoe_setup(tr_model *m, const tr_config *cfg);
tr_status tr_mmoe_shared_forward(tr_model *m, const float **feat, const tr_trunk_batch *b);
tr_status tr_mmoe_shared_backward(tr_model *m, const tr_trunk_batch *b, const float *dfeat);
tr_status tr_mmoe_head_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                               const float *feat, const int32_t *y, const float *yf, int train);
tr_status tr_mmoe_head_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                                float *dfeat, const int32_t *y, const float *yf, float scale);
tr_status tr_mmoe_relations(tr_model *m, tr_relations *out);
void tr_mmoe_free(struct tr_rel *r);

/* Initialise tensor id of m->params with U(-bound, bound), keyed on the tensor index. */
void tr_rel_init_uniform(tr_model *m, int id, float bound);

#endif
