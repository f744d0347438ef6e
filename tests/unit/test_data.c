/*
 * Data module: IDX reader, HDF5 save/load round trip, the validator's errors
 * (each must be TR_ERR_DATA naming the file's offending HDF5 path), the four
 * builders' determinism and their documented facts, and `taskrel data`
 * argument parsing. Fashion-MNIST tests are skipped if dataset-fashion-mnist
 * is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cli/commands.h"
#include "taskrel/data.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", g_dir, name);
    return buf[k];
}

static int fashion_available(void) {
    return access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0 &&
           access(FASHION_DIR "/t10k-images-idx3-ubyte.gz", R_OK) == 0;
}

/* Load path, asserting success. */
static void load_ok(tr_dataset *ds, const char *path) {
    tr_error_clear();
    tr_status s = tr_dataset_load(ds, path);
    if (s != TR_OK)
        fail_msg("loading %s: %s", path, tr_error_message());
}

static void build_ok(tr_status (*build)(const tr_builder_opts *), const tr_builder_opts *o) {
    tr_error_clear();
    tr_status s = build(o);
    if (s != TR_OK)
        fail_msg("building %s: %s", o->out, tr_error_message());
}

static int split_equal(const tr_split_data *a, const tr_split_data *b, int64_t ss, int cols) {
    if (a->n != b->n || !a->y != !b->y || !a->yf != !b->yf)
        return 0;
    if (a->n == 0)
        return 1;
    if (memcmp(a->x, b->x, sizeof(float) * (size_t)(a->n * ss)) != 0)
        return 0;
    if (a->y && memcmp(a->y, b->y, sizeof(int32_t) * (size_t)(a->n * cols)) != 0)
        return 0;
    if (a->yf && memcmp(a->yf, b->yf, sizeof(float) * (size_t)(a->n * cols)) != 0)
        return 0;
    return 1;
}

/* Byte-equal datasets (structure and every array). */
static int ds_equal(const tr_dataset *a, const tr_dataset *b) {
    if (a->setting != b->setting || a->T != b->T || a->ndim != b->ndim ||
        a->sample_size != b->sample_size || memcmp(a->dims, b->dims, sizeof(a->dims)) != 0)
        return 0;
    for (int t = 0; t < a->T; t++) {
        const tr_task_info *x = &a->tasks[t], *y = &b->tasks[t];
        if (strcmp(x->name, y->name) != 0 || x->kind != y->kind || x->classes != y->classes)
            return 0;
        for (int s = 0; s < TR_SPLIT_COUNT; s++)
            if (!split_equal(&x->split[s], &y->split[s], a->sample_size, 1))
                return 0;
    }
    for (int s = 0; s < TR_SPLIT_COUNT; s++)
        if (!split_equal(&a->shared[s], &b->shared[s], a->sample_size, a->T))
            return 0;
    if (!a->sigma3 != !b->sigma3)
        return 0;
    if (a->sigma3 && memcmp(a->sigma3, b->sigma3, sizeof(double) * (size_t)(a->T * a->T)) != 0)
        return 0;
    return 1;
}

/* Expect TR_ERR_DATA from loading path, with `needle` in the message. */
static void expect_load_error(const char *path, const char *needle) {
    tr_dataset ds;
    tr_error_clear();
    tr_status s = tr_dataset_load(&ds, path);
    if (s != TR_ERR_DATA)
        fail_msg("%s: expected a data error containing '%s', got %s: %s", path, needle,
                 tr_status_str(s), tr_error_message());
    if (!strstr(tr_error_message(), needle))
        fail_msg("%s: message '%s' lacks '%s'", path, tr_error_message(), needle);
    assert_null(ds.tasks); /* freed on failure */
    tr_error_clear();
}

/* ---- IDX ---------------------------------------------------------------------- */

static void write_idx(const char *path, int gz, const uint8_t *head, size_t hlen,
                      const uint8_t *data, size_t n) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, head, (unsigned)hlen), (int)hlen);
        if (n)
            assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(head, 1, hlen, f), hlen);
        if (n)
            assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

static void test_idx_read(void **state) {
    (void)state;
    const uint8_t head[] = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    uint8_t data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (uint8_t)(i * 10);
    for (int gz = 0; gz <= 1; gz++) {
        const char *p = tmp_path(gz ? "small.idx.gz" : "small.idx");
        write_idx(p, gz, head, sizeof(head), data, sizeof(data));
        uint8_t *out = NULL;
        int nd = 0;
        int64_t dims[4];
        tr_error_clear();
        assert_int_equal(tr_idx_read(p, &out, &nd, dims), TR_OK);
        assert_int_equal(nd, 3);
        assert_int_equal(dims[0], 2);
        assert_int_equal(dims[1], 3);
        assert_int_equal(dims[2], 4);
        assert_memory_equal(out, data, sizeof(data));
        tr_free(out);
    }
    /* truncated payload, unsupported type, missing file */
    const char *p = tmp_path("trunc.idx.gz");
    write_idx(p, 1, head, sizeof(head), data, 10);
    uint8_t *out = NULL;
    int nd;
    int64_t dims[4];
    tr_error_clear();
    assert_int_equal(tr_idx_read(p, &out, &nd, dims), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "truncated"));
    assert_null(out);
    const uint8_t bad[] = {0, 0, 0x0D, 1, 0, 0, 0, 1};
    p = tmp_path("float.idx.gz");
    write_idx(p, 1, bad, sizeof(bad), data, 4);
    tr_error_clear();
    assert_int_equal(tr_idx_read(p, &out, &nd, dims), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "0x0d"));
    tr_error_clear();
    assert_int_equal(tr_idx_read(tmp_path("missing.idx.gz"), &out, &nd, dims), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "missing.idx.gz"));
    tr_error_clear();
}

