/*
 * The bucketed all-reduce whose buckets start one by one (see taskrel/comm.h,
 * tr_buckets): a ring all-reduce per bucket on point-to-point messages,
 * advanced step by step whenever the caller progresses it. What a bucket
 * holds and when it is final is the caller's business (src/train/overlap.c).
 *
 * Ring of P ranks, rank r, bucket cut into chunks 0..P-1 (tr_part_range):
 *   reduce-scatter step k = 0..P-2: send chunk (r-k) mod P to r+1, receive
 *     chunk (r-k-1) mod P from r-1 and add it into the buffer; afterwards
 *     rank r holds the full sum of chunk (r+1) mod P, summed in ring order
 *     starting at the chunk's own rank: ((x_c + x_{c+1}) + x_{c+2}) + ...
 *   all-gather step k = 0..P-2: send chunk (r+1-k) mod P to r+1, receive
 *     chunk (r-k) mod P from r-1 straight into the buffer.
 * Each bucket has its own tag; messages between two ranks with one tag are
 * not overtaken (MPI), and a rank posts step k+1 only after step k is done.
 */
#include <limits.h>
#include <string.h>

#include "taskrel/comm.h"

#define MAX_BUCKETS 32767 /* tags: MPI guarantees MPI_TAG_UB >= 32767 */

tr_status tr_buckets_init(tr_buckets *b, MPI_Comm comm, const size_t *off, const size_t *len,
                          int n) {
    memset(b, 0, sizeof(*b));
    b->comm = MPI_COMM_NULL;
    TR_MPI(MPI_Comm_rank(comm, &b->rank));
    TR_MPI(MPI_Comm_size(comm, &b->size));
    TR_CHECK(n <= MAX_BUCKETS, TR_ERR_CONFIG,
             "%d all-reduce buckets: at most %d (raise dist.bucket_mb)", n, MAX_BUCKETS);
    if (n == 0)
        return TR_OK;
    for (int i = 0; i < n; i++)
        TR_CHECK(len[i] > 0 && len[i] <= (size_t)INT_MAX, TR_ERR_INTERNAL,
                 "bucket %d holds %zu floats: need 1 .. 2^31-1", i, len[i]);
    b->n = n;
    TR_ALLOC(b->off, (size_t)n, "bucket table");
    TR_ALLOC(b->len, (size_t)n, "bucket table");
    TR_ALLOC(b->step, (size_t)n, "bucket table");
    TR_ALLOC(b->tmp_off, (size_t)n, "bucket table");
    TR_ALLOC(b->req, 2 * (size_t)n, "bucket requests");
    memcpy(b->off, off, (size_t)n * sizeof(size_t));
    memcpy(b->len, len, (size_t)n * sizeof(size_t));
    size_t tmp = 0;
    for (int i = 0; i < n; i++) {
        b->tmp_off[i] = tmp;
        tmp += (len[i] + (size_t)b->size - 1) / (size_t)b->size;
        b->step[i] = -1;
        b->req[2 * i] = b->req[2 * i + 1] = MPI_REQUEST_NULL;
    }
    if (b->size == 1)
        return TR_OK;
    TR_ALLOC(b->tmp, tmp, "all-reduce receive buffer");
    TR_MPI(MPI_Comm_dup(comm, &b->comm));
    TR_MPI(MPI_Comm_set_errhandler(b->comm, MPI_ERRORS_RETURN));
    return TR_OK;
}

void tr_buckets_free(tr_buckets *b) {
    if (!b)
        return;
    if (b->comm != MPI_COMM_NULL && b->comm != 0)
        MPI_Comm_free(&b->comm);
    tr_free(b->off);
    tr_free(b->len);
    tr_free(b->step);
    tr_free(b->tmp_off);
    tr_free(b->req);
    tr_free(b->tmp);
    memset(b, 0, sizeof(*b));
}

tr_status tr_buckets_begin(tr_buckets *b, float *buf) {
    TR_CHECK(!b->active, TR_ERR_INTERNAL, "a bucket round began before the last one finished");
    b->buf = buf;
    b->started = b->done = 0;
    b->active = b->size > 1 && b->n > 0; /* one rank: nothing to reduce, not counted */
    for (int i = 0; i < b->n; i++)
        b->step[i] = -1;
    return TR_OK;
}

