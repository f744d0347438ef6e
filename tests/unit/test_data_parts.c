/*
 * Datasets read in parts and tasks of their own shape: a header-only read
 * followed by one task's examples; the fingerprint from per-task digests
 * (the same as a full read's); files with only some splits; shared-input
 * tasks of both kinds (float32 y); the per-task loss over a task's own
 * columns of a wider output layer. And inputs read from the file on demand
 * (data.load = stream): every row, and pieces that do not start or end on a
 * row, read the same bits as a load into memory, through both routes (pread
 * on a contiguous array, HDF5 on a chunked, compressed, big-endian one); the
 * fingerprint and task digests are those of the load into memory; the
 * opening pass rejects a non-finite value; a file truncated while in use is
 * TR_ERR_DATA naming the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskrel/dataset.h"
#include "taskrel/model.h"
#include "taskrel/nn.h"

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", g_dir, name);
    return buf[k];
}

static void ok(tr_status s, const char *what) {
    if (s != TR_OK)
        fail_msg("%s: %s", what, tr_error_message());
}

/* Multi-input: tasks a (4 classes), b (regression), c (2 classes); vectors of
 * 3; splits of 5, 2 and 3 examples (a split left out if skip[s]). */
static void make_multi(tr_dataset *ds, const int skip[TR_SPLIT_COUNT]) {
    memset(ds, 0, sizeof(*ds));
    ds->setting = TR_SETTING_MULTI_INPUT;
    ds->T = 3;
    ds->ndim = 1;
    ds->dims[0] = 3;
    ds->sample_size = 3;
    ds->tasks = tr_calloc(3, sizeof(tr_task_info));
    const char *names[3] = {"a", "b", "c"};
    const int classes[3] = {4, 1, 2};
    const int64_t n[3] = {5, 2, 3};
    for (int t = 0; t < 3; t++) {
        tr_task_info *ti = &ds->tasks[t];
        snprintf(ti->name, sizeof(ti->name), "%s", names[t]);
        ti->kind = t == 1 ? TR_TASK_REGRESSION : TR_TASK_CLASSIFICATION;
        ti->classes = classes[t];
        for (int s = 0; s < TR_SPLIT_COUNT; s++) {
            ds->has_split[s] = !skip[s];
            if (skip[s])
                continue;
            tr_split_data *sd = &ti->split[s];
            sd->n = n[s];
            sd->x = tr_calloc((size_t)(n[s] * 3), sizeof(float));
            for (int i = 0; i < n[s] * 3; i++)
                sd->x[i] = 0.5f * (float)(i - 4 * t + s);
            if (t == 1) {
                sd->yf = tr_calloc((size_t)n[s], sizeof(float));
                for (int i = 0; i < n[s]; i++)
                    sd->yf[i] = 0.25f * (float)(i + s);
            } else {
                sd->y = tr_calloc((size_t)n[s], sizeof(int32_t));
                for (int i = 0; i < n[s]; i++)
                    sd->y[i] = (i + s) % classes[t];
            }
        }
    }
}

