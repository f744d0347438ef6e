/*
 * MMoE's method row (the math is mmoe.c; the run set-up is MRAN's). Its
 * checkpoint state: the gate statistics of the current epoch. Each rank sums
 * the gates of its own rows; a checkpoint holds their sum over all ranks
 * (any grid can resume it), which on resume goes to world rank 0 while the
 * other ranks start from zero, so the final all-reduce sees the same total.
 */
#include <string.h>

#include "rel_internal.h"

static tr_status mmoe_final_relations(tr_model *m) {
    return tr_mmoe_relations(m, m->rel->relations);
}

static tr_status mmoe_each_state(tr_model *m, tr_state_fn fn, void *ctx) {
    struct tr_rel *r = m->rel;
    if (!r->gate_saved)
        TR_ALLOC(r->gate_saved, (size_t)r->T * r->E + r->T, "gate statistics");
    int64_t te[2] = {r->T, r->E}, t = r->T;
    TR_CALL(fn(ctx, "/mmoe/gate_sums", r->gate_saved, 2, te));
    return fn(ctx, "/mmoe/gate_counts", r->gate_saved + (size_t)r->T * r->E, 1, &t);
}

/* Collective over world: the sums of every rank into gate_saved. */
static tr_status mmoe_before_save(tr_model *m) {
    struct tr_rel *r = m->rel;
    size_t te = (size_t)r->T * r->E;
    memcpy(r->gate_saved, r->gate_sum, te * sizeof(double));
    memcpy(r->gate_saved + te, r->gate_n, (size_t)r->T * sizeof(double));
    return r->world ? r->world(r->ctx, r->gate_saved, (int)te + r->T) : TR_OK;
}

static void mmoe_after_load(tr_model *m) {
    struct tr_rel *r = m->rel;
    size_t te = (size_t)r->T * r->E;
    memset(r->gate_sum, 0, te * sizeof(double));
    memset(r->gate_n, 0, (size_t)r->T * sizeof(double));
    if (r->world_rank != 0)
        return;
    memcpy(r->gate_sum, r->gate_saved, te * sizeof(double));
    memcpy(r->gate_n, r->gate_saved + te, (size_t)r->T * sizeof(double));
}

const tr_method tr_method_mmoe = {
    .name = "mmoe",
    .kind = TR_MODEL_MMOE,
    .layout = TR_LAYOUT_SHARED_TRUNK,
    .declare = tr_mmoe_declare,
    .setup = tr_mmoe_setup,
    .attach = tr_rel_attach,
    .epoch_begin = tr_rel_epoch_begin,
    .shared_forward = tr_mmoe_shared_forward,
    .head_forward = tr_mmoe_head_forward,
    .head_backward = tr_mmoe_head_backward,
    .shared_backward = tr_mmoe_shared_backward,
    .final_relations = mmoe_final_relations,
    .each_state = mmoe_each_state,
    .before_save = mmoe_before_save,
    .after_load = mmoe_after_load,
    .free = tr_rel_free,
};