static int mod(int a, int p) {
    return ((a % p) + p) % p;
}

/* Post the messages of ring step k of bucket i. */
static tr_status post_step(tr_buckets *b, int i, int k) {
    int P = b->size, r = b->rank, right = mod(r + 1, P), left = mod(r - 1, P);
    int len = (int)b->len[i], lo, cnt;
    float *base = b->buf + b->off[i];
    int send_c, recv_c;
    if (k < P - 1) { /* reduce-scatter */
        send_c = mod(r - k, P);
        recv_c = mod(r - k - 1, P);
    } else { /* all-gather */
        send_c = mod(r + 1 - (k - (P - 1)), P);
        recv_c = mod(r - (k - (P - 1)), P);
    }
    tr_part_range(len, P, recv_c, &lo, &cnt);
    float *into = k < P - 1 ? b->tmp + b->tmp_off[i] : base + lo;
    TR_MPI(MPI_Irecv(into, cnt, MPI_FLOAT, left, i, b->comm, &b->req[2 * i + 1]));
    tr_part_range(len, P, send_c, &lo, &cnt);
    TR_MPI(MPI_Isend(base + lo, cnt, MPI_FLOAT, right, i, b->comm, &b->req[2 * i]));
    return TR_OK;
}

/* Step k of bucket i has completed: add a reduce-scatter chunk in. */
static void end_step(tr_buckets *b, int i, int k) {
    int P = b->size;
    if (k >= P - 1)
        return;
    int lo, cnt;
    tr_part_range((int)b->len[i], P, mod(b->rank - k - 1, P), &lo, &cnt);
    float *dst = b->buf + b->off[i] + lo;
    const float *src = b->tmp + b->tmp_off[i];
    for (int j = 0; j < cnt; j++)
        dst[j] = src[j] + dst[j]; /* the partial sum so far, then this rank's own value */
}

tr_status tr_buckets_start(tr_buckets *b, int upto) {
    if (!b->active)
        return TR_OK;
    if (upto > b->n)
        upto = b->n;
    if (b->started == 0 && upto > 0)
        b->t_start = tr_time_now();
    for (; b->started < upto; b->started++) {
        b->step[b->started] = 0;
        TR_CALL(post_step(b, b->started, 0));
    }
    return TR_OK;
}

/* Advance bucket i as far as its messages allow. */
static tr_status advance(tr_buckets *b, int i) {
    int steps = 2 * (b->size - 1);
    while (b->step[i] >= 0 && b->step[i] < steps) {
        int flag = 0;
        TR_MPI(MPI_Testall(2, &b->req[2 * i], &flag, MPI_STATUSES_IGNORE));
        if (!flag)
            return TR_OK;
        end_step(b, i, b->step[i]);
        if (++b->step[i] < steps)
            TR_CALL(post_step(b, i, b->step[i]));
        else
            b->done++;
    }
    return TR_OK;
}

static tr_status progress_all(tr_buckets *b) {
    for (int i = 0; i < b->started; i++)
        TR_CALL(advance(b, i));
    return TR_OK;
}

tr_status tr_buckets_progress(tr_buckets *b) {
    if (!b->active)
        return TR_OK;
    return tr_watchdog_failed(progress_all(b), "gradient bucket");
}

/* tr_watchdog_wait_fn tests: every started bucket is done. */
static tr_status all_started_done(void *ctx, int *done) {
    tr_buckets *b = ctx;
    TR_CALL(progress_all(b));
    *done = b->done == b->started;
    return TR_OK;
}

tr_status tr_buckets_finish(tr_grid *g, tr_buckets *b, tr_coll_kind kind) {
    if (!b->active)
        return TR_OK;
    double t0 = tr_time_now();
    TR_CALL(tr_buckets_start(b, b->n));
    TR_CALL(tr_watchdog_wait_fn(all_started_done, b, tr_coll_name(kind)));
    size_t total = 0;
    for (int i = 0; i < b->n; i++)
        total += b->len[i];
    b->active = 0;
    tr_grid_count(g, kind, total * sizeof(float), tr_time_now() - t0);
    return TR_OK;
}
