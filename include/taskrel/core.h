/*
 * taskrel core: status codes, error-checking macros, rank-tagged logging,
 * parameter arenas and the counter-based RNG.
 *
 * Errors work like PETSc's: every library function that can fail returns a
 * tr_status. TR_CALL() propagates a failure and appends file:line:function to
 * the error trace; TR_CHECK() raises a new one with a message. The first
 * message raised is kept (tr_error_message()) so that the CLI can print the
 * user-facing cause. Only src/cli decides to exit; tr_status_exit_code() maps
 * a status to the process exit code (0 ok, 1 runtime, 2 usage/config/data,
 * 3 checkpointed for requeue).
 *
 * This header does not include MPI; MPI checks live in taskrel/comm.h.
 */
#ifndef TASKREL_CORE_H
#define TASKREL_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TR_OK = 0,
    TR_ERR_USAGE,    /* bad command line                         -> exit 2 */
    TR_ERR_CONFIG,   /* bad config key or value                  -> exit 2 */
    TR_ERR_DATA,     /* dataset missing, wrong shape, NaN, ...   -> exit 2 */
    TR_ERR_IO,       /* file system / HDF5 runtime failure       -> exit 1 */
    TR_ERR_MPI,      /* MPI call failed                          -> exit 1 */
    TR_ERR_LAPACK,   /* LAPACK/ScaLAPACK info != 0               -> exit 1 */
    TR_ERR_NUMERIC,  /* non-finite loss or gradient              -> exit 1 */
    TR_ERR_NOMEM,    /* allocation failed                        -> exit 1 */
    TR_ERR_INTERNAL, /* a bug: an internal invariant failed      -> exit 1 */
    TR_STOPPED,      /* stopped by a signal after a checkpoint   -> exit 3 */
    TR_STATUS_COUNT
} tr_status;

const char *tr_status_str(tr_status s);
int tr_status_exit_code(tr_status s);
/* 1 for statuses caused by the user's input (exit code 2). */
int tr_status_is_user_error(tr_status s);

/* Raise an error: records the message (first one wins until tr_error_clear())
 * and the location; returns s so it can be used as `return tr_error_set(...)`. */
tr_status tr_error_set(tr_status s, const char *file, int line, const char *func, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));
/* Append a propagation frame to the trace. */
void tr_error_trace(const char *file, int line, const char *func);
const char *tr_error_message(void); /* "" if none */
const char *tr_error_where(void);   /* trace: "file:line func <- file:line func ..." */
tr_status tr_error_status(void);
void tr_error_clear(void);

#define TR_CALL(expr)                                                                              \
    do {                                                                                           \
        tr_status tr_call_s_ = (expr);                                                             \
        if (tr_call_s_ != TR_OK) {                                                                 \
            tr_error_trace(__FILE__, __LINE__, __func__);                                          \
            return tr_call_s_;                                                                     \
        }                                                                                          \
    } while (0)

/* Raise `status` with a printf-style message unless cond holds. */
#define TR_CHECK(cond, status, ...)                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return tr_error_set((status), __FILE__, __LINE__, __func__, __VA_ARGS__);              \
    } while (0)

