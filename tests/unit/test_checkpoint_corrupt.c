/*
 * Damaged checkpoints are detected, never crash or hang the reader, and never
 * load wrong numbers silently:
 *  - truncated copies (empty, a few bytes, half, all but one byte) are CORRUPT
 *    with a reason that names the file;
 *  - a copy with one bit flipped, for bytes spread over the whole file, is
 *    either CORRUPT, or VALID and then either fails to load with a message
 *    naming the file (resume then falls back) or loads exactly the original
 *    values (the flip hit bytes nothing reads); the split is printed;
 *  - a file that is not a checkpoint, and one written for another model, are
 *    INCOMPATIBLE; tr_checkpoint_info summarises a good file.
 * One MPI process (singleton); validation runs in a forked child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "taskrel/checkpoint.h"

#define T 3

static char g_dir[256], g_good[300];
static tr_grid g_grid;
static tr_params g_p;
static float *g_m;
static double g_extra[4] = {1, 2, 3, 4}, g_window[T * 4];
static tr_extra_state g_ex = {.name = "/mran/alpha", .ndim = 2, .dims = {2, 2}};

static tr_ckpt_state state(tr_params *p, float *m, double *window, tr_extra_state *ex) {
    tr_ckpt_state s = {.params = p, .opt_m = m, .window = window, .extra = ex, .n_extra = 1};
    s.sc = (tr_ckpt_scalars){.step = 9,
                             .steps_per_epoch = 4,
                             .total_steps = 20,
                             .seed = 3,
                             .opt_t = 9,
                             .best_step = -1,
                             .best_score = NAN};
    return s;
}

static void make_params(tr_params *p, int64_t wide) {
    tr_params_init(p);
    int id;
    int64_t s1[2] = {wide, 16}, t1[2] = {16, 4};
    assert_int_equal(tr_params_add(p, &id, "trunk.w", TR_GROUP_TRUNK, 1, 2, s1, 0, 1, 0, 1), TR_OK);
    assert_int_equal(tr_params_add(p, &id, "head.w", TR_GROUP_HEAD, 1, 2, t1, 1, T, 0, T), TR_OK);
    assert_int_equal(tr_params_alloc(p), TR_OK);
}

static int setup(void **unused) {
    (void)unused;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/taskrel-ckptcorrupt-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror(g_dir);
        return 1;
    }
    snprintf(g_good, sizeof(g_good), "%s/ckpt-9.h5", g_dir);
    if (tr_grid_init(&g_grid, MPI_COMM_WORLD, T, 1, NULL) != TR_OK)
        return 1;
    make_params(&g_p, 24);
    g_m = calloc(g_p.total, sizeof(float));
    for (size_t i = 0; i < g_p.total; i++) {
        g_p.data[i] = (float)i * 0.5f - 3.0f;
        g_m[i] = (float)i * 0.125f;
    }
    for (int i = 0; i < T * 4; i++)
        g_window[i] = i;
    g_ex.data = g_extra;
    tr_ckpt_state s = state(&g_p, g_m, g_window, &g_ex);
    return tr_checkpoint_save(g_good, &s, &g_grid, NULL, NULL) != TR_OK;
}

static int teardown(void **unused) {
    (void)unused;
    tr_params_free(&g_p);
    free(g_m);
    tr_grid_free(&g_grid);
    if (getenv("TASKREL_KEEP_TMP")) /* debugging: keep the files */
        return 0;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) != 0;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        perror(path);
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f)
        perror(path);
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static tr_ckpt_verdict check(const char *path, char *why, size_t whyn) {
    tr_ckpt_state s = state(&g_p, g_m, g_window, &g_ex);
    return tr_checkpoint_validate(path, &s, why, whyn);
}

static void test_good_and_info(void **unused) {
    (void)unused;
    char why[512];
    assert_int_equal(check(g_good, why, sizeof(why)), TR_CKPT_VALID);
    tr_ckpt_info info;
    assert_int_equal(tr_checkpoint_info(g_good, &info), TR_OK);
    assert_int_equal(info.verdict, TR_CKPT_VALID);
    assert_string_equal(info.format, TR_CHECKPOINT_FORMAT);
    assert_int_equal(info.version, TR_CHECKPOINT_VERSION);
    assert_int_equal(info.sc.step, 9);
    assert_int_equal(info.epoch, 2);
    assert_int_equal(info.cursor, 1);
    assert_int_equal(info.world_size, 1);
    assert_int_equal(info.n_datasets, 6); /* params 2, optim/m 2, window, extra */
    int found = 0;
    for (int i = 0; i < info.n_datasets; i++)
        if (strcmp(info.datasets[i].path, "/params/head.w") == 0) {
            found = 1;
            assert_int_equal(info.datasets[i].ndim, 3);
            assert_int_equal(info.datasets[i].dims[0], T);
            assert_string_equal(info.datasets[i].type, "float32");
        }
    assert_true(found);
    tr_checkpoint_info_free(&info);
}