static void test_header_then_tasks(void **state) {
    (void)state;
    const int none[3] = {0, 0, 0};
    tr_dataset src, full, part;
    make_multi(&src, none);
    const char *p = tmp_path("parts.h5");
    ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
    ok(tr_dataset_load(&full, p), "full load");

    ok(tr_dataset_load_header(&part, p), "header");
    assert_int_equal(part.T, 3);
    for (int t = 0; t < 3; t++) { /* sizes known, no examples */
        assert_int_equal(part.tasks[t].split[TR_SPLIT_TRAIN].n, 5);
        assert_null(part.tasks[t].split[TR_SPLIT_TRAIN].x);
        assert_false(part.tasks[t].loaded);
    }
    assert_int_equal(part.tasks[0].classes, 4);
    assert_int_equal(part.tasks[1].kind, TR_TASK_REGRESSION);
    ok(tr_dataset_load_tasks(&part, p, 1, 1), "task b");
    assert_true(part.tasks[1].loaded);
    assert_null(part.tasks[0].split[TR_SPLIT_TRAIN].x);
    assert_null(part.tasks[2].split[TR_SPLIT_VAL].x);
    assert_memory_equal(part.tasks[1].split[TR_SPLIT_TEST].yf, src.tasks[1].split[TR_SPLIT_TEST].yf,
                        3 * sizeof(float));

    /* the fingerprint: a rank holding task b and one holding a and c agree
     * with a full read once they share their digests */
    char f_full[64], f_b[64], f_ac[64];
    tr_dataset_fingerprint(&full, f_full, sizeof(f_full));
    tr_dataset ac;
    ok(tr_dataset_load_header(&ac, p), "header");
    ok(tr_dataset_load_tasks(&ac, p, 0, 1), "task a");
    ok(tr_dataset_load_tasks(&ac, p, 2, 1), "task c");
    tr_dataset_task_digests(&part);
    tr_dataset_task_digests(&ac);
    assert_int_equal(part.tasks[0].digest, 0); /* unknown where not loaded */
    for (int t = 0; t < 3; t++) {
        uint64_t d = part.tasks[t].digest | ac.tasks[t].digest;
        part.tasks[t].digest = ac.tasks[t].digest = d;
    }
    tr_dataset_fingerprint(&part, f_b, sizeof(f_b));
    tr_dataset_fingerprint(&ac, f_ac, sizeof(f_ac));
    assert_string_equal(f_b, f_full);
    assert_string_equal(f_ac, f_full);
    assert_int_equal(strncmp(f_full, "v2-", 3), 0);
    /* ... and it sees a change in one task's numbers */
    full.tasks[2].split[TR_SPLIT_VAL].x[1] += 1.0f;
    tr_dataset_fingerprint(&full, f_b, sizeof(f_b));
    assert_string_not_equal(f_b, f_full);
    tr_dataset_free(&src);
    tr_dataset_free(&full);
    tr_dataset_free(&part);
    tr_dataset_free(&ac);
}

static void test_some_splits(void **state) {
    (void)state;
    const int test_only[3] = {1, 1, 0};
    tr_dataset src, got;
    make_multi(&src, test_only);
    const char *p = tmp_path("test_only.h5");
    ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
    ok(tr_dataset_load(&got, p), "load a test-only file");
    assert_false(got.has_split[TR_SPLIT_TRAIN]);
    assert_false(got.has_split[TR_SPLIT_VAL]);
    assert_true(got.has_split[TR_SPLIT_TEST]);
    assert_int_equal(got.tasks[2].split[TR_SPLIT_TRAIN].n, 0);
    assert_int_equal(got.tasks[2].split[TR_SPLIT_TEST].n, 3);
    assert_memory_equal(got.tasks[0].split[TR_SPLIT_TEST].y, src.tasks[0].split[TR_SPLIT_TEST].y,
                        3 * sizeof(int32_t));
    tr_dataset_free(&src);
    tr_dataset_free(&got);
}

/* Shared-input: t0 (3 classes), t1 (regression); float32 y on disk. */
static void make_shared_mixed(tr_dataset *ds) {
    memset(ds, 0, sizeof(*ds));
    ds->setting = TR_SETTING_SHARED_INPUT;
    ds->T = 2;
    ds->ndim = 1;
    ds->dims[0] = 2;
    ds->sample_size = 2;
    ds->tasks = tr_calloc(2, sizeof(tr_task_info));
    snprintf(ds->tasks[0].name, 64, "t0");
    ds->tasks[0].kind = TR_TASK_CLASSIFICATION;
    ds->tasks[0].classes = 3;
    snprintf(ds->tasks[1].name, 64, "t1");
    ds->tasks[1].kind = TR_TASK_REGRESSION;
    ds->tasks[1].classes = 1;
    for (int s = 0; s < TR_SPLIT_COUNT; s++) {
        tr_split_data *sd = &ds->shared[s];
        sd->n = 4;
        sd->x = tr_calloc(8, sizeof(float));
        sd->y = tr_calloc(8, sizeof(int32_t));
        sd->yf = tr_calloc(8, sizeof(float));
        for (int i = 0; i < 8; i++)
            sd->x[i] = (float)(i * (s + 1)) / 3.0f;
        for (int i = 0; i < 4; i++) {
            sd->y[i * 2] = (i + s) % 3;
            sd->yf[i * 2 + 1] = -0.75f * (float)i;
        }
    }
}

