/*
 * Rank grid, communicators and counted collectives (see taskrel/comm.h).
 * Not here: anything about layers or what the buffers mean.
 */
#include "taskrel/comm.h"

#include <string.h>

static const char *const k_coll_names[TR_COLL_COUNT] = {
    "trunk_allreduce", "head_allreduce", "features", "scalars", "mrn", "mran", "eval",
    "other",           "weighting",
};

const char *tr_coll_name(tr_coll_kind k) {
    return k_coll_names[k];
}

void tr_grid_split_tasks(int *t0, int *tn, int T, int S, const double *cost) {
    /* Greedy contiguous split: block s ends where the running cost first
     * reaches (s+1)/S of the total, keeping at least one task per block. */
    double total = 0.0;
    for (int t = 0; t < T; t++)
        total += cost ? cost[t] : 1.0;
    int t = 0;
    double run = 0.0;
    for (int s = 0; s < S; s++) {
        t0[s] = t;
        int remaining_blocks = S - s - 1;
        double target = total * (double)(s + 1) / (double)S;
        int end = t + 1; /* at least one task */
        run += cost ? cost[t] : 1.0;
        while (end < T - remaining_blocks) {
            double c = cost ? cost[end] : 1.0;
            /* take the next task if that brings us closer to the target */
            if (run + c - target > target - run)
                break;
            run += c;
            end++;
        }
        if (s == S - 1)
            end = T;
        tn[s] = end - t;
        t = end;
    }
}

tr_status tr_grid_init(tr_grid *g, MPI_Comm world, int T, int task_shards,
                       const double *task_cost) {
    memset(g, 0, sizeof(*g));
    g->world = MPI_COMM_NULL;
    g->shard_comm = MPI_COMM_NULL;
    g->replica_comm = MPI_COMM_NULL;
    int rank, size;
    TR_MPI(MPI_Comm_rank(world, &rank));
    TR_MPI(MPI_Comm_size(world, &size));
    int S = task_shards;
    if (S == 0) {
        S = 1;
        for (int d = 1; d <= size; d++)
            if (size % d == 0 && d <= T)
                S = d;
    }
    /* Same inputs on every rank, so every rank raises the same error. */
    TR_CHECK(S >= 1 && S <= T, TR_ERR_CONFIG,
             "dist.task_shards = %d does not fit %d task(s): need 1 <= shards <= tasks", S, T);
    TR_CHECK(size % S == 0, TR_ERR_CONFIG,
             "%d rank(s) cannot be split into dist.task_shards = %d shards: the rank count "
             "must be a multiple of the shard count",
             size, S);
    g->rank = rank;
    g->size = size;
    g->S = S;
    g->R = size / S;
    g->s = rank % S;
    g->r = rank / S;
    g->T = T;
    g->bucket_floats = (size_t)1 << 22; /* 16 MiB buckets */
    TR_ALLOC(g->shard_t0, (size_t)S, "shard table");
    TR_ALLOC(g->shard_tn, (size_t)S, "shard table");
    tr_grid_split_tasks(g->shard_t0, g->shard_tn, T, S, task_cost);
    g->t0 = g->shard_t0[g->s];
    g->tn = g->shard_tn[g->s];
    TR_MPI(MPI_Comm_dup(world, &g->world));
    TR_MPI(MPI_Comm_set_errhandler(g->world, MPI_ERRORS_RETURN));
    TR_MPI(MPI_Comm_split(g->world, g->s, g->r, &g->shard_comm));
    TR_MPI(MPI_Comm_set_errhandler(g->shard_comm, MPI_ERRORS_RETURN));
    TR_MPI(MPI_Comm_split(g->world, g->r, g->s, &g->replica_comm));
    TR_MPI(MPI_Comm_set_errhandler(g->replica_comm, MPI_ERRORS_RETURN));
    return TR_OK;
}

void tr_grid_free(tr_grid *g) {
    if (!g)
        return;
    tr_watchdog_stop();
    if (g->shard_comm != MPI_COMM_NULL && g->shard_comm != 0)
        MPI_Comm_free(&g->shard_comm);
    if (g->replica_comm != MPI_COMM_NULL && g->replica_comm != 0)
        MPI_Comm_free(&g->replica_comm);
    if (g->world != MPI_COMM_NULL && g->world != 0)
        MPI_Comm_free(&g->world);
    tr_free(g->shard_t0);
    tr_free(g->shard_tn);
    memset(g, 0, sizeof(*g));
}

