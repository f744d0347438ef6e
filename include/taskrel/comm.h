/*
 * The rank grid and the collectives the trainer uses.
 *
 * P ranks form an R x S grid: S task shards, R data replicas, rank = r*S + s.
 *   world        all P ranks: shared (trunk) gradients, fused per-step scalars
 *   shard_comm   the R ranks of shard s: task-head gradients
 *   replica_comm the S ranks of replica r: feature exchange, task-weight gathers
 * All communicators use MPI_ERRORS_RETURN and every call is checked (TR_MPI).
 * Every collective is counted (calls, bytes, seconds) per kind, so the trainer
 * can report communication volume and time.
 *
 * src/comm knows nothing about layers; src/train strings them together.
 */
#ifndef TASKREL_DIST_H
#define TASKREL_DIST_H

#include <mpi.h>

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_MPI(call)                                                                               \
    do {                                                                                           \
        int tr_mpi_rc_ = (call);                                                                   \
        if (tr_mpi_rc_ != MPI_SUCCESS) {                                                           \
            char tr_mpi_msg_[MPI_MAX_ERROR_STRING];                                                \
            int tr_mpi_len_ = 0;                                                                   \
            MPI_Error_string(tr_mpi_rc_, tr_mpi_msg_, &tr_mpi_len_);                               \
            return tr_error_set(TR_ERR_MPI, __FILE__, __LINE__, __func__, "%s: %s", #call,         \
                                tr_mpi_msg_);                                                      \
        }                                                                                          \
    } while (0)

/* What a collective was for; counters are kept per kind. */
typedef enum {
    TR_COLL_TRUNK = 0, /* shared-gradient all-reduce over world */
    TR_COLL_HEAD,      /* task-gradient all-reduce over shard_comm */
    TR_COLL_FEATURES,  /* feature all-gather / reduce-scatter over replica_comm */
    TR_COLL_SCALARS,   /* fused per-step scalars over world */
    TR_COLL_MRN,       /* MRN weight gathers and covariance assembly */
    TR_COLL_MRAN,      /* MRAN relation matrices */
    TR_COLL_EVAL,      /* evaluation sums */
    TR_COLL_OTHER,
    TR_COLL_WEIGHTING, /* train.weighting: per-task gradient reduce-scatter, Gram all-reduce,
                          combined-gradient all-gather, all over world */
    TR_COLL_COUNT
} tr_coll_kind;

const char *tr_coll_name(tr_coll_kind k);

typedef struct {
    int64_t calls;
    int64_t bytes; /* payload bytes handed to MPI by this rank (send side) */
    double seconds;
} tr_coll_stats;

typedef struct {
    MPI_Comm world, shard_comm, replica_comm;
    int rank, size;       /* in world */
    int R, S;             /* replicas, shards */
    int r, s;             /* this rank's replica and shard */
    int T;                /* tasks */
    int *shard_t0;        /* (S) first task of each shard */
    int *shard_tn;        /* (S) tasks of each shard */
    int t0, tn;           /* this rank's tasks */
    size_t bucket_floats; /* all-reduce bucket size */
    tr_coll_stats stats[TR_COLL_COUNT];
} tr_grid;

/* Build the grid. task_shards = 0 picks the largest divisor of P that is <= T.
 * task_cost (T values, NULL = all equal) drives the contiguous balanced split.
 * Raises TR_ERR_CONFIG (on every rank alike) if the shard count does not divide
 * P or exceeds T. Collective over world (dups it). */
tr_status tr_grid_init(tr_grid *g, MPI_Comm world, int T, int task_shards, const double *task_cost);
void tr_grid_free(tr_grid *g); /* no-op on a zeroed struct */
/* Shard that owns task t. */
int tr_grid_task_shard(const tr_grid *g, int t);
/* Contiguous balanced split of T tasks with costs into S blocks (exposed for tests). */
void tr_grid_split_tasks(int *t0, int *tn, int T, int S, const double *cost);

/* In-place sum all-reduce of n floats over comm, in buckets of g->bucket_floats,
 * counted under kind. */
tr_status tr_allreduce_f32(tr_grid *g, MPI_Comm comm, float *buf, size_t n, tr_coll_kind kind);
tr_status tr_allreduce_f64(tr_grid *g, MPI_Comm comm, double *buf, size_t n, tr_coll_kind kind);
/* Variable-count all-gather of floats (counts/displs in elements) over comm. */
tr_status tr_allgatherv_f32(tr_grid *g, MPI_Comm comm, const float *send, int sendcount,
                            float *recv, const int *counts, const int *displs, tr_coll_kind kind);
tr_status tr_allgatherv_f64(tr_grid *g, MPI_Comm comm, const double *send, int sendcount,
                            double *recv, const int *counts, const int *displs, tr_coll_kind kind);
/* Reduce-scatter (sum) with per-rank counts over comm. */
tr_status tr_reduce_scatter_f32(tr_grid *g, MPI_Comm comm, const float *send, float *recv,
                                const int *counts, tr_coll_kind kind);