static void test_shared_mixed(void **state) {
    (void)state;
    tr_dataset src, got;
    make_shared_mixed(&src);
    const char *p = tmp_path("shared_mixed.h5");
    ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
    ok(tr_dataset_load(&got, p), "load");
    assert_int_equal(got.tasks[1].kind, TR_TASK_REGRESSION);
    for (int s = 0; s < TR_SPLIT_COUNT; s++)
        for (int i = 0; i < 4; i++) {
            assert_int_equal(got.shared[s].y[i * 2], src.shared[s].y[i * 2]);
            assert_true(got.shared[s].yf[i * 2 + 1] == src.shared[s].yf[i * 2 + 1]);
        }
    tr_dataset_free(&got);
    /* a class id that is not a whole number in t0's column */
    src.shared[TR_SPLIT_VAL].y[2] = 7; /* outside [0, 3) */
    ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
    tr_error_clear();
    assert_int_equal(tr_dataset_load(&got, p), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "task t0 is a classification task"));
    assert_non_null(strstr(tr_error_message(), "/val/y has 7 at element 2"));
    tr_error_clear();
    tr_dataset_free(&src);
}

/* A task with 3 classes on an output layer of 5 columns: the loss, the
 * accuracy and the gradient of the first 3 columns alone; the other columns
 * get probability 0 and no gradient. A regression task uses column 0. */
static void test_task_loss_columns(void **state) {
    (void)state;
    tr_task_kind kinds[2] = {TR_TASK_CLASSIFICATION, TR_TASK_REGRESSION};
    int outputs[2] = {3, 1};
    tr_model m;
    memset(&m, 0, sizeof(m));
    m.T = 2;
    m.out_dim = 5;
    m.task_kinds = kinds;
    m.task_outputs = outputs;
    const int n = 4;
    float out[20], probs[20], dout[20], p3[12], d3[12], z3[12];
    int32_t y[4] = {0, 2, 1, 2};
    for (int i = 0; i < 20; i++)
        out[i] = (float)((i * 7) % 11) / 4.0f - 1.0f;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            z3[i * 3 + c] = out[i * 5 + c];
    tr_task_stats st;
    memset(&st, 0, sizeof(st));
    tr_model_task_loss_forward(&m, &st, 0, probs, out, n, y, NULL);
    int64_t correct = 0;
    double loss = tr_softmax_xent_forward(p3, &correct, z3, y, n, 3);
    assert_true(fabs(st.loss_sum - loss) < 1e-12);
    assert_true(st.correct == (double)correct && st.count == n);
    memset(dout, 0, sizeof(dout));
    memset(d3, 0, sizeof(d3));
    tr_model_task_loss_backward(&m, 0, dout, probs, out, n, y, NULL, 0.5f);
    tr_softmax_xent_backward(d3, p3, y, n, 3, 0.5f);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < 3; c++) {
            assert_true(probs[i * 5 + c] == p3[i * 3 + c]);
            assert_true(dout[i * 5 + c] == d3[i * 3 + c]);
        }
        for (int c = 3; c < 5; c++)
            assert_true(probs[i * 5 + c] == 0.0f && dout[i * 5 + c] == 0.0f);
    }
    /* regression: squared error of column 0 */
    float yf[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    memset(&st, 0, sizeof(st));
    tr_model_task_loss_forward(&m, &st, 1, probs, out, n, NULL, yf);
    double sq = 0, ab = 0;
    for (int i = 0; i < n; i++) {
        double e = (double)out[i * 5] - yf[i];
        sq += e * e;
        ab += fabs(e);
    }
    assert_true(fabs(st.loss_sum - sq) < 1e-9 && fabs(st.abs_sum - ab) < 1e-9);
    memset(dout, 0, sizeof(dout));
    tr_model_task_loss_backward(&m, 1, dout, probs, out, n, NULL, yf, 1.0f);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 5; c++)
            assert_true(dout[i * 5 + c] == (c == 0 ? 2.0f * (out[i * 5] - yf[i]) : 0.0f));
}

/* values per example: a train x of 400 rows is 1.1 MB, past the fingerprint's 1 MiB */
#define D 700

/* A dataset of T tasks (multi-input) or T label columns (shared-input):
 * vectors of D, 400 / 30 / 20 examples, values that are not 8-bit. */
