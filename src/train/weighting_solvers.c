/*
 * The solvers of train.weighting on the Gram matrix (weighting_solvers.h).
 * Every gradient the methods form stays in the span of the task gradients,
 * so each is a coefficient vector here and inner products are quadratic
 * forms in G. Float64 throughout; no allocation beyond T-sized stack arrays.
 * Not here: gradients, collectives, state across steps (weighting.c).
 */
#include "weighting_solvers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/core.h"

/* x^T G y */
static double quad(const double *G, const double *x, const double *y, int T) {
    double s = 0.0;
    for (int i = 0; i < T; i++) {
        double r = 0.0;
        for (int j = 0; j < T; j++)
            r += G[(size_t)i * T + j] * y[j];
        s += x[i] * r;
    }
    return s;
}

void tr_wsolve_pcgrad(double *a, const double *G, int T, uint64_t seed, int64_t step) {
    int32_t order[T];
    double c[T];
    memset(a, 0, (size_t)T * sizeof(double));
    for (int i = 0; i < T; i++) {
        memset(c, 0, sizeof(c));
        c[i] = 1.0; /* pc_i = sum_k c_k g_k, starting at g_i */
        tr_rng_permutation(order, T, seed, TR_RNG_PCGRAD, (uint64_t)step * 65536u + (uint64_t)i);
        for (int o = 0; o < T; o++) {
            int j = order[o];
            double gjj = G[(size_t)j * T + j], gij = 0.0;
            for (int k = 0; k < T; k++)
                gij += c[k] * G[(size_t)k * T + j];
            if (gij < 0.0 && gjj > 0.0)
                c[j] -= gij / gjj;
        }
        for (int k = 0; k < T; k++)
            a[k] += c[k];
    }
}

/* ---- MGDA: Frank-Wolfe on the simplex ------------------------------------------------ */

/* min over gamma in [0, 1] of |gamma v1 + (1 - gamma) v2|^2 from the three products. */
static double min_norm_2(double v11, double v12, double v22, double *cost) {
    if (v12 >= v11) {
        *cost = v11;
        return 0.999;
    }
    if (v12 >= v22) {
        *cost = v22;
        return 0.001;
    }
    double gamma = -1.0 * ((v12 - v22) / (v11 + v22 - 2.0 * v12));
    *cost = v22 + gamma * (v12 - v22);
    return gamma;
}

/* Euclidean projection onto the simplex as in the MGDA code (sort, threshold). */
static void mgda_project(double *x, int T) {
    double s[T], sum = 0.0;
    for (int i = 0; i < T; i++) {
        s[i] = x[i];
        sum += x[i];
    }
    for (int i = 1; i < T; i++) /* descending insertion sort: T is small */
        for (int k = i; k > 0 && s[k] > s[k - 1]; k--) {
            double t = s[k];
            s[k] = s[k - 1];
            s[k - 1] = t;
        }
    double tmax = (sum - 1.0) / T, run = 0.0;
    for (int i = 0; i < T - 1; i++) {
        run += s[i];
        double t = (run - 1.0) / (i + 1.0);
        if (t > s[i + 1]) {
            tmax = t;
            break;
        }
    }
    for (int i = 0; i < T; i++)
        x[i] = x[i] - tmax > 0.0 ? x[i] - tmax : 0.0;
}

static void mgda_next_point(double *next, const double *cur, const double *grad, int T) {
    double mean = 0.0, p[T];
    for (int i = 0; i < T; i++)
        mean += grad[i] / T;
    /* step t: the smallest step (> 1e-7) to a face of the box, as the MGDA code
     * takes it: min over the decreasing coordinates if any (else 1), then the
     * min with the increasing ones */
    double t1 = INFINITY, t2 = INFINITY;
    for (int i = 0; i < T; i++) {
        p[i] = grad[i] - mean;
        if (p[i] < 0.0 && -cur[i] / p[i] > 1e-7)
            t1 = fmin(t1, -cur[i] / p[i]);
        if (p[i] > 0.0 && (1.0 - cur[i]) / p[i] > 1e-7)
            t2 = fmin(t2, (1.0 - cur[i]) / p[i]);
    }
    double t = isinf(t1) ? 1.0 : t1;
    if (!isinf(t2))
        t = fmin(t, t2);
    for (int i = 0; i < T; i++)
        next[i] = p[i] * t + cur[i];
    mgda_project(next, T);
}

