/*
 * Parameter initialisation from the counter-based RNG: each tensor draws from
 * its own stream (seed, TR_RNG_INIT, stream), so values do not depend on the
 * declaration order of other tensors or on the number of ranks. The fan-in
 * based bounds (Kaiming, PyTorch defaults) are chosen by the model, not here.
 */
#include "taskrel/nn.h"

// w (n) ~ U(-bound, bound)
void tr_init_uniform(float *w, size_t n, float bound, uint64_t seed, uint64_t stream) {
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_INIT, stream);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((2.0 * tr_rng_uniform(&r) - 1.0) * bound);
}

// w (n) ~ N(0, std^2)
void tr_init_normal(float *w, size_t n, float std, uint64_t seed, uint64_t stream) {
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_INIT, stream);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(tr_rng_normal(&r) * std);
}