static void test_truncated(void **unused) {
    (void)unused;
    size_t n;
    unsigned char *b = slurp(g_good, &n);
    size_t cuts[] = {0, 7, 100, n / 2, n - 1};
    char path[400], why[512];
    snprintf(path, sizeof(path), "%s/truncated.h5", g_dir);
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        spit(path, b, cuts[i]);
        tr_ckpt_verdict v = check(path, why, sizeof(why));
        if (v != TR_CKPT_CORRUPT || !strstr(why, path))
            fprintf(stderr, "cut at %zu of %zu bytes: verdict %d, %s\n", cuts[i], n, (int)v, why);
        assert_int_equal(v, TR_CKPT_CORRUPT);
        assert_non_null(strstr(why, path));
    }
    free(b);
}

static void test_bit_flips(void **unused) {
    (void)unused;
    size_t n;
    unsigned char *b = slurp(g_good, &n);
    char path[400], why[512];
    snprintf(path, sizeof(path), "%s/flipped.h5", g_dir);
    int corrupt = 0, at_load = 0, harmless = 0, silent = 0, tried = 0;
    size_t stride = n / 400 > 0 ? n / 400 : 1;
    for (size_t off = 0; off < n; off += stride, tried++) {
        b[off] ^= (unsigned char)(1u << (off % 8));
        spit(path, b, n);
        b[off] ^= (unsigned char)(1u << (off % 8));
        tr_ckpt_verdict v = check(path, why, sizeof(why));
        if (v != TR_CKPT_VALID) {
            corrupt++;
            if (!strstr(why, path))
                fprintf(stderr, "flip at byte %zu of %zu: reason without the file: %s\n", off, n,
                        why);
            assert_non_null(strstr(why, path));
            continue;
        }
        /* accepted: it must load exactly the original numbers */
        tr_params p;
        make_params(&p, 24);
        float *m = calloc(p.total, sizeof(float));
        double ex[4] = {0}, w[T * 4] = {0};
        tr_extra_state e = g_ex;
        e.data = ex;
        tr_ckpt_state s = state(&p, m, w, &e);
        tr_error_clear();
        tr_status st = tr_checkpoint_load(path, &s, &g_grid, NULL);
        int same = st == TR_OK && memcmp(p.data, g_p.data, p.total * sizeof(float)) == 0 &&
                   memcmp(m, g_m, p.total * sizeof(float)) == 0 &&
                   memcmp(ex, g_extra, sizeof(ex)) == 0 && memcmp(w, g_window, sizeof(w)) == 0 &&
                   s.sc.step == 9 && s.sc.opt_t == 9 && s.sc.seed == 3;
        if (same)
            harmless++;
        else if (st != TR_OK && strstr(tr_error_message(), path))
            at_load++; /* the collective read's own checks caught it (resume falls back) */
        else {
            silent++;
            fprintf(stderr, "flip at byte %zu of %zu went undetected\n", off, n);
        }
        free(m);
        tr_params_free(&p);
    }
    if (silent || corrupt <= tried / 5)
        fprintf(stderr, "unexpected split of the bit flips (below)\n");
    printf("  %d single-bit flips over %zu bytes: %d detected by validation, %d by the load, %d "
           "in bytes nothing reads, %d undetected\n",
           tried, n, corrupt, at_load, harmless, silent);
    assert_int_equal(silent, 0);
    assert_true(corrupt > tried / 5); /* measured: 137 of 401 (the rest is unused space) */
    free(b);
}

static void test_incompatible(void **unused) {
    (void)unused;
    char why[512], path[400];
    /* another model: trunk.w has another shape */
    tr_params p;
    make_params(&p, 20);
    tr_ckpt_state s = state(&p, g_m, g_window, &g_ex);
    assert_int_equal(tr_checkpoint_validate(g_good, &s, why, sizeof(why)), TR_CKPT_INCOMPATIBLE);
    assert_non_null(strstr(why, "/params/trunk.w"));
    tr_params_free(&p);
    /* not a checkpoint: an HDF5 file without the format attribute */
    snprintf(path, sizeof(path), "%s/other.h5", g_dir);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    assert_int_equal(check(path, why, sizeof(why)), TR_CKPT_CORRUPT);
    assert_non_null(strstr(why, "not a taskrel checkpoint"));
    /* a missing file */
    snprintf(path, sizeof(path), "%s/missing.h5", g_dir);
    assert_int_equal(check(path, why, sizeof(why)), TR_CKPT_CORRUPT);
    assert_non_null(strstr(why, path));
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    tr_log_init(0, TR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_and_info),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_incompatible),
    };
    int rc = cmocka_run_group_tests_name("checkpoint_corrupt", tests, setup, teardown);
    MPI_Finalize();
    return rc;
}
