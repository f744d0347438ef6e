/*
 * MRN in training (docs/algorithms.md, "MRN"): the tensor-normal priors of the chosen
 * task-specific layers, their covariances, and the collectives that tie them
 * to the rank grid. The math is taskrel/mrn_math.h (serial, double); this
 * module feeds it the all-gathered weights and assembles the covariances.
 *
 * Per layer ℓ (fc7: D1 = trunk features, D2 = head_hidden; fc8: D1 = fc8's
 * inputs, D2 = classes) the state is Σ_k, Ω_k = U_k diag(p_k) U_kᵀ and ln|Ω_k|
 * for the three modes k = feature, class, task, identical on every rank.
 * Modes that are not learned stay Σ = Ω = I.
 *
 * Per step (after the gradient all-reduces):
 *  - prior_step = gradient: all-gather the layer's task weights within
 *    replica_comm and add λ' Ω1 M_t Ω2 to each owned task's gradient;
 *  - prior_step = prox (after the optimizer step): the exact implicit step
 *    vec(W) <- (I + η λ' Ω3⊗Ω2⊗Ω1)^{-1} vec(W): the owned tasks are rotated by
 *    U1, U2, all-gathered within replica_comm, mixed by U3, divided and
 *    rotated back. Before the first update (all Ω = I) and while the task
 *    mode is I, no task mixing is needed and nothing is communicated.
 * λ' = mrn.lambda / mean training-set size (λ per example, [choice]).
 *
 * Every mrn.update_every steps (after the optimizer and prox), per layer:
 * all-gather W in replica_comm; per learned mode, replica 0's ranks compute
 * the rows of their own tasks (tr_mrn_cov_part), one all-reduce over world
 * assembles the covariance on every rank (the other replicas contribute zeros),
 * then the precision: by ScaLAPACK (pdsyevd + pdgemm on a BLACS grid over
 * world) if n > linalg.scalapack_min_dim and there is more than one rank,
 * else by LAPACKE on every rank. Floor numerics rescale Σ1, Σ2 to traces D1,
 * D2 after each flip-flop cycle and move the factor into Σ3.
 *
 * Options that bound the prior (docs/algorithms.md): mrn.mean = shared puts the
 * prior on D_t = W_t - W̄ (W̄ from the same all-gathered W on every rank: the
 * covariances are estimated from D, the prox acts on D, the gradient form uses
 * C Ω3 C); mrn.task_scale = fixed normalises Σ3 to trace T after each cycle;
 * mrn.shrink = s shrinks the assembled Σ1, Σ2 toward tr(Σ)/D · I before their
 * precisions. All three act on replicated numbers after the collectives, so
 * they add no communication but the centred prox's gather.
 *
 * Scaled identities (mrn.shrink = 1, the default, or the feature and class
 * modes not learned): Σ1 and Σ2 are then c·I after every update, so U1 = U2 =
 * I and everything else is a function of the T x T Gram matrix of the
 * (centred) task weights. The update all-reduces that Gram matrix once and
 * takes no D1 x D1 product or eigendecomposition; the prox is one T x T mixing
 * of the tasks' weights (per-task scaling when it mixes nothing); the gradient
 * form is λ' p1 p2 Σ_j Ω3[t,j] W_j. Same numbers as the general path up to
 * rounding (tests/mpi/test_mrn_dist.c).
 *
 * All functions are collective over the grid's communicators unless noted,
 * and every rank must call them at the same steps with the same arguments.
 */
#ifndef TASKREL_MRN_H
#define TASKREL_MRN_H

#include "taskrel/config.h"
#include "taskrel/comm.h"
#include "taskrel/scalapack.h"
#include "taskrel/model.h"
#include "taskrel/mrn_math.h"
#include "taskrel/relations.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_MRN_MAX_LAYERS 2

typedef struct {
    double lambda;      /* λ' per batch = mrn.lambda / mean training-set size */
    unsigned modes;     /* bit k set: mode k (tr_mrn_mode) is learned */
    int update_every;   /* steps between covariance updates */
    int flipflop_iters; /* cycles per update */
    int prox;           /* 1: proximal step after the optimizer; 0: gradient */
    int prox_every;     /* prox: amortise over this many steps */
    int official;       /* official numerics (task mode only, unscaled, ...) */
    int prox_f64;       /* prox rotations in double (mrn.prox_precision = double) */
    double eps;         /* ε on the covariance diagonal */
    double eig_floor;   /* floor numerics */
    int centred;        /* mrn.mean = shared: the prior is on W_t - W̄ */
    int task_fixed;     /* mrn.task_scale = fixed: Σ3 normalised to trace T */
    double shrink;      /* mrn.shrink: Σ1, Σ2 <- (1 - s) Σ + s tr(Σ)/D I */
    int scalapack_min_dim;
    int dense; /* 1: the general path even when Ω1, Ω2 are scaled identities
                  (tests and benchmarks compare the two; no config key) */
} tr_mrn_opts;

