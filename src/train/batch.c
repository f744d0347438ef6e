/*
 * The rows of a training step: batches that do not depend on the number of
 * ranks (permutations keyed on seed, epoch and task), this rank's part of
 * them, and the buffers they and their features live in.
 *
 * Multi-input: every local task brings B / R rows of its own (replica r's
 * part), one segment per task. Shared-input: the replica part of the global
 * batch is labelled for every task; a shared trunk runs on this rank's
 * sub-slice of it and the features are exchanged within replica_comm, while
 * task trunks each run on the whole replica part (no exchange).
 * Not here: what runs on the rows (step.c), evaluation rows (evaluate.c).
 */
#include <string.h>

#include "trainer_internal.h"

#define TR_EVAL_CHUNK 512          /* rows per evaluation forward */
#define TR_SAMPLE_ID_TASK_SHIFT 40 /* global sample id = task << 40 | index */

int64_t tr_task_n(const tr_dataset *ds, int t, tr_split s) {
    if (ds->setting == TR_SETTING_SHARED_INPUT)
        return ds->shared[s].n;
    return ds->tasks[t].split[s].n;
}

/* ---- sizes and buffers ------------------------------------------------------------- */

tr_status tr_batch_plan(tr_batch *b, const tr_dataset *ds, const tr_grid *g, int batch_size,
                        tr_trunk_layout layout) {
    b->T = ds->T;
    b->t0 = g->t0;
    b->tn = g->tn;
    b->B = batch_size;
    b->perm_epoch = -1;
    b->shared_input = ds->setting == TR_SETTING_SHARED_INPUT;
    b->task_trunks = layout == TR_LAYOUT_TASK_TRUNKS;
    b->exchanged = b->shared_input && !b->task_trunks;
    TR_CHECK(b->B >= g->R, TR_ERR_CONFIG,
             "train.batch_size = %d is smaller than the %d data replicas: every replica needs "
             "at least one example per step",
             b->B, g->R);
    for (int t = 0; t < b->T; t++)
        if (tr_task_n(ds, t, TR_SPLIT_TRAIN) > b->max_n)
            b->max_n = tr_task_n(ds, t, TR_SPLIT_TRAIN);
    b->steps_per_epoch = (b->max_n + b->B - 1) / b->B;
    b->eval_chunk = TR_EVAL_CHUNK;
    int rep_max = (b->B + g->R - 1) / g->R; /* largest replica slice */
    if (!b->shared_input) {
        b->max_rows = rep_max * b->tn;
        b->max_head_rows = b->max_rows;
        b->perm_stride = b->max_n;
        TR_ALLOC(b->perm, (size_t)b->max_n * (size_t)b->tn, "permutations");
    } else {
        tr_part_range(b->B, g->R, g->r, &b->rep_lo, &b->rep_n);
        tr_part_range(b->rep_n, g->S, g->s, &b->my_lo, &b->my_n);
        b->max_rows = b->task_trunks ? rep_max * b->tn : rep_max;
        b->max_head_rows = rep_max * b->tn;
        TR_ALLOC(b->perm, (size_t)ds->shared[TR_SPLIT_TRAIN].n, "permutation");
    }
    if (b->max_rows < b->eval_chunk)
        b->max_rows = b->eval_chunk;
    if (b->max_head_rows < b->eval_chunk)
        b->max_head_rows = b->eval_chunk;
    return TR_OK;
}

