/*
 * The table of methods: model.kind selects one `const tr_method` row, and the
 * trainer (src/train) drives every method through it without naming one.
 * A row lives in its own file under src/models (method_stl.c, method_hps.c,
 * method_mrn.c, method_mran.c, method_mmoe.c, method_cross_stitch.c); adding a method means a new
 * file there and one entry in the list of src/models/method.c.
 *
 * One training step, as the trainer runs it:
 *
 *   epoch_begin            (first step of an epoch; may be NULL)
 *   shared_forward         trunk rows of this rank -> features
 *   [features all-gathered within replica_comm when `exchanged`]
 *   head_forward           per local task: loss statistics, caches
 *   head_backward          per local task: head gradients, feature gradients
 *   [feature gradients reduce-scattered within replica_comm]
 *   shared_backward        trunk gradients
 *   gradient all-reduces   (the trainer)
 *   after_reduce           e.g. MRN's prior gradient (may be NULL)
 *   optimizer step         (the trainer)
 *   after_step             e.g. MRN's proximal step, covariance updates (may be NULL)
 *
 * Evaluation runs shared_forward (train = 0) and head_forward (train = 0).
 * At the end, final_relations adds the method's relation matrices; every
 * array that each_state names rides in every checkpoint.
 *
 * Collectives: the ops of a row may call collectives through the environment
 * given to tr_model_attach (MRAN's relation matrices, MRN's gathers); every
 * rank makes the same calls in the same order.
 */
#ifndef TASKREL_METHOD_H
#define TASKREL_METHOD_H

#include <stdio.h>

#include "taskrel/config.h"
#include "taskrel/comm.h"
#include "taskrel/model.h"
#include "taskrel/relations.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a method's trunk sees the rows of a step. */
typedef enum {
    TR_LAYOUT_SHARED_TRUNK = 0, /* one trunk for every task; on shared-input data
                                   each rank runs it on its sub-slice of the replica
                                   part and the features are exchanged */
    TR_LAYOUT_TASK_TRUNKS,      /* a trunk per task (tensors with a task axis): each
                                   task's rows go through its own trunk, no exchange */
    TR_LAYOUT_TASK_COLUMNS,     /* a column per task, all held by every rank (trunk
                                   tensors of shape (T, ...), model.columns = T): runs
                                   like a shared trunk, every row through every column */
} tr_trunk_layout;

/* One task's rows through its own trunk (TR_LAYOUT_TASK_TRUNKS). */
typedef struct {
    int task, slot; /* global task; batch-norm segment slot (local task index) */
    int x_row, n;   /* input rows [x_row, x_row + n) of the batch */
    int feat_row;   /* its features start at this row of the feature buffer */
} tr_trunk_segment;

/* The trunk rows of one forward (and its backward). */
typedef struct {
    const float *x;      /* (rows, in_size) */
    const int64_t *ids;  /* (rows) global sample ids (dropout), NULL in evaluation */
    const int32_t *yall; /* (rows, T) every task's label (shared-input training), or NULL */
    const float *yfall;  /* (rows, T) every task's target (shared-input training), or NULL */
    int rows;
    int n_seg; /* TR_LAYOUT_TASK_TRUNKS: segments; a shared trunk runs on all rows */
    tr_trunk_segment seg[TR_MAX_TASKS];
    int train;     /* batch statistics, dropout, relation statistics */
    uint64_t step; /* dropout key */
} tr_trunk_batch;

/* Where a step stands, for after_step. */
typedef struct {
    int64_t step; /* the step just taken (0-based) */
    float lr;     /* its base learning rate */
    int boundary; /* 1: a validation or the end of training follows this step */
} tr_step_info;

/* What a method may use of the run (given once, to tr_model_attach). */
typedef struct {
    tr_grid *grid;
    const tr_config *cfg;
    tr_relations *relations; /* the run's relation matrices (checkpointed, reported) */
    double n_mean;           /* mean training examples per task */
    int training;            /* 0: evaluation only (no optimizer steps follow) */
    int shared_input;        /* the data setting */
    /* Time a method phase of this rank (timeline event + the method phase). */
    void (*mark)(void *ctx, const char *event, double t0, double t1);
    void *mark_ctx;
} tr_method_env;

