/*
 * Private inner loops of the layers: copies, adds, fills and reductions over
 * short float rows. Why a header of loops: the default build is -O2, where
 * GCC's cheap vectoriser skips loops of unknown length and reductions keep
 * one serial dependency chain (4 cycles per element). Each loop here runs in
 * blocks of 8 with a fixed-length inner loop (vectorised at -O2) and 8
 * independent partial sums, plus a scalar tail; `restrict` drops the
 * run-time aliasing checks. Not a BLAS: anything with reuse goes to sgemm.
 */
#ifndef TASKREL_NN_KERNELS_H
#define TASKREL_NN_KERNELS_H

#include <stddef.h>

// d (n) = s (n)
static inline void k_copy(float *restrict d, const float *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            d[i + j] = s[i + j];
    for (; i < n; i++)
        d[i] = s[i];
}

// d (n) += s (n)
static inline void k_add(float *restrict d, const float *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            d[i + j] += s[i + j];
    for (; i < n; i++)
        d[i] += s[i];
}

// d (n) = v
static inline void k_fill(float *restrict d, float v, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            d[i + j] = v;
    for (; i < n; i++)
        d[i] = v;
}

// sum of s (n) in float with 8 partial sums (n is at most a few thousand)
static inline float k_sum(const float *restrict s, size_t n) {
    float a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            a[j] += s[i + j];
    float t = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    for (; i < n; i++)
        t += s[i];
    return t;
}

// sum of a .* b (n) in float with 8 partial sums
static inline float k_dot(const float *restrict a, const float *restrict b, size_t n) {
    float p[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            p[j] += a[i + j] * b[i + j];
    float t = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (; i < n; i++)
        t += a[i] * b[i];
    return t;
}

// *sum += sum(s), *sumsq += sum(s^2) over s (n), accumulated in double
static inline void k_sums_d(double *sum, double *sumsq, const float *restrict s, size_t n) {
    double a[8] = {0}, q[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            double x = s[i + j];
            a[j] += x;
            q[j] += x * x;
        }
    double ta = 0.0, tq = 0.0;
    for (int j = 0; j < 8; j++)
        ta += a[j], tq += q[j];
    for (; i < n; i++) {
        double x = s[i];
        ta += x;
        tq += x * x;
    }
    *sum += ta;
    *sumsq += tq;
}

// *sa += sum(a), *sab += sum(a .* b) over (n), accumulated in double
static inline void k_sum_dot_d(double *sa, double *sab, const float *restrict a,
                               const float *restrict b, size_t n) {
    double p[8] = {0}, q[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            double x = a[i + j];
            p[j] += x;
            q[j] += x * b[i + j];
        }
    double tp = 0.0, tq = 0.0;
    for (int j = 0; j < 8; j++)
        tp += p[j], tq += q[j];
    for (; i < n; i++) {
        tp += a[i];
        tq += (double)a[i] * b[i];
    }
    *sa += tp;
    *sab += tq;
}

#endif
