/*
 * Per-rank phase timeline and its Chrome-trace writer (see taskrel/timeline.h).
 *
 * Recording fills a fixed ring of (name pointer, t0, t1, step). Writing packs
 * the ring into fixed 32-byte records whose name is a byte offset into a
 * per-rank table of the distinct names, gathers records and tables to rank 0
 * (two MPI_Gatherv), shifts each rank onto rank 0's clock and prints JSON, one
 * event per line. This file knows nothing about what the phases are; the
 * trainer chooses the names.
 */
#include "taskrel/timeline.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/comm.h"

typedef struct {
    const char *name;
    double t0, t1;
    int64_t step;
} event;

struct tr_timeline {
    event *ev; /* (capacity) ring; event k (0-based, in add order) is ev[k % capacity] */
    int capacity;
    int64_t added; /* events ever added */
};

/* What one event looks like on the wire: sent as bytes, so ranks must share
 * the layout of double and int64_t (true of every cluster taskrel runs on). */
typedef struct {
    double t0, t1;
    int64_t step;
    int32_t name; /* byte offset into the sending rank's name table */
    int32_t pad;
} wire_rec;
_Static_assert(sizeof(wire_rec) == 32, "wire_rec must have no hidden padding");

/* Per rank, gathered to rank 0: clock at the barrier, records, table bytes, dropped. */
enum { HDR_CLOCK, HDR_NREC, HDR_NSTR, HDR_DROPPED, HDR_LEN };

typedef struct {
    /* every rank */
    wire_rec *send; /* (nsend) */
    int nsend;
    char *strtab; /* (nstr) NUL-terminated names back to back */
    int nstr;
    const char **uniq; /* (nuniq) distinct names, while packing */
    int *uniq_off;     /* (nuniq) their offsets in strtab */
    int nuniq;
    int64_t dropped;
    MPI_Datatype rec_type;
    /* rank 0 */
    double *hdr;          /* (P, HDR_LEN) */
    wire_rec *recv;       /* (sum of rcount) */
    int *rcount, *rdispl; /* (P) in records */
    char *rstr;           /* (sum of scount) */
    int *scount, *sdispl; /* (P) in bytes */
} write_ctx;

tr_status tr_timeline_create(tr_timeline **tl, int capacity) {
    *tl = NULL;
    TR_CHECK(capacity >= 1, TR_ERR_CONFIG, "timeline capacity must be >= 1 (got %d)", capacity);
    tr_timeline *t = tr_calloc(1, sizeof(*t));
    TR_CHECK(t != NULL, TR_ERR_NOMEM, "out of memory allocating the timeline");
    t->ev = tr_calloc((size_t)capacity, sizeof(*t->ev));
    if (t->ev == NULL) {
        tr_free(t);
        TR_RAISE(TR_ERR_NOMEM, "out of memory allocating a timeline of %d events", capacity);
    }
    t->capacity = capacity;
    *tl = t;
    return TR_OK;
}

void tr_timeline_free(tr_timeline *tl) {
    if (tl == NULL)
        return;
    tr_free(tl->ev);
    tr_free(tl);
}

void tr_timeline_add(tr_timeline *tl, const char *name, double t0, double t1, int64_t step) {
    if (tl == NULL)
        return;
    event *e = &tl->ev[tl->added % tl->capacity];
    e->name = name;
    e->t0 = t0;
    e->t1 = t1;
    e->step = step;
    tl->added++;
}

int tr_timeline_count(const tr_timeline *tl) {
    if (tl == NULL)
        return 0;
    return tl->added < tl->capacity ? (int)tl->added : tl->capacity;
}

int64_t tr_timeline_dropped(const tr_timeline *tl) {
    return tl == NULL ? 0 : tl->added - tr_timeline_count(tl);
}

/* ---- packing (every rank) ------------------------------------------------- */

/* Offset of `name` in the table being built, adding it if new. Few distinct
 * names (one per phase), so a linear search over them is the cheap option. */
static tr_status name_offset(write_ctx *c, const char *name, int *off) {
    for (int i = 0; i < c->nuniq; i++)
        if (c->uniq[i] == name || strcmp(c->uniq[i], name) == 0) {
            *off = c->uniq_off[i];
            return TR_OK;
        }
    size_t len = strlen(name) + 1;
    TR_CHECK(len <= (size_t)(INT_MAX - c->nstr), TR_ERR_NOMEM, "timeline names exceed 2 GiB");
    c->uniq[c->nuniq] = name;
    c->uniq_off[c->nuniq++] = *off = c->nstr;
    c->nstr += (int)len;
    return TR_OK;
}

