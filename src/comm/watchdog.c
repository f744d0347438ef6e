/*
 * The stall watchdog (see taskrel/comm.h): every counted collective and the
 * status agreement are started non-blocking and waited for here. One that has
 * not completed after dist.stall_timeout seconds is a stall (a rank or a
 * node is gone, or a link is down): this rank asks every other rank where it
 * is (a probe message on a private communicator; ranks that wait in a
 * collective answer it from their own wait loop), waits a short grace for
 * the answers, reports the step, the collective and the ranks (with their
 * hosts) that did not answer, and leaves with exit code TR_EXIT_STALL at once
 * — no MPI_Finalize, which would wait for the lost ranks. The launcher
 * (srun --kill-on-bad-exit, mpirun) then ends the others.
 * A peer that fails outright (an MPI error in the wait: a killed node) is
 * reported the same way at once. A backstop thread (no MPI calls) ends the
 * process with the same code if the wait itself is stuck inside MPI past the
 * timeout plus the grace.
 * With the timeout 0 the collectives are the blocking MPI calls.
 * Not here: what the collectives carry (grid.c).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskrel/comm.h"

#define WD_HOST 64
enum { TAG_PROBE = 7101, TAG_ANSWER = 7102 };

/* What a rank tells a prober: where it is. */
typedef struct {
    int64_t step, seq;
    int waiting; /* 1: inside a watched collective */
    char what[32];
} wd_state;

static struct {
    double timeout;
    MPI_Comm comm; /* private duplicate of world for probes */
    int rank, size;
    char (*hosts)[WD_HOST];
    int64_t step, seq;
    const char *what;
    int answered_probes;
    volatile double deadline; /* backstop: 0, or the time after which to leave */
    int thread_started;
} g_wd = {.comm = MPI_COMM_NULL};

static void *backstop(void *arg) {
    (void)arg;
    for (;;) {
        usleep(200000);
        double d = g_wd.deadline;
        if (d > 0 && tr_time_now() > d) {
            fprintf(stderr,
                    "[taskrel r%d] error: stall: step %lld, collective %s stuck inside MPI past "
                    "dist.stall_timeout = %g s; leaving with exit code %d\n",
                    g_wd.rank, (long long)g_wd.step, g_wd.what ? g_wd.what : "?", g_wd.timeout,
                    TR_EXIT_STALL);
            fflush(stderr);
            _exit(TR_EXIT_STALL);
        }
    }
    return NULL;
}

tr_status tr_watchdog_start(MPI_Comm world, double timeout_s) {
    tr_watchdog_stop();
    g_wd.timeout = timeout_s;
    TR_MPI(MPI_Comm_rank(world, &g_wd.rank));
    TR_MPI(MPI_Comm_size(world, &g_wd.size));
    if (timeout_s <= 0)
        return TR_OK;
    TR_MPI(MPI_Comm_dup(world, &g_wd.comm));
    TR_MPI(MPI_Comm_set_errhandler(g_wd.comm, MPI_ERRORS_RETURN));
    TR_ALLOC(g_wd.hosts, (size_t)g_wd.size, "host names");
    char me[WD_HOST] = {0};
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (MPI_Get_processor_name(name, &len) == MPI_SUCCESS)
        snprintf(me, sizeof(me), "%.*s", len, name);
    TR_MPI(MPI_Allgather(me, WD_HOST, MPI_CHAR, g_wd.hosts, WD_HOST, MPI_CHAR, g_wd.comm));
    if (!g_wd.thread_started) {
        pthread_t th;
        if (pthread_create(&th, NULL, backstop, NULL) == 0) {
            pthread_detach(th);
            g_wd.thread_started = 1;
        }
    }
    return TR_OK;
}

void tr_watchdog_stop(void) {
    if (g_wd.comm != MPI_COMM_NULL && g_wd.comm != 0)
        MPI_Comm_free(&g_wd.comm);
    g_wd.comm = MPI_COMM_NULL;
    tr_free(g_wd.hosts);
    g_wd.hosts = NULL;
    g_wd.timeout = 0;
    g_wd.deadline = 0;
}

double tr_watchdog_timeout(void) {
    return g_wd.timeout;
}

void tr_watchdog_set_step(int64_t step) {
    g_wd.step = step;
}

