/*
 * The shared-gradient all-reduce overlapped with the backward pass
 * (dist.overlap), as DDP and Horovod do it: the shared (trunk) gradient range
 * of the arena is cut into buckets from the last layer to the first — the
 * order in which the backward finishes them — and each bucket's all-reduce
 * starts as soon as the trunk op that finishes its last tensor is through
 * its backward (the model's grad_ready hook); between ops, and between the
 * examples of a convolution, the started buckets advance (their ring steps
 * are tested and the next ones posted), and before the optimizer step the
 * rest are started and every bucket is waited for, under the stall watchdog.
 * With dist.overlap = false every bucket starts after the backward (all at
 * once, advanced together): the same ring all-reduces of the same data,
 * hence the same bits (src/comm/buckets.c).
 * Buckets start early only where the shared gradients are exactly the trunk
 * ops' tensors and the trunk's backward runs once per step (HPS, MRN); other
 * methods and the per-task weightings start every bucket after the backward.
 * Not here: MPI (tr_buckets), the layers (model_pass.c).
 */
#include <stdlib.h>
#include <string.h>

#include "taskrel/timeline.h"
#include "trainer_internal.h"

/* The trunk op whose backward computes the gradient of tensor id, or -1. */
static int owner_op(const tr_model *m, int id) {
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].pw == id || m->ops[i].pb == id)
            return i;
    return -1;
}

typedef struct {
    size_t off; /* where the tensor starts in the arena (it ends where the next one starts) */
    int op;     /* owner_op */
} extent;

static int by_offset_desc(const void *a, const void *b) {
    const extent *x = a, *y = b;
    return x->off < y->off ? 1 : x->off > y->off ? -1 : 0;
}

/* Cut [off, off + len) into buckets of at most cap floats from the top down,
 * following the tensors' extents (ext, by descending offset); ready[i] is the
 * lowest owner op of bucket i's tensors, -1 if one has none. */
static int cut_buckets(size_t *boff, size_t *blen, int *ready, const extent *ext, int n_ext,
                       size_t off, size_t len, size_t cap) {
    int nb = 0;
    size_t hi = off + len, lo = hi;
    int rd = INT32_MAX;
    for (int k = 0; k < n_ext; k++) {
        size_t pos = lo; /* a gap above this tensor rides with it */
        while (pos > ext[k].off) {
            size_t room = cap - (hi - lo), take = pos - ext[k].off < room ? pos - ext[k].off : room;
            lo = pos - take;
            pos = lo;
            if (ext[k].op < 0 || rd < 0)
                rd = -1;
            else if (ext[k].op < rd)
                rd = ext[k].op;
            if (hi - lo == cap) {
                boff[nb] = lo;
                blen[nb] = hi - lo;
                ready[nb++] = rd;
                hi = lo;
                rd = INT32_MAX;
            }
        }
    }
    lo = off; /* a gap below the first tensor, if any */
    if (hi > lo) {
        boff[nb] = lo;
        blen[nb] = hi - lo;
        ready[nb++] = rd == INT32_MAX ? -1 : rd;
    }
    return nb;
}

