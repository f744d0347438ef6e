/*
 * Parameter arenas: tensor table plus one contiguous data arena and one
 * gradient arena of the same layout (see taskrel/params.h).
 */
#include "taskrel/params.h"

#include <string.h>

#define TR_PAD_FLOATS 16 /* 64-byte alignment of every tensor */

void tr_params_init(tr_params *p) {
    memset(p, 0, sizeof(*p));
}

void tr_params_free(tr_params *p) {
    if (!p)
        return;
    tr_free(p->t);
    tr_free(p->data);
    tr_free(p->grad);
    memset(p, 0, sizeof(*p));
}

tr_status tr_params_add(tr_params *p, int *id, const char *name, tr_group group, int decay,
                        int ndim, const int64_t *shape, int task_axis, int64_t T, int64_t t0,
                        int64_t tn) {
    TR_ASSERT(p->data == NULL); /* declared after allocation */
    TR_ASSERT(ndim >= 0 && ndim + (task_axis ? 1 : 0) <= TR_MAX_DIMS);
    TR_ASSERT(strlen(name) < TR_NAME_LEN);
    TR_ASSERT(tr_params_find(p, name) < 0);
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 32;
        tr_tensor *t;
        TR_ALLOC(t, (size_t)cap, "tensor table");
        if (p->n)
            memcpy(t, p->t, (size_t)p->n * sizeof(*t));
        tr_free(p->t);
        p->t = t;
        p->cap = cap;
    }
    tr_tensor *t = &p->t[p->n];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->group = group;
    t->decay = decay;
    t->lr_scale = 1.0f;
    t->task_axis = task_axis ? 1 : 0;
    size_t per = 1;
    int d = 0;
    if (task_axis) {
        TR_ASSERT(T > 0 && t0 >= 0 && tn >= 0 && t0 + tn <= T);
        t->shape[d++] = T;
        t->t0 = t0;
        t->tn = tn;
    } else {
        t->t0 = 0;
        t->tn = 1;
    }
    for (int i = 0; i < ndim; i++) {
        TR_ASSERT(shape[i] > 0);
        t->shape[d++] = shape[i];
        per *= (size_t)shape[i];
    }
    t->ndim = d;
    t->per_task = per;
    t->count = per * (size_t)t->tn;
    t->offset = p->total;
    p->total += (t->count + TR_PAD_FLOATS - 1) / TR_PAD_FLOATS * TR_PAD_FLOATS;
    if (id)
        *id = p->n;
    p->n++;
    return TR_OK;
}

tr_status tr_params_alloc(tr_params *p) {
    TR_ASSERT(p->data == NULL);
    size_t n = p->total ? p->total : 1;
    TR_ALLOC(p->data, n, "parameters");
    TR_ALLOC(p->grad, n, "gradients");
    return TR_OK;
}

float *tr_params_data(const tr_params *p, int id) {
    return p->data + p->t[id].offset;
}
float *tr_params_grad(const tr_params *p, int id) {
    return p->grad + p->t[id].offset;
}

float *tr_params_task_data(const tr_params *p, int id, int64_t task) {
    const tr_tensor *t = &p->t[id];
    int64_t local = t->task_axis ? task - t->t0 : 0;
    return p->data + t->offset + (size_t)local * t->per_task;
}

float *tr_params_task_grad(const tr_params *p, int id, int64_t task) {
    const tr_tensor *t = &p->t[id];
    int64_t local = t->task_axis ? task - t->t0 : 0;
    return p->grad + t->offset + (size_t)local * t->per_task;
}

int tr_params_find(const tr_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->t[i].name, name) == 0)
            return i;
    return -1;
}

void tr_params_zero_grad(tr_params *p) {
    if (p->grad)
        memset(p->grad, 0, p->total * sizeof(float));
}

tr_status tr_params_domain_range(const tr_params *p, int task_axis, size_t *off, size_t *len) {
    size_t lo = p->total, hi = 0;
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        if (t->task_axis != (task_axis ? 1 : 0))
            continue;
        size_t end = t->offset + (t->count + TR_PAD_FLOATS - 1) / TR_PAD_FLOATS * TR_PAD_FLOATS;
        if (t->offset < lo)
            lo = t->offset;
        if (end > hi)
            hi = end;
    }
    if (hi <= lo) {
        *off = 0;
        *len = 0;
        return TR_OK;
    }
    /* contiguity: every tensor inside [lo, hi) must belong to the domain */
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        if (t->task_axis != (task_axis ? 1 : 0) && t->offset >= lo && t->offset < hi)
            TR_RAISE(TR_ERR_INTERNAL, "tensor %s breaks the contiguity of the %s range", t->name,
                     task_axis ? "task" : "shared");
    }
    *off = lo;
    *len = hi - lo;
    return TR_OK;
}

int64_t tr_params_global_count(const tr_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++) {
        int64_t c = 1;
        for (int d = 0; d < p->t[i].ndim; d++)
            c *= p->t[i].shape[d];
        n += c;
    }
    return n;
}
