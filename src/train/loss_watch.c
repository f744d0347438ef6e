/*
 * Warnings about a run that trains without learning: a classification loss
 * still at chance level (the mean over tasks of ln C) after
 * train.chance_steps steps, and, under an adaptive optimizer (AdamW), a loss
 * that climbs well above its best, which there ends near chance level rather
 * than in the non-finite stop SGD hits. Both warn once and never stop the run.
 * Not here: the non-finite stop (the training loop raises it on every rank).
 */
#include <math.h>

#include "trainer_internal.h"

#define EMA_WEIGHT 0.05    /* of a new step: about the last 20 steps */
#define CHANCE_MARGIN 0.98 /* "at chance" = within 2 % of ln C */
#define RISE_FACTOR 1.5    /* "climbing" = 1.5 x the best smoothed loss ... */
#define RISE_MIN_STEPS 50  /* ... once the average has settled */

static double chance_loss(const tr_trainer *tr) {
    double c = 0.0;
    for (int t = 0; t < tr->T; t++)
        c += log(tr->ds.tasks[t].classes > 1 ? (double)tr->ds.tasks[t].classes : 1.0) / tr->T;
    return c;
}

void tr_loss_watch_step(tr_trainer *tr, int64_t step, double mean_loss) {
    tr_loss_watch *w = &tr->loss_watch;
    if (!isfinite(mean_loss))
        return;
    w->ema = w->seen == 0 ? mean_loss : (1.0 - EMA_WEIGHT) * w->ema + EMA_WEIGHT * mean_loss;
    w->seen++;
    if (w->seen == 1 || w->ema < w->best)
        w->best = w->ema;
    const tr_config *cfg = tr->cfg;
    double chance = tr->sel.classification ? chance_loss(tr) : 0.0;
    if (!w->warned_chance && tr->sel.classification && cfg->chance_steps > 0 &&
        step + 1 >= cfg->chance_steps && chance > 0.0 && w->ema >= CHANCE_MARGIN * chance) {
        w->warned_chance = 1;
        tr_log0(TR_LOG_WARN,
                "training loss %.3f has not gone below chance level (mean ln C = %.3f) after %lld "
                "steps: the model is not learning; %s (train.chance_steps sets when this is "
                "checked)",
                w->ema, chance, (long long)(step + 1),
                cfg->opt.kind == TR_OPT_ADAMW
                    ? "an adaptive optimizer at too high a train.lr ends here: lower it"
                    : "check train.lr and the data");
    }
    if (!w->warned_rise && cfg->opt.kind == TR_OPT_ADAMW && w->seen >= RISE_MIN_STEPS &&
        w->ema > RISE_FACTOR * w->best && w->ema > 0.0) {
        w->warned_rise = 1;
        tr_log0(TR_LOG_WARN,
                "training loss climbs: %.3f at step %lld against a best of %.3f "
                "(train.optimizer = adamw, train.lr = %.3g): the run is diverging; lower "
                "train.lr",
                w->ema, (long long)(step + 1), w->best, (double)cfg->sched.base_lr);
    }
}