static void my_state(wd_state *s, int waiting) {
    memset(s, 0, sizeof(*s));
    s->step = g_wd.step;
    s->seq = g_wd.seq;
    s->waiting = waiting;
    snprintf(s->what, sizeof(s->what), "%s", g_wd.what ? g_wd.what : "");
}

/* Answer every probe that has arrived (non-blocking). */
static void answer_probes(void) {
    for (;;) {
        int flag = 0;
        MPI_Status stt;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_PROBE, g_wd.comm, &flag, &stt) != MPI_SUCCESS || !flag)
            return;
        static wd_state out; /* outlives the send; the same content for every prober */
        wd_state in;
        if (MPI_Recv(&in, (int)sizeof(in), MPI_BYTE, stt.MPI_SOURCE, TAG_PROBE, g_wd.comm,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return;
        my_state(&out, 1);
        MPI_Request r;
        if (MPI_Isend(&out, (int)sizeof(out), MPI_BYTE, stt.MPI_SOURCE, TAG_ANSWER, g_wd.comm,
                      &r) == MPI_SUCCESS)
            MPI_Request_free(&r);
        g_wd.answered_probes++;
    }
}

/* Append "a-b (host)" runs of the ranks with flag[i] == want to buf. */
static void list_ranks(char *buf, size_t cap, const char *flag, char want) {
    size_t used = strlen(buf);
    int n = 0;
    for (int i = 0; i < g_wd.size && used + 80 < cap; i++) {
        if (flag[i] != want)
            continue;
        int j = i;
        while (j + 1 < g_wd.size && flag[j + 1] == want &&
               strcmp(g_wd.hosts[j + 1], g_wd.hosts[i]) == 0)
            j++;
        used += (size_t)snprintf(buf + used, cap - used, "%s%d%s%.0d (%s)", n++ ? ", " : "", i,
                                 j > i ? "-" : "", j > i ? j : 0, g_wd.hosts[i]);
        i = j;
    }
    if (!n)
        snprintf(buf + used, cap - used, "none");
}

/* The stall: probe, report, leave. Does not return. why: NULL (timeout) or
 * the MPI error of the wait. */