static tr_status pack_local(write_ctx *c, const tr_timeline *tl) {
    int n = tr_timeline_count(tl);
    c->dropped = tr_timeline_dropped(tl);
    TR_ALLOC(c->send, (size_t)n, "packed timeline events");
    TR_ALLOC(c->uniq, (size_t)n, "timeline name list");
    TR_ALLOC(c->uniq_off, (size_t)n, "timeline name offsets");
    int64_t first = tl != NULL ? tl->added - n : 0; /* oldest kept, in add order */
    for (int i = 0; i < n; i++) {
        const event *e = &tl->ev[(first + i) % tl->capacity];
        if (!isfinite(e->t0) || !isfinite(e->t1)) {
            c->dropped++; /* JSON has no NaN, and an event without a time shows nothing */
            continue;
        }
        int off = 0;
        TR_CALL(name_offset(c, e->name ? e->name : "(null)", &off));
        c->send[c->nsend++] = (wire_rec){.t0 = e->t0, .t1 = e->t1, .step = e->step, .name = off};
    }
    TR_ALLOC(c->strtab, (size_t)c->nstr, "timeline names");
    for (int i = 0; i < c->nuniq; i++)
        memcpy(c->strtab + c->uniq_off[i], c->uniq[i], strlen(c->uniq[i]) + 1);
    return TR_OK;
}

/* ---- rank 0 --------------------------------------------------------------- */

static tr_status alloc_root(write_ctx *c, int P) {
    TR_ALLOC(c->rcount, P, "timeline receive counts");
    TR_ALLOC(c->rdispl, P, "timeline receive offsets");
    TR_ALLOC(c->scount, P, "timeline name counts");
    TR_ALLOC(c->sdispl, P, "timeline name offsets");
    int64_t nrec = 0, nstr = 0;
    for (int r = 0; r < P; r++) {
        c->rcount[r] = (int)c->hdr[r * HDR_LEN + HDR_NREC];
        c->scount[r] = (int)c->hdr[r * HDR_LEN + HDR_NSTR];
        c->rdispl[r] = (int)nrec;
        c->sdispl[r] = (int)nstr;
        nrec += c->rcount[r];
        nstr += c->scount[r];
        TR_CHECK(nrec <= INT_MAX && nstr <= INT_MAX, TR_ERR_NOMEM,
                 "timeline too large to gather (%lld events so far); lower its capacity",
                 (long long)nrec);
    }
    TR_ALLOC(c->recv, (size_t)nrec, "gathered timeline events");
    TR_ALLOC(c->rstr, (size_t)nstr, "gathered timeline names");
    return TR_OK;
}

/* Start time ascending; on ties the longer (enclosing) event first. */
static int cmp_rec(const void *pa, const void *pb) {
    const wire_rec *a = pa, *b = pb;
    if (a->t0 != b->t0)
        return a->t0 < b->t0 ? -1 : 1;
    double da = a->t1 - a->t0, db = b->t1 - b->t0;
    if (da != db)
        return da > db ? -1 : 1;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    return (a->name > b->name) - (a->name < b->name);
}

static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_events(FILE *f, const write_ctx *c, int P) {
    fputs("{\"traceEvents\":[\n", f);
    fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"args\":{\"name\":\"taskrel\"}}", f);
    for (int r = 0; r < P; r++) {
        fprintf(f,
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":%d,"
                "\"args\":{\"name\":\"rank %d\"}}",
                r, r);
        fprintf(f,
                ",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":0,\"tid\":%d,"
                "\"args\":{\"sort_index\":%d}}",
                r, r);
    }
    /* Each rank's times shifted onto rank 0's clock, then made relative to the
     * earliest start, so ts >= 0 (the earliest is exactly 0). */
    double tmin = INFINITY;
    for (int r = 0; r < P; r++) {
        double shift = c->hdr[HDR_CLOCK] - c->hdr[r * HDR_LEN + HDR_CLOCK];
        for (int i = 0; i < c->rcount[r]; i++)
            tmin = fmin(tmin, c->recv[c->rdispl[r] + i].t0 + shift);
    }
    for (int r = 0; r < P; r++) {
        double shift = c->hdr[HDR_CLOCK] - c->hdr[r * HDR_LEN + HDR_CLOCK];
        const char *names = c->rstr + c->sdispl[r];
        for (int i = 0; i < c->rcount[r]; i++) {
            const wire_rec *e = &c->recv[c->rdispl[r] + i];
            double ts = (e->t0 + shift - tmin) * 1e6;
            double dur = fmax(0.0, (e->t1 - e->t0) * 1e6);
            fputs(",\n{\"name\":", f);
            put_json_string(f, names + e->name);
            fprintf(f, ",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":0,\"tid\":%d", ts, dur, r);
            if (e->step >= 0)
                fprintf(f, ",\"args\":{\"step\":%lld}", (long long)e->step);
            fputc('}', f);
        }
    }
    int64_t dropped = 0;
    for (int r = 0; r < P; r++)
        dropped += (int64_t)c->hdr[r * HDR_LEN + HDR_DROPPED];
    fprintf(f,
            "\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":{\"ranks\":%d,"
            "\"dropped_events\":%lld,\"dropped_per_rank\":[",
            P, (long long)dropped);
    for (int r = 0; r < P; r++)
        fprintf(f, "%s%lld", r ? "," : "", (long long)c->hdr[r * HDR_LEN + HDR_DROPPED]);
    fputs("]}}\n", f);
}