int tr_grid_task_shard(const tr_grid *g, int t) {
    for (int s = 0; s < g->S; s++)
        if (t >= g->shard_t0[s] && t < g->shard_t0[s] + g->shard_tn[s])
            return s;
    return -1;
}

void tr_grid_reset_stats(tr_grid *g) {
    memset(g->stats, 0, sizeof(g->stats));
}

void tr_grid_count(tr_grid *g, tr_coll_kind kind, size_t bytes, double seconds) {
    g->stats[kind].calls++;
    g->stats[kind].bytes += (int64_t)bytes;
    g->stats[kind].seconds += seconds;
}

static void count(tr_grid *g, tr_coll_kind kind, size_t bytes, double t0) {
    tr_grid_count(g, kind, bytes, tr_time_now() - t0);
}

static tr_status allreduce_bucketed(tr_grid *g, MPI_Comm comm, void *buf, size_t n,
                                    MPI_Datatype type, size_t elem, tr_coll_kind kind) {
    int csize;
    TR_MPI(MPI_Comm_size(comm, &csize));
    if (csize == 1 || n == 0)
        return TR_OK; /* nothing to reduce; not counted as traffic */
    double t0 = tr_time_now();
    size_t bucket = g->bucket_floats ? g->bucket_floats : n;
    for (size_t off = 0; off < n; off += bucket) {
        size_t len = n - off < bucket ? n - off : bucket;
        if (tr_watchdog_timeout() > 0) {
            MPI_Request req;
            TR_MPI(MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)len, type, MPI_SUM,
                                  comm, &req));
            TR_CALL(tr_watchdog_wait(&req, tr_coll_name(kind)));
        } else {
            TR_MPI(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)len, type, MPI_SUM,
                                 comm));
        }
    }
    count(g, kind, n * elem, t0);
    return TR_OK;
}

tr_status tr_allreduce_f32(tr_grid *g, MPI_Comm comm, float *buf, size_t n, tr_coll_kind kind) {
    return allreduce_bucketed(g, comm, buf, n, MPI_FLOAT, sizeof(float), kind);
}

tr_status tr_allreduce_f64(tr_grid *g, MPI_Comm comm, double *buf, size_t n, tr_coll_kind kind) {
    return allreduce_bucketed(g, comm, buf, n, MPI_DOUBLE, sizeof(double), kind);
}

static tr_status allgatherv(tr_grid *g, MPI_Comm comm, const void *send, int sendcount, void *recv,
                            const int *counts, const int *displs, MPI_Datatype ty, size_t esize,
                            tr_coll_kind kind) {
    double t0 = tr_time_now();
    if (tr_watchdog_timeout() > 0) {
        MPI_Request req;
        TR_MPI(MPI_Iallgatherv(send, sendcount, ty, recv, counts, displs, ty, comm, &req));
        TR_CALL(tr_watchdog_wait(&req, tr_coll_name(kind)));
    } else {
        TR_MPI(MPI_Allgatherv(send, sendcount, ty, recv, counts, displs, ty, comm));
    }
    int csize;
    TR_MPI(MPI_Comm_size(comm, &csize));
    if (csize > 1)
        count(g, kind, (size_t)sendcount * esize, t0);
    return TR_OK;
}

tr_status tr_allgatherv_f32(tr_grid *g, MPI_Comm comm, const float *send, int sendcount,
                            float *recv, const int *counts, const int *displs, tr_coll_kind kind) {
    return allgatherv(g, comm, send, sendcount, recv, counts, displs, MPI_FLOAT, sizeof(float),
                      kind);
}

tr_status tr_allgatherv_f64(tr_grid *g, MPI_Comm comm, const double *send, int sendcount,
                            double *recv, const int *counts, const int *displs, tr_coll_kind kind) {
    return allgatherv(g, comm, send, sendcount, recv, counts, displs, MPI_DOUBLE, sizeof(double),
                      kind);
}

