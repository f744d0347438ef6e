/*
 * `taskrel calibrate`: measure the machine's MPI latency (alpha) and inverse
 * bandwidth (beta) and its per-core GEMM rate, the constants of the scaling
 * cost model (launch/scaling_model.py, docs/scaling.md).
 *
 *   ping-pong   rank 0 <-> rank 1, one-way time t(n) = alpha + n * beta
 *   all-reduce  MPI_Allreduce (sum, floats) over all P ranks, fitted to the
 *               ring model t(n) = 2(P-1) alpha + 2(P-1)/P * n * beta
 *   gemm        cblas_sgemm / cblas_dgemm of 512^3 on every rank at once
 *
 * Each size is timed per repetition and the median is kept (robust to the
 * other load of a shared machine). Fits are least squares on relative errors,
 * so small and large messages count alike. Rank 0 prints a table and writes
 * one JSON object (--out FILE, or stdout). Collective over MPI_COMM_WORLD;
 * needs at least 2 ranks. Not here: the model itself.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "taskrel/comm.h"

#define CAL_MAX_SIZES 32

static void calibrate_usage(FILE *f) {
    fprintf(f, "usage: taskrel calibrate [--out FILE] [--max-bytes N] [--reps N]\n"
               "  under mpirun -np P with P >= 2. Measures MPI ping-pong (ranks 0,1) and "
               "all-reduce over all ranks\n"
               "  for message sizes 8 B .. N (default 16777216), and the GEMM rate per rank;\n"
               "  writes alpha/beta fits as JSON to FILE (default: stdout). --reps: timed\n"
               "  repetitions per size (default: 200 for small messages down to 10 for large).\n");
}

tr_status tr_calib_fit(const double *n, const double *t, int m, double *alpha, double *beta) {
    /* minimise sum ((a + b n_i - t_i) / t_i)^2: weighted least squares, w = 1/t^2 */
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < m; i++) {
        TR_CHECK(t[i] > 0 && isfinite(t[i]), TR_ERR_INTERNAL, "calibrate: time %g is not > 0",
                 t[i]);
        double w = 1.0 / (t[i] * t[i]);
        sw += w;
        sx += w * n[i];
        sy += w * t[i];
        sxx += w * n[i] * n[i];
        sxy += w * n[i] * t[i];
    }
    double det = sw * sxx - sx * sx;
    TR_CHECK(m >= 2 && det > 0, TR_ERR_INTERNAL, "calibrate: need two distinct sizes to fit");
    *beta = (sw * sxy - sx * sy) / det;
    *alpha = (sy - *beta * sx) / sw;
    return TR_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int reps_for(size_t bytes, int fixed) {
    if (fixed > 0)
        return fixed;
    size_t r = ((size_t)64 << 20) / (bytes ? bytes : 1);
    return r < 10 ? 10 : r > 200 ? 200 : (int)r;
}

/* One-way ping-pong time between ranks 0 and 1 (the others wait). */
static tr_status time_pingpong(MPI_Comm w, int rank, char *buf, size_t bytes, int reps,
                               double *samples, double *out) {
    for (int k = -1; k < reps; k++) { /* k = -1: untimed warm-up */
        TR_MPI(MPI_Barrier(w));
        double t0 = tr_time_now();
        if (rank == 0) {
            TR_MPI(MPI_Send(buf, (int)bytes, MPI_BYTE, 1, 7, w));
            TR_MPI(MPI_Recv(buf, (int)bytes, MPI_BYTE, 1, 7, w, MPI_STATUS_IGNORE));
        } else if (rank == 1) {
            TR_MPI(MPI_Recv(buf, (int)bytes, MPI_BYTE, 0, 7, w, MPI_STATUS_IGNORE));
            TR_MPI(MPI_Send(buf, (int)bytes, MPI_BYTE, 0, 7, w));
        }
        if (k >= 0)
            samples[k] = 0.5 * (tr_time_now() - t0);
    }
    *out = median(samples, reps);
    TR_MPI(MPI_Bcast(out, 1, MPI_DOUBLE, 0, w));
    return TR_OK;
}

/* All-reduce time over world: the slowest rank's time of each repetition. */
static tr_status time_allreduce(MPI_Comm w, float *buf, size_t bytes, int reps, double *samples,
                                double *out) {
    for (int k = -1; k < reps; k++) {
        TR_MPI(MPI_Barrier(w));
        double t0 = tr_time_now();
        TR_MPI(
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)(bytes / sizeof(float)), MPI_FLOAT, MPI_SUM, w));
        double dt = tr_time_now() - t0;
        TR_MPI(MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, w));
        if (k >= 0)
            samples[k] = dt;
    }
    *out = median(samples, reps);
    return TR_OK;
}

