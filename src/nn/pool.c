/*
 * Max pooling with window = stride = k (floor division: trailing rows and
 * columns that do not fill a window are dropped). The argmax of each window is
 * cached as an offset into its (h, w) plane so backward is a scatter.
 * Not here: overlapping windows, padding, average pooling.
 */
#include "taskrel/nn.h"

// out (n, c, h/k, w/k), idx (n, c, h/k, w/k), in (n, c, h, w)
void tr_maxpool_forward(float *out, int32_t *idx, const float *in, int n, int c, int h, int w,
                        int k) {
    int oh = h / k, ow = w / k;
    size_t planes = (size_t)n * c;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = in + pl * h * w;
        float *dst = out + pl * oh * ow;
        int32_t *di = idx + pl * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                int best = oy * k * w + ox * k;
                float m = src[best];
                for (int ky = 0; ky < k; ky++) {
                    int base = (oy * k + ky) * w + ox * k;
                    for (int kx = 0; kx < k; kx++) {
                        // Branch-free select (maxss + cmov): a data-dependent branch
                        // here mispredicts on every other window. Strict '>': the
                        // first maximum wins ties.
                        float v = src[base + kx];
                        int gt = v > m;
                        m = gt ? v : m;
                        best = gt ? base + kx : best;
                    }
                }
                dst[oy * ow + ox] = m;
                di[oy * ow + ox] = best;
            }
        }
    }
}

// din (n, c, h, w) += scatter of dout (n, c, h/k, w/k) through idx
void tr_maxpool_backward(float *din, const float *dout, const int32_t *idx, int n, int c, int h,
                         int w, int k) {
    size_t plane_out = (size_t)(h / k) * (w / k);
    size_t planes = (size_t)n * c;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dst = din + pl * h * w;
        const float *g = dout + pl * plane_out;
        const int32_t *gi = idx + pl * plane_out;
        for (size_t j = 0; j < plane_out; j++)
            dst[gi[j]] += g[j];
    }
}