/* Register one replicated float64 array of checkpoint state (see
 * tr_extra_state in taskrel/checkpoint.h). */
typedef tr_status (*tr_state_fn)(void *ctx, const char *name, double *data, int ndim,
                                 const int64_t *dims);

typedef struct tr_method {
    const char *name; /* model.kind value */
    tr_model_kind kind;
    tr_trunk_layout layout;
    /* Model building (tr_model_init): tensors after the trunk, then, after the
     * arenas are allocated and initialised, buffers and special initial values. */
    tr_status (*declare)(tr_model *m, const tr_config *cfg);
    tr_status (*setup)(tr_model *m, const tr_config *cfg);
    /* Run set-up (tr_model_attach): check the data setting, connect
     * collectives, create trainer-side state. May be NULL. */
    tr_status (*attach)(tr_model *m, const tr_method_env *env);
    void (*epoch_begin)(tr_model *m);
    /* *feat = (rows or segment rows, feat_dim) features, at row 0 of the batch. */
    tr_status (*shared_forward)(tr_model *m, const float **feat, const tr_trunk_batch *b);
    /* Task `task` on n rows of features at head-row offset hrow0: forward and
     * loss statistics (labels y or targets yf, one per row). */
    tr_status (*head_forward)(tr_model *m, tr_task_stats *st, int task, int hrow0, int n,
                              const float *feat, const int32_t *y, const float *yf, int train);
    /* Backward of the same head with loss gradient scale * d(sum of losses):
     * parameter gradients added, dfeat (n, feat_dim) += the feature gradient. */
    tr_status (*head_backward)(tr_model *m, int task, int hrow0, int n, const float *feat,
                               float *dfeat, const int32_t *y, const float *yf, float scale);
    /* dfeat (rows, feat_dim): the gradient of this rank's features. */
    tr_status (*shared_backward)(tr_model *m, const tr_trunk_batch *b, const float *dfeat);
    /* The same for rows [row0, row0 + n) alone (dfeat (n, feat_dim) of those
     * rows), for a shared stage whose rows are independent once it has no batch
     * statistics (no batch norm): per-task gradients on multi-input data then
     * cost one backward in all. May be NULL. Local (no collectives). */
    tr_status (*shared_backward_rows)(tr_model *m, const tr_trunk_batch *b, int row0, int n,
                                      const float *dfeat);
    tr_status (*after_reduce)(tr_model *m);
    tr_status (*after_step)(tr_model *m, const tr_step_info *s);
    /* The relation matrices of the trained (selected) model into env->relations. */
    tr_status (*final_relations)(tr_model *m);
    /* Name every array of resumable state; before_save / after_load bring it
     * into (out of) the replicated form a checkpoint holds. May be NULL. */
    tr_status (*each_state)(tr_model *m, tr_state_fn fn, void *ctx);
    tr_status (*before_save)(tr_model *m);
    void (*after_load)(tr_model *m);
    /* `,"key":{...}` for each metrics.jsonl validation record, or nothing. */
    void (*write_json)(const tr_model *m, FILE *f);
    /* Extra advice for a non-finite loss or gradient ("" if none). */
    const char *(*nonfinite_hint)(const tr_model *m);
    void (*free)(tr_model *m);
} tr_method;

/* The row of model.kind k, or NULL if this build has none. */
const tr_method *tr_method_find(tr_model_kind k);

/* Connect a built model to the run: batch-norm synchronisation of the trunk
 * over world (shared trunk) or shard_comm (task trunks), then the row's
 * attach. Call once after tr_model_init. */
tr_status tr_model_attach(tr_model *m, const tr_method_env *env);

/* The ops that may be NULL, called through these (no-ops when absent). */
void tr_method_epoch_begin(tr_model *m);
tr_status tr_method_after_reduce(tr_model *m);
tr_status tr_method_after_step(tr_model *m, const tr_step_info *s);
tr_status tr_method_final_relations(tr_model *m);
tr_status tr_method_each_state(tr_model *m, tr_state_fn fn, void *ctx);
tr_status tr_method_before_save(tr_model *m);
void tr_method_after_load(tr_model *m);
void tr_method_write_json(const tr_model *m, FILE *f);
const char *tr_method_nonfinite_hint(const tr_model *m);

#ifdef __cplusplus
}
#endif
#endif
