/*
 * Optimizers and learning-rate schedules over a parameter arena.
 * SGD with momentum (PyTorch convention: v = mu*v + g + wd*w; w -= lr*v) and
 * AdamW (decoupled weight decay). Weight decay applies to tensors with
 * decay = 1. Every tensor's step is scaled by the multiplier of its group
 * (trunk, head) and by the tensor's own lr_scale; a multiplier of 0 freezes
 * the group (no update, no decay).
 */
#ifndef TASKREL_OPTIM_H
#define TASKREL_OPTIM_H

#include "taskrel/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TR_OPT_SGD = 0, TR_OPT_ADAMW } tr_opt_kind;

typedef struct {
    tr_opt_kind kind;
    float momentum; /* SGD */
    int nesterov;   /* SGD */
    float weight_decay;
    float beta1, beta2, eps; /* AdamW */
    float lr_mult[TR_GROUP_COUNT];
} tr_opt_config;

typedef struct {
    tr_opt_config cfg;
    size_t n;  /* arena size (floats) */
    float *m;  /* (n) momentum / first moment, same layout as the params */
    float *v;  /* (n) second moment (AdamW only) or NULL */
    int64_t t; /* steps taken (AdamW bias correction) */
} tr_optimizer;

tr_status tr_opt_init(tr_optimizer *o, const tr_opt_config *cfg, const tr_params *p);
void tr_opt_free(tr_optimizer *o); /* no-op on a zeroed struct */
/* One update of every tensor with base learning rate lr (from a schedule). */
void tr_opt_step(tr_optimizer *o, tr_params *p, float lr);

typedef enum { TR_SCHED_CONST = 0, TR_SCHED_STEP, TR_SCHED_COSINE, TR_SCHED_INV } tr_sched_kind;

typedef struct {
    tr_sched_kind kind;
    float base_lr;
    int64_t warmup_steps; /* linear warm-up from 0 over this many steps (0: none) */
    int64_t step_size;    /* step: multiply by gamma every step_size steps */
    float gamma;          /* step: decay factor; inv: gamma */
    float power;          /* inv: lr = base * (1 + gamma*step)^(-power)  (Caffe) */
    int64_t total_steps;  /* cosine: length of the schedule */
    float min_lr;         /* cosine: final learning rate */
} tr_schedule;

float tr_schedule_lr(const tr_schedule *s, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
