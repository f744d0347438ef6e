/*
 * Elementwise activations: ReLU and inverted dropout.
 * Dropout masks come from the counter-based RNG keyed per (layer, step,
 * sample id), never from the position of a sample in the batch or the rank,
 * so every rank count sees the same masks. Not here: other activations.
 */
#include "taskrel/nn.h"

/* The inner loops are branch-free selects in blocks of 8 (see kernels.h):
 * with random signs a branch per element mispredicts half the time, which
 * made ReLU cost as much as lenet's conv2. NaN maps to 0 (x > 0 is false). */
void tr_relu_forward(float *out, const float *in, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float x[8]; // loaded first: out may alias in
        for (int j = 0; j < 8; j++)
            x[j] = in[i + j];
        for (int j = 0; j < 8; j++)
            out[i + j] = x[j] > 0.0f ? x[j] : 0.0f;
    }
    for (; i < n; i++) {
        float x = in[i];
        out[i] = x > 0.0f ? x : 0.0f;
    }
}

// din += dout * (out > 0); uses the forward output, so in-place forward is fine
void tr_relu_backward(float *restrict din, const float *restrict dout, const float *restrict out,
                      size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float d = dout[i + j]; // unconditional load: lets the select be branch-free
            din[i + j] += out[i + j] > 0.0f ? d : 0.0f;
        }
    for (; i < n; i++) {
        float d = dout[i];
        din[i] += out[i] > 0.0f ? d : 0.0f;
    }
}

/* Per-layer salt mixed into the seed so that two dropout layers in the same
 * step draw independent masks (golden-ratio multiply, then a splitmix64
 * finaliser so that nearby layer numbers give unrelated keys). */
static uint64_t layer_salt(uint32_t layer) {
    uint64_t z = ((uint64_t)layer + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float keep_scale(float p) {
    return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
}

// out (n, d), mask (n, d) cache of 0/1, in (n, d), sample_ids (n)
void tr_dropout_forward(float *out, uint8_t *mask, const float *in, int n, int d, float p,
                        uint64_t seed, uint32_t layer, uint64_t step, const int64_t *sample_ids) {
    float scale = keep_scale(p);
    uint64_t key = seed ^ layer_salt(layer);
    for (int i = 0; i < n; i++) {
        // The low 32 bits of the sample id share the stream index with the step;
        // the high 32 bits (e.g. the task of a multi-input sample) salt the key.
        uint64_t id = (uint64_t)sample_ids[i];
        uint64_t index = (step << 32) | (id & 0xFFFFFFFFull);
        tr_rng r;
        tr_rng_init(&r, key ^ layer_salt(0x80000000u ^ (uint32_t)(id >> 32)), TR_RNG_DROPOUT,
                    index);
        const float *x = in + (size_t)i * d;
        float *y = out + (size_t)i * d;
        uint8_t *m = mask + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            m[j] = tr_rng_uniform(&r) >= (double)p;
            y[j] = x[j] * ((float)m[j] * scale); // mask is 0/1: no branch on it
        }
    }
}

// din (n, d) += dout * mask / (1 - p)
void tr_dropout_backward(float *din, const float *dout, const uint8_t *mask, int n, int d,
                         float p) {
    float scale = keep_scale(p);
    size_t total = (size_t)n * d;
    for (size_t i = 0; i < total; i++)
        din[i] += dout[i] * ((float)mask[i] * scale);
}
