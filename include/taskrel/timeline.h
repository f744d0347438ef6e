/*
 * Per-rank phase timeline, written as a Chrome trace (Trace Event Format, JSON)
 * that opens in Perfetto (ui.perfetto.dev) or chrome://tracing: one process
 * "taskrel", one track (thread) per rank, one complete ("X") event per
 * recorded phase.
 *
 * Recording is local and cheap: tr_timeline_add stores a pointer and three
 * numbers in a fixed ring allocated by tr_timeline_create, never allocates,
 * and is a no-op on a NULL timeline, so the trainer can disable the timeline
 * by not creating it. When more than `capacity` events are added, the oldest
 * ones are overwritten and counted as dropped.
 *
 * Writing is collective: tr_timeline_write gathers every rank's events to rank
 * 0, puts them on rank 0's clock and writes one JSON file. The file has one
 * event per line:
 *
 *   {"traceEvents":[
 *   {"name":"process_name","ph":"M","pid":0,"args":{"name":"taskrel"}},
 *   {"name":"thread_name","ph":"M","pid":0,"tid":R,"args":{"name":"rank R"}},
 *   {"name":"thread_sort_index","ph":"M","pid":0,"tid":R,"args":{"sort_index":R}},
 *   {"name":"forward","ph":"X","ts":12.345,"dur":2000.125,"pid":0,"tid":R,"args":{"step":7}},
 *   ...
 *   ],
 *   "displayTimeUnit":"ms",
 *   "otherData":{"ranks":P,"dropped_events":N,"dropped_per_rank":[n0,...]}}
 *
 * ts and dur are microseconds with three decimals; ts is relative to the
 * earliest event of all ranks (so >= 0); dur is t1 - t0 exactly as recorded
 * (clamped to >= 0). Events with step < 0 have no "args". Each rank's events
 * appear in increasing t0 (ties: the longer event first, so an enclosing phase
 * precedes the phases it contains).
 *
 * Not thread-safe: one timeline per rank, recorded from the rank's main thread.
 */
#ifndef TASKREL_TIMELINE_H
#define TASKREL_TIMELINE_H

#include <mpi.h>
#include <stdint.h>

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_timeline tr_timeline; /* opaque */

/* Allocate a timeline that keeps the last `capacity` events of this rank
 * (capacity >= 1; TR_ERR_CONFIG otherwise). Local. Free with tr_timeline_free. */
tr_status tr_timeline_create(tr_timeline **tl, int capacity);
void tr_timeline_free(tr_timeline *tl); /* NULL ok */

/* Record a complete event from t0 to t1 (tr_time_now() seconds) of training
 * step `step` (-1: none). `name` is stored as a pointer, not copied: pass a
 * string literal or a string that outlives the timeline. Never allocates;
 * no-op if tl is NULL. Local. */
void tr_timeline_add(tr_timeline *tl, const char *name, double t0, double t1, int64_t step);

/* Events currently kept (<= capacity) and events dropped so far; 0 for NULL. */
int tr_timeline_count(const tr_timeline *tl);
int64_t tr_timeline_dropped(const tr_timeline *tl);

/* Gather every rank's events to rank 0 and have rank 0 write them to `path`
 * in the format above. Collective over comm: every rank must call it (a rank
 * may pass tl == NULL, meaning no events) and every rank returns the same
 * status. Clocks are aligned at an MPI_Barrier inside the call: each rank's
 * times are shifted by (rank 0's clock - its own clock) read right after the
 * barrier. Rank 0 failing to create or write the file returns TR_ERR_IO on
 * every rank, with a message naming the path. The timeline is not modified,
 * so it can be written again later (e.g. at every checkpoint). Assumes
 * ranks with the same binary layout of double and int64_t (records are sent
 * as bytes). */
tr_status tr_timeline_write(tr_timeline *tl, MPI_Comm comm, const char *path);

#ifdef __cplusplus
}
#endif
#endif
