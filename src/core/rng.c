/*
 * Counter-based RNG: Philox4x32-10 (Salmon et al., SC'11). A stream is keyed
 * on (seed, purpose, index): key = seed, counter = (block, purpose, index).
 * Any draw can be recomputed from its key and position alone, so random
 * numbers never depend on the number of ranks or on call order.
 */
#include "taskrel/core.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox_round(uint32_t ctr[4], const uint32_t key[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * ctr[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * ctr[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c0 = hi1 ^ ctr[1] ^ key[0];
    uint32_t c2 = hi0 ^ ctr[3] ^ key[1];
    ctr[0] = c0;
    ctr[1] = lo1;
    ctr[2] = c2;
    ctr[3] = lo0;
}

static void philox10(uint32_t out[4], const uint32_t in[4], const uint32_t key_in[2]) {
    uint32_t c[4] = {in[0], in[1], in[2], in[3]};
    uint32_t k[2] = {key_in[0], key_in[1]};
    for (int i = 0; i < 10; i++) {
        philox_round(c, k);
        k[0] += PHILOX_W0;
        k[1] += PHILOX_W1;
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

/* Counter words: ctr[0] = block (low), ctr[1] = purpose, ctr[2..3] = index.
 * 2^32 blocks of 4 words per stream is far beyond any use here. */
void tr_rng_init(tr_rng *r, uint64_t seed, uint32_t purpose, uint64_t index) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = purpose;
    r->ctr[2] = (uint32_t)index;
    r->ctr[3] = (uint32_t)(index >> 32);
    r->pos = 4;
    r->has_spare = 0;
    r->spare = 0.0;
}

uint32_t tr_rng_u32(tr_rng *r) {
    if (r->pos == 4) {
        philox10(r->buf, r->ctr, r->key);
        r->ctr[0]++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t tr_rng_u64(tr_rng *r) {
    uint64_t hi = tr_rng_u32(r);
    return (hi << 32) | tr_rng_u32(r);
}

double tr_rng_uniform(tr_rng *r) {
    return (double)(tr_rng_u64(r) >> 11) * 0x1.0p-53;
}

double tr_rng_normal(tr_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do {
        u1 = tr_rng_uniform(r);
    } while (u1 <= 0.0);
    u2 = tr_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    double th = 2.0 * 3.14159265358979323846 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

uint32_t tr_rng_below(tr_rng *r, uint32_t n) {
    if (n <= 1)
        return 0;
    /* Lemire's nearly-divisionless method with rejection: unbiased. */
    uint64_t m = (uint64_t)tr_rng_u32(r) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (lo < t) {
            m = (uint64_t)tr_rng_u32(r) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double tr_rng_uniform_at(uint64_t seed, uint32_t purpose, uint64_t index, uint64_t k) {
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    /* two words per double: block k/2, words (k%2)*2 .. +1 */
    uint32_t ctr[4] = {(uint32_t)(k >> 1), purpose, (uint32_t)index, (uint32_t)(index >> 32)};
    uint32_t out[4];
    philox10(out, ctr, key);
    int w = (int)(k & 1) * 2;
    uint64_t v = ((uint64_t)out[w] << 32) | out[w + 1];
    return (double)(v >> 11) * 0x1.0p-53;
}

void tr_rng_permutation(int32_t *perm, int32_t n, uint64_t seed, uint32_t purpose, uint64_t index) {
    tr_rng r;
    tr_rng_init(&r, seed, purpose, index);
    for (int32_t i = 0; i < n; i++)
        perm[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)tr_rng_below(&r, (uint32_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
