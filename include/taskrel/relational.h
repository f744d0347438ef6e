/*
 * MRAN (relational attention) and MMoE (mixture of experts) on top of the
 * trunk of taskrel/model.h. Both run only on shared-input data, in two stages
 * that match the trainer's shared-input step:
 *
 *   shared stage (this rank's trunk rows, data-parallel):
 *     MRAN: trunk -> F-F module -> H_F; T-T module on the task values; T-F
 *           alignment scores -> alpha (T, d). Features exchanged: H_F (d).
 *     MMoE: trunk -> h; E experts fc-ReLU(h). Features exchanged: [h | experts].
 *   task stage (the replica's rows, task-sharded): per task
 *     MRAN: H_k = BN_k(H_F .* (1 + alpha_k)), tower, loss.
 *     MMoE: g = softmax(h W_k + b_k), mixture of the experts, tower, loss.
 *   A tower is fc-ReLU-fc-ReLU-fc (widths model.head_hidden).
 *
 * Relation matrices and alignment scores are means over the GLOBAL batch: the
 * shared stage sums them over its rows and all-reduces through the `world`
 * callback; batch norms of the shared stage synchronise over `world`, the
 * task batch norms over `shard` (the ranks holding the same tasks). With no
 * callbacks (one rank) everything is local. Every rank makes the same calls in
 * the same order whatever its row count (which may be 0).
 *
 * Test path (train = 0, or tr_rel_head_step without dfeat): T-T and T-F are
 * not run; the stored alpha (buffer "mran.alpha") and the stored F-F
 * attention ("mran.ff.attention") are used, so model.h5 holds all a test needs.
 */
#ifndef TASKREL_RELATIONAL_H
#define TASKREL_RELATIONAL_H

#include "taskrel/attention.h"
#include "taskrel/model.h"
#include "taskrel/relations.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Declare MRAN/MMoE tensors after the trunk (tr_model_init calls this for
 * model.kind = mran | mmoe instead of the HPS heads). Raises TR_ERR_CONFIG
 * for bad mran.* / mmoe.* values, naming the key. */
tr_status tr_rel_declare(tr_model *m, const tr_config *cfg);
/* After tr_params_alloc and the default initialisation: buffers and the
 * initial values of the attention tensors. */
tr_status tr_rel_setup(tr_model *m, const tr_config *cfg);
void tr_rel_free(tr_model *m);

/* Collectives: sum n doubles over all ranks (world) or over the ranks that
 * hold the same tasks (shard). NULL = local. */
void tr_rel_set_sync(tr_model *m, tr_sync_fn world, tr_sync_fn shard, void *ctx);

/* Shared stage on n rows x (n, in_size) (ids for dropout). Training needs
 * every task's value of each row: labels yall (n, T) or targets yfall (n, T).
 * *feat = (n, m->feat_dim) features to exchange. Collective when train. */
tr_status tr_rel_shared_forward(tr_model *m, const float **feat, int n, const float *x,
                                const int64_t *ids, const int32_t *yall, const float *yfall,
                                int train, uint64_t step);
/* Backward of the shared stage given dfeat (n, feat_dim) (after all task
 * steps of this step, whose alignment gradients it all-reduces). Collective. */
tr_status tr_rel_shared_backward(tr_model *m, int n, const float *x, const float *dfeat);

/* Task stage for task `task` on n rows of features at head-row offset hrow0
 * (as tr_model_head_step). dfeat != NULL: training (batch statistics,
 * backward, synchronised over `shard`); NULL: test path. */
tr_status tr_rel_head_step(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                           const float *feat, float *dfeat, const int32_t *y, const float *yf,
                           float scale);

/* Start of an epoch: the relation statistics restart (they describe the last epoch). */
void tr_rel_epoch_begin(tr_model *m);

/* The learned relations, identical on every rank (collective over world:
 * MMoE's gate means are summed over the task shards):
 *   mran.tt (T, T)  task-task relation matrix, mean over the last epoch
 *   mran.ff (d, d)  feature-feature relation matrix, mean over the last epoch
 *   mran.alpha (T, d) stored alignment weights (the model's buffer)
 *   mmoe.gates (T, E) mean gate weights per task over the last epoch
 * Only the matrices of enabled modules are added. */
tr_status tr_rel_relations(tr_model *m, tr_relations *out);

#ifdef __cplusplus
}
#endif
#endif