static tr_status write_root(write_ctx *c, int P, const char *path) {
    TR_CHECK(path != NULL, TR_ERR_INTERNAL, "tr_timeline_write: path is NULL on rank 0");
    /* Offsets come from another rank: check them before printing names. */
    for (int r = 0; r < P; r++) {
        TR_ASSERT(c->rcount[r] == 0 ||
                  (c->scount[r] > 0 && c->rstr[c->sdispl[r] + c->scount[r] - 1] == '\0'));
        for (int i = 0; i < c->rcount[r]; i++)
            TR_ASSERT(c->recv[c->rdispl[r] + i].name >= 0 &&
                      c->recv[c->rdispl[r] + i].name < c->scount[r]);
        qsort(c->recv + c->rdispl[r], (size_t)c->rcount[r], sizeof(*c->recv), cmp_rec);
    }
    FILE *f = fopen(path, "w");
    TR_CHECK(f != NULL, TR_ERR_IO, "cannot open timeline file '%s' for writing: %s", path,
             strerror(errno));
    put_events(f, c, P);
    int bad = ferror(f);
    int err = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    TR_CHECK(!bad, TR_ERR_IO, "error writing timeline file '%s': %s", path, strerror(err));
    return TR_OK;
}

/* ---- the collective ------------------------------------------------------- */

/* Every rank returns the same status: the largest any rank had. A rank that
 * did not fail raises it with a message naming the file. */
static tr_status agree(MPI_Comm comm, tr_status local, const char *path) {
    int mine = (int)local, worst = (int)local;
    TR_MPI(MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, comm));
    if (worst == TR_OK)
        return TR_OK;
    if (local == TR_OK)
        TR_RAISE((tr_status)worst, "writing timeline '%s': another rank failed (%s)",
                 path ? path : "(null)", tr_status_str((tr_status)worst));
    tr_error_trace(__FILE__, __LINE__, __func__);
    return (tr_status)worst;
}

static tr_status write_collective(write_ctx *c, tr_timeline *tl, MPI_Comm comm, const char *path) {
    int rank, P;
    TR_MPI(MPI_Comm_rank(comm, &rank));
    TR_MPI(MPI_Comm_size(comm, &P));
    TR_CALL(agree(comm, pack_local(c, tl), path));

    double hdr[HDR_LEN];
    TR_MPI(MPI_Barrier(comm));
    hdr[HDR_CLOCK] = tr_time_now(); /* first thing after the barrier: the common instant */
    hdr[HDR_NREC] = c->nsend;
    hdr[HDR_NSTR] = c->nstr;
    hdr[HDR_DROPPED] = (double)c->dropped;

    tr_status st = TR_OK;
    if (rank == 0) {
        c->hdr = tr_calloc((size_t)P * HDR_LEN, sizeof(*c->hdr));
        if (c->hdr == NULL)
            st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__,
                              "out of memory gathering the timeline");
    }
    TR_CALL(agree(comm, st, path));
    TR_MPI(MPI_Gather(hdr, HDR_LEN, MPI_DOUBLE, c->hdr, HDR_LEN, MPI_DOUBLE, 0, comm));
    if (rank == 0)
        st = alloc_root(c, P);
    TR_CALL(agree(comm, st, path));

    TR_MPI(MPI_Type_contiguous((int)sizeof(wire_rec), MPI_BYTE, &c->rec_type));
    TR_MPI(MPI_Type_commit(&c->rec_type));
    TR_MPI(MPI_Gatherv(c->send, c->nsend, c->rec_type, c->recv, c->rcount, c->rdispl, c->rec_type,
                       0, comm));
    TR_MPI(MPI_Gatherv(c->strtab, c->nstr, MPI_CHAR, c->rstr, c->scount, c->sdispl, MPI_CHAR, 0,
                       comm));
    if (rank == 0)
        st = write_root(c, P, path);
    TR_CALL(agree(comm, st, path));
    return TR_OK;
}

tr_status tr_timeline_write(tr_timeline *tl, MPI_Comm comm, const char *path) {
    write_ctx c = {.rec_type = MPI_DATATYPE_NULL};
    tr_status st = write_collective(&c, tl, comm, path);
    if (c.rec_type != MPI_DATATYPE_NULL)
        MPI_Type_free(&c.rec_type);
    tr_free(c.send);
    tr_free(c.strtab);
    tr_free(c.uniq);
    tr_free(c.uniq_off);
    tr_free(c.hdr);
    tr_free(c.recv);
    tr_free(c.rcount);
    tr_free(c.rdispl);
    tr_free(c.rstr);
    tr_free(c.scount);
    tr_free(c.sdispl);
    if (st != TR_OK)
        tr_error_trace(__FILE__, __LINE__, __func__);
    return st;
}