/* ---- a bucketed all-reduce whose buckets start one by one (buckets.c) -------------
 * The in-place sum of one float buffer over a communicator, split into
 * buckets (ranges of the buffer) that are started in a fixed order, each as
 * soon as its part of the buffer is final, progressed while the caller
 * computes, and completed together: the gradient all-reduce that overlaps
 * the backward pass. Each bucket is a ring all-reduce of its own (its range
 * cut into P chunks, P-1 reduce-scatter then P-1 all-gather steps of
 * non-blocking point-to-point messages to the right neighbour, on a private
 * duplicate of the communicator), advanced by tr_buckets_progress and the
 * final wait. The sum of every element is taken in an order fixed by P and
 * the bucket's range alone — not by when a bucket starts or how the messages
 * are timed — so a round gives the same bits however it is interleaved with
 * the caller's work, and every rank gets the same bits. (Open MPI 4.1's own
 * MPI_Iallreduce is a binomial reduce and broadcast for P < 4 or in place,
 * twice the traffic of a ring at P = 2, and may sum in another order than
 * its blocking MPI_Allreduce.) Every rank starts the same buckets in the same
 * order. Waits go through the stall watchdog; the counters get one call per
 * round, its bytes, and the seconds spent in tr_buckets_finish (the exposed
 * part). */
typedef struct {
    int n;             /* buckets */
    size_t *off, *len; /* (n) ranges of the buffer, in floats, in start order */
    int *step;         /* (n) ring steps done this round: 0 .. 2(P-1); -1 not started */
    MPI_Request *req;  /* (n, 2) the current step's send and receive */
    float *tmp;        /* received chunks of the reduce-scatter, ceil(len/P) per bucket */
    size_t *tmp_off;   /* (n) */
    int started;       /* buckets [0, started) are under way this round */
    int done;          /* buckets that completed this round */
    MPI_Comm comm;     /* private duplicate (MPI_COMM_NULL with one rank) */
    int rank, size;
    float *buf;
    int active;     /* this round moves data (>= 2 ranks, >= 1 bucket) */
    double t_start; /* when the round's first bucket started */
} tr_buckets;

/* n buckets with ranges off/len (copied; each len < 2^31, n <= 32767) over
 * comm. Collective over comm (duplicates it). */
tr_status tr_buckets_init(tr_buckets *b, MPI_Comm comm, const size_t *off, const size_t *len,
                          int n);
void tr_buckets_free(tr_buckets *b); /* no-op on a zeroed struct */
/* Begin a round on buf (nothing is sent yet). Local. */
tr_status tr_buckets_begin(tr_buckets *b, float *buf);
/* Start buckets [started, upto) (their first ring step). */
tr_status tr_buckets_start(tr_buckets *b, int upto);
/* Advance every started, unfinished bucket as far as its messages allow
 * (MPI_Testall), without waiting. An MPI error is a stall under the watchdog. */
tr_status tr_buckets_progress(tr_buckets *b);
/* End the round: start every remaining bucket and wait for all, advancing
 * them together. Counted under kind. */
tr_status tr_buckets_finish(tr_grid *g, tr_buckets *b, tr_coll_kind kind);

/* The fused per-step all-reduce over world: buf[0 .. nsum) are summed,
 * buf[nsum .. nsum+nmax) are max-reduced, in ONE MPI call (a derived datatype
 * covering the whole buffer and a user op). */
tr_status tr_allreduce_fused(tr_grid *g, double *buf, int nsum, int nmax);

/* Agree on a status across world: every rank returns the worst status any
 * rank had (user errors win over runtime errors). A rank that did not fail
 * gets the agreed status with the message "another rank failed". Collective. */
tr_status tr_agree(MPI_Comm world, tr_status local);

void tr_grid_reset_stats(tr_grid *g);
/* Add one call of `bytes` and `seconds` to the counters of kind. */
void tr_grid_count(tr_grid *g, tr_coll_kind kind, size_t bytes, double seconds);

/* Rows [lo, lo+n) of part `index` of a contiguous split of `total` into
 * `parts` (how batches and evaluation rows are divided over replicas and
 * shards). */
void tr_part_range(int total, int parts, int index, int *lo, int *n);

/* ---- the stall watchdog (watchdog.c) ----------------------------------------------
 * With a timeout > 0 every collective above (and tr_agree) is started
 * non-blocking and waited for by tr_watchdog_wait: one that has not completed
 * after timeout_s seconds is reported on stderr (the step, the collective and
 * the ranks, with their hosts, that did not answer a probe within a short
 * grace: the ranks lost) and this rank exits at once with TR_EXIT_STALL, as
 * every other rank that waits does within its own timeout. With
 * TASKREL_STALL_REPORT=FILE in the environment each such rank also appends
 * one line "reporter=HOST rank=R step=S collective=C missing=HOST,..." to FILE
 * (job scripts read it to leave the lost nodes out). Timeout 0: blocking MPI
 * calls, no watchdog. One watchdog per process. */
#define TR_EXIT_STALL 4

/* Collective over world: allgathers the host names. */
tr_status tr_watchdog_start(MPI_Comm world, double timeout_s);
void tr_watchdog_stop(void);
double tr_watchdog_timeout(void);
/* The step the stall report names (the trainer sets it every step). */
void tr_watchdog_set_step(int64_t step);
/* Wait for req (a non-blocking collective); what names it in the report. */
tr_status tr_watchdog_wait(MPI_Request *req, const char *what);
/* Wait until test(ctx, &done) sets done (test progresses the operation, e.g.
 * the steps of a ring all-reduce); the same deadline, probes and report as
 * tr_watchdog_wait. An error from test is a stall under the watchdog; with
 * timeout 0 it is returned. */
tr_status tr_watchdog_wait_fn(tr_status (*test)(void *ctx, int *done), void *ctx, const char *what);
/* Report a failed operation (an MPI error outside a wait: a peer failed
 * outright) as a stall and exit with TR_EXIT_STALL under the watchdog;
 * without it return st. */
tr_status tr_watchdog_failed(tr_status st, const char *what);

#ifdef __cplusplus
}
#endif
#endif
