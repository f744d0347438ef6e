/*
 * MRN math (docs/algorithms.md, "MRN"): the tensor-normal prior
 * TN(0, Σ1, Σ2, Σ3) on one task-specific layer, in double precision, serial.
 * No MPI and no layers: a distributed caller all-gathers the weights and all-reduces the partial
 * sums that these functions return (see "Distributed use" below).
 *
 * Conventions
 *  - Weights W ∈ R^{D1×D2×T} are task-major: W_t is a row-major D1×D2 matrix at
 *    w + t*d1*d2 (D1 inputs, D2 outputs). The caller converts from float32.
 *  - Covariances Σ_k and precisions Ω_k are row-major symmetric n×n matrices
 *    (n = D1, D2, T for k = 1, 2, 3). Inputs must be symmetric: depending on the
 *    function one triangle or both are read. Outputs have both triangles written.
 *  - vec(W) stacks the first index fastest: vec(W)[a + D1*(b + D2*t)] = W_t[a,b],
 *    so (Ω3⊗Ω2⊗Ω1)[(a,b,t),(a',b',t')] = Ω3[t,t'] Ω2[b,b'] Ω1[a,a'] and
 *    (Ω3⊗Ω2⊗Ω1) vec(W) = vec(Y) with Y_t = Σ_j Ω3[t,j] Ω1 W_j Ω2. The Kronecker
 *    product is never formed.
 *  - Task ranges: [t0, t0+tn) with 0 <= t0, 0 <= tn, t0 + tn <= t; tn = 0 is allowed.
 *    Per-task outputs for a range are (tn, d1, d2) arrays: task t0+k at + k*d1*d2.
 *  - Eigen-decompositions are U diag(·) Uᵀ with U row-major n×n, eigenvector k in
 *    column k (U[i*n + k]), in LAPACK's order (covariance eigenvalues ascending).
 *  - Every function returns a tr_status; bad sizes are TR_ERR_INTERNAL (a bug in
 *    the caller), LAPACK failures TR_ERR_LAPACK, a non-finite or non-positive
 *    covariance spectrum TR_ERR_NUMERIC. Scratch memory is allocated per call and
 *    freed before return (sizes noted per function); no global state.
 *
 * Distributed use (the trainer's wiring; every rank owns tasks [t0, t0+tn)):
 *  - prior gradient / value: all-gather W (T·D1·D2) within replica_comm, call
 *    tr_mrn_prior_grad for the owned range; the value parts sum (all-reduce) to
 *    the full prior value.
 *  - covariance update of mode k: all-gather W, tr_mrn_cov_part for the owned
 *    range, all-reduce (SUM) the n_k×n_k buffer, tr_mrn_cov_finalize, then (floor
 *    numerics) tr_mrn_cov_normalize and the precisions, identically on every rank.
 *  - proximal step: tr_mrn_prox_rotate on the owned tasks, all-gather the rotated
 *    X (T·D1·D2), tr_mrn_prox_finish for the owned range — no all-gather of W is
 *    needed for it. tr_mrn_prox is the same with all W given (serial / tests).
 */
#ifndef TASKREL_MRN_MATH_H
#define TASKREL_MRN_MATH_H

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The three modes of the weight tensor (mrn.modes = feature, class, task). */
typedef enum {
    TR_MRN_MODE_FEATURE = 0, /* Σ1, D1×D1 (layer inputs) */
    TR_MRN_MODE_CLASS,       /* Σ2, D2×D2 (layer outputs) */
    TR_MRN_MODE_TASK,        /* Σ3, T×T */
    TR_MRN_MODE_COUNT
} tr_mrn_mode;

/* Constants of mrn.numerics = official (the published code, thuml/MTlearn). */
#define TR_MRN_OFFICIAL_EPS 1e-5         /* ε added to the covariance diagonal */
#define TR_MRN_OFFICIAL_THRESHOLD 0.1    /* eigenvalues above it are inverted */
#define TR_MRN_OFFICIAL_TRACE_CAP 3000.0 /* tr(Ω) is scaled down to this */

/* ---- precisions ------------------------------------------------------------- */

/* Precision by the continuous eigenvalue floor (mrn.numerics = floor):
 *   Σ = U diag(s) Uᵀ,  floor = eig_floor * mean(s),  p = 1 / max(s, floor),
 *   Ω = U diag(p) Uᵀ,  ln|Ω| = Σ_k ln p_k.
 * omega (n, n); u (n, n) or NULL; p (n) or NULL, p[k] belongs to column k of u
 * (s ascending, so p[0] is the largest precision eigenvalue); logdet or NULL;
 * sigma (n, n) symmetric (upper triangle read). eig_floor > 0 (TR_ERR_CONFIG
 * otherwise); mean(s) must be finite and > 0 (TR_ERR_NUMERIC). The rule is scale
 * equivariant: Ω(cΣ) = Ω(Σ)/c. Scratch: 2 n² doubles. */