void tr_wsolve_mgda(double *sol, const double *G, int T) {
    memset(sol, 0, (size_t)T * sizeof(double));
    if (T == 1) {
        sol[0] = 1.0;
        return;
    }
    double dmin = INFINITY;
    for (int i = 0; i < T; i++)
        for (int j = i + 1; j < T; j++) {
            double cost;
            double c =
                min_norm_2(G[(size_t)i * T + i], G[(size_t)i * T + j], G[(size_t)j * T + j], &cost);
            if (cost < dmin) {
                dmin = cost;
                memset(sol, 0, (size_t)T * sizeof(double));
                sol[i] = c;
                sol[j] = 1.0 - c;
            }
        }
    if (T < 3)
        return;
    double dir[T], next[T], nsol[T];
    for (int it = 0; it < 250; it++) {
        for (int i = 0; i < T; i++) {
            dir[i] = 0.0;
            for (int j = 0; j < T; j++)
                dir[i] -= G[(size_t)i * T + j] * sol[j];
        }
        mgda_next_point(next, sol, dir, T);
        double cost, nc = min_norm_2(quad(G, sol, sol, T), quad(G, sol, next, T),
                                     quad(G, next, next, T), &cost);
        double change = 0.0;
        for (int i = 0; i < T; i++) {
            nsol[i] = nc * sol[i] + (1.0 - nc) * next[i];
            change += fabs(nsol[i] - sol[i]);
        }
        if (change < 1e-5)
            return;
        memcpy(sol, nsol, (size_t)T * sizeof(double));
    }
}

/* ---- CAGrad ----------------------------------------------------------------------------- */

/* Euclidean projection onto the probability simplex (sort and threshold). */
static void simplex_project(double *x, int T) {
    double s[T];
    memcpy(s, x, (size_t)T * sizeof(double));
    for (int i = 1; i < T; i++)
        for (int k = i; k > 0 && s[k] > s[k - 1]; k--) {
            double t = s[k];
            s[k] = s[k - 1];
            s[k - 1] = t;
        }
    double run = 0.0, theta = 0.0;
    for (int i = 0; i < T; i++) {
        run += s[i];
        double t = (run - 1.0) / (i + 1.0);
        if (s[i] - t > 0.0)
            theta = t;
    }
    for (int i = 0; i < T; i++)
        x[i] = x[i] - theta > 0.0 ? x[i] - theta : 0.0;
}

typedef struct {
    const double *A; /* (T, T) G / scale */
    double *Ab;      /* (T) A b */
    double c, eps;
    int T;
} cagrad_problem;

static double cagrad_f(const cagrad_problem *p, const double *w, double *grad) {
    int T = p->T;
    double Aw[T], wAw = 0.0, wAb = 0.0;
    for (int i = 0; i < T; i++) {
        Aw[i] = 0.0;
        for (int j = 0; j < T; j++)
            Aw[i] += p->A[(size_t)i * T + j] * w[j];
        wAw += w[i] * Aw[i];
        wAb += w[i] * p->Ab[i];
    }
    double root = sqrt(fmax(wAw, 0.0) + p->eps);
    if (grad)
        for (int i = 0; i < T; i++)
            grad[i] = p->Ab[i] + p->c * Aw[i] / root;
    return wAb + p->c * root;
}

