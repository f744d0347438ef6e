/*
 * MRAN's method row (the math is mran.c and attn_module.c), and the run
 * set-up MRAN shares with MMoE: shared-input data only, relation matrices
 * and batch norms synchronised over the grid. Its checkpoint state: the
 * relation statistics of the current epoch (the stored alignment weights and
 * feature attention are model buffers, saved with the other buffers).
 */
#include <string.h>

#include "rel_internal.h"

static tr_status rel_sync_world(void *ctx, double *buf, int n) {
    tr_grid *g = ctx;
    return tr_allreduce_f64(g, g->world, buf, (size_t)n, TR_COLL_MRAN);
}

static tr_status rel_sync_shard(void *ctx, double *buf, int n) {
    tr_grid *g = ctx;
    return tr_allreduce_f64(g, g->shard_comm, buf, (size_t)n, TR_COLL_MRAN);
}

tr_status tr_rel_attach(tr_model *m, const tr_method_env *env) {
    struct tr_rel *r = m->rel;
    TR_CHECK(env->shared_input, TR_ERR_CONFIG,
             "model.kind = %s needs shared-input data (every example labelled for every task, "
             "e.g. `taskrel data multifashion` or `synthetic-mmoe`); %s is multi-input",
             m->method->name, env->cfg->data_path);
    tr_grid *g = env->grid;
    if (g->size > 1) {
        r->world = rel_sync_world;
        r->shard = g->R > 1 ? rel_sync_shard : NULL;
        r->ctx = g;
    }
    r->relations = env->relations;
    r->world_rank = g->rank;
    return TR_OK;
}

static tr_status mran_final_relations(tr_model *m) {
    return tr_mran_relations(m, m->rel->relations);
}

/* The relation sums of the epoch so far (replicated: sums of all-reduced matrices). */
static tr_status mran_each_state(tr_model *m, tr_state_fn fn, void *ctx) {
    struct tr_rel *r = m->rel;
    tr_attn_module *mods[2] = {&r->ff, &r->tt};
    const char *names[2] = {"ff", "tt"};
    char name[64];
    for (int i = 0; i < 2; i++) {
        if (!mods[i]->sum)
            continue;
        int64_t kk[2] = {mods[i]->d.k, mods[i]->d.k}, one = 1;
        snprintf(name, sizeof(name), "/mran/%s/relation_sum", names[i]);
        TR_CALL(fn(ctx, name, mods[i]->sum, 2, kk));
        snprintf(name, sizeof(name), "/mran/%s/relation_steps", names[i]);
        TR_CALL(fn(ctx, name, &mods[i]->nsum, 1, &one));
    }
    return TR_OK;
}

const tr_method tr_method_mran = {
    .name = "mran",
    .kind = TR_MODEL_MRAN,
    .layout = TR_LAYOUT_SHARED_TRUNK,
    .declare = tr_mran_declare,
    .setup = tr_mran_setup,
    .attach = tr_rel_attach,
    .epoch_begin = tr_rel_epoch_begin,
    .shared_forward = tr_mran_shared_forward,
    .head_forward = tr_mran_head_forward,
    .head_backward = tr_mran_head_backward,
    .shared_backward = tr_mran_shared_backward,
    .final_relations = mran_final_relations,
    .each_state = mran_each_state,
    .free = tr_rel_free,
};
