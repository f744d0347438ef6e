/*
 * Parameter arenas. All parameters of a model live in one contiguous float
 * arena, gradients in a second with the same layout, optimizer state in
 * arenas of the same layout owned by the optimizer. A gradient all-reduce is
 * then one call per contiguous range, never one per tensor.
 *
 * A tensor is either shared (replicated on every rank) or carries a task axis:
 * its global shape is (T, ...) and a rank holds the tasks [t0, t0 + tn) only.
 * Shapes recorded here are global, so checkpoints can store every tensor once.
 *
 * Layout: tensors are placed in declaration order, each padded to 16 floats
 * (64 bytes). Declare all shared tensors first, then all task tensors, so that
 * each reduction domain is one contiguous range (tr_params_domain_range()).
 */
#ifndef TASKREL_PARAMS_H
#define TASKREL_PARAMS_H

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_MAX_DIMS 6
#define TR_NAME_LEN 64

/* Learning-rate group (per-group multipliers; 0 freezes the group). */
typedef enum { TR_GROUP_TRUNK = 0, TR_GROUP_HEAD, TR_GROUP_COUNT } tr_group;

typedef struct {
    char name[TR_NAME_LEN];     /* e.g. "trunk.conv1.w", "head.fc7.w" */
    int ndim;                   /* dims of the global shape, task axis included */
    int64_t shape[TR_MAX_DIMS]; /* global shape; shape[0] = T if task_axis */
    int task_axis;              /* 1: shape[0] is the task axis */
    int64_t t0, tn;             /* local tasks [t0, t0+tn); shared tensors: 0, 1 */
    size_t per_task;            /* elements of one task's slice (all elements if shared) */
    size_t count;               /* local elements = per_task * tn */
    size_t offset;              /* offset of the local slice in the arena, in floats */
    tr_group group;
    int decay;      /* 1: weight decay applies (weights, not biases or BN) */
    float lr_scale; /* multiplies its group's learning rate (1; cross-stitch's alpha) */
} tr_tensor;

typedef struct {
    tr_tensor *t;
    int n, cap;
    size_t total; /* arena size in floats (with padding) */
    float *data;  /* (total) */
    float *grad;  /* (total), same layout */
} tr_params;

void tr_params_init(tr_params *p);
void tr_params_free(tr_params *p); /* no-op on a zeroed struct */

/* Declare a tensor. `shape` is the per-task shape (task axis excluded) with
 * `ndim` dims; for task tensors pass task_axis=1, the global task count T and
 * the local range [t0, t0+tn). Must be called before tr_params_alloc. */
tr_status tr_params_add(tr_params *p, int *id, const char *name, tr_group group, int decay,
                        int ndim, const int64_t *shape, int task_axis, int64_t T, int64_t t0,
                        int64_t tn);

/* Allocate the zeroed data and grad arenas. */
tr_status tr_params_alloc(tr_params *p);

/* Pointer to the local slice of tensor id (task tensors: local task 0 first),
 * and to the slice of one global task (must be local). */
float *tr_params_data(const tr_params *p, int id);
float *tr_params_grad(const tr_params *p, int id);
float *tr_params_task_data(const tr_params *p, int id, int64_t task);
float *tr_params_task_grad(const tr_params *p, int id, int64_t task);

int tr_params_find(const tr_params *p, const char *name); /* -1 if absent */
void tr_params_zero_grad(tr_params *p);

/* The contiguous arena range [*off, *off + *len) holding all shared tensors
 * (task_axis = 0) or all task tensors (task_axis = 1). Raises TR_ERR_INTERNAL
 * if the declaration order broke contiguity. */
tr_status tr_params_domain_range(const tr_params *p, int task_axis, size_t *off, size_t *len);

/* Number of parameters (global, all tasks). */
int64_t tr_params_global_count(const tr_params *p);

#ifdef __cplusplus
}
#endif
#endif