static void stall(double waited, const char *why) {
    const int P = g_wd.size;
    char *flag = calloc((size_t)P, 1); /* 0 no answer, 1 waiting in the same, 2 elsewhere */
    wd_state *st = calloc((size_t)P, sizeof(wd_state));
    wd_state mine;
    my_state(&mine, 1);
    if (flag && st) {
        flag[g_wd.rank] = 1;
        for (int j = 0; j < P; j++) {
            MPI_Request r;
            if (j != g_wd.rank && MPI_Isend(&mine, (int)sizeof(mine), MPI_BYTE, j, TAG_PROBE,
                                            g_wd.comm, &r) == MPI_SUCCESS)
                MPI_Request_free(&r);
        }
        double grace = g_wd.timeout / 10;
        grace = grace < 1 ? 1 : grace > 5 ? 5 : grace;
        double t0 = tr_time_now();
        int heard = 1;
        while (heard < P && tr_time_now() - t0 < grace) {
            answer_probes();
            int f = 0;
            MPI_Status stt;
            if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_ANSWER, g_wd.comm, &f, &stt) == MPI_SUCCESS && f) {
                wd_state a;
                if (MPI_Recv(&a, (int)sizeof(a), MPI_BYTE, stt.MPI_SOURCE, TAG_ANSWER, g_wd.comm,
                             MPI_STATUS_IGNORE) == MPI_SUCCESS &&
                    !flag[stt.MPI_SOURCE]) {
                    st[stt.MPI_SOURCE] = a;
                    flag[stt.MPI_SOURCE] = a.seq == mine.seq ? 1 : 2;
                    heard++;
                }
            } else {
                usleep(1000);
            }
        }
    }
    g_wd.deadline = tr_time_now() + 30; /* the probes must not hang either */
    char missing[1024] = "", waiting[1024] = "";
    if (flag) {
        list_ranks(missing, sizeof(missing), flag, 0);
        list_ranks(waiting, sizeof(waiting), flag, 1);
    }
    char how[320];
    if (why)
        snprintf(how, sizeof(how), "failed after %.1f s (%s)", waited, why);
    else
        snprintf(how, sizeof(how), "did not complete in %.1f s (dist.stall_timeout = %g)", waited,
                 g_wd.timeout);
    tr_log(TR_LOG_ERROR,
           "stall: step %lld, collective %s (#%lld) %s; ranks that did not answer: %s; "
           "waiting in it: %s; leaving with exit code %d",
           (long long)mine.step, mine.what, (long long)mine.seq, how, missing, waiting,
           TR_EXIT_STALL);
    for (int j = 0; flag && st && j < P; j++)
        if (flag[j] == 2)
            tr_log(TR_LOG_ERROR, "stall: rank %d (%s) is at step %lld, %s (#%lld)", j,
                   g_wd.hosts[j], (long long)st[j].step, st[j].waiting ? st[j].what : "computing",
                   (long long)st[j].seq);
    /* A machine-readable line for job scripts (TASKREL_STALL_REPORT): this
     * rank's host and the hosts it did not hear from. */
    const char *path = getenv("TASKREL_STALL_REPORT");
    if (path && *path && flag) {
        char line[2048];
        size_t n =
            (size_t)snprintf(line, sizeof(line),
                             "reporter=%s rank=%d step=%lld "
                             "collective=%s missing=",
                             g_wd.hosts[g_wd.rank], g_wd.rank, (long long)mine.step, mine.what);
        int k = 0;
        for (int j = 0; j < P && n + WD_HOST + 2 < sizeof(line); j++) {
            int seen = flag[j] != 0;
            for (int i = 0; i < j && !seen; i++)
                seen = !flag[i] && strcmp(g_wd.hosts[i], g_wd.hosts[j]) == 0;
            if (seen)
                continue; /* each missing host once */
            n +=
                (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", k++ ? "," : "", g_wd.hosts[j]);
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\n");
        FILE *f = fopen(path, "a");
        if (f) {
            fwrite(line, 1, n < sizeof(line) ? n : sizeof(line) - 1, f);
            fclose(f);
        }
    }
    fflush(stdout);
    fflush(stderr);
    _exit(TR_EXIT_STALL);
}

tr_status tr_watchdog_failed(tr_status st, const char *what) {
    if (st != TR_OK && g_wd.timeout > 0) {
        g_wd.what = what;
        stall(0.0, tr_error_message());
    }
    return st;
}

static tr_status test_request(void *ctx, int *done) {
    int rc = MPI_Test((MPI_Request *)ctx, done, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS)
        return TR_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return tr_error_set(TR_ERR_MPI, __FILE__, __LINE__, __func__, "%s", msg);
}

tr_status tr_watchdog_wait(MPI_Request *req, const char *what) {
    if (g_wd.timeout <= 0) {
        TR_MPI(MPI_Wait(req, MPI_STATUS_IGNORE));
        return TR_OK;
    }
    return tr_watchdog_wait_fn(test_request, req, what);
}

tr_status tr_watchdog_wait_fn(tr_status (*test)(void *ctx, int *done), void *ctx,
                              const char *what) {
    if (g_wd.timeout <= 0) { /* no deadline: poll, yielding the core in a long wait */
        double t0 = tr_time_now();
        for (long spins = 0;; spins++) {
            int done = 0;
            TR_CALL(test(ctx, &done));
            if (done)
                return TR_OK;
            if ((spins & 255) == 255 && tr_time_now() - t0 > 1e-3)
                sched_yield();
        }
    }
    g_wd.seq++;
    g_wd.what = what;
    double t0 = tr_time_now(), next_probe_check = t0 + 0.05;
    double grace = g_wd.timeout / 10;
    g_wd.deadline = t0 + g_wd.timeout + (grace < 1 ? 1 : grace > 5 ? 5 : grace) + 10;
    for (long spins = 0;; spins++) {
        int done = 0;
        if (test(ctx, &done) != TR_OK) /* a peer failed outright: the same as a stall */
            stall(tr_time_now() - t0, tr_error_message());
        if (done)
            break;
        if ((spins & 255) != 255)
            continue;
        double now = tr_time_now();
        if (now >= next_probe_check) {
            answer_probes();
            next_probe_check = now + 0.05;
        }
        if (now - t0 > g_wd.timeout)
            stall(now - t0, NULL);
        if (now - t0 > 1e-3)
            sched_yield(); /* a long wait: let other processes of a shared core run */
    }
    g_wd.what = NULL;
    g_wd.deadline = 0;
    return TR_OK;
}