tr_status tr_overlap_init(tr_trainer *tr) {
    tr_overlap *o = &tr->ov;
    memset(o, 0, sizeof(*o));
    const tr_model *m = &tr->model;
    const tr_params *p = &m->params;
    size_t off, len;
    TR_CALL(tr_params_domain_range(p, 0, &off, &len));
    if (len == 0)
        return tr_buckets_init(&o->b, tr->grid.world, NULL, NULL, 0);
    size_t cap = (size_t)((double)tr->cfg->bucket_mb * (1024.0 * 1024.0 / sizeof(float)));
    cap = cap < 16 ? 16 : cap; /* at least one padded tensor slot */
    extent *ext = NULL;
    size_t *boff = NULL, *blen = NULL;
    int n_ext = 0, early = tr->cfg->overlap && m->method->layout == TR_LAYOUT_SHARED_TRUNK;
    tr_status st = TR_OK;
    ext = tr_calloc((size_t)p->n + 1, sizeof(*ext));
    size_t max_b = len / cap + (size_t)p->n + 2;
    boff = tr_calloc(max_b, sizeof(*boff));
    blen = tr_calloc(max_b, sizeof(*blen));
    o->ready_op = tr_calloc(max_b, sizeof(*o->ready_op));
    if (!ext || !boff || !blen || !o->ready_op) {
        st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory (buckets)");
        goto done;
    }
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        if (t->task_axis)
            continue;
        ext[n_ext].off = t->offset;
        ext[n_ext].op = owner_op(m, i);
        if (ext[n_ext].op < 0)
            early = 0; /* a shared tensor outside the trunk ops (experts, relations) */
        n_ext++;
    }
    qsort(ext, (size_t)n_ext, sizeof(*ext), by_offset_desc);
    int nb = cut_buckets(boff, blen, o->ready_op, ext, n_ext, off, len, cap);
    o->early = early;
    if (!early)
        for (int i = 0; i < nb; i++)
            o->ready_op[i] = -1;
    st = tr_buckets_init(&o->b, tr->grid.world, boff, blen, nb);
done:
    tr_free(ext);
    tr_free(boff);
    tr_free(blen);
    return st;
}

void tr_overlap_free(tr_overlap *o) {
    if (!o)
        return;
    tr_buckets_free(&o->b);
    tr_free(o->ready_op);
    memset(o, 0, sizeof(*o));
}

/* The model's grad_ready hook: ops [done, n_ops) are through their backward.
 * Start the buckets that made final, progress the others. */
static tr_status grad_ready(void *ctx, int done) {
    tr_trainer *tr = ctx;
    tr_overlap *o = &tr->ov;
    TR_CHECK(done <= o->last_op, TR_ERR_INTERNAL,
             "the trunk's backward ran twice in one step: its gradient buckets may have "
             "started early (model.kind = %s, dist.overlap = true)",
             tr->model.method->name);
    o->last_op = done;
    int upto = o->b.started;
    while (upto < o->b.n && o->ready_op[upto] >= done)
        upto++;
    TR_CALL(tr_buckets_start(&o->b, upto));
    return tr_buckets_progress(&o->b);
}

static tr_status begin_round(tr_trainer *tr) {
    tr_params *p = &tr->model.params;
    TR_CALL(tr_buckets_begin(&tr->ov.b, p->grad));
    tr->ov.open = 1;
    return TR_OK;
}

tr_status tr_overlap_arm(tr_trainer *tr) {
    tr_overlap *o = &tr->ov;
    if (!o->early || tr->wt.per_task)
        return TR_OK;
    TR_CALL(begin_round(tr));
    o->last_op = tr->model.n_ops;
    tr->model.grad_ready = grad_ready;
    tr->model.grad_ready_ctx = tr;
    return TR_OK;
}

void tr_overlap_disarm(tr_trainer *tr) {
    tr->model.grad_ready = NULL;
    tr->model.grad_ready_ctx = NULL;
}

tr_status tr_overlap_reduce(tr_trainer *tr) {
    tr_overlap *o = &tr->ov;
    tr_overlap_disarm(tr);
    if (!o->open)
        TR_CALL(begin_round(tr));
    o->open = 0;
    int early = o->b.started > 0;
    double t0 = tr_time_now(), first = o->b.t_start;
    TR_CALL(tr_buckets_finish(&tr->grid, &o->b, TR_COLL_TRUNK));
    double t1 = tr_time_now();
    tr_trainer_phase(tr, TR_PHASE_COMM, "trunk_allreduce", t0, t1);
    if (early) /* from the first bucket's start: what ran behind the backward */
        tr_timeline_add(tr->rep.timeline, "trunk_allreduce_inflight", first, t1, tr->step);
    return TR_OK;
}