tr_status tr_mrn_precision_floor(double *omega, double *u, double *p, double *logdet,
                                 const double *sigma, double eig_floor, int n);

/* Precision by the published code's rule (mrn.numerics = official):
 *   p_k = 1/s_k if |s_k| > 0.1 else s_k      (discontinuous at 0.1, kept on purpose)
 *   if Σ_k p_k = tr(Ω) > 3000: p *= 3000 / tr(Ω)   (so tr(Ω) = 3000 exactly)
 *   Ω = U diag(p) Uᵀ,  ln|Ω| = Σ_k ln p_k (after the cap; -HUGE_VAL if some p_k <= 0).
 * The original applies the rule to the singular values of Σ; for a symmetric Σ
 * that is the same as applying "1/s if |s| > 0.1 else s" to its eigenvalues with
 * their signs (a negative rounding-level eigenvalue stays as it is), which is what
 * is done here. Arguments as tr_mrn_precision_floor. */
tr_status tr_mrn_precision_official(double *omega, double *u, double *p, double *logdet,
                                    const double *sigma, int n);

/* omega (n, n) = U diag(p) Uᵀ, exactly symmetric. u (n, n), p (n). */
tr_status tr_mrn_precision_from_eig(double *omega, const double *u, const double *p, int n);

/* The precision eigenvalues p (n) and ln|Ω| from covariance eigenvalues s (n,
 * ascending) computed elsewhere (e.g. ScaLAPACK): the floor rule (official = 0)
 * or the published code's rule (official = 1), exactly as the two functions above. */
tr_status tr_mrn_precision_eigvals(double *p, double *logdet, const double *s, int official,
                                   double eig_floor, int n);

/* Multiply a precision and its eigenvalues by c > 0 (after tr_mrn_cov_normalize
 * moved a factor between the covariances): omega *= c, p *= c, logdet += n ln c.
 * p and logdet may be NULL. */
void tr_mrn_precision_scale(double *omega, double *p, double *logdet, double c, int n);

/* ---- prior value and gradient ------------------------------------------------ */

/* Prior value of the owned tasks (λ/2) Σ_{t in [t0,t0+tn)} tr(W_tᵀ Ω1 M_t Ω2),
 * M_t = Σ_j Ω3[t,j] W_j. Summed over a partition of 0..T-1 it gives the full value
 * (λ/2) vec(W)ᵀ (Ω3⊗Ω2⊗Ω1) vec(W); t0 = 0, tn = t gives it directly.
 * w (t, d1, d2) all tasks; omega1 (d1, d1), omega2 (d2, d2), omega3 (t, t).
 * Same cost as tr_mrn_prior_grad. Scratch: (tn + 1) d1 d2 doubles. */
tr_status tr_mrn_prior_value(double *value, const double *w, const double *omega1,
                             const double *omega2, const double *omega3, double lambda, int d1,
                             int d2, int t, int t0, int tn);

/* Prior gradient of the owned tasks, G_t = λ Ω1 M_t Ω2 (OVERWRITES g; the caller
 * adds it to its float gradient), and optionally their value part as
 * tr_mrn_prior_value (value may be NULL).
 * g (tn, d1, d2); w (t, d1, d2) all tasks (all-gathered); g must not overlap w.
 * Cost O(tn·T·D1·D2 + tn·(D1²·D2 + D1·D2²)). Scratch: d1 d2 doubles. */
tr_status tr_mrn_prior_grad(double *g, double *value, const double *w, const double *omega1,
                            const double *omega2, const double *omega3, double lambda, int d1,
                            int d2, int t, int t0, int tn);

/* ---- covariance updates (maximum likelihood flip-flop) ---------------------- */