typedef struct {
    char name[8]; /* "fc7" or "fc8" */
    int pid;      /* weight's param id in the model (-1 when used without a model) */
    int d1, d2;
    int n[TR_MRN_MODE_COUNT]; /* d1, d2, T */
    double *sigma[TR_MRN_MODE_COUNT], *omega[TR_MRN_MODE_COUNT];
    double *u[TR_MRN_MODE_COUNT], *p[TR_MRN_MODE_COUNT]; /* eigenvectors, precision eigenvalues */
    double logdet[TR_MRN_MODE_COUNT];                    /* ln|Ω_k| */
    double rotated[TR_MRN_MODE_COUNT]; /* 1: U_k is not the identity (mode updated once);
                                          0: U_k = I and Ω_k = p_k[0] I */
    double prior_value; /* ½ vec(W)ᵀ (Ω3⊗Ω2⊗Ω1) vec(W) at the last update */
    double *w_all;      /* (T, d1, d2) gathered weights */
    double *w_init;     /* (T, d1, d2) weights at the start (W - W_init correlations) */
    double *w_dev;      /* (T, d1, d2) W - W̄ (mrn.mean = shared; NULL otherwise) */
    double *omega3c;    /* (T, T) C Ω3 C, the gradient form's centred task precision */
    double *work;       /* (T + 2) d1 d2 scratch at least */
    float *w_f32;       /* (T, d1, d2) gather buffer */
    float *u_f32[TR_MRN_MODE_COUNT]; /* float copies of U1, U2, U3 for the float prox */
    double u_f32_stamp;              /* updates done when u_f32 was made (-1: stale) */
} tr_mrn_layer;

typedef struct {
    tr_mrn_opts o;
    int T, t0, tn; /* tasks; this rank's tasks */
    int n_layers;
    tr_mrn_layer layer[TR_MRN_MAX_LAYERS];
    int *counts, *displs; /* (S) elements per replica_comm rank, for the current layer */
    double *eye_tn;       /* (tn, tn) identity (prox without task mixing) */
    tr_blacs blacs;       /* over world, when some n > scalapack_min_dim and P > 1 */
    int use_blacs;
    double counters[2];    /* [0] covariance updates done, [1] prox step size pending
                              (mrn.prox_every); checkpointed with the covariances */
    double update_seconds; /* total time in covariance updates on this rank */
    int scalapack_calls, lapack_calls;
    int low_rank_proxes; /* float prox steps by the low-rank task mixing (mrn_prox.c) */
} tr_mrn;

/* Options from the [mrn] and [linalg] keys; n_mean = mean training examples
 * per task (λ' = mrn.lambda / n_mean). Official numerics force the task mode only. */
tr_status tr_mrn_opts_from_config(tr_mrn_opts *o, const tr_config *cfg, double n_mean);

/* Set up n_layers layers of (d1[l], d2[l]) over the grid's tasks; all Σ = Ω = I.
 * Collective over g->world (BLACS grid). */
tr_status tr_mrn_init(tr_mrn *mrn, const tr_mrn_opts *o, const tr_grid *g, int n_layers,
                      const char *const *names, const int *d1, const int *d2);
/* tr_mrn_init for the layers of a model in mrn.layers (fc7 needs
 * model.head_hidden > 0: TR_ERR_CONFIG otherwise), recording W_init. */
tr_status tr_mrn_init_model(tr_mrn *mrn, const tr_mrn_opts *o, const tr_config *cfg, tr_model *m,
                            tr_grid *g);
void tr_mrn_free(tr_mrn *mrn); /* no-op on a zeroed struct */

/* All-gather layer l's task weights into layer->w_all. w_local: the owned
 * tasks (tn, d1, d2) float. Collective over replica_comm. */
tr_status tr_mrn_layer_gather(tr_mrn *mrn, int l, tr_grid *g, const float *w_local);
/* Gradient form: add λ' Ω1 M_t Ω2 to g_local (tn, d1, d2) of the owned tasks,
 * from w_all (call tr_mrn_layer_gather first). Local. */
tr_status tr_mrn_layer_prior_grad(tr_mrn *mrn, int l, float *g_local);
/* Proximal form: the exact implicit step with step size eta (the head learning
 * rate) on the owned tasks' weights w_local (tn, d1, d2), in place. */
tr_status tr_mrn_layer_prox(tr_mrn *mrn, int l, tr_grid *g, float *w_local, double eta);
/* Covariance update of layer l from w_all (call tr_mrn_layer_gather first). */
tr_status tr_mrn_layer_update(tr_mrn *mrn, int l, tr_grid *g);

/* Precision of a replicated covariance sigma (n, n): ScaLAPACK or LAPACKE as
 * above; omega, u (n, n), p (n), logdet as in tr_mrn_precision_floor. */
tr_status tr_mrn_precision(tr_mrn *mrn, double *omega, double *u, double *p, double *logdet,
                           const double *sigma, int n);

/* The model-level wrappers the trainer calls (layers by their param ids). */
tr_status tr_mrn_step_gradient(tr_mrn *mrn, tr_model *m, tr_grid *g);
tr_status tr_mrn_step_prox(tr_mrn *mrn, tr_model *m, tr_grid *g, double eta);
tr_status tr_mrn_step_update(tr_mrn *mrn, tr_model *m, tr_grid *g);

/* Largest precision eigenvalue of mode k of layer l. */
double tr_mrn_max_precision(const tr_mrn *mrn, int l, int k);

/* Relation matrices for inspect/plot: per layer "mrn.<layer>.task_corr"
 * (correlation of Σ3), "mrn.<layer>.task_cov" (Σ3) and
 * "mrn.<layer>.delta_corr" (Pearson correlation between tasks of W_t - W_init,t,
 * from w_all: call after a gather of the final weights). Local. */
tr_status tr_mrn_relations(const tr_mrn *mrn, tr_relations *rel);

/* Call fn(ctx, name, data, ndim, dims) for every array of the resumable MRN
 * state (per layer and mode Σ, Ω, U, p; per layer ln|Ω|, the rotated flags and
 * the prior value; the counters), named "/mrn/<layer>/<what>". Stops at the
 * first error. */
typedef tr_status (*tr_mrn_state_fn)(void *ctx, const char *name, double *data, int ndim,
                                     const int64_t *dims);
tr_status tr_mrn_each_state(tr_mrn *mrn, tr_mrn_state_fn fn, void *ctx);

/* One JSON object (no newline) with the MRN state for metrics.jsonl. */
void tr_mrn_write_json(const tr_mrn *mrn, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
