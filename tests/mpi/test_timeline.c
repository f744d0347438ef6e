// mpi-ranks: 1 2 3
/*
 * The phase timeline's Chrome trace: every rank records events with known
 * start offsets, durations and steps (plus one real 2 ms busy-wait), rank 0
 * reads the JSON back (one event per line) and checks the event count per
 * rank, one thread_name per rank, per-rank order and relative starts,
 * durations to the printed precision, ts >= 0, dropped counts when the ring
 * overflows, name escaping, NULL timelines, and that an unwritable path gives
 * TR_ERR_IO on every rank instead of a hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi_test.h"
#include "taskrel/timeline.h"

/* Printed with three decimals (ns); the rest is double rounding on clocks of
 * ~1e6 s, so 5 ns is far below a microsecond and far above the noise. */
#define TOL_US 5e-3
#define MAX_RANKS 64

static int g_rank, g_size;
static char g_path[256];

typedef struct {
    char name[64]; /* raw JSON string contents (escapes kept) */
    double ts, dur;
    int tid;
    long long step; /* -1 if no args */
} parsed_event;

typedef struct {
    parsed_event ev[1024];
    int nev;
    int process_names;
    int thread_names[MAX_RANKS];
    int ranks;
    long long dropped;
    int bad_lines;
} parsed_trace;

static parsed_trace g_trace; /* rank 0 only */

static int field_num(const char *line, const char *key, double *out) {
    const char *p = strstr(line, key);
    if (p == NULL)
        return 0;
    char *end;
    *out = strtod(p + strlen(key), &end);
    return end != p + strlen(key);
}

static void parse_x_line(parsed_trace *t, const char *line) {
    parsed_event *e = &t->ev[t->nev];
    const char *b = strstr(line, "{\"name\":\"");
    const char *q = strstr(line, "\",\"ph\":\"X\"");
    double tid, step;
    if (t->nev >= 1024 || b == NULL || q == NULL || q - (b + 9) >= (long)sizeof(e->name) ||
        !field_num(line, "\"ts\":", &e->ts) || !field_num(line, "\"dur\":", &e->dur) ||
        !field_num(line, "\"tid\":", &tid)) {
        t->bad_lines++;
        return;
    }
    memcpy(e->name, b + 9, (size_t)(q - (b + 9)));
    e->name[q - (b + 9)] = '\0';
    e->tid = (int)tid;
    e->step = field_num(line, "\"args\":{\"step\":", &step) ? (long long)step : -1;
    t->nev++;
}

/* Just enough for the writer's own one-event-per-line output. */
static int parse_trace(const char *path, parsed_trace *t) {
    memset(t, 0, sizeof(*t));
    t->ranks = -1;
    t->dropped = -1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[1024];
    int first = 1;
    while (fgets(line, sizeof(line), f)) {
        double v;
        if (first && strncmp(line, "{\"traceEvents\":[", 16) != 0)
            t->bad_lines++;
        first = 0;
        if (strstr(line, "\"ph\":\"X\""))
            parse_x_line(t, line);
        else if (strstr(line, "{\"name\":\"process_name\",\"ph\":\"M\""))
            t->process_names++;
        else if (strstr(line, "{\"name\":\"thread_name\",\"ph\":\"M\"")) {
            if (field_num(line, "\"tid\":", &v) && v >= 0 && v < MAX_RANKS)
                t->thread_names[(int)v]++;
            else
                t->bad_lines++;
        }
        if (field_num(line, "\"ranks\":", &v))
            t->ranks = (int)v;
        if (field_num(line, "\"dropped_events\":", &v))
            t->dropped = (long long)v;
    }
    fclose(f);
    return 1;
}

/* Rank 0 writes and reads g_path; its verdict is agreed on over all ranks. */
static int check_common(const parsed_trace *t, int expect_x, long long expect_dropped) {
    int ok = t->bad_lines == 0 && t->process_names == 1 && t->ranks == g_size &&
             t->dropped == expect_dropped && t->nev == expect_x;
    for (int r = 0; r < MAX_RANKS; r++)
        ok = ok && t->thread_names[r] == (r < g_size ? 1 : 0);
    for (int i = 0; i < t->nev; i++)
        ok = ok && t->ev[i].tid >= 0 && t->ev[i].tid < g_size && t->ev[i].ts >= 0.0 &&
             t->ev[i].dur >= 0.0;
    if (!ok)
        fprintf(stderr, "trace: bad=%d proc=%d ranks=%d dropped=%lld (want %lld) X=%d (want %d)\n",
                t->bad_lines, t->process_names, t->ranks, t->dropped, expect_dropped, t->nev,
                expect_x);
    return ok;
}