/* Unscaled partial sum of one mode's covariance over the owned rows i in
 * [t0, t0+tn) (all j), with A_i = Σ_j Ω3[i,j] W_j:
 *   FEATURE  part (d1, d1) = Σ_i Σ_j Ω3[i,j] W_i Ω2 W_jᵀ = Σ_i (W_i Ω2) A_iᵀ
 *   CLASS    part (d2, d2) = Σ_i Σ_j Ω3[i,j] W_iᵀ Ω1 W_j = Σ_i W_iᵀ (Ω1 A_i)
 *   TASK     part (t, t):  rows i of [tr(W_iᵀ Ω1 W_j Ω2)]_{ij}, other rows 0
 * OVERWRITES part. The partial sum is not symmetric; the sum over a partition of
 * the tasks is (up to rounding). The omega of the mode being updated is not read
 * (may be NULL); the others are the newest precisions.
 * Cost FEATURE/CLASS/TASK: O(tn·(T·D1·D2 + D1²·D2 + D1·D2²)).
 * Scratch: FEATURE 2 tn d1 d2, CLASS tn d1 d2 + d1 d2, TASK tn d1 d2 + d1 d2 doubles. */
tr_status tr_mrn_cov_part(double *part, tr_mrn_mode mode, const double *w, const double *omega1,
                          const double *omega2, const double *omega3, int d1, int d2, int t, int t0,
                          int tn);

/* The maximum-likelihood normaliser of a mode, 1 / (D / D_k):
 * FEATURE 1/(D2·T), CLASS 1/(D1·T), TASK 1/(D1·D2). Official numerics use 1. */
double tr_mrn_cov_scale(tr_mrn_mode mode, int d1, int d2, int t);

/* Finish an update from the summed parts, in place:
 *   sigma = scale · (S + Sᵀ)/2 + eps · I.
 * Floor numerics: scale = tr_mrn_cov_scale(mode, ...), eps = mrn's ε;
 * official: scale = 1, eps = TR_MRN_OFFICIAL_EPS. sigma (n, n). */
void tr_mrn_cov_finalize(double *sigma, double scale, double eps, int n);

/* [choice] Scale: rescale Σ1 to trace D1 and Σ2 to trace D2 and move the factor
 * into Σ3, so that Σ3⊗Σ2⊗Σ1 is unchanged:
 *   a = d1 / tr(Σ1), b = d2 / tr(Σ2);  Σ1 *= a;  Σ2 *= b;  Σ3 /= a·b.
 * sigma1 or sigma2 may be NULL (that factor is left alone, its factor is 1).
 * factor3 (or NULL) receives 1/(a·b), the factor applied to Σ3. With floor
 * numerics the precisions follow exactly: Ω1 /= a, Ω2 /= b, Ω3 *= a·b
 * (tr_mrn_precision_scale), or recompute them. Not meant for official numerics
 * (the trace cap is not scale equivariant; official learns the task mode only).
 * A non-positive or non-finite trace is TR_ERR_NUMERIC (nothing is changed). */
tr_status tr_mrn_cov_normalize(double *sigma1, double *sigma2, double *sigma3, double *factor3,
                               int d1, int d2, int t);

/* ---- proximal step ------------------------------------------------------------ */

/* Exact implicit step of the prior,
 *   vec(W) <- (I + eta·λ·Ω3⊗Ω2⊗Ω1)^{-1} vec(W),
 * from the precisions' eigen-decompositions Ω_k = U_k diag(p_k) U_kᵀ (as returned by
 * tr_mrn_precision_*): W̃_i = U1ᵀ (Σ_j U3[j,i] W_j) U2, W̃_i[a,b] /= 1 + eta λ p3_i
 * p1_a p2_b, W_i = U1 (Σ_j U3[i,j] W̃_j) U2ᵀ. Writes only the owned tasks.
 * w_out (tn, d1, d2), may alias w + t0*d1*d2; w (t, d1, d2) all tasks;
 * u1 (d1, d1), u2 (d2, d2), u3 (t, t); p1 (d1), p2 (d2), p3 (t).
 * eta·λ·p3·p1·p2 > -1 is required (always true for positive precisions).
 * u1 or u2 may be NULL: that factor is the identity (its p must then be given
 * as usual; a mode that is not learned has p = 1), and its products are skipped.
 * Scratch: 2 t d1 d2 + d1 d2 doubles. */
tr_status tr_mrn_prox(double *w_out, const double *w, const double *u1, const double *u2,
                      const double *u3, const double *p1, const double *p2, const double *p3,
                      double eta, double lambda, int d1, int d2, int t, int t0, int tn);

/* The two halves of tr_mrn_prox for a distributed caller:
 * tr_mrn_prox_rotate: x_k = U1ᵀ W_k U2 for n tasks (no task mixing; run on the
 * owned tasks, then all-gather x). x (n, d1, d2), w (n, d1, d2); x may equal w.
 * Scratch: d1 d2 doubles. */
tr_status tr_mrn_prox_rotate(double *x, const double *w, const double *u1, const double *u2, int d1,
                             int d2, int n);
