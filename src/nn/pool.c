/*
 * Max pooling with window = stride = k (floor division: trailing rows and
 * columns that do not fill a window are dropped). The argmax of each window is
 * cached as its position in the window, ky * k + kx (one byte: k <= 16), so
 * backward is a scatter.
 * Not here: overlapping windows, padding, average pooling.
 */
#include "taskrel/nn.h"

/* The offsets in the (h, w) plane of the k*k window positions (k <= 16). */
static void window_offsets(int *off, int w, int k) {
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
            off[ky * k + kx] = ky * w + kx;
}

// out (n, c, h/k, w/k), win (n, c, h/k, w/k), in (n, c, h, w)
void tr_maxpool_forward(float *out, uint8_t *win, const float *in, int n, int c, int h, int w,
                        int k) {
    int oh = h / k, ow = w / k;
    size_t planes = (size_t)n * c;
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
