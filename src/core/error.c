/*
 * Status codes and the error record behind TR_CHECK/TR_CALL. One record per
 * process: the first raised message is kept until tr_error_clear(), frames are
 * appended as the error propagates. Not thread-safe (taskrel ranks are
 * single-threaded; BLAS threads never raise).
 */
#include "taskrel/core.h"

#include <stdarg.h>
#include <string.h>

static struct {
    tr_status status;
    char message[1024];
    char where[1024];
} g_err;

static const char *const k_status_names[TR_STATUS_COUNT] = {
    [TR_OK] = "ok",
    [TR_ERR_USAGE] = "usage error",
    [TR_ERR_CONFIG] = "config error",
    [TR_ERR_DATA] = "data error",
    [TR_ERR_IO] = "I/O error",
    [TR_ERR_MPI] = "MPI error",
    [TR_ERR_LAPACK] = "linear algebra error",
    [TR_ERR_NUMERIC] = "numerical error",
    [TR_ERR_NOMEM] = "out of memory",
    [TR_ERR_INTERNAL] = "internal error",
    [TR_STOPPED] = "stopped after checkpoint",
};

const char *tr_status_str(tr_status s) {
    if ((int)s < 0 || s >= TR_STATUS_COUNT)
        return "unknown status";
    return k_status_names[s];
}

int tr_status_is_user_error(tr_status s) {
    return s == TR_ERR_USAGE || s == TR_ERR_CONFIG || s == TR_ERR_DATA;
}

int tr_status_exit_code(tr_status s) {
    if (s == TR_OK)
        return 0;
    if (tr_status_is_user_error(s))
        return 2;
    if (s == TR_STOPPED)
        return 3;
    return 1;
}

static void append_frame(const char *file, int line, const char *func) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t used = strlen(g_err.where);
    if (used + 8 >= sizeof(g_err.where))
        return;
    snprintf(g_err.where + used, sizeof(g_err.where) - used, "%s%s:%d %s()", used ? " <- " : "",
             base, line, func);
}

tr_status tr_error_set(tr_status s, const char *file, int line, const char *func, const char *fmt,
                       ...) {
    if (g_err.status == TR_OK) {
        g_err.status = s;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_err.message, sizeof(g_err.message), fmt, ap);
        va_end(ap);
        g_err.where[0] = '\0';
        append_frame(file, line, func);
    }
    return s;
}

void tr_error_trace(const char *file, int line, const char *func) {
    if (g_err.status != TR_OK)
        append_frame(file, line, func);
}

const char *tr_error_message(void) {
    return g_err.message;
}
const char *tr_error_where(void) {
    return g_err.where;
}
tr_status tr_error_status(void) {
    return g_err.status;
}

void tr_error_clear(void) {
    g_err.status = TR_OK;
    g_err.message[0] = '\0';
    g_err.where[0] = '\0';
}