/* Projected gradient descent with backtracking on the normalised problem. */
static void cagrad_solve(double *w, const cagrad_problem *p) {
    int T = p->T;
    double g[T], nw[T], eta = 1.0;
    for (int i = 0; i < T; i++)
        w[i] = 1.0 / T;
    double f = cagrad_f(p, w, g);
    for (int it = 0; it < 20000; it++) {
        double fn = 0.0, lin = 0.0, sq = 0.0, change = 0.0;
        for (int tries = 0; tries < 60; tries++) {
            for (int i = 0; i < T; i++)
                nw[i] = w[i] - eta * g[i];
            simplex_project(nw, T);
            lin = sq = 0.0;
            for (int i = 0; i < T; i++) {
                lin += g[i] * (nw[i] - w[i]);
                sq += (nw[i] - w[i]) * (nw[i] - w[i]);
            }
            fn = cagrad_f(p, nw, NULL);
            if (fn <= f + lin + sq / (2.0 * eta) + 1e-15 * fabs(f))
                break;
            eta *= 0.5;
        }
        for (int i = 0; i < T; i++)
            change += fabs(nw[i] - w[i]);
        memcpy(w, nw, (size_t)T * sizeof(double));
        f = cagrad_f(p, w, g);
        if (change < 1e-13)
            break;
        eta *= 1.5;
    }
}

void tr_wsolve_cagrad(double *a, double *w, const double *G, int T, double calpha, int rescale) {
    double mean = 0.0, diag = 0.0;
    for (int i = 0; i < T * T; i++)
        mean += G[i] / ((double)T * T);
    for (int i = 0; i < T; i++)
        diag += G[(size_t)i * T + i] / T;
    double c = calpha * sqrt(mean + 1e-8) + 1e-8;
    double *A = diag > 0.0 ? malloc((size_t)T * T * sizeof(double)) : NULL;
    if (A) {
        cagrad_problem p = {.A = A, .T = T, .c = c / sqrt(diag), .eps = 1e-8 / diag};
        for (int i = 0; i < T * T; i++)
            A[i] = G[i] / diag;
        double Ab[T];
        p.Ab = Ab;
        for (int i = 0; i < T; i++) {
            p.Ab[i] = 0.0;
            for (int j = 0; j < T; j++)
                p.Ab[i] += A[(size_t)i * T + j] / T;
        }
        cagrad_solve(w, &p);
        free(A);
    } else { /* no gradient (or no memory): the mean gradient's direction */
        for (int i = 0; i < T; i++)
            w[i] = 1.0 / T;
    }
    double gw = sqrt(fmax(quad(G, w, w, T), 0.0));
    double lambda = c / (gw + 1e-8);
    double div = rescale == 1 ? 1.0 + calpha * calpha : rescale == 2 ? 1.0 + calpha : 1.0;
    for (int i = 0; i < T; i++)
        a[i] = (1.0 / T + lambda * w[i]) / div;
}

/* ---- GradNorm ----------------------------------------------------------------------------- */

void tr_wsolve_scaled_softmax(double *w, const double *z, int T) {
    double mx = z[0], sum = 0.0;
    for (int i = 1; i < T; i++)
        mx = fmax(mx, z[i]);
    for (int i = 0; i < T; i++) {
        w[i] = exp(z[i] - mx);
        sum += w[i];
    }
    for (int i = 0; i < T; i++)
        w[i] = T * w[i] / sum;
}

void tr_wsolve_gradnorm(double *dz, const double *z, const double *n, const double *r, int T,
                        double alpha) {
    double w[T], dw[T], gmean = 0.0, rmean = 0.0;
    tr_wsolve_scaled_softmax(w, z, T);
    for (int t = 0; t < T; t++) {
        gmean += w[t] * n[t] / T;
        rmean += r[t] / T;
    }
    for (int t = 0; t < T; t++) {
        double target = gmean * pow(r[t] / rmean, alpha); /* held constant */
        double d = w[t] * n[t] - target;
        dw[t] = (d > 0.0 ? 1.0 : d < 0.0 ? -1.0 : 0.0) * n[t];
    }
    /* w = T softmax(z): dL/dz_k = p_k T (dL/dw_k - sum_t p_t dL/dw_t), p = w / T */
    double avg = 0.0;
    for (int t = 0; t < T; t++)
        avg += (w[t] / T) * dw[t];
    for (int k = 0; k < T; k++)
        dz[k] = w[k] * (dw[k] - avg);
}