/* GEMM rate (flop/s, multiply-add = 2) of this rank, all ranks at once; the
 * median of the ranks' best-of-3 is returned on every rank. */
static tr_status time_gemm(MPI_Comm w, int size, int dbl, double *out) {
    const int n = 512;
    void *a = calloc((size_t)3 * n * n, dbl ? sizeof(double) : sizeof(float));
    TR_CHECK(a != NULL, TR_ERR_NOMEM, "calibrate: out of memory for the GEMM test");
    for (size_t i = 0; i < (size_t)3 * n * n; i++) {
        if (dbl)
            ((double *)a)[i] = (double)(i % 7) * 0.125;
        else
            ((float *)a)[i] = (float)(i % 7) * 0.125f;
    }
    double best = 1e30;
    tr_status st = TR_OK;
    for (int k = 0; k < 4 && st == TR_OK; k++) {
        if (MPI_Barrier(w) != MPI_SUCCESS)
            st = tr_error_set(TR_ERR_MPI, __FILE__, __LINE__, __func__, "MPI_Barrier failed");
        double t0 = tr_time_now();
        if (dbl) {
            double *d = a;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, d, n,
                        d + (size_t)n * n, n, 0.0, d + (size_t)2 * n * n, n);
        } else {
            float *s = a;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, s, n,
                        s + (size_t)n * n, n, 0.0f, s + (size_t)2 * n * n, n);
        }
        double dt = tr_time_now() - t0;
        if (k > 0 && dt < best) /* k = 0 warms up */
            best = dt;
    }
    free(a);
    TR_CALL(st);
    double rate = 2.0 * n * n * (double)n / best;
    double *all = calloc((size_t)size, sizeof(double));
    TR_CHECK(all != NULL, TR_ERR_NOMEM, "calibrate: out of memory");
    int rc = MPI_Allgather(&rate, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, w);
    *out = rc == MPI_SUCCESS ? median(all, size) : 0.0;
    free(all);
    TR_MPI(rc);
    return TR_OK;
}

typedef struct {
    int m;
    double bytes[CAL_MAX_SIZES], pingpong[CAL_MAX_SIZES], allreduce[CAL_MAX_SIZES];
    double pp_alpha, pp_beta, ar_alpha, ar_beta, sgemm, dgemm;
    int size;
} calib;

static tr_status calib_write(const calib *c, FILE *f) {
    fprintf(f, "{\"ranks\":%d,\"pingpong\":{\"alpha_s\":%.6g,\"beta_s_per_byte\":%.6g},", c->size,
            c->pp_alpha, c->pp_beta);
    fprintf(f, "\"allreduce\":{\"alpha_s\":%.6g,\"beta_s_per_byte\":%.6g},", c->ar_alpha,
            c->ar_beta);
    fprintf(f, "\"sgemm_flops\":%.6g,\"dgemm_flops\":%.6g,\"samples\":[", c->sgemm, c->dgemm);
    for (int i = 0; i < c->m; i++)
        fprintf(f, "%s{\"bytes\":%.0f,\"pingpong_s\":%.6g,\"allreduce_s\":%.6g}", i ? "," : "",
                c->bytes[i], c->pingpong[i], c->allreduce[i]);
    fprintf(f, "]}\n");
    TR_CHECK(fflush(f) == 0 && !ferror(f), TR_ERR_IO, "calibrate: error writing the result");
    return TR_OK;
}

static tr_status calib_report(const calib *c, const char *out) {
    fprintf(stderr, "%12s %14s %14s\n", "bytes", "ping-pong us", "all-reduce us");
    for (int i = 0; i < c->m; i++)
        fprintf(stderr, "%12.0f %14.2f %14.2f\n", c->bytes[i], 1e6 * c->pingpong[i],
                1e6 * c->allreduce[i]);
    fprintf(stderr,
            "ping-pong:  alpha %.3g us, beta %.4g ns/B (%.2f GB/s)\n"
            "all-reduce: alpha %.3g us, beta %.4g ns/B (%.2f GB/s) on %d ranks (ring model)\n"
            "gemm (512^3, all ranks at once): sgemm %.1f GFLOP/s, dgemm %.1f GFLOP/s per rank\n",
            1e6 * c->pp_alpha, 1e9 * c->pp_beta, 1e-9 / c->pp_beta, 1e6 * c->ar_alpha,
            1e9 * c->ar_beta, 1e-9 / c->ar_beta, c->size, 1e-9 * c->sgemm, 1e-9 * c->dgemm);
    if (!out)
        return calib_write(c, stdout);
    FILE *f = fopen(out, "w");
    TR_CHECK(f != NULL, TR_ERR_IO, "calibrate: cannot write %s", out);
    tr_status st = calib_write(c, f);
    TR_CHECK(fclose(f) == 0 && st == TR_OK, TR_ERR_IO, "calibrate: error writing %s", out);
    return TR_OK;
}

