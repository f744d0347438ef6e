/*
 * The small dense problems of train.weighting, solved from the T x T Gram
 * matrix G of the task gradients (G_ij = <g_i, g_j>, float64, identical on
 * every rank): each returns coefficients a (T) such that the update of the
 * shared parameters is sum_t a_t g_t. Serial and deterministic: the same G
 * gives the same a on every rank. Not here: the gradients, the collectives
 * (weighting.c).
 */
#ifndef TASKREL_WEIGHTING_SOLVERS_H
#define TASKREL_WEIGHTING_SOLVERS_H

#include <stdint.h>

/* PCGrad (Yu et al. 2020, LibMTL's loop): for each task i a random order of
 * all tasks (keyed on seed, step and i); g_i is projected off every g_j it
 * conflicts with (<pc_i, g_j> < 0), in that order; a = the sum of the
 * projected gradients' coefficients. */
void tr_wsolve_pcgrad(double *a, const double *G, int T, uint64_t seed, int64_t step);

/* MGDA's min-norm point of the convex hull of the gradients (Sener & Koltun
 * 2018; the Frank-Wolfe solver of their code, 250 iterations, stop at an L1
 * change < 1e-5): sol (T) on the simplex minimising |sum_t sol_t g_t|. */
void tr_wsolve_mgda(double *sol, const double *G, int T);

/* CAGrad (Liu et al. 2021): w on the simplex minimising
 * w^T G b + c sqrt(w^T G w + 1e-8), b = 1/T, c = calpha sqrt(mean(G) + 1e-8) + 1e-8
 * (projected gradient descent with backtracking, to a change < 1e-13);
 * a_t = (1/T + lambda w_t) / rescale, lambda = c / (sqrt(w^T G w) + 1e-8),
 * rescale 1, 1 + calpha^2 or 1 + calpha for kind 0, 1, 2. Writes w too. */
void tr_wsolve_cagrad(double *a, double *w, const double *G, int T, double calpha, int rescale);

/* w = T softmax(z). */
void tr_wsolve_scaled_softmax(double *w, const double *z, int T);

/* GradNorm (Chen et al. 2018, LibMTL's form): with w = T softmax(z), task
 * gradient norms n (T) and loss ratios r_t = L_t / L_t(0), the gradient of
 * sum_t |w_t n_t - mean_s(w_s n_s) (r_t / mean(r))^alpha| with respect to z
 * (the target term held constant). */
void tr_wsolve_gradnorm(double *dz, const double *z, const double *n, const double *r, int T,
                        double alpha);

#endif