/* ---- save / load ---------------------------------------------------------------- */

/* A small multi-input dataset: task "a" (3 classes), task "b" (regression);
 * per-sample shape (1, 2, 3). Train 4, val 2, test 3. */
static void make_small_multi(tr_dataset *ds) {
    memset(ds, 0, sizeof(*ds));
    ds->setting = TR_SETTING_MULTI_INPUT;
    ds->T = 2;
    ds->ndim = 3;
    ds->dims[0] = 1;
    ds->dims[1] = 2;
    ds->dims[2] = 3;
    ds->sample_size = 6;
    ds->tasks = tr_calloc(2, sizeof(tr_task_info));
    strcpy(ds->tasks[0].name, "a");
    ds->tasks[0].kind = TR_TASK_CLASSIFICATION;
    ds->tasks[0].classes = 3;
    strcpy(ds->tasks[1].name, "b");
    ds->tasks[1].kind = TR_TASK_REGRESSION;
    ds->tasks[1].classes = 1;
    const int64_t n[3] = {4, 2, 3};
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++) {
            tr_split_data *sd = &ds->tasks[t].split[s];
            sd->n = n[s];
            sd->x = tr_calloc((size_t)(n[s] * 6), sizeof(float));
            for (int i = 0; i < n[s] * 6; i++)
                sd->x[i] = 0.25f * (float)(i + 7 * t + 3 * s);
            if (t == 0) {
                sd->y = tr_calloc((size_t)n[s], sizeof(int32_t));
                for (int i = 0; i < n[s]; i++)
                    sd->y[i] = (i + s) % 3;
            } else {
                sd->yf = tr_calloc((size_t)n[s], sizeof(float));
                for (int i = 0; i < n[s]; i++)
                    sd->yf[i] = -1.5f * (float)i + (float)s;
            }
        }
}

static void test_roundtrip_multi(void **state) {
    (void)state;
    tr_dataset a, b;
    make_small_multi(&a);
    const char *p = tmp_path("rt_multi.h5");
    tr_error_clear();
    assert_int_equal(tr_dataset_save(&a, p, "test", 42, "x=1"), TR_OK);
    load_ok(&b, p);
    assert_true(ds_equal(&a, &b));
    assert_null(b.sigma3);
    tr_dataset_free(&a);
    tr_dataset_free(&b);
    tr_dataset_free(&b); /* no-op on a zeroed struct */
    tr_dataset_free(NULL);
}

static void test_roundtrip_shared(void **state) {
    (void)state;
    tr_dataset a;
    memset(&a, 0, sizeof(a));
    a.setting = TR_SETTING_SHARED_INPUT;
    a.T = 3;
    a.ndim = 1;
    a.dims[0] = 5;
    a.sample_size = 5;
    a.tasks = tr_calloc(3, sizeof(tr_task_info));
    for (int t = 0; t < 3; t++) {
        snprintf(a.tasks[t].name, sizeof(a.tasks[t].name), "t%d", t);
        a.tasks[t].kind = TR_TASK_CLASSIFICATION;
        a.tasks[t].classes = 2 + t;
    }
    for (int s = 0; s < 3; s++) {
        tr_split_data *sd = &a.shared[s];
        sd->n = 3 + s;
        sd->x = tr_calloc((size_t)(sd->n * 5), sizeof(float));
        sd->y = tr_calloc((size_t)(sd->n * 3), sizeof(int32_t));
        for (int i = 0; i < sd->n * 5; i++)
            sd->x[i] = (float)i / 7.0f;
        for (int i = 0; i < sd->n; i++)
            for (int t = 0; t < 3; t++)
                sd->y[i * 3 + t] = (i + t) % (2 + t);
    }
    a.sigma3 = tr_calloc(9, sizeof(double));
    for (int i = 0; i < 9; i++)
        a.sigma3[i] = i % 4 == 0 ? 1.0 : 0.3;
    const char *p = tmp_path("rt_shared.h5");
    tr_error_clear();
    assert_int_equal(tr_dataset_save(&a, p, "test", 1, ""), TR_OK);
    tr_dataset b;
    load_ok(&b, p);
    assert_true(ds_equal(&a, &b));
    /* a label out of range for task t2 (4 classes) in column 2 */
    a.shared[TR_SPLIT_VAL].y[1 * 3 + 2] = 4;
    assert_int_equal(tr_dataset_save(&a, p, "test", 1, ""), TR_OK);
    expect_load_error(p, "/val/y has label 4 at element 5");
    tr_dataset_free(&a);
    tr_dataset_free(&b);
}

