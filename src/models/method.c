/*
 * The list of method rows (taskrel/method.h), the run set-up common to all of
 * them (trunk batch-norm synchronisation), and the calls of optional ops.
 * Not here: any method's math (method_<name>.c and the files they use).
 */
#include "taskrel/method.h"

extern const tr_method tr_method_stl, tr_method_hps, tr_method_mrn, tr_method_mran, tr_method_mmoe,
    tr_method_cross_stitch;

/* One row per method; model.kind picks one. */
static const tr_method *const k_methods[] = {
    &tr_method_stl,  &tr_method_hps,  &tr_method_mrn,
    &tr_method_mran, &tr_method_mmoe, &tr_method_cross_stitch,
};

const tr_method *tr_method_find(tr_model_kind k) {
    for (size_t i = 0; i < sizeof(k_methods) / sizeof(k_methods[0]); i++)
        if (k_methods[i]->kind == k)
            return k_methods[i];
    return NULL;
}

static tr_status bn_sync_world(void *ctx, double *buf, int n) {
    tr_grid *g = ctx;
    return tr_allreduce_f64(g, g->world, buf, (size_t)n, TR_COLL_OTHER);
}

static tr_status bn_sync_shard(void *ctx, double *buf, int n) {
    tr_grid *g = ctx;
    return tr_allreduce_f64(g, g->shard_comm, buf, (size_t)n, TR_COLL_OTHER);
}

tr_status tr_model_attach(tr_model *m, const tr_method_env *env) {
    if (env->grid->size > 1) {
        /* a task's trunk lives on the ranks that hold the task */
        m->sync = m->method->layout == TR_LAYOUT_TASK_TRUNKS ? bn_sync_shard : bn_sync_world;
        m->sync_ctx = env->grid;
    }
    return m->method->attach ? m->method->attach(m, env) : TR_OK;
}

void tr_method_epoch_begin(tr_model *m) {
    if (m->method->epoch_begin)
        m->method->epoch_begin(m);
}

tr_status tr_method_after_reduce(tr_model *m) {
    return m->method->after_reduce ? m->method->after_reduce(m) : TR_OK;
}

tr_status tr_method_after_step(tr_model *m, const tr_step_info *s) {
    return m->method->after_step ? m->method->after_step(m, s) : TR_OK;
}

tr_status tr_method_final_relations(tr_model *m) {
    return m->method->final_relations ? m->method->final_relations(m) : TR_OK;
}

tr_status tr_method_each_state(tr_model *m, tr_state_fn fn, void *ctx) {
    return m->method->each_state ? m->method->each_state(m, fn, ctx) : TR_OK;
}

tr_status tr_method_before_save(tr_model *m) {
    return m->method->before_save ? m->method->before_save(m) : TR_OK;
}

void tr_method_after_load(tr_model *m) {
    if (m->method->after_load)
        m->method->after_load(m);
}

void tr_method_write_json(const tr_model *m, FILE *f) {
    if (m->method->write_json)
        m->method->write_json(m, f);
}

const char *tr_method_nonfinite_hint(const tr_model *m) {
    return m->method->nonfinite_hint ? m->method->nonfinite_hint(m) : "";
}
