/*
 * The memory-saving forms give the same numbers, bit for bit: compact
 * dataset inputs (a byte per value and a palette) decode to the loaded
 * floats and keep the fingerprint and the task digests; a convolution's
 * backward from rebuilt im2col columns equals the one from the forward's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "taskrel/dataset.h"
#include "taskrel/nn.h"

/* Task 0: 8-bit values (k / 255, with 0 and -0 as two values) in a small
 * split and one of more than 1 MiB; task 1: more than 256 values. */
static void make_ds(tr_dataset *ds) {
    memset(ds, 0, sizeof(*ds));
    ds->setting = TR_SETTING_MULTI_INPUT;
    ds->T = 2;
    ds->ndim = 1;
    ds->dims[0] = 1000;
    ds->sample_size = 1000;
    ds->tasks = tr_calloc(2, sizeof(tr_task_info));
    const int64_t n[3] = {300, 7, 1};
    uint32_t r = 12345;
    for (int t = 0; t < 2; t++) {
        snprintf(ds->tasks[t].name, sizeof(ds->tasks[t].name), "t%d", t);
        ds->tasks[t].kind = TR_TASK_CLASSIFICATION;
        ds->tasks[t].classes = 2;
        ds->tasks[t].loaded = 1;
        for (int s = 0; s < 3; s++) {
            tr_split_data *sd = &ds->tasks[t].split[s];
            sd->n = n[s];
            sd->x = tr_calloc((size_t)(n[s] * 1000), sizeof(float));
            sd->y = tr_calloc((size_t)n[s], sizeof(int32_t));
            for (int64_t i = 0; i < n[s] * 1000; i++) {
                r = r * 1103515245u + 12345u;
                int k = (int)((r >> 16) % 255); /* with -0: 256 values */
                sd->x[i] = t == 0 ? (k == 0 && (r & 1) ? -0.0f : (float)k / 255.0f)
                                  : (float)(r >> 8) * 1e-6f;
            }
        }
    }
}

static void test_compact_inputs(void **state) {
    (void)state;
    tr_dataset ds;
    make_ds(&ds);
    char fp0[64], fp1[64];
    tr_dataset_fingerprint(&ds, fp0, sizeof(fp0));
    tr_dataset_task_digests(&ds);
    uint64_t d0[2] = {ds.tasks[0].digest, ds.tasks[1].digest};
    float *copy[2][3];
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++) {
            size_t m = (size_t)ds.tasks[t].split[s].n * 1000;
            copy[t][s] = malloc(m * sizeof(float));
            memcpy(copy[t][s], ds.tasks[t].split[s].x, m * sizeof(float));
        }
    assert_int_equal(tr_dataset_compact(&ds), TR_OK);
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++) {
            const tr_split_data *sd = &ds.tasks[t].split[s];
            size_t m = (size_t)sd->n * 1000;
            if (t == 0) {
                assert_null(sd->x);
                assert_non_null(sd->xq);
            } else {
                assert_non_null(sd->x);
                assert_null(sd->xq);
            }
            float *back = malloc(m * sizeof(float));
            tr_split_x_read(back, sd, 0, m);
            assert_memory_equal(back, copy[t][s], m * sizeof(float));
            size_t at = m > 1008 ? 1003 : 2; /* a piece of a row */
            tr_split_x_read(back, sd, at, 5);
            assert_memory_equal(back, copy[t][s] + at, 5 * sizeof(float));
            free(back);
            free(copy[t][s]);
        }
    tr_dataset_fingerprint(&ds, fp1, sizeof(fp1));
    assert_string_equal(fp0, fp1);
    tr_dataset_task_digests(&ds);
    assert_true(ds.tasks[0].digest == d0[0] && ds.tasks[1].digest == d0[1]);
    tr_dataset_free(&ds);
}

static void test_conv_backward_rebuilt(void **state) {
    (void)state;
    const int n = 3, c = 2, h = 9, w = 8, oc = 4, k = 3, pad = 1, stride = 2;
    int oh = tr_conv2d_out_dim(h, k, pad, stride), ow = tr_conv2d_out_dim(w, k, pad, stride);
    size_t csz = tr_conv2d_col_size(c, h, w, k, pad, stride);
    size_t ni = (size_t)n * c * h * w, nw = (size_t)oc * c * k * k, no = (size_t)n * oc * oh * ow;
    float *in = calloc(ni, 4), *wt = calloc(nw, 4), *out = calloc(no, 4), *dout = calloc(no, 4);
    float *col = calloc((size_t)n * csz, 4), *one = calloc(csz, 4), *dcol = calloc(csz, 4);
    float *din[2] = {calloc(ni, 4), calloc(ni, 4)}, *dw[2] = {calloc(nw, 4), calloc(nw, 4)};
    float *db[2] = {calloc(oc, 4), calloc(oc, 4)};
    uint32_t r = 7;
    float *fill[3] = {in, wt, dout};
    size_t len[3] = {ni, nw, no};
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < len[a]; i++) {
            r = r * 1103515245u + 12345u;
            fill[a][i] = (float)((int)(r >> 16) % 2001 - 1000) * 1e-3f;
        }
    tr_conv2d_forward(out, col, in, wt, NULL, n, c, h, w, oc, k, pad, stride);
    tr_conv2d_backward(din[0], dw[0], db[0], dcol, dout, col, wt, n, c, h, w, oc, k, pad, stride);
    tr_conv2d_backward_in(din[1], dw[1], db[1], one, dcol, dout, in, wt, n, c, h, w, oc, k, pad,
                          stride);
    assert_memory_equal(din[0], din[1], ni * 4);
    assert_memory_equal(dw[0], dw[1], nw * 4);
    assert_memory_equal(db[0], db[1], (size_t)oc * 4);
    free(in), free(wt), free(out), free(dout), free(col), free(one), free(dcol);
    for (int i = 0; i < 2; i++)
        free(din[i]), free(dw[i]), free(db[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_inputs),
        cmocka_unit_test(test_conv_backward_rebuilt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