/* ---- validation: malformed files written with HDF5 directly ------------------------ */

static hid_t open_rw(const char *p) {
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

/* Replace (or create) dataset path with the given type and contents. */
static void put_dataset(hid_t f, const char *path, hid_t type, int rank, const hsize_t *dims,
                        const void *data) {
    if (H5Lexists(f, path, H5P_DEFAULT) > 0)
        assert_true(H5Ldelete(f, path, H5P_DEFAULT) >= 0);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, path, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    hsize_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    if (n)
        assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
}

static const char *make_base(const char *name) {
    tr_dataset ds;
    make_small_multi(&ds);
    const char *p = tmp_path(name);
    tr_error_clear();
    assert_int_equal(tr_dataset_save(&ds, p, "test", 1, ""), TR_OK);
    tr_dataset_free(&ds);
    return p;
}

static void test_validate_missing_file(void **state) {
    (void)state;
    const char *p = tmp_path("does_not_exist.h5");
    char want[600];
    snprintf(want, sizeof(want), "dataset file not found: %s", p);
    expect_load_error(p, want);
    /* not an HDF5 file */
    const char *q = tmp_path("not_hdf5.h5");
    FILE *f = fopen(q, "w");
    fputs("hello\n", f);
    fclose(f);
    expect_load_error(q, "not_hdf5.h5");
}

static void test_validate_shapes(void **state) {
    (void)state;
    float x[40] = {0};
    int32_t y[8] = {0};
    /* per-sample shape differs across splits */
    const char *p = make_base("bad_shape.h5");
    hid_t f = open_rw(p);
    hsize_t d4[4] = {2, 1, 3, 2};
    put_dataset(f, "/tasks/a/val/x", H5T_NATIVE_FLOAT, 4, d4, x);
    H5Fclose(f);
    expect_load_error(p, "/tasks/a/val/x has per-sample shape (1, 3, 2)");
    /* ... and across tasks */
    p = make_base("bad_shape_task.h5");
    f = open_rw(p);
    hsize_t d2[2] = {4, 6};
    put_dataset(f, "/tasks/b/train/x", H5T_NATIVE_FLOAT, 2, d2, x);
    H5Fclose(f);
    expect_load_error(p, "/tasks/b/train/x has per-sample shape (6)");
    /* x / y rows */
    p = make_base("bad_rows.h5");
    f = open_rw(p);
    hsize_t d1[1] = {3};
    put_dataset(f, "/tasks/a/train/y", H5T_NATIVE_INT32, 1, d1, y);
    H5Fclose(f);
    expect_load_error(p, "/tasks/a/train/y has 3 rows but /tasks/a/train/x has 4");
    /* empty train split */
    p = make_base("empty_train.h5");
    f = open_rw(p);
    hsize_t e4[4] = {0, 1, 2, 3}, e1[1] = {0};
    put_dataset(f, "/tasks/b/train/x", H5T_NATIVE_FLOAT, 4, e4, x);
    put_dataset(f, "/tasks/b/train/y", H5T_NATIVE_FLOAT, 1, e1, x);
    H5Fclose(f);
    expect_load_error(p, "/tasks/b/train/x is empty");
}

static void test_validate_values(void **state) {
    (void)state;
    float x[24] = {0};
    int32_t y[4] = {0, 1, 7, 2};
    /* label outside [0, classes) */
    const char *p = make_base("bad_label.h5");
    hid_t f = open_rw(p);
    hsize_t d1[1] = {4};
    put_dataset(f, "/tasks/a/train/y", H5T_NATIVE_INT32, 1, d1, y);
    H5Fclose(f);
    expect_load_error(p, "/tasks/a/train/y has label 7 at element 2");
    /* NaN in x */
    p = make_base("nan_x.h5");
    f = open_rw(p);
    x[13] = NAN;
    hsize_t d4[4] = {4, 1, 2, 3};
    put_dataset(f, "/tasks/b/train/x", H5T_NATIVE_FLOAT, 4, d4, x);
    H5Fclose(f);
    expect_load_error(p, "/tasks/b/train/x contains NaN at element 13");
    /* Inf in a regression target */
    p = make_base("inf_y.h5");
    f = open_rw(p);
    float yf[3] = {0.0f, INFINITY, 1.0f};
    hsize_t d3[1] = {3};
    put_dataset(f, "/tasks/b/test/y", H5T_NATIVE_FLOAT, 1, d3, yf);
    H5Fclose(f);
    expect_load_error(p, "/tasks/b/test/y contains Inf at element 1");
}

static void test_validate_types(void **state) {
    (void)state;
    /* y stored as float64 for a classification task */
    const char *p = make_base("bad_dtype.h5");
    hid_t f = open_rw(p);
    double yd[4] = {0, 1, 2, 0};
    hsize_t d1[1] = {4};
    put_dataset(f, "/tasks/a/train/y", H5T_NATIVE_DOUBLE, 1, d1, yd);
    H5Fclose(f);
    expect_load_error(p, "/tasks/a/train/y has dtype float64, expected int32");
    /* x stored as uint8 */
    p = make_base("bad_xtype.h5");
    f = open_rw(p);
    uint8_t xb[12] = {0};
    hsize_t d4[4] = {2, 1, 2, 3};
    put_dataset(f, "/tasks/a/val/x", H5T_NATIVE_UINT8, 4, d4, xb);
    H5Fclose(f);
    expect_load_error(p, "/tasks/a/val/x has dtype uint8, expected float32");
    /* unknown kind, unknown setting */
    p = make_base("bad_kind.h5");
    f = open_rw(p);
    hid_t g = H5Gopen2(f, "/tasks/b", H5P_DEFAULT);
    H5Adelete(g, "kind");
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, "kind", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    char val[8] = "ranking";
    H5Awrite(a, t, val);
    H5Aclose(a);
    H5Gclose(g);
    H5Fclose(f);
    expect_load_error(p, "/tasks/b: unknown kind 'ranking'");
    p = make_base("bad_setting.h5");
    f = open_rw(p);
    H5Adelete(f, "setting");
    a = H5Acreate2(f, "setting", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    char val2[8] = "bogus";
    H5Awrite(a, t, val2);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    expect_load_error(p, "unknown setting 'bogus'");
}

static void test_validate_missing(void **state) {
    (void)state;
    const char *p = make_base("missing_split.h5");
    hid_t f = open_rw(p);
    assert_true(H5Ldelete(f, "/tasks/a/test", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_error(p, "/tasks/b/test exists but /tasks/a/test is missing");
    p = make_base("missing_y.h5");
    f = open_rw(p);
    assert_true(H5Ldelete(f, "/tasks/b/val/y", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_error(p, "missing dataset /tasks/b/val/y");
    p = make_base("missing_index.h5");
    f = open_rw(p);
    hid_t g = H5Gopen2(f, "/tasks/b", H5P_DEFAULT);
    H5Adelete(g, "index");
    H5Gclose(g);
    H5Fclose(f);
    expect_load_error(p, "/tasks/b: missing attribute 'index'");
}

/* ---- synthetic builders ---------------------------------------------------------------- */

static void test_synthetic_tn(void **state) {
    (void)state;
    tr_builder_opts o;
    tr_builder_opts_default(&o);
    o.out = tmp_path("tn1.h5");
    build_ok(tr_build_synthetic_tn, &o);
    o.out = tmp_path("tn1b.h5");
    build_ok(tr_build_synthetic_tn, &o);
    o.out = tmp_path("tn2.h5");
    o.seed = 2;
    build_ok(tr_build_synthetic_tn, &o);
    tr_dataset a, b, c;
    load_ok(&a, tmp_path("tn1.h5"));
    load_ok(&b, tmp_path("tn1b.h5"));
    load_ok(&c, tmp_path("tn2.h5"));
    assert_true(ds_equal(&a, &b));
    assert_false(ds_equal(&a, &c));
    assert_int_equal(a.setting, TR_SETTING_MULTI_INPUT);
    assert_int_equal(a.T, 8);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.dims[0], 16);
    for (int t = 0; t < 8; t++) {
        assert_int_equal(a.tasks[t].kind, TR_TASK_REGRESSION);
        assert_int_equal(a.tasks[t].split[TR_SPLIT_TRAIN].n, 200);
        assert_int_equal(a.tasks[t].split[TR_SPLIT_VAL].n, 200);
        assert_int_equal(a.tasks[t].split[TR_SPLIT_TEST].n, 1000);
        assert_non_null(a.tasks[t].split[TR_SPLIT_TRAIN].yf);
    }
    /* Σ3: blocks {0,1,2}, {3,4,5} at 0.8, pair {6,7} at -0.8, zero across */
    assert_non_null(a.sigma3);
    assert_true(a.sigma3[0 * 8 + 1] == 0.8 && a.sigma3[3 * 8 + 5] == 0.8);
    assert_true(a.sigma3[6 * 8 + 7] == -0.8 && a.sigma3[2 * 8 + 3] == 0.0);
    assert_true(a.sigma3[4 * 8 + 4] == 1.0 && a.sigma3[0 * 8 + 6] == 0.0);
    /* the stored true weights follow Σ3: <w0, w1> > 0 and <w6, w7> < 0 */
    hid_t f = H5Fopen(tmp_path("tn1.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    double w[8 * 32];
    hid_t d = H5Dopen2(f, "/truth/w", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    double c01 = 0, c67 = 0;
    for (int k = 0; k < 32; k++) {
        c01 += w[0 * 32 + k] * w[1 * 32 + k];
        c67 += w[6 * 32 + k] * w[7 * 32 + k];
    }
    assert_true(c01 > 0.0);
    assert_true(c67 < 0.0);
    tr_dataset_free(&a);
    tr_dataset_free(&b);
    tr_dataset_free(&c);

    /* classification variant */
    tr_builder_opts_default(&o);
    o.out = tmp_path("tn_cls.h5");
    o.regression = 0;
    o.tasks = 5;
    o.dim = 7;
    o.n_train = 50;
    o.n_val = 10;
    o.n_test = 20;
    build_ok(tr_build_synthetic_tn, &o);
    load_ok(&a, o.out);
    assert_int_equal(a.T, 5);
    assert_int_equal(a.dims[0], 7);
    int counts[4] = {0};
    for (int t = 0; t < 5; t++) {
        assert_int_equal(a.tasks[t].kind, TR_TASK_CLASSIFICATION);
        assert_int_equal(a.tasks[t].classes, 4);
        assert_int_equal(a.tasks[t].split[TR_SPLIT_TRAIN].n, 50);
        for (int i = 0; i < 50; i++)
            counts[a.tasks[t].split[TR_SPLIT_TRAIN].y[i]]++;
    }
    for (int k = 0; k < 4; k++)
        assert_true(counts[k] > 0);
    tr_dataset_free(&a);
}

static double corr(const float *y, int T, int64_t n, int i, int j) {
    double mi = 0, mj = 0, sij = 0, sii = 0, sjj = 0;
    for (int64_t k = 0; k < n; k++) {
        mi += y[k * T + i];
        mj += y[k * T + j];
    }
    mi /= (double)n;
    mj /= (double)n;
    for (int64_t k = 0; k < n; k++) {
        double a = y[k * T + i] - mi, b = y[k * T + j] - mj;
        sij += a * b;
        sii += a * a;
        sjj += b * b;
    }
    return sij / sqrt(sii * sjj);
}

static void test_synthetic_mmoe(void **state) {
    (void)state;
    tr_builder_opts o;
    tr_builder_opts_default(&o);
    o.n_train = 3000;
    o.n_val = 100;
    o.n_test = 100;
    o.out = tmp_path("mmoe1.h5");
    build_ok(tr_build_synthetic_mmoe, &o);
    o.out = tmp_path("mmoe1b.h5");
    build_ok(tr_build_synthetic_mmoe, &o);
    o.out = tmp_path("mmoe2.h5");
    o.seed = 99;
    build_ok(tr_build_synthetic_mmoe, &o);
    tr_dataset a, b, c;
    load_ok(&a, tmp_path("mmoe1.h5"));
    load_ok(&b, tmp_path("mmoe1b.h5"));
    load_ok(&c, tmp_path("mmoe2.h5"));
    assert_true(ds_equal(&a, &b));
    assert_false(ds_equal(&a, &c));
    assert_int_equal(a.setting, TR_SETTING_SHARED_INPUT);
    assert_int_equal(a.T, 4);
    assert_int_equal(a.dims[0], 100);
    assert_int_equal(a.shared[TR_SPLIT_TRAIN].n, 3000);
    assert_non_null(a.shared[TR_SPLIT_TRAIN].yf);
    assert_null(a.shared[TR_SPLIT_TRAIN].y);
    for (int t = 0; t < 4; t++)
        assert_int_equal(a.tasks[t].kind, TR_TASK_REGRESSION);
    /* pairs {0,1} and {2,3} are correlated much more than across */
    const float *y = a.shared[TR_SPLIT_TRAIN].yf;
    double c01 = corr(y, 4, 3000, 0, 1), c23 = corr(y, 4, 3000, 2, 3);
    double c02 = corr(y, 4, 3000, 0, 2), c13 = corr(y, 4, 3000, 1, 3);
    assert_true(c01 > c02 + 0.3 && c23 > c13 + 0.3);
    tr_dataset_free(&a);
    tr_dataset_free(&b);
    tr_dataset_free(&c);
    /* --corr: the paper's two tasks; at correlation 1 the weight vectors are equal,
     * so the labels differ only by the noise (std 0.1 against a label std ~2) */
    tr_builder_opts_default(&o);
    o.tasks = 2;
    o.n_train = 3000;
    o.n_val = o.n_test = 10;
    o.corr = 1.0;
    o.out = tmp_path("mmoe_c1.h5");
    build_ok(tr_build_synthetic_mmoe, &o);
    o.corr = 0.0;
    o.out = tmp_path("mmoe_c0.h5");
    build_ok(tr_build_synthetic_mmoe, &o);
    load_ok(&a, tmp_path("mmoe_c1.h5"));
    load_ok(&b, tmp_path("mmoe_c0.h5"));
    assert_int_equal(a.T, 2);
    double r1 = corr(a.shared[TR_SPLIT_TRAIN].yf, 2, 3000, 0, 1);
    double r0 = corr(b.shared[TR_SPLIT_TRAIN].yf, 2, 3000, 0, 1);
    assert_true(r1 > 0.99);
    assert_true(fabs(r0) < 0.1);
    tr_dataset_free(&a);
    tr_dataset_free(&b);
    /* with 4 tasks (0.1 across pairs) a pair correlation below -0.8 is not a
     * correlation matrix */
    tr_builder_opts_default(&o);
    o.out = tmp_path("mmoe_bad.h5");
    o.corr = -0.9;
    tr_error_clear();
    assert_int_equal(tr_build_synthetic_mmoe(&o), TR_ERR_USAGE);
    assert_non_null(strstr(tr_error_message(), "--corr"));
    tr_error_clear();
    /* more tasks than dimensions cannot be orthogonal */
    tr_builder_opts_default(&o);
    o.out = tmp_path("mmoe_bad.h5");
    o.tasks = 6;
    o.dim = 4;
    tr_error_clear();
    assert_int_equal(tr_build_synthetic_mmoe(&o), TR_ERR_USAGE);
    assert_non_null(strstr(tr_error_message(), "--dim"));
    tr_error_clear();
}

/* ---- Fashion-MNIST builders ---------------------------------------------------------------- */

typedef struct {
    uint8_t *train_x, *train_y, *test_x, *test_y;
} raw_fashion;

static void raw_load(raw_fashion *r) {
    int nd;
    int64_t d[4];
    tr_error_clear();
    assert_int_equal(tr_idx_read(FASHION_DIR "/train-images-idx3-ubyte.gz", &r->train_x, &nd, d),
                     TR_OK);
    assert_int_equal(tr_idx_read(FASHION_DIR "/train-labels-idx1-ubyte.gz", &r->train_y, &nd, d),
                     TR_OK);
    assert_int_equal(tr_idx_read(FASHION_DIR "/t10k-images-idx3-ubyte.gz", &r->test_x, &nd, d),
                     TR_OK);
    assert_int_equal(tr_idx_read(FASHION_DIR "/t10k-labels-idx1-ubyte.gz", &r->test_y, &nd, d),
                     TR_OK);
}

static void raw_free(raw_fashion *r) {
    tr_free(r->train_x);
    tr_free(r->train_y);
    tr_free(r->test_x);
    tr_free(r->test_y);
}

static void read_task_attr(const char *file, const char *task, const char *attr, char *buf,
                           size_t len) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    char path[128];
    snprintf(path, sizeof(path), "/tasks/%s", task);
    hid_t a = H5Aopen_by_name(f, path, attr, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    size_t sz = H5Tget_size(t);
    assert_true(sz < len);
    memset(buf, 0, len);
    assert_true(H5Aread(a, t, buf) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
}

static const int32_t k_perm[10] = {3, 7, 0, 9, 5, 1, 8, 2, 6, 4};

static void test_fashion_domains(void **state) {
    (void)state;
    if (!fashion_available())
        skip();
    tr_builder_opts o;
    tr_builder_opts_default(&o);
    o.out = tmp_path("fd1.h5");
    build_ok(tr_build_fashion_domains, &o);
    o.out = tmp_path("fd1b.h5");
    build_ok(tr_build_fashion_domains, &o);
    o.out = tmp_path("fd2.h5");
    o.seed = 2;
    o.train_frac = 0.05;
    build_ok(tr_build_fashion_domains, &o);
    tr_dataset a, b, c;
    load_ok(&a, tmp_path("fd1.h5"));
    load_ok(&b, tmp_path("fd1b.h5"));
    load_ok(&c, tmp_path("fd2.h5"));
    assert_true(ds_equal(&a, &b));
    assert_false(ds_equal(&a, &c));
    assert_int_equal(c.tasks[0].split[TR_SPLIT_TRAIN].n, 500);
    assert_int_equal(memcmp(a.tasks[0].split[TR_SPLIT_VAL].x, c.tasks[0].split[TR_SPLIT_VAL].x,
                            1000 * 784 * sizeof(float)) == 0,
                     0);
    tr_dataset_free(&b);
    tr_dataset_free(&c);

    static const char *const names[6] = {"orig",      "noise",      "blur",
                                         "orig_perm", "rot90_perm", "invert_perm"};
    assert_int_equal(a.setting, TR_SETTING_MULTI_INPUT);
    assert_int_equal(a.T, 6);
    assert_int_equal(a.ndim, 3);
    assert_true(a.dims[0] == 1 && a.dims[1] == 28 && a.dims[2] == 28);
    raw_fashion r;
    raw_load(&r);
    int32_t *perm0 = tr_calloc(60000, sizeof(int32_t));
    int32_t *perm1 = tr_calloc(10000, sizeof(int32_t));
    tr_rng_permutation(perm0, 60000, 1, TR_RNG_SPLIT, 0);
    tr_rng_permutation(perm1, 10000, 1, TR_RNG_SPLIT, 1);
    for (int t = 0; t < 6; t++) {
        const tr_task_info *ti = &a.tasks[t];
        assert_string_equal(ti->name, names[t]);
        assert_int_equal(ti->kind, TR_TASK_CLASSIFICATION);
        assert_int_equal(ti->classes, 10);
        assert_int_equal(ti->split[TR_SPLIT_TRAIN].n, 1000);
        assert_int_equal(ti->split[TR_SPLIT_VAL].n, 1000);
        assert_int_equal(ti->split[TR_SPLIT_TEST].n, 1666);
        char fam[32];
        read_task_attr(tmp_path("fd1.h5"), names[t], "family", fam, sizeof(fam));
        assert_string_equal(fam, t < 3 ? "identity" : "permuted");
        /* images and labels: train = chunk head, val = chunk tail, test = test chunk */
        for (int s = 0; s < 3; s++) {
            const tr_split_data *sd = &ti->split[s];
            for (int64_t i = 0; i < sd->n; i += 37) {
                int32_t j = s == 0   ? perm0[t * 10000 + i]
                            : s == 1 ? perm0[t * 10000 + 9000 + i]
                                     : perm1[t * 1666 + i];
                const uint8_t *img = (s == 2 ? r.test_x : r.train_x) + (int64_t)j * 784;
                int label = (s == 2 ? r.test_y : r.train_y)[j];
                const float *x = sd->x + i * 784;
                assert_int_equal(sd->y[i], t < 3 ? label : k_perm[label]);
                double diff = 0, mean_x = 0, mean_img = 0;
                for (int p = 0; p < 784; p++) {
                    int rr = p / 28, cc = p % 28;
                    float v = img[p] / 255.0f;
                    float want = t == 4 ? img[(27 - cc) * 28 + rr] / 255.0f : t == 5 ? 1.0f - v : v;
                    if (t == 0 || t >= 3)
                        assert_true(x[p] == want);
                    assert_true(x[p] >= 0.0f && x[p] <= 1.0f);
                    diff += fabs(x[p] - v);
                    mean_x += x[p];
                    mean_img += v;
                }
                if (t == 1 || t == 2)
                    assert_true(diff > 1.0); /* noise / blur changed the image */
                if (t == 2)
                    assert_true(fabs(mean_x - mean_img) / 784.0 < 0.02);
            }
        }
    }
    /* rot90 is clockwise: the image's top-left pixel lands top-right */
    {
        const tr_split_data *sd = &a.tasks[4].split[TR_SPLIT_TRAIN];
        const uint8_t *img = r.train_x + (int64_t)perm0[4 * 10000] * 784;
        assert_true(sd->x[0 * 28 + 27] == img[0] / 255.0f);
        assert_true(sd->x[27 * 28 + 27] == img[27] / 255.0f);
    }
    tr_free(perm0);
    tr_free(perm1);
    raw_free(&r);
    tr_dataset_free(&a);

    /* a wrong --fashion-dir names the file and the package */
    tr_builder_opts_default(&o);
    o.out = tmp_path("fd_bad.h5");
    o.fashion_dir = tmp_path("no_such_dir");
    tr_error_clear();
    assert_int_equal(tr_build_fashion_domains(&o), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "no_such_dir/train-images-idx3-ubyte.gz"));
    assert_non_null(strstr(tr_error_message(), "apt-get install dataset-fashion-mnist"));
    tr_error_clear();
    assert_int_equal(access(o.out, F_OK), -1);
}

static void test_multifashion(void **state) {
    (void)state;
    if (!fashion_available())
        skip();
    for (int T = 2; T <= 4; T += 2) {
        tr_builder_opts o;
        tr_builder_opts_default(&o);
        o.tasks = T;
        o.n_train = 300;
        o.n_val = 50;
        o.n_test = 100;
        o.out = tmp_path("mf1.h5");
        build_ok(tr_build_multifashion, &o);
        o.out = tmp_path("mf1b.h5");
        build_ok(tr_build_multifashion, &o);
        o.out = tmp_path("mf2.h5");
        o.seed = 5;
        build_ok(tr_build_multifashion, &o);
        tr_dataset a, b, c;
        load_ok(&a, tmp_path("mf1.h5"));
        load_ok(&b, tmp_path("mf1b.h5"));
        load_ok(&c, tmp_path("mf2.h5"));
        assert_true(ds_equal(&a, &b));
        assert_false(ds_equal(&a, &c));
        int canvas = T == 2 ? 36 : 44;
        assert_int_equal(a.setting, TR_SETTING_SHARED_INPUT);
        assert_int_equal(a.T, T);
        assert_true(a.dims[0] == 1 && a.dims[1] == canvas && a.dims[2] == canvas);
        assert_int_equal(a.shared[TR_SPLIT_TRAIN].n, 300);
        assert_int_equal(a.shared[TR_SPLIT_VAL].n, 50);
        assert_int_equal(a.shared[TR_SPLIT_TEST].n, 100);
        const tr_split_data *sd = &a.shared[TR_SPLIT_TRAIN];
        int distinct = 0;
        for (int64_t i = 0; i < sd->n; i++) {
            const float *x = sd->x + i * canvas * canvas;
            if (T == 2) /* rows 28..35, cols 0..7 are covered by neither item */
                for (int rr = 28; rr < 36; rr++)
                    for (int cc = 0; cc < 8; cc++)
                        assert_true(x[rr * canvas + cc] == 0.0f);
            for (int k = 0; k < T; k++)
                assert_true(sd->y[i * T + k] >= 0 && sd->y[i * T + k] < 10);
            distinct += sd->y[i * T] != sd->y[i * T + 1];
        }
        assert_true(distinct > sd->n / 2);
        tr_dataset_free(&a);
        tr_dataset_free(&b);
        tr_dataset_free(&c);
    }
}

/* ---- taskrel data -----------------------------------------------------------------------------
 */

static tr_status run_cmd(const char *line) {
    char buf[1024], *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *tok = strtok(buf, " "); tok && argc < 32; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    /* keep --help text off the test output */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    close(null);
    tr_error_clear();
    tr_status s = tr_cmd_data(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return s;
}

static void expect_usage(const char *line, const char *needle) {
    tr_status s = run_cmd(line);
    if (s != TR_ERR_USAGE || !strstr(tr_error_message(), needle))
        fail_msg("'%s': expected usage error with '%s', got %s: %s", line, needle, tr_status_str(s),
                 tr_error_message());
    tr_error_clear();
}

static void test_cmd_data(void **state) {
    (void)state;
    expect_usage("synthetic-tn --out x.h5 --bogus 3", "--bogus");
    expect_usage("synthetic-tn --out x.h5 --seed abc", "--seed");
    expect_usage("synthetic-tn --out x.h5 --seed -1", "--seed");
    expect_usage("synthetic-tn --out x.h5 --n-train 0", "--n-train");
    expect_usage("synthetic-tn --out x.h5 --dim 1.5", "--dim");
    expect_usage("synthetic-tn --out x.h5 --tasks", "--tasks needs a value");
    expect_usage("fashion-domains --out x.h5 --train-frac 1.5", "--train-frac");
    expect_usage("fashion-domains --out x.h5 --train-frac=abc", "--train-frac");
    expect_usage("fashion-domains --out x.h5 --dim 3", "--dim does not apply");
    expect_usage("multifashion --out x.h5 --tasks 3", "--tasks");
    expect_usage("synthetic-mmoe --out x.h5 --classification", "--classification");
    expect_usage("synthetic-mmoe stray --out x.h5", "stray");
    expect_usage("synthetic-mmoe --out x.h5 --corr 1.5", "--corr");
    expect_usage("synthetic-tn --out x.h5 --corr 0.5", "--corr");
    expect_usage("imagenet --out x.h5", "imagenet");
    expect_usage("synthetic-tn --seed 3", "--out");
    assert_int_equal(run_cmd("--help"), TR_OK);
    assert_int_equal(run_cmd("synthetic-tn --help"), TR_OK);
    tr_error_clear();
    assert_int_equal(tr_cmd_data(0, NULL), TR_ERR_USAGE);
    tr_error_clear();

    /* a real build through the command line, into a new directory */
    char line[1024];
    const char *out = tmp_path("sub/dir/tn.h5");
    snprintf(line, sizeof(line),
             "synthetic-tn --out %s --seed=7 --tasks 4 --dim 5 --n-train 30 --n-val 10 "
             "--n-test 10 --classification",
             out);
    tr_status s = run_cmd(line);
    if (s != TR_OK)
        fail_msg("%s", tr_error_message());
    tr_dataset ds;
    load_ok(&ds, out);
    assert_int_equal(ds.T, 4);
    assert_int_equal(ds.dims[0], 5);
    assert_int_equal(ds.tasks[0].split[TR_SPLIT_TRAIN].n, 30);
    assert_int_equal(ds.tasks[0].kind, TR_TASK_CLASSIFICATION);
    tr_dataset_free(&ds);
    /* same as the library call with the same options */
    tr_builder_opts o;
    tr_builder_opts_default(&o);
    o.out = tmp_path("tn_lib.h5");
    o.seed = 7;
    o.tasks = 4;
    o.dim = 5;
    o.n_train = 30;
    o.n_val = 10;
    o.n_test = 10;
    o.regression = 0;
    build_ok(tr_build_synthetic_tn, &o);
    tr_dataset a, b;
    load_ok(&a, out);
    load_ok(&b, o.out);
    assert_true(ds_equal(&a, &b));
    tr_dataset_free(&a);
    tr_dataset_free(&b);
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static int rm_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static int group_setup(void **state) {
    (void)state;
    tr_log_init(0, TR_LOG_WARN);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/taskrel_test_data_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    if (getenv("TASKREL_KEEP_TEST_FILES") == NULL)
        rm_tree(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_read),         cmocka_unit_test(test_roundtrip_multi),
        cmocka_unit_test(test_roundtrip_shared), cmocka_unit_test(test_validate_missing_file),
        cmocka_unit_test(test_validate_shapes),  cmocka_unit_test(test_validate_values),
        cmocka_unit_test(test_validate_types),   cmocka_unit_test(test_validate_missing),
        cmocka_unit_test(test_synthetic_tn),     cmocka_unit_test(test_synthetic_mmoe),
        cmocka_unit_test(test_fashion_domains),  cmocka_unit_test(test_multifashion),
        cmocka_unit_test(test_cmd_data),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