/* tr_mrn_prox_finish: from x (t, d1, d2) of ALL tasks (tr_mrn_prox_rotate'd), the
 * task rotation, the division and the rotation back, for the owned tasks.
 * w_out (tn, d1, d2) must not overlap x. Scratch: t d1 d2 + d1 d2 doubles. */
tr_status tr_mrn_prox_finish(double *w_out, const double *x, const double *u1, const double *u2,
                             const double *u3, const double *p1, const double *p2, const double *p3,
                             double eta, double lambda, int d1, int d2, int t, int t0, int tn);

/* tr_mrn_prox_rotate's inverse: w_k = U1 x_k U2ᵀ for n tasks (an absent U is the
 * identity). w (n, d1, d2), x (n, d1, d2); w may equal x. Scratch: d1 d2 doubles. */
tr_status tr_mrn_unrotate(double *w, const double *x, const double *u1, const double *u2, int d1,
                          int d2, int n);

/* ---- options that bound the prior (src/linalg/mrn_centre.c) ------------------- */

/* mrn.mean = shared. mean (d1, d2) = W̄ = (1/T) Σ_t W_t of w (t, d1, d2), summed in
 * task order (the same bits on every rank that holds the same w). */
void tr_mrn_task_mean(double *mean, const double *w, int d1, int d2, int t);
/* dev_k = w_k - mean for n tasks; dev (n, d1, d2) may equal w (n, d1, d2). */
void tr_mrn_centre(double *dev, const double *w, const double *mean, int d1, int d2, int n);
/* omega_c (t, t) = C Ω3 C with C = I - 11ᵀ/T, the task precision of the centred
 * penalty ½ vec(D)ᵀ (Ω3⊗Ω2⊗Ω1) vec(D) = ½ vec(W)ᵀ (CΩ3C⊗Ω2⊗Ω1) vec(W): the
 * gradient form passes it with the uncentred W to tr_mrn_prior_grad. omega_c
 * must not overlap omega3 (t, t, symmetric). Scratch: t doubles. */
tr_status tr_mrn_centre_precision(double *omega_c, const double *omega3, int t);
/* The proximal step on the deviations, serially (tests; the trainer's
 * distributed version is in models/mrn_prox.c): W_t <- W̄ + prox(D)_t with
 * D = W - W̄ and prox as tr_mrn_prox (same arguments). W̄ is unchanged, and
 * Σ_t prox(D)_t = 0 up to rounding when 1 is an eigenvector of U3 diag(p3) U3ᵀ
 * (true of a Σ3 estimated from centred weights). Scratch: (t + 1) d1 d2 doubles. */
tr_status tr_mrn_prox_centred(double *w_out, const double *w, const double *u1, const double *u2,
                              const double *u3, const double *p1, const double *p2,
                              const double *p3, double eta, double lambda, int d1, int d2, int t,
                              int t0, int tn);
/* mrn.shrink: sigma (n, n) <- (1 - s) Σ + s (tr Σ / n) I, s in [0, 1]
 * (TR_ERR_CONFIG otherwise); trace preserving. s = 0 leaves Σ untouched. */
tr_status tr_mrn_cov_shrink(double *sigma, double s, int n);
/* mrn.task_scale = fixed: sigma3 (t, t) *= t / tr(Σ3) (trace t exactly up to
 * rounding); factor (or NULL) receives that factor; with floor numerics the
 * precision follows as Ω3 /= factor. A non-positive trace is TR_ERR_NUMERIC. */
tr_status tr_mrn_cov_fix_task_scale(double *sigma3, double *factor, int t);

/* ---- correlations (scoring a learned Σ3) ------------------------------------- */

/* corr (n, n) = Σ[i,j] / sqrt(Σ[i,i] Σ[j,j]); diagonal exactly 1. corr may equal
 * sigma. A non-positive or non-finite diagonal entry is TR_ERR_NUMERIC. */
tr_status tr_mrn_corr(double *corr, const double *sigma, int n);

/* Added to the titles of the MRN task relations of a run with mrn.mean = shared:
 * they describe the deviations from the task mean (C Sigma3 C, C = I - 11'/T).
 * `taskrel inspect --truth` scores such relations against the centred truth. */
#define TR_MRN_CENTRED_TITLE " of W_t - mean_t W_t"

/* Pearson correlation of the off-diagonal entries (i < j; the matrices are taken as
 * symmetric) of a (n, n) and b (n, n). *r = NaN when either set has no spread
 * (always for n < 3, where there is at most one pair). */
void tr_mrn_offdiag_pearson(double *r, const double *a, const double *b, int n);

#ifdef __cplusplus
}
#endif
#endif