static void make_ds(tr_dataset *ds, tr_setting setting, int T) {
    memset(ds, 0, sizeof(*ds));
    ds->setting = setting;
    ds->T = T;
    ds->ndim = 1;
    ds->dims[0] = D;
    ds->sample_size = D;
    ds->tasks = tr_calloc((size_t)T, sizeof(tr_task_info));
    const int64_t n[3] = {400, 30, 20};
    for (int t = 0; t < T; t++) {
        snprintf(ds->tasks[t].name, sizeof(ds->tasks[t].name), "t%d", t);
        ds->tasks[t].kind = TR_TASK_CLASSIFICATION;
        ds->tasks[t].classes = 3;
    }
    int nsd = setting == TR_SETTING_MULTI_INPUT ? T : 1, cols = nsd == 1 ? T : 1;
    for (int k = 0; k < nsd; k++)
        for (int s = 0; s < TR_SPLIT_COUNT; s++) {
            ds->has_split[s] = 1;
            tr_split_data *sd =
                setting == TR_SETTING_MULTI_INPUT ? &ds->tasks[k].split[s] : &ds->shared[s];
            sd->n = n[s];
            sd->x = tr_calloc((size_t)(n[s] * D), sizeof(float));
            for (int64_t i = 0; i < n[s] * D; i++)
                sd->x[i] = sinf(0.001f * (float)(i + 7 * k + 100 * s)) * 3.7f;
            sd->y = tr_calloc((size_t)(n[s] * cols), sizeof(int32_t));
            for (int64_t i = 0; i < n[s] * cols; i++)
                sd->y[i] = (int32_t)((i + k + s) % 3);
        }
}

/* mem and str (streamed) read the same bits: every row, and odd pieces. */
static void expect_same_inputs(const tr_split_data *mem, const tr_split_data *str) {
    assert_null(str->x);
    assert_non_null(str->xs);
    assert_int_equal(mem->n, str->n);
    float a[3 * D], b[3 * D];
    for (int64_t r = 0; r < mem->n; r++) {
        ok(tr_split_x_read(a, mem, (size_t)(r * D), D), "memory row");
        ok(tr_split_x_read(b, str, (size_t)(r * D), D), "streamed row");
        assert_memory_equal(a, b, D * sizeof(float));
    }
    const size_t at[3] = {1, D - 5, (size_t)(mem->n * D) - 2 * D - 3};
    for (int i = 0; i < 3; i++) { /* across row boundaries */
        ok(tr_split_x_read(a, mem, at[i], 2 * D + 3), "memory piece");
        ok(tr_split_x_read(b, str, at[i], 2 * D + 3), "streamed piece");
        assert_memory_equal(a, b, (2 * D + 3) * sizeof(float));
    }
    assert_memory_equal(mem->y, str->y, (size_t)mem->n * sizeof(int32_t));
}

static void stream_all(tr_dataset *ds, const char *p) {
    ok(tr_dataset_load_header(ds, p), "header");
    ok(tr_dataset_stream_tasks(ds, p, 0, ds->T), "stream");
}

static void check_file(const char *p, tr_setting setting) {
    tr_dataset mem, str;
    ok(tr_dataset_load(&mem, p), "load");
    stream_all(&str, p);
    for (int s = 0; s < TR_SPLIT_COUNT; s++) {
        if (setting == TR_SETTING_SHARED_INPUT)
            expect_same_inputs(&mem.shared[s], &str.shared[s]);
        for (int t = 0; setting == TR_SETTING_MULTI_INPUT && t < mem.T; t++)
            expect_same_inputs(&mem.tasks[t].split[s], &str.tasks[t].split[s]);
    }
    char fm[64], fs[64];
    ok(tr_dataset_task_digests(&mem), "digests");
    ok(tr_dataset_task_digests(&str), "streamed digests");
    for (int t = 0; t < mem.T; t++)
        assert_true(mem.tasks[t].digest == str.tasks[t].digest);
    ok(tr_dataset_fingerprint(&mem, fm, sizeof(fm)), "fingerprint");
    ok(tr_dataset_fingerprint(&str, fs, sizeof(fs)), "streamed fingerprint");
    assert_string_equal(fm, fs);
    tr_dataset_free(&mem);
    tr_dataset_free(&str);
}