tr_status tr_batch_alloc(tr_batch *b, const tr_dataset *ds, const tr_grid *g, int feat_dim) {
    size_t fd = (size_t)feat_dim, rows = (size_t)b->max_rows, hrows = (size_t)b->max_head_rows;
    TR_ALLOC(b->x, rows * (size_t)ds->sample_size, "batch inputs");
    int decoded = 0; /* some inputs are compact or streamed */
    for (int s = 0; s < TR_SPLIT_COUNT; s++) {
        decoded |= ds->shared[s].xs != NULL;
        for (int t = 0; ds->setting == TR_SETTING_MULTI_INPUT && t < ds->T; t++)
            decoded |= ds->tasks[t].split[s].xq != NULL || ds->tasks[t].split[s].xs != NULL;
    }
    if (decoded)
        TR_ALLOC(b->xeval, (size_t)b->eval_chunk * (size_t)ds->sample_size, "evaluation inputs");
    TR_ALLOC(b->ids, rows, "batch ids");
    TR_ALLOC(b->y, hrows, "batch labels");
    TR_ALLOC(b->yf, hrows, "batch targets");
    TR_ALLOC(b->dfeat, rows * fd, "feature gradients");
    if (!b->shared_input)
        return TR_OK;
    TR_ALLOC(b->yall, rows * (size_t)b->T, "task labels");
    TR_ALLOC(b->yfall, rows * (size_t)b->T, "task targets");
    int rep_max = (b->B + g->R - 1) / g->R;
    TR_ALLOC(b->feat_all, (size_t)rep_max * fd, "gathered features");
    TR_ALLOC(b->dfeat_all, (size_t)rep_max * fd, "gathered feature gradients");
    TR_ALLOC(b->gather_counts, (size_t)g->S, "gather counts");
    TR_ALLOC(b->gather_displs, (size_t)g->S, "gather displacements");
    for (int s = 0; s < g->S; s++) {
        int lo, n;
        tr_part_range(b->rep_n, g->S, s, &lo, &n);
        b->gather_counts[s] = n * (int)fd;
        b->gather_displs[s] = lo * (int)fd;
    }
    return TR_OK;
}

void tr_batch_free(tr_batch *b) {
    tr_free(b->perm);
    tr_free(b->x);
    tr_free(b->xeval);
    tr_free(b->ids);
    tr_free(b->y);
    tr_free(b->yf);
    tr_free(b->yall);
    tr_free(b->yfall);
    tr_free(b->dfeat);
    tr_free(b->feat_all);
    tr_free(b->dfeat_all);
    tr_free(b->gather_counts);
    tr_free(b->gather_displs);
    memset(b, 0, sizeof(*b));
}

/* ---- assembly ---------------------------------------------------------------------- */

/* Permutations of epoch e: one per local task (multi-input), keyed on
 * (seed, epoch, task), or one for the shared examples keyed on (seed, epoch, T). */
static void make_perms(tr_batch *b, const tr_dataset *ds, uint64_t seed, int64_t epoch) {
    if (b->perm_epoch == epoch)
        return;
    if (b->shared_input) {
        tr_rng_permutation(b->perm, (int32_t)ds->shared[TR_SPLIT_TRAIN].n, seed, TR_RNG_SHUFFLE,
                           (uint64_t)epoch * 65536u + (uint64_t)b->T);
    } else {
        for (int j = 0; j < b->tn; j++) {
            int t = b->t0 + j;
            tr_rng_permutation(b->perm + (size_t)j * b->perm_stride,
                               (int32_t)tr_task_n(ds, t, TR_SPLIT_TRAIN), seed, TR_RNG_SHUFFLE,
                               (uint64_t)epoch * 65536u + (uint64_t)t);
        }
    }
    b->perm_epoch = epoch;
}

static tr_status copy_example(tr_batch *b, const tr_dataset *ds, int row, const tr_split_data *sd,
                              int64_t idx, int64_t id) {
    size_t ss = (size_t)ds->sample_size;
    b->ids[row] = id;
    return tr_split_x_read(b->x + (size_t)row * ss, sd, (size_t)idx * ss, ss);
}