#define TR_RAISE(status, ...)                                                                      \
    return tr_error_set((status), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Internal invariant (a bug if it fails); kept in release builds. */
#define TR_ASSERT(cond)                                                                            \
    TR_CHECK(cond, TR_ERR_INTERNAL, "internal error: assertion '%s' failed", #cond)

/* HDF5: hid_t / herr_t results are negative on failure. */
#define TR_H5(expr)                                                                                \
    do {                                                                                           \
        if ((int64_t)(expr) < 0)                                                                   \
            return tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "HDF5 call failed: %s",   \
                                #expr);                                                            \
    } while (0)

/* LAPACK / ScaLAPACK: info < 0 is a bad argument (bug), > 0 a numerical failure. */
#define TR_LAPACK(info, what)                                                                      \
    do {                                                                                           \
        long long tr_info_ = (long long)(info);                                                    \
        if (tr_info_ < 0)                                                                          \
            return tr_error_set(TR_ERR_INTERNAL, __FILE__, __LINE__, __func__,                     \
                                "%s: argument %lld had an illegal value", (what), -tr_info_);      \
        if (tr_info_ > 0)                                                                          \
            return tr_error_set(TR_ERR_LAPACK, __FILE__, __LINE__, __func__,                       \
                                "%s failed to converge (info=%lld)", (what), tr_info_);            \
    } while (0)

/* ---- logging ------------------------------------------------------------ */

typedef enum { TR_LOG_ERROR = 0, TR_LOG_WARN, TR_LOG_INFO, TR_LOG_DEBUG } tr_log_level;

/* Set this process's rank for the "[rank N]" tag, and the level (env
 * TASKREL_LOG=error|warn|info|debug overrides). */
void tr_log_init(int rank, tr_log_level level);
void tr_log(tr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log only on rank 0. */
void tr_log0(tr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tr_log_rank(void);

/* ---- memory ------------------------------------------------------------- */

/* 64-byte aligned, zeroed allocation; NULL on failure. Free with tr_free. */
void *tr_calloc(size_t count, size_t size);
void tr_free(void *p);

/* Allocate into *out or raise TR_ERR_NOMEM naming `what`. */
#define TR_ALLOC(out, count, what)                                                                 \
    do {                                                                                           \
        (out) = tr_calloc((count), sizeof(*(out)));                                                \
        TR_CHECK((out) != NULL || (count) == 0, TR_ERR_NOMEM,                                      \
                 "out of memory allocating %s (%zu elements)", (what), (size_t)(count));           \
    } while (0)

/* ---- counter-based RNG (Philox4x32-10) ----------------------------------- */

/* Streams are keyed on (seed, purpose, index): the numbers drawn for one
 * purpose and index never depend on the number of ranks or the order of calls. */
typedef enum {
    TR_RNG_INIT = 1, /* parameter initialisation; index = tensor id */
    TR_RNG_SHUFFLE,  /* per-epoch permutations; index = epoch * 65536 + task */
    TR_RNG_DROPOUT,  /* dropout masks; index = step, sub-stream per sample id */
    TR_RNG_DATA,     /* dataset builders */
    TR_RNG_SPLIT,    /* dataset splits */
    TR_RNG_TEST,     /* tests */
    TR_RNG_PCGRAD    /* PCGrad's task orders; index = step * 65536 + task */
} tr_rng_purpose;

typedef struct {
    uint32_t key[2];
    uint32_t ctr[4]; /* ctr[0..1] = block counter, ctr[2..3] = index */
    uint32_t buf[4];
    int pos; /* next unused word in buf; 4 = empty */
    int has_spare;
    double spare; /* second Box-Muller draw */
} tr_rng;

void tr_rng_init(tr_rng *r, uint64_t seed, uint32_t purpose, uint64_t index);
uint32_t tr_rng_u32(tr_rng *r);
uint64_t tr_rng_u64(tr_rng *r);
double tr_rng_uniform(tr_rng *r);             /* [0, 1) with 53 bits */
double tr_rng_normal(tr_rng *r);              /* N(0, 1) */
uint32_t tr_rng_below(tr_rng *r, uint32_t n); /* uniform in [0, n), unbiased */
/* Stateless: the k-th uniform of stream (seed, purpose, index). */
double tr_rng_uniform_at(uint64_t seed, uint32_t purpose, uint64_t index, uint64_t k);
/* Fisher-Yates permutation of 0..n-1 from stream (seed, purpose, index). */
void tr_rng_permutation(int32_t *perm, int32_t n, uint64_t seed, uint32_t purpose, uint64_t index);

/* ---- output paths ----------------------------------------------------------- */

/* A directory the user named (what: "run directory", ...): create it and its
 * parents and check that a file can be created in it. Otherwise TR_ERR_USAGE
 * (exit 2): "cannot create run directory DIR: <strerror>". This process only
 * (call it on one rank and agree). */
tr_status tr_path_make_dir(const char *dir, const char *what);
/* A file the user named as an output (what: "--out", "-o", ...): create its
 * parent directories and check that it can be opened for writing (without
 * truncating an existing file, and leaving no new file behind). Otherwise
 * TR_ERR_USAGE naming the path and the reason. This process only. */
tr_status tr_path_check_writable(const char *file, const char *what);

/* ---- time ----------------------------------------------------------------- */
double tr_time_now(void); /* monotonic seconds */

/* ---- BLAS ----------------------------------------------------------------- */
/* The BLAS library's description of itself: OpenBLAS's openblas_get_config()
 * (version, build options and the kernel set in use), "" for another BLAS. */
const char *tr_blas_config(void);
/* 1 and a message in buf when OpenBLAS runs kernels without AVX2 on a CPU
 * that has AVX2 and FMA (it did not recognise the CPU): the message names the
 * OPENBLAS_CORETYPE to set. 0 and "" otherwise, and with another BLAS. */
int tr_blas_kernel_advice(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