static tr_status measure(calib *c, MPI_Comm w, int rank, size_t max_bytes, int fixed_reps) {
    char *buf = calloc(max_bytes, 1);
    double *samples = calloc(200 + (size_t)fixed_reps, sizeof(double));
    TR_CHECK(buf && samples, TR_ERR_NOMEM, "calibrate: out of memory (%zu bytes)", max_bytes);
    tr_status st = TR_OK;
    for (size_t b = 8; b <= max_bytes && c->m < CAL_MAX_SIZES && st == TR_OK; b *= 4) {
        int reps = reps_for(b, fixed_reps);
        c->bytes[c->m] = (double)b;
        st = time_pingpong(w, rank, buf, b, reps, samples, &c->pingpong[c->m]);
        if (st == TR_OK)
            st = time_allreduce(w, (float *)buf, b, reps, samples, &c->allreduce[c->m]);
        c->m++;
    }
    free(buf);
    free(samples);
    return st;
}

tr_status tr_cmd_calibrate(int argc, char **argv) {
    const char *out = NULL;
    long long max_bytes = 16 << 20, reps = 0;
    static const tr_cli_option opts[] = {
        {"out", 'o', 1, 'o'}, {"max-bytes", 0, 1, 'm'}, {"reps", 0, 1, 'r'}};
    tr_cli_args a;
    TR_CALL(tr_cli_parse(&a, "calibrate", opts, 3, argc, argv));
    tr_status pst = TR_OK;
    if (a.help) {
        if (tr_log_rank() == 0)
            calibrate_usage(stdout);
        pst = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__, "help shown");
    } else if (a.npos > 0) {
        pst = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                           "taskrel calibrate: unexpected argument '%s' (try --help)", a.pos[0]);
    }
    for (int i = 0; i < a.nopts && pst == TR_OK; i++) {
        const char *v = a.opts[i].value;
        if (a.opts[i].id == 'o')
            out = v;
        else if (a.opts[i].id == 'm')
            pst = tr_cli_int("calibrate", "--max-bytes", v, 64, 1LL << 30, &max_bytes);
        else
            pst = tr_cli_int("calibrate", "--reps", v, 1, 10000, &reps);
    }
    tr_cli_args_free(&a);
    TR_CALL(pst);
    MPI_Comm w = MPI_COMM_WORLD;
    calib c;
    memset(&c, 0, sizeof(c));
    int rank;
    TR_MPI(MPI_Comm_rank(w, &rank));
    TR_MPI(MPI_Comm_size(w, &c.size));
    TR_CHECK(c.size >= 2, TR_ERR_USAGE,
             "taskrel calibrate needs at least 2 ranks (mpirun -np 2 taskrel calibrate), got %d",
             c.size);
    tr_status st = measure(&c, w, rank, (size_t)max_bytes, (int)reps);
    st = tr_agree(w, st);
    TR_CALL(st);
    TR_CALL(time_gemm(w, c.size, 0, &c.sgemm));
    TR_CALL(time_gemm(w, c.size, 1, &c.dgemm));
    /* all-reduce: x = 2(P-1)/P n, intercept = 2(P-1) alpha */
    double x[CAL_MAX_SIZES];
    for (int i = 0; i < c.m; i++)
        x[i] = 2.0 * (c.size - 1) / c.size * c.bytes[i];
    TR_CALL(tr_calib_fit(c.bytes, c.pingpong, c.m, &c.pp_alpha, &c.pp_beta));
    TR_CALL(tr_calib_fit(x, c.allreduce, c.m, &c.ar_alpha, &c.ar_beta));
    c.ar_alpha /= 2.0 * (c.size - 1);
    st = rank == 0 ? calib_report(&c, out) : TR_OK;
    return tr_agree(w, st);
}