/* The trunk's view of the rows: all of them, and one segment per local task. */
static void set_trunk(tr_batch *b, int rows, int64_t step) {
    tr_trunk_batch *tb = &b->trunk;
    tb->x = b->x;
    tb->ids = b->ids;
    tb->yall = b->shared_input ? b->yall : NULL;
    tb->yfall = b->shared_input ? b->yfall : NULL;
    tb->rows = rows;
    tb->n_seg = b->tn;
    for (int j = 0; j < b->tn; j++) {
        /* multi-input: a task's own rows; shared-input: the same rows for every task */
        int x_row = b->shared_input ? 0 : b->seg_off[j];
        tb->seg[j] = (tr_trunk_segment){b->t0 + j, j, x_row, b->seg_n[j], b->seg_off[j]};
    }
    tb->train = 1;
    tb->step = (uint64_t)step;
}

static tr_status assemble_multi_input(tr_batch *b, const tr_dataset *ds, int64_t k,
                                      const tr_grid *g) {
    int lo, n, row = 0;
    tr_part_range(b->B, g->R, g->r, &lo, &n);
    for (int j = 0; j < b->tn; j++) {
        int t = b->t0 + j;
        const tr_split_data *sd = &ds->tasks[t].split[TR_SPLIT_TRAIN];
        const int32_t *perm = b->perm + (size_t)j * b->perm_stride;
        b->seg_off[j] = row;
        b->seg_n[j] = n;
        for (int i = 0; i < n; i++) {
            int64_t pos = (k * b->B + lo + i) % sd->n;
            int64_t idx = perm[pos];
            TR_CALL(
                copy_example(b, ds, row, sd, idx, ((int64_t)t << TR_SAMPLE_ID_TASK_SHIFT) | idx));
            if (sd->y)
                b->y[row] = sd->y[idx];
            if (sd->yf)
                b->yf[row] = sd->yf[idx];
            row++;
        }
    }
    return TR_OK;
}

/* Shared-input: trunk inputs (this rank's sub-slice, or the whole replica part
 * for task trunks) with every task's values, and the replica part's labels per
 * local task, laid out task-major. *rows: the trunk rows. */
static tr_status assemble_shared_input(tr_batch *b, const tr_dataset *ds, int64_t k, int *rows) {
    const tr_split_data *sd = &ds->shared[TR_SPLIT_TRAIN];
    int T = b->T;
    int lo = b->task_trunks ? 0 : b->my_lo;
    int n = b->task_trunks ? b->rep_n : b->my_n;
    for (int i = 0; i < n; i++) {
        int64_t pos = (k * b->B + b->rep_lo + lo + i) % sd->n;
        int64_t idx = b->perm[pos];
        TR_CALL(copy_example(b, ds, i, sd, idx, idx));
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)i * T + (size_t)t;
            if (sd->y)
                b->yall[o] = sd->y[idx * T + t];
            if (sd->yf)
                b->yfall[o] = sd->yf[idx * T + t];
        }
    }
    for (int j = 0; j < b->tn; j++) {
        int t = b->t0 + j;
        b->seg_off[j] = j * b->rep_n;
        b->seg_n[j] = b->rep_n;
        for (int i = 0; i < b->rep_n; i++) {
            int64_t pos = (k * b->B + b->rep_lo + i) % sd->n;
            int64_t idx = b->perm[pos];
            if (sd->y)
                b->y[j * b->rep_n + i] = sd->y[idx * T + t];
            if (sd->yf)
                b->yf[j * b->rep_n + i] = sd->yf[idx * T + t];
        }
    }
    *rows = n;
    return TR_OK;
}

tr_status tr_batch_assemble(tr_batch *b, const tr_dataset *ds, const tr_grid *g, uint64_t seed,
                            int64_t step) {
    int64_t epoch = step / b->steps_per_epoch, k = step % b->steps_per_epoch;
    make_perms(b, ds, seed, epoch);
    int rows;
    if (b->shared_input) {
        TR_CALL(assemble_shared_input(b, ds, k, &rows));
    } else {
        TR_CALL(assemble_multi_input(b, ds, k, g));
        rows = b->tn > 0 ? b->seg_off[b->tn - 1] + b->seg_n[b->tn - 1] : 0;
    }
    set_trunk(b, rows, step);
    return TR_OK;
}
