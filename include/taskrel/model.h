/*
 * Models: a trunk (lenet or mlp) followed by what the method of model.kind
 * declares (taskrel/method.h): per-task heads fc7-ReLU-fc8 for STL, HPS and
 * MRN; attention or experts and towers for MRAN and MMoE.
 *
 * Task-specific tensors carry a task axis (global shape (T, ...)); a model
 * instance holds the tasks [t0, t0+tn) of its rank. In STL the trunk is
 * task-specific too. Every task's copy of a task-specific tensor starts from
 * the same random draw unless model.head_init = independent.
 *
 * Activations are kept per row in buffers sized for `max_rows` trunk rows and
 * `max_head_rows` head rows; callers address them by row offset, so several
 * segments (tasks) can be forwarded before any backward. What the backward
 * can rebuild is not kept: a convolution's im2col columns are rebuilt from
 * its input, and a conv-ReLU-pool block (no batch norm between) runs one
 * sample at a time, keeping only the pooled output and the argmax indices
 * (the ReLU's gradient mask is the pooled value's sign). A range of ops
 * [lo, hi) must not split such a block. Nothing here calls
 * MPI: synchronised batch norm goes through the optional `sync` callback.
 */
#ifndef TASKREL_MODEL_H
#define TASKREL_MODEL_H

#include <stdio.h>

#include "taskrel/config.h"
#include "taskrel/dataset.h"
#include "taskrel/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TR_OP_CONV = 0,
    TR_OP_FC,
    TR_OP_BN,
    TR_OP_RELU,
    TR_OP_POOL,
    TR_OP_DROPOUT
} tr_op_kind;

typedef struct {
    tr_op_kind kind;
    int c, h, w;              /* input shape per sample (fc: c = din, h = w = 1) */
    int oc, oh, ow;           /* output shape per sample */
    int k, pad, stride;       /* conv / pool */
    float p;                  /* dropout probability */
    int pw, pb;               /* param ids: conv/fc weight and bias, BN gamma and beta */
    int brm, brv;             /* buffer ids: BN running mean and variance */
    size_t in_size, out_size; /* floats per sample */
    float *out;               /* (max_rows, out_size); ReLU aliases its input's buffer;
                                 NULL for the conv and ReLU of a block (fused) */
    size_t col_size;          /* conv: im2col floats per sample */
    int fused;                /* conv: heads a conv-ReLU-pool block run one sample at a time */
    uint8_t *idx;             /* pool: (max_rows, out_size) argmax places in the windows */
    uint8_t *mask;            /* dropout: (max_rows, out_size) */
    float *xhat;              /* BN: (max_rows, out_size) */
    float *rstd;              /* BN: (slots, c) one per segment slot */
} tr_op;

/* Synchronised batch-norm statistics: sum `n` doubles over the ranks that
 * share the layer. Return TR_OK or an error. NULL = local statistics. */
typedef tr_status (*tr_sync_fn)(void *ctx, double *buf, int n);

typedef struct {
    tr_model_kind kind;
    int T;      /* global tasks */
    int t0, tn; /* local tasks */
    int in_ndim;
    int64_t in_dims[3];
    int64_t in_size; /* floats per input sample */
    int out_dim;     /* the output layer's width: the most classes of any task (1: regression) */
    tr_task_kind task_kind;   /* task 0's kind (every task's unless mixed_kinds) */
    tr_task_kind *task_kinds; /* (T) every task's kind */
    int *task_outputs;        /* (T) its outputs: classes, or 1 (regression) */
    int mixed_kinds;          /* classification next to regression */
    int uniform_heads;        /* every task has the same kind and outputs */
    char (*task_names)[64];   /* (T) the tasks' names (messages) */
    float *pred;              /* if set: head forwards copy (rows, out_dim) outputs here */
    int64_t pred_rows;        /* rows copied to pred */
    int trunk_per_task;       /* STL: trunk tensors carry the task axis */
    int columns; /* cross-stitch: T, trunk tensors hold a column per task (shared); else 0 */
    int n_ops;
    tr_op ops[32];
    int feat_dim;           /* trunk output per sample */
    int head_in;            /* input width of the fc7-ReLU-fc8 heads (feat_dim unless a method
                               gives each head part of the features) */
    int head_hidden;        /* fc7 width (0: fc8 directly on the features) */
    int h7w, h7b, h8w, h8b; /* head param ids (h7* = -1 without fc7) */
    tr_params params;       /* trainable */
    tr_params buffers;      /* BN running statistics (not trained) */
    int max_rows, max_head_rows, slots;
    float *grad_a, *grad_b; /* (max_rows, max activation) ping-pong */
    float *col;             /* (max col_size) im2col scratch, one sample */
    float *dcol;            /* (max col_size) conv input-gradient scratch, one sample */
    float *cact;            /* (max out_size of a block's conv) its output, one sample */
    float *h7;              /* (max_head_rows, head_hidden) */
    float *logits;          /* (max_head_rows, out_dim) */
    float *probs;           /* (max_head_rows, out_dim) */
    float *dlogits;         /* (max_head_rows, out_dim) */
    float *dh7;             /* (max_head_rows, head_hidden) */
    float bn_eps, bn_momentum;
    float dropout;
    uint64_t seed;
    tr_sync_fn sync;
    void *sync_ctx;
    double *sync_buf; /* (2 * max channels + 1) */
    /* When set, called during the trunk's backward with `done`: the ops
     * [done, n_ops) have finished their backward (after each op, and between
     * the examples of a convolution). The trainer starts the gradient
     * all-reduce buckets that are final and progresses the others
     * (dist.overlap, src/train/overlap.c). NULL: nothing. */
    tr_status (*grad_ready)(void *ctx, int done);
    void *grad_ready_ctx;
    const struct tr_method *method; /* the row of model.kind (taskrel/method.h) */
    struct tr_rel *rel;             /* MRAN / MMoE state (taskrel/relational.h), NULL otherwise */
    void *run_state; /* a method's own state (MRN's priors, cross-stitch units), NULL otherwise */
} tr_model;

