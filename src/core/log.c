/*
 * Rank-tagged logging to stderr: "[taskrel r0] message". Level from
 * tr_log_init() or the TASKREL_LOG environment variable. Also the monotonic
 * clock and aligned allocation used everywhere.
 */
#include "taskrel/core.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0;
static tr_log_level g_level = TR_LOG_INFO;

void tr_log_init(int rank, tr_log_level level) {
    g_rank = rank;
    g_level = level;
    const char *env = getenv("TASKREL_LOG");
    if (env) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        for (int i = 0; i < 4; i++)
            if (strcmp(env, names[i]) == 0)
                g_level = (tr_log_level)i;
    }
}

int tr_log_rank(void) {
    return g_rank;
}

static void vlog(tr_log_level level, const char *fmt, va_list ap) {
    static const char *const tags[] = {"error: ", "warning: ", "", ""};
    char buf[2048];
    int n = snprintf(buf, sizeof(buf), "[taskrel r%d] %s", g_rank, tags[level]);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", buf);
    fflush(stderr);
}

void tr_log(tr_log_level level, const char *fmt, ...) {
    if (level > g_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void tr_log0(tr_log_level level, const char *fmt, ...) {
    if (level > g_level || g_rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void *tr_calloc(size_t count, size_t size) {
    if (count == 0 || size == 0)
        return NULL;
    if (count > SIZE_MAX / size)
        return NULL;
    size_t bytes = count * size;
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void tr_free(void *p) {
    free(p);
}

double tr_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
