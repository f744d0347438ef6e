/*
 * One row per train.weighting method (weighting_methods.c), driven by
 * weighting.c, which never names a method. Every op reads and writes the
 * replicated state of tr_weighting (trainer_internal.h) only: it is called
 * on every rank with the same inputs and must give the same outputs.
 */
#ifndef TASKREL_WEIGHTING_METHODS_H
#define TASKREL_WEIGHTING_METHODS_H

#include "trainer_internal.h"

typedef struct tr_weighting_method {
    tr_weighting_kind kind;
    const char *param; /* "weighting.<name>" of the learned per-task parameters (NULL: none) */
    float (*param_init)(const tr_config *cfg); /* their initial value */
    /* This step's loss weights into w->hw (epoch: the step's epoch; the loss
     * history is w->losses); returns 1 if the step needs the task gradients. */
    int (*begin)(tr_weighting *w, const tr_config *cfg, int64_t epoch);
    /* The trunk coefficients w->coef from the Gram matrix G (T, T) and the
     * step's mean task losses. */
    void (*combine)(tr_weighting *w, const tr_config *cfg, const double *G, const double *loss,
                    int64_t step);
    /* The learned parameters' gradient into w->params.grad from the step's
     * losses and train.task_weights; returns 1 if they take a step. May be NULL. */
    int (*param_grad)(tr_weighting *w, const double *loss, const float *lambda);
} tr_weighting_method;

/* The row of k (NULL if none). */
const tr_weighting_method *tr_weighting_method_find(tr_weighting_kind k);

#endif