/* Build the model for dataset ds, holding tasks [t0, t0+tn). max_rows bounds
 * the rows of one trunk call sequence, max_head_rows those of the head calls,
 * slots the number of segments (trunk calls) before a backward. Parameters are
 * initialised from cfg->seed. */
tr_status tr_model_init(tr_model *m, const tr_config *cfg, const tr_dataset *ds, int t0, int tn,
                        int max_rows, int max_head_rows, int slots);
void tr_model_free(tr_model *m);

/* Trunk forward for n rows at row offset row0, segment slot `slot`, using task
 * `task`'s trunk weights (STL) or the shared ones (task ignored).
 * x (n, in_size); ids (n) global sample ids (dropout); train: BN batch stats,
 * dropout on. Returns the features pointer (n, feat_dim). */
tr_status tr_model_trunk_forward(tr_model *m, const float **feat, int task, int slot, int row0,
                                 int n, const float *x, const int64_t *ids, int train,
                                 uint64_t step);
/* Backward of the same segment given its input x (n, in_size) and dfeat
 * (n, feat_dim); adds parameter grads. */
tr_status tr_model_trunk_backward(tr_model *m, int task, int slot, int row0, int n, const float *x,
                                  const float *dfeat);
/* The same for the trunk ops [lo, hi) only: x (n, in_size of op lo) is their
 * input, *out their output (at row0 of op hi-1's buffer); with m->columns,
 * task is the column. The backward adds parameter gradients and, if dx is
 * not NULL, writes the gradient of x into dx (n, in_size of op lo). */
tr_status tr_model_trunk_forward_ops(tr_model *m, const float **out, int task, int slot, int row0,
                                     int n, int lo, int hi, const float *x, const int64_t *ids,
                                     int train, uint64_t step);
tr_status tr_model_trunk_backward_ops(tr_model *m, int task, int slot, int row0, int n, int lo,
                                      int hi, const float *x, const float *dfeat, float *dx);
/* Pointer to the features of row `row0` (after a trunk forward). */
float *tr_model_features(const tr_model *m, int row0);

/* Per-task statistics accumulated by the heads' forward. */
typedef struct {
    double loss_sum; /* sum of per-example losses (xent, or squared error) */
    double abs_sum;  /* regression: sum |error| */
    double correct;  /* classification: correct predictions */
    double count;    /* examples */
} tr_task_stats;

/* Fill task_kinds, task_outputs, task_names, out_dim (the widest task),
 * mixed_kinds and uniform_heads from ds (tr_model_init). */
tr_status tr_model_set_task_outputs(tr_model *m, const tr_dataset *ds);
/* The loss of task `task` on n rows of outputs out (n, out_dim): softmax
 * cross-entropy over its classes (the first columns; probs gets the
 * probabilities, 0 past them) or the squared error of column 0. */
void tr_model_task_loss_forward(const tr_model *m, tr_task_stats *st, int task, float *probs,
                                const float *out, int n, const int32_t *y, const float *yf);
/* dout (n, out_dim) += scale * d(the losses)/d(out), over the task's columns only. */
void tr_model_task_loss_backward(const tr_model *m, int task, float *dout, const float *probs,
                                 const float *out, int n, const int32_t *y, const float *yf,
                                 float scale);
/* A method whose relations need heads of one shape: TR_ERR_DATA naming the
 * first task whose kind or class count differs from task 0's, and `why`. */
tr_status tr_model_check_uniform_heads(const tr_model *m, const char *why);
/* With m->pred set: copy n rows of a head's outputs (probabilities for a
 * classification task, values for regression) to m->pred at row hrow0. */
void tr_model_copy_predictions(tr_model *m, int task, int hrow0, int n, const float *probs,
                               const float *out);

/* JSON members (no braces) for metrics.jsonl: in_size, feat_dim, the floats of
 * the trunk all-reduce and per task, trunk_per_task, every tensor's global shape. */
void tr_model_write_sizes(const tr_model *m, FILE *f);

/* The fc7-ReLU-fc8 heads of STL, HPS and MRN (a method's `declare`). */
tr_status tr_model_declare_heads(tr_model *m, const tr_config *cfg);

/* Head of task `task` on n rows of features (n, head_in) at head-row offset hrow0:
 * forward and loss statistics (labels y or targets yf, one per row). */
tr_status tr_model_head_forward(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                                const float *feat, const int32_t *y, const float *yf);
/* Backward of the same head (after its forward) with loss gradient
 * `scale` * d(sum of losses): parameter grads are added, and dfeat
 * (n, feat_dim) += the feature gradient. */
tr_status tr_model_head_backward(tr_model *m, int task, int hrow0, int n, const float *feat,
                                 float *dfeat, const int32_t *y, const float *yf, float scale);

#ifdef __cplusplus
}
#endif
#endif