/* Events of rank r in file order. */
static int rank_events(const parsed_trace *t, int r, const parsed_event **out, int max) {
    int n = 0;
    for (int i = 0; i < t->nev; i++)
        if (t->ev[i].tid == r && n < max)
            out[n++] = &t->ev[i];
    return n;
}

static const char *const k_names[4] = {"data", "forward", "backward", "optimizer"};

/* Synthetic event i of rank r: starts 10 ms apart, lasts 1000 + 250 i + 10 r us. */
static double synth_dur_us(int r, int i) {
    return 1000.0 + 250.0 * i + 10.0 * r;
}

static int check_gather_rank(const parsed_trace *t, int r) {
    int K = 4 + r;
    const parsed_event *e[64];
    int n = rank_events(t, r, e, 64), ok = n == K + 2;
    for (int i = 1; ok && i < n; i++)
        ok = e[i]->ts >= e[i - 1]->ts;
    /* busy (real 2 ms), then the enclosing "step" (same start as event 0, longer), then 0..K-1 */
    ok = ok && strcmp(e[0]->name, "busy") == 0 && e[0]->step == 7 && e[0]->dur >= 2000.0 &&
         e[0]->dur < 1e6;
    ok = ok && strcmp(e[1]->name, "step") == 0 && e[1]->step == 0 &&
         fabs(e[1]->dur - K * 1e4) < TOL_US;
    for (int i = 0; ok && i < K; i++) {
        const parsed_event *x = e[2 + i];
        ok = strcmp(x->name, k_names[i % 4]) == 0 && x->step == (i == K - 1 ? -1 : i) &&
             fabs(x->dur - synth_dur_us(r, i)) < TOL_US &&
             fabs((x->ts - e[2]->ts) - i * 1e4) < TOL_US && x->ts < 60e6;
    }
    if (!ok)
        fprintf(stderr, "rank %d: events differ from those recorded (%d in trace, %d recorded)\n",
                r, n, K + 2);
    return ok;
}

static void test_gather(void **state) {
    tr_timeline *tl;
    MPI_ASSERT(tr_timeline_create(&tl, 64) == TR_OK);
    double tb0 = tr_time_now(), tb1;
    while ((tb1 = tr_time_now()) - tb0 < 2e-3)
        ;
    tr_timeline_add(tl, "busy", tb0, tb1, 7);
    /* Added newest first and the enclosing event last: the writer must sort. */
    int K = 4 + g_rank;
    double base = tb1 + 1e-3;
    for (int i = K - 1; i >= 0; i--) {
        double t0 = base + i * 1e-2;
        tr_timeline_add(tl, k_names[i % 4], t0, t0 + synth_dur_us(g_rank, i) * 1e-6,
                        i == K - 1 ? -1 : i);
    }
    tr_timeline_add(tl, "step", base, base + K * 1e-2, 0);
    MPI_ASSERT(tr_timeline_count(tl) == K + 2 && tr_timeline_dropped(tl) == 0);

    tr_status st = tr_timeline_write(tl, MPI_COMM_WORLD, g_path);
    MPI_ASSERT(st == TR_OK);
    int ok = 1;
    if (g_rank == 0) {
        int expect = 0;
        for (int r = 0; r < g_size; r++)
            expect += 4 + r + 2;
        ok = parse_trace(g_path, &g_trace) && check_common(&g_trace, expect, 0);
        for (int r = 0; ok && r < g_size; r++)
            ok = check_gather_rank(&g_trace, r);
        unlink(g_path);
    }
    MPI_ASSERT(ok);
    tr_timeline_free(tl);
}

