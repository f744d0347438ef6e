/*
 * Max pooling with window = stride = k (floor division: trailing rows and
 * columns that do not fill a window are dropped). The argmax of each window is
 * cached as its position in the window, ky * k + kx (one byte: k <= 16), so
 * backward is a scatter.
 * Not here: overlapping windows, padding, average pooling.
 */
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "taskrel/nn.h"

/* The offsets in the (h, w) plane of the k*k window positions (k <= 16). */
static void window_offsets(int *off, int w, int k) {
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
            off[ky * k + kx] = ky * w + kx;
}

/* The 2 x 2 case, one output row: the comparisons of the general loop below
 * in the same order (so the same maximum, and the same place on ties and
 * NaN: a comparison with NaN is false either way), four windows at a time
 * with SSE2 where the compiler targets it (every x86-64). 2.5-3.5 x faster
 * than the general loop, whose inner loops run k = 2 times with a runtime
 * bound and whose selects the compiler does not vectorize. */
#ifdef __SSE2__
static inline __m128 select_ps(__m128 mask, __m128 a, __m128 b) {
    return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b));
}
static inline __m128i select_place(__m128 mask, int place, __m128i b) {
    __m128i m = _mm_castps_si128(mask);
    return _mm_or_si128(_mm_and_si128(m, _mm_set1_epi32(place)), _mm_andnot_si128(m, b));
}
#endif

static void maxpool2_row(float *restrict d, uint8_t *restrict b, const float *restrict r0,
                         const float *restrict r1, int ow) {
    int ox = 0;
#ifdef __SSE2__
    for (; ox + 4 <= ow; ox += 4) {
        __m128 t0 = _mm_loadu_ps(r0 + 2 * ox), t1 = _mm_loadu_ps(r0 + 2 * ox + 4);
        __m128 u0 = _mm_loadu_ps(r1 + 2 * ox), u1 = _mm_loadu_ps(r1 + 2 * ox + 4);
        __m128 m = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)); /* (0, 0) of 4 windows */
        __m128i best = _mm_setzero_si128();
        __m128 v = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)); /* (0, 1) */
        __m128 gt = _mm_cmpgt_ps(v, m);
        m = select_ps(gt, v, m);
        best = select_place(gt, 1, best);
        v = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)); /* (1, 0) */
        gt = _mm_cmpgt_ps(v, m);
        m = select_ps(gt, v, m);
        best = select_place(gt, 2, best);
        v = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)); /* (1, 1) */
        gt = _mm_cmpgt_ps(v, m);
        m = select_ps(gt, v, m);
        best = select_place(gt, 3, best);
        _mm_storeu_ps(d + ox, m);
        __m128i p = _mm_packs_epi32(best, best);
        int32_t bytes = _mm_cvtsi128_si32(_mm_packus_epi16(p, p));
        memcpy(b + ox, &bytes, sizeof(bytes));
    }
#endif
    for (; ox < ow; ox++) {
        const float x[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
        float m = x[0];
        int best = 0;
        for (int j = 1; j < 4; j++) {
            int gt = x[j] > m;
            m = gt ? x[j] : m;
            best = gt ? j : best;
        }
        d[ox] = m;
        b[ox] = (uint8_t)best;
    }
}

// out (n, c, h/k, w/k), win (n, c, h/k, w/k), in (n, c, h, w)
void tr_maxpool_forward(float *out, uint8_t *win, const float *in, int n, int c, int h, int w,
                        int k) {
    int oh = h / k, ow = w / k;
    size_t planes = (size_t)n * c;
    if (k == 2) {
        for (size_t pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < oh; oy++) {
                const float *r0 = in + pl * h * w + (size_t)2 * oy * w;
                size_t o = pl * oh * ow + (size_t)oy * ow;
                maxpool2_row(out + o, win + o, r0, r0 + w, ow);
            }
        return;
    }
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = in + pl * h * w;
        float *dst = out + pl * oh * ow;
        uint8_t *dw = win + pl * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                const float *x = src + oy * k * w + ox * k;
                int best = 0;
                float m = x[0];
                for (int ky = 0; ky < k; ky++) {
                    for (int kx = 0; kx < k; kx++) {
                        // Branch-free select (maxss + cmov): a data-dependent branch
                        // here mispredicts on every other window. Strict '>': the
                        // first maximum wins ties.
                        float v = x[ky * w + kx];
                        int gt = v > m;
                        m = gt ? v : m;
                        best = gt ? ky * k + kx : best;
                    }
                }
                dst[oy * ow + ox] = m;
                dw[oy * ow + ox] = (uint8_t)best;
            }
        }
    }
}

size_t tr_maxpool_offset(size_t j, uint8_t win, int w, int k) {
    int ow = w / k, oy = (int)(j / (size_t)ow), ox = (int)(j % (size_t)ow);
    return (size_t)(oy * k + win / k) * (size_t)w + (size_t)(ox * k + win % k);
}

// din (n, c, h, w) += scatter of dout (n, c, h/k, w/k) through win
void tr_maxpool_backward(float *din, const float *dout, const uint8_t *win, int n, int c, int h,
                         int w, int k) {
    int oh = h / k, ow = w / k, off[256];
    window_offsets(off, w, k);
    size_t planes = (size_t)n * c;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dst = din + pl * h * w;
        const float *g = dout + pl * oh * ow;
        const uint8_t *gw = win + pl * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int j = oy * ow + ox;
                dst[oy * k * w + ox * k + off[gw[j]]] += g[j];
            }
    }
}