tr_status tr_reduce_scatter_f32(tr_grid *g, MPI_Comm comm, const float *send, float *recv,
                                const int *counts, tr_coll_kind kind) {
    double t0 = tr_time_now();
    int csize;
    TR_MPI(MPI_Comm_size(comm, &csize));
    if (tr_watchdog_timeout() > 0) {
        MPI_Request req;
        TR_MPI(MPI_Ireduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, comm, &req));
        TR_CALL(tr_watchdog_wait(&req, tr_coll_name(kind)));
    } else {
        TR_MPI(MPI_Reduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, comm));
    }
    if (csize > 1) {
        size_t total = 0;
        for (int i = 0; i < csize; i++)
            total += (size_t)counts[i];
        count(g, kind, total * sizeof(float), t0);
    }
    return TR_OK;
}

/* ---- fused sum/max all-reduce -------------------------------------------------- */

/* The user op sees whole buffers (count 1 of a contiguous type), so it knows
 * which part is summed and which is max-reduced. The split is passed through
 * a static: MPI calls the op synchronously inside MPI_Allreduce on this rank. */
static int g_fused_nsum, g_fused_nmax;

static void fused_op(void *in, void *inout, int *len, MPI_Datatype *type) {
    const double *a = in;
    double *b = inout;
    for (int k = 0; k < *len; k++) {
        const double *ak = a + (size_t)k * (size_t)(g_fused_nsum + g_fused_nmax);
        double *bk = b + (size_t)k * (size_t)(g_fused_nsum + g_fused_nmax);
        for (int i = 0; i < g_fused_nsum; i++)
            bk[i] += ak[i];
        for (int i = g_fused_nsum; i < g_fused_nsum + g_fused_nmax; i++)
            bk[i] = ak[i] > bk[i] ? ak[i] : bk[i];
    }
}

tr_status tr_allreduce_fused(tr_grid *g, double *buf, int nsum, int nmax) {
    if (g->size == 1)
        return TR_OK;
    double t0 = tr_time_now();
    MPI_Datatype type;
    MPI_Op op;
    TR_MPI(MPI_Type_contiguous(nsum + nmax, MPI_DOUBLE, &type));
    TR_MPI(MPI_Type_commit(&type));
    TR_MPI(MPI_Op_create(fused_op, 1, &op));
    g_fused_nsum = nsum;
    g_fused_nmax = nmax;
    int rc;
    if (tr_watchdog_timeout() > 0) {
        MPI_Request req;
        rc = MPI_Iallreduce(MPI_IN_PLACE, buf, 1, type, op, g->world, &req);
        if (rc == MPI_SUCCESS) {
            tr_status st = tr_watchdog_wait(&req, tr_coll_name(TR_COLL_SCALARS));
            rc = st == TR_OK ? MPI_SUCCESS : MPI_ERR_OTHER;
        }
    } else {
        rc = MPI_Allreduce(MPI_IN_PLACE, buf, 1, type, op, g->world);
    }
    MPI_Op_free(&op);
    MPI_Type_free(&type);
    TR_MPI(rc);
    count(g, TR_COLL_SCALARS, (size_t)(nsum + nmax) * sizeof(double), t0);
    return TR_OK;
}

/* ---- agreement ------------------------------------------------------------------ */

static int status_priority(tr_status s) {
    if (s == TR_OK)
        return 0;
    if (s == TR_STOPPED)
        return 1;
    if (tr_status_is_user_error(s))
        return 3;
    return 2;
}

tr_status tr_agree(MPI_Comm world, tr_status local) {
    int mine = status_priority(local) * 1000 + (int)local;
    int worst = mine;
    int rc;
    if (tr_watchdog_timeout() > 0) {
        MPI_Request req;
        rc = MPI_Iallreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, world, &req);
        if (rc == MPI_SUCCESS && tr_watchdog_wait(&req, "status agreement") != TR_OK)
            rc = MPI_ERR_OTHER;
    } else {
        rc = MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, world);
    }
    if (rc != MPI_SUCCESS)
        return tr_error_set(TR_ERR_MPI, __FILE__, __LINE__, __func__,
                            "could not agree on the status across ranks");
    tr_status agreed = (tr_status)(worst % 1000);
    if (agreed != TR_OK && local == TR_OK)
        tr_error_set(agreed, __FILE__, __LINE__, __func__, "another rank failed (%s)",
                     tr_status_str(agreed));
    return agreed;
}

void tr_part_range(int total, int parts, int index, int *lo, int *n) {
    int a = (int)((int64_t)total * index / parts);
    int b = (int)((int64_t)total * (index + 1) / parts);
    *lo = a;
    *n = b - a;
}