static void test_capacity_dropped(void **state) {
    tr_timeline *tl;
    MPI_ASSERT(tr_timeline_create(&tl, 3) == TR_OK);
    int n = 5 + g_rank;
    double base = tr_time_now();
    for (int i = 0; i < n; i++)
        tr_timeline_add(tl, i == n - 1 ? "say \"hi\"\\ now" : "phase", base + i * 1e-3,
                        base + i * 1e-3 + 5e-4, i);
    MPI_ASSERT(tr_timeline_count(tl) == 3 && tr_timeline_dropped(tl) == n - 3);

    MPI_ASSERT(tr_timeline_write(tl, MPI_COMM_WORLD, g_path) == TR_OK);
    int ok = 1;
    if (g_rank == 0) {
        long long dropped = 0;
        for (int r = 0; r < g_size; r++)
            dropped += 2 + r;
        ok = parse_trace(g_path, &g_trace) && check_common(&g_trace, 3 * g_size, dropped);
        for (int r = 0; ok && r < g_size; r++) {
            const parsed_event *e[8];
            ok = rank_events(&g_trace, r, e, 8) == 3;
            /* the newest three survive, in order, the last one escaped */
            for (int k = 0; ok && k < 3; k++)
                ok = e[k]->step == 2 + r + k && fabs(e[k]->dur - 500.0) < TOL_US &&
                     strcmp(e[k]->name, k == 2 ? "say \\\"hi\\\"\\\\ now" : "phase") == 0;
        }
        unlink(g_path);
    }
    MPI_ASSERT(ok);
    tr_timeline_free(tl);
}

static void test_unwritable_path(void **state) {
    const char *bad = "/nonexistent/dir/x.json";
    tr_timeline *tl;
    MPI_ASSERT(tr_timeline_create(&tl, 8) == TR_OK);
    tr_timeline_add(tl, "forward", 1.0, 2.0, 0);
    tr_error_clear();
    tr_status st = tr_timeline_write(tl, MPI_COMM_WORLD, bad);
    MPI_ASSERT(st == TR_ERR_IO);
    MPI_ASSERT(strstr(tr_error_message(), bad) != NULL);
    tr_error_clear();
    /* Nothing left half-done: the same timeline writes fine afterwards. */
    MPI_ASSERT(tr_timeline_write(tl, MPI_COMM_WORLD, g_path) == TR_OK);
    int ok = 1;
    if (g_rank == 0) {
        ok = parse_trace(g_path, &g_trace) && check_common(&g_trace, g_size, 0);
        unlink(g_path);
    }
    MPI_ASSERT(ok);
    tr_timeline_free(tl);
}

static void test_null_and_bad_events(void **state) {
    tr_timeline_add(NULL, "forward", 1.0, 2.0, 3);
    tr_timeline_free(NULL);
    MPI_ASSERT(tr_timeline_count(NULL) == 0 && tr_timeline_dropped(NULL) == 0);
    tr_timeline *tl = (tr_timeline *)&g_trace; /* must be reset to NULL on failure */
    MPI_ASSERT(tr_timeline_create(&tl, 0) == TR_ERR_CONFIG && tl == NULL);
    tr_error_clear();

    /* Even ranks record one good and one NaN event; odd ranks have no timeline. */
    if (g_rank % 2 == 0) {
        MPI_ASSERT(tr_timeline_create(&tl, 4) == TR_OK);
        tr_timeline_add(tl, "forward", 5.0, 5.001, 1);
        tr_timeline_add(tl, "nan", NAN, 6.0, 2);
    } else {
        MPI_ASSERT(1);
        tr_timeline_add(tl, "ignored", 5.0, 5.001, 1);
    }
    MPI_ASSERT(tr_timeline_write(tl, MPI_COMM_WORLD, g_path) == TR_OK);
    int ok = 1;
    if (g_rank == 0) {
        int even = (g_size + 1) / 2;
        ok = parse_trace(g_path, &g_trace) && check_common(&g_trace, even, even);
        for (int i = 0; ok && i < g_trace.nev; i++)
            ok = g_trace.ev[i].tid % 2 == 0 && strcmp(g_trace.ev[i].name, "forward") == 0 &&
                 fabs(g_trace.ev[i].dur - 1000.0) < TOL_US;
        unlink(g_path);
    }
    MPI_ASSERT(ok);
    tr_timeline_free(tl);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    tr_log_init(g_rank, TR_LOG_WARN);
    if (g_rank == 0)
        snprintf(g_path, sizeof(g_path), "/tmp/taskrel-timeline-%d.json", (int)getpid());
    MPI_Bcast(g_path, sizeof(g_path), MPI_CHAR, 0, MPI_COMM_WORLD);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_capacity_dropped),
        cmocka_unit_test(test_unwritable_path),
        cmocka_unit_test(test_null_and_bad_events),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return failed;
}
