/*
 * Unit tests of the fast paths of the layer kernels against the plain
 * definitions they replace, bitwise:
 *
 *  - 2 x 2 max pooling (vectorised) against the window loop of the general
 *    case: the same maximum and the same place in the window, on data full of
 *    ties (values from {-1, 0, 1}), with NaN and -0.0, on widths whose output
 *    row is not a multiple of the 4 windows done at a time, and with a row
 *    stride wider than two windows per output (odd input width);
 *  - the convolution's stride-1, unpadded im2col, through tr_conv2d_forward:
 *    its output against a direct convolution summed in the same order as
 *    the GEMM cannot be bitwise, so the columns are checked through a
 *    convolution whose weights pick one input tap each (a 0/1 weight makes
 *    the product exact), i.e. every column entry lands in the output exactly.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "taskrel/nn.h"

/* The definition: window (k x k) positions in row order, strict '>' so the
 * first maximum wins, a comparison with NaN false. */
static void maxpool_ref(float *out, uint8_t *win, const float *in, int planes, int h, int w,
                        int k) {
    int oh = h / k, ow = w / k;
    for (int pl = 0; pl < planes; pl++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *x = in + ((size_t)pl * h + oy * k) * w + ox * k;
                float m = x[0];
                int best = 0;
                for (int j = 1; j < k * k; j++) {
                    float v = x[(j / k) * w + j % k];
                    if (v > m) {
                        m = v;
                        best = j;
                    }
                }
                out[((size_t)pl * oh + oy) * ow + ox] = m;
                win[((size_t)pl * oh + oy) * ow + ox] = (uint8_t)best;
            }
}

static void test_maxpool2_matches_definition(void **state) {
    (void)state;
    const int shapes[][2] = {{24, 24}, {8, 8}, {9, 13}, {2, 2}, {6, 17}, {4, 30}};
    const float vals[] = {-1.0f, 0.0f, 1.0f, -0.0f, NAN};
    srand(7);
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int h = shapes[s][0], w = shapes[s][1], planes = 3, oh = h / 2, ow = w / 2;
        size_t n_in = (size_t)planes * h * w, n_out = (size_t)planes * oh * ow;
        float *in = malloc(n_in * sizeof(float)), *out = malloc(n_out * sizeof(float));
        float *ref = malloc(n_out * sizeof(float));
        uint8_t *win = malloc(n_out), *wref = malloc(n_out);
        assert_non_null(in && out && ref && win && wref);
        for (size_t i = 0; i < n_in; i++) /* NaN rarely: most windows decide on ties */
            in[i] = vals[rand() % 20 == 0 ? 4 : rand() % 4];
        tr_maxpool_forward(out, win, in, 1, planes, h, w, 2);
        maxpool_ref(ref, wref, in, planes, h, w, 2);
        for (size_t i = 0; i < n_out; i++) {
            assert_int_equal(win[i], wref[i]);
            assert_memory_equal(&out[i], &ref[i], sizeof(float)); /* -0.0 and NaN bits too */
        }
        free(in);
        free(out);
        free(ref);
        free(win);
        free(wref);
    }
}

/* A k x k convolution of c channels whose output channel o has weight 1 at
 * one tap (channel o % c, position o / c of the k*k) and 0 elsewhere: output
 * o at (y, x) is exactly in[o % c][y + ty][x + tx]. */
static void test_im2col_s1_taps(void **state) {
    (void)state;
    const int c = 3, h = 11, wd = 13, k = 3, oc = c * k * k;
    const int oh = h - k + 1, ow = wd - k + 1, n = 2;
    size_t in_n = (size_t)n * c * h * wd, out_n = (size_t)n * oc * oh * ow;
    float *in = malloc(in_n * sizeof(float)), *out = malloc(out_n * sizeof(float));
    float *wt = calloc((size_t)oc * c * k * k, sizeof(float));
    float *col = malloc(tr_conv2d_col_size(c, h, wd, k, 0, 1) * n * sizeof(float));
    assert_non_null(in && out && wt && col);
    for (size_t i = 0; i < in_n; i++)
        in[i] = (float)((i * 2654435761u) % 1000) / 7.0f - 50.0f;
    for (int o = 0; o < oc; o++)
        wt[(size_t)o * c * k * k + (size_t)(o % c) * k * k + o / c] = 1.0f;
    tr_conv2d_forward(out, col, in, wt, NULL, n, c, h, wd, oc, k, 0, 1);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < oc; o++) {
            int ci = o % c, ty = (o / c) / k, tx = (o / c) % k;
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    float want = in[(((size_t)i * c + ci) * h + y + ty) * wd + x + tx];
                    float got = out[(((size_t)i * oc + o) * oh + y) * ow + x];
                    assert_memory_equal(&got, &want, sizeof(float));
                }
        }
    free(in);
    free(out);
    free(wt);
    free(col);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool2_matches_definition),
        cmocka_unit_test(test_im2col_s1_taps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