static void test_stream_same_as_memory(void **state) {
    (void)state;
    const tr_setting settings[2] = {TR_SETTING_MULTI_INPUT, TR_SETTING_SHARED_INPUT};
    for (int k = 0; k < 2; k++) {
        tr_dataset src;
        make_ds(&src, settings[k], 2);
        const char *p = tmp_path(k ? "shared.h5" : "multi.h5");
        ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
        check_file(p, settings[k]);
        tr_dataset_free(&src);
    }
}

/* Rewrite /tasks/t0/train/x of p as a chunked, deflated, big-endian array. */
static void make_chunked(const char *p, const tr_dataset *src) {
    const tr_split_data *sd = &src->tasks[0].split[TR_SPLIT_TRAIN];
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Ldelete(f, "/tasks/t0/train/x", H5P_DEFAULT) >= 0);
    hsize_t dims[2] = {(hsize_t)sd->n, D}, chunk[2] = {7, D};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_chunk(dcpl, 2, chunk) >= 0 && H5Pset_deflate(dcpl, 1) >= 0);
    hid_t d =
        H5Dcreate2(f, "/tasks/t0/train/x", H5T_IEEE_F32BE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, sd->x) >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
}

static void test_stream_hdf5_route(void **state) {
    (void)state;
    tr_dataset src;
    make_ds(&src, TR_SETTING_MULTI_INPUT, 2);
    const char *p = tmp_path("chunked.h5");
    ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
    make_chunked(p, &src);
    check_file(p, TR_SETTING_MULTI_INPUT);
    tr_dataset_free(&src);
}

static void test_stream_not_finite(void **state) {
    (void)state;
    tr_dataset src, str;
    make_ds(&src, TR_SETTING_MULTI_INPUT, 2);
    src.tasks[1].split[TR_SPLIT_VAL].x[29 * D + 4] = NAN;
    const char *p = tmp_path("nan.h5");
    ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
    ok(tr_dataset_load_header(&str, p), "header");
    assert_int_equal(tr_dataset_stream_tasks(&str, p, 0, 2), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "/tasks/t1/val/x contains NaN at element 20304"));
    tr_error_clear();
    tr_dataset_free(&src);
}

static void test_stream_truncated(void **state) {
    (void)state;
    const tr_setting settings[2] = {TR_SETTING_MULTI_INPUT, TR_SETTING_SHARED_INPUT};
    for (int k = 0; k < 2; k++) {
        tr_dataset src, str;
        make_ds(&src, settings[k], 2);
        const char *p = tmp_path("trunc.h5");
        ok(tr_dataset_save(&src, p, "test", 1, ""), "save");
        stream_all(&str, p);
        const tr_split_data *sd = settings[k] == TR_SETTING_MULTI_INPUT
                                      ? &str.tasks[1].split[TR_SPLIT_TRAIN]
                                      : &str.shared[TR_SPLIT_TRAIN];
        float row[D];
        ok(tr_split_x_read(row, sd, 0, D), "before");
        assert_int_equal(truncate(p, 4096), 0); /* while in use */
        assert_int_equal(tr_split_x_read(row, sd, (size_t)(sd->n - 1) * D, D), TR_ERR_DATA);
        assert_non_null(strstr(tr_error_message(), p));
        assert_non_null(strstr(tr_error_message(), "truncated"));
        tr_error_clear();
        tr_dataset_free(&str);
        /* and a file truncated before: refused when opened */
        tr_dataset again;
        assert_int_equal(tr_dataset_load_header(&again, p), TR_ERR_DATA);
        tr_error_clear();
        tr_dataset_free(&src);
    }
}

static int group_setup(void **state) {
    (void)state;
    tr_log_init(0, TR_LOG_WARN);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/taskrel_test_parts_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_then_tasks),     cmocka_unit_test(test_some_splits),
        cmocka_unit_test(test_shared_mixed),          cmocka_unit_test(test_task_loss_columns),
        cmocka_unit_test(test_stream_same_as_memory), cmocka_unit_test(test_stream_hdf5_route),
        cmocka_unit_test(test_stream_not_finite),     cmocka_unit_test(test_stream_truncated),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
