/*
 * Losses: softmax cross-entropy (classification) and squared error
 * (regression). Forward returns SUMS over rows in double so that callers can
 * add them across segments and ranks and divide once; backward takes the
 * matching `scale` (e.g. 1 / global batch). Not here: label smoothing,
 * class weights, reductions.
 */
#include <math.h>

#include "taskrel/nn.h"

// probs (n, c) cache, logits (n, c), labels (n) in [0, c)
double tr_softmax_xent_forward(float *probs, int64_t *correct, const float *logits,
                               const int32_t *labels, int n, int c) {
    double loss = 0.0;
    int64_t hits = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * c;
        float *p = probs + (size_t)i * c;
        int arg = 0;
        float zmax = z[0];
        for (int j = 1; j < c; j++) {
            if (z[j] > zmax) {
                zmax = z[j];
                arg = j;
            }
        }
        double sum = 0.0;
        for (int j = 0; j < c; j++) {
            float e = expf(z[j] - zmax);
            p[j] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < c; j++)
            p[j] *= inv;
        // -log softmax(z)[y] = log(sum exp(z - zmax)) - (z[y] - zmax): finite even
        // when probs[y] underflows to 0.
        int y = labels[i];
        loss += log(sum) - ((double)z[y] - zmax);
        hits += arg == y;
    }
    if (correct)
        *correct += hits;
    return loss;
}

// dlogits (n, c) += scale * (probs - onehot(labels))
void tr_softmax_xent_backward(float *dlogits, const float *probs, const int32_t *labels, int n,
                              int c, float scale) {
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * c;
        float *d = dlogits + (size_t)i * c;
        for (int j = 0; j < c; j++)
            d[j] += scale * p[j];
        d[labels[i]] -= scale;
    }
}

// pred (n, d), target (n, d): returns sum (pred - target)^2
double tr_mse_forward(double *abs_sum, const float *pred, const float *target, int n, int d) {
    size_t total = (size_t)n * d;
    double sq = 0.0, ab = 0.0;
    for (size_t i = 0; i < total; i++) {
        double e = (double)pred[i] - target[i];
        sq += e * e;
        ab += fabs(e);
    }
    if (abs_sum)
        *abs_sum += ab;
    return sq;
}

// dpred (n, d) += scale * 2 * (pred - target)
void tr_mse_backward(float *dpred, const float *pred, const float *target, int n, int d,
                     float scale) {
    size_t total = (size_t)n * d;
    float s2 = 2.0f * scale;
    for (size_t i = 0; i < total; i++)
        dpred[i] += s2 * (pred[i] - target[i]);
}
