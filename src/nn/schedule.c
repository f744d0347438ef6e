/*
 * Learning-rate schedules as a pure function of the step (0-based), so a
 * resumed run needs no schedule state. Decay schedules see the raw step;
 * warm-up multiplies their value by step / warmup_steps while
 * step < warmup_steps (the first step has lr 0, as in the linear warm-up of
 * HuggingFace's schedulers). Not here: plateau or loss-driven schedules.
 */
#include <math.h>

#include "taskrel/optim.h"

static double decayed(const tr_schedule *s, int64_t step) {
    double base = s->base_lr;
    switch (s->kind) {
    case TR_SCHED_STEP:
        if (s->step_size <= 0)
            return base;
        return base * pow((double)s->gamma, (double)(step / s->step_size));
    case TR_SCHED_COSINE: {
        if (s->total_steps <= 0 || step >= s->total_steps)
            return s->total_steps <= 0 ? base : s->min_lr;
        double frac = (double)step / (double)s->total_steps;
        return s->min_lr + (base - s->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
    }
    case TR_SCHED_INV: // Caffe "inv": base * (1 + gamma * iter)^(-power)
        return base * pow(1.0 + (double)s->gamma * (double)step, -(double)s->power);
    case TR_SCHED_CONST:
    default:
        return base;
    }
}

float tr_schedule_lr(const tr_schedule *s, int64_t step) {
    if (step < 0)
        step = 0;
    double lr = decayed(s, step);
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        lr *= (double)step / (double)s->warmup_steps;
    return (float)lr;
}
