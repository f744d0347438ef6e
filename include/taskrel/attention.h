/*
 * Attention layers for MRAN and MMoE (llm.c style, like taskrel/nn.h):
 * free functions in forward/backward pairs, outputs first, then inputs and
 * weights, then sizes. Every backward ADDS into its gradient outputs; a NULL
 * gradient pointer means "not needed". Layers never call MPI: the batch sums
 * that MRAN all-reduces (relation matrices, alignment scores, the gradients
 * of batch-level quantities) are produced and consumed as plain buffers.
 *
 * Tokens: a sample with k scalar values z (k) becomes k tokens with
 * embeddings e_i = z_i * u_i + b_i (m), stored (n, k, m).
 *
 * Relation scores between tokens i and j of one sample (docs/algorithms.md,
 * "MRAN and MMoE"):
 *   dot        s_ij = e_i . e_j / sqrt(m)
 *   general    s_ij = e_i^T W e_j / sqrt(m)                W (m, m)
 *   concat     s_ij = v . tanh(W1^T e_i + W2^T e_j)       W = [W1; W2] (2m, q), v (q)
 *   multihead  s_ij = (1/H) sum_h q_hi . k_hj / sqrt(m/H)  Wq, Wk, Wv (m, m), wo (m)
 * The batch mean of s is the relation matrix S. Dot, general and concat turn
 * S into one attention vector a = softmax_j(sum_i S_ij) (sum pooling, then
 * softmax) that re-weights every sample: zhat = a .* z. Multihead is standard
 * self-attention per sample: zhat_i = wo . concat_h(sum_j softmax_j(l_hij) v_hj).
 * Per-sample score tensors (n, k, k, q) are never stored: backward recomputes
 * them from the cached embeddings, so memory stays O(n k m).
 * All tensors are row-major float32; shapes in comments.
 */
#ifndef TASKREL_ATTENTION_H
#define TASKREL_ATTENTION_H

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The relation score of an attention module (config key mran.attention). */
typedef enum { TR_ATTN_DOT = 0, TR_ATTN_GENERAL, TR_ATTN_CONCAT, TR_ATTN_MULTIHEAD } tr_attn_kind;

/* Sizes of one attention module: k tokens, embedding m, concat hidden q,
 * multihead heads (must divide m). */
typedef struct {
    tr_attn_kind kind;
    int k, m, q, heads;
} tr_attn_dims;

/* Weights (or their gradients) of one score function; NULL where unused.
 * general: w (m, m). concat: w (2m, q), v (q). multihead: wq, wk, wv (m, m)
 * (head h uses columns [h m/H, (h+1) m/H)), wo (m). */
typedef struct {
    float *w, *v, *wq, *wk, *wv, *wo;
} tr_attn_w;

/* Floats of per-sample scratch the score and multihead functions need. */
size_t tr_attn_scratch_size(const tr_attn_dims *d);

/* ---- token embeddings ----------------------------------------------------- */
/* e (n, k, m) = z (n, k) * u (k, m) + b (k, m) */
void tr_embed_forward(float *e, const float *z, const float *u, const float *b, int n, int k,
                      int m);
/* dz (n, k) or NULL, du (k, m), db (k, m), de (n, k, m) */
void tr_embed_backward(float *dz, float *du, float *db, const float *de, const float *z,
                       const float *u, int n, int k, int m);

/* ---- relation scores ------------------------------------------------------------ */
/* S (k, k) += sum over the n samples of s (multihead: head-averaged logits).
 * e (n, k, m); scratch of tr_attn_scratch_size floats. */
void tr_attn_scores_sum(double *S, const float *e, const tr_attn_w *w, const tr_attn_dims *d, int n,
                        float *scratch);
/* Gradient of sum_n sum_ij G_ij s_n,ij: de (n, k, m) +=, dw += (same layout
 * as w). G (k, k) is the same for every sample (the caller folds the 1/N of
 * the batch mean into it). */
void tr_attn_scores_backward(float *de, tr_attn_w *dw, const float *G, const float *e,
                             const tr_attn_w *w, const tr_attn_dims *d, int n, float *scratch);

/* ---- multihead value path ---------------------------------------------------------- */
/* zhat (n, k): per-sample self-attention output projected to one value per token. */
void tr_mha_forward(float *zhat, const float *e, const tr_attn_w *w, const tr_attn_dims *d, int n,
                    float *scratch);
/* Backward of zhat given dzhat (n, k): de (n, k, m) +=, dw +=. */
void tr_mha_backward(float *de, tr_attn_w *dw, const float *dzhat, const float *e,
                     const tr_attn_w *w, const tr_attn_dims *d, int n, float *scratch);

/* ---- sum pooling and softmax --------------------------------------------------------- */
/* a (k) = softmax_j(sum_i S_ij), S (k, k) */
void tr_sumpool_softmax_forward(float *a, const float *S, int k);
/* G (k, k) += dS: G_ij += a_j (da_j - sum_l a_l da_l) for every i. da (k) */
void tr_sumpool_softmax_backward(float *G, const float *da, const float *a, int k);

/* ---- softmax over rows -------------------------------------------------------------- */
/* p (n, c) = softmax of each row of x (n, c) */
void tr_softmax_forward(float *p, const float *x, int n, int c);
/* dx (n, c) += p .* (dp - sum(p .* dp)) per row */
void tr_softmax_backward(float *dx, const float *dp, const float *p, int n, int c);

/* ---- Hadamard re-weighting with residual: out = z .* (1 + a) ----------------------------- */
/* out (n, k), z (n, k), a (k) shared by all samples */
void tr_reweight_forward(float *out, const float *z, const float *a, int n, int k);
/* dz (n, k) or NULL +=, da (k) or NULL += sum_n dout .* z (double: it may be
 * summed over a global batch) */
void tr_reweight_backward(float *dz, double *da, const float *dout, const float *z, const float *a,
                          int n, int k);

/* ---- task-feature alignment scores -------------------------------------------------------- */
/* s (T, d) += sum_n ht[n, t] * hf[n, :]; ht (n, T), hf (n, d) */
void tr_align_scores_sum(double *s, const float *ht, const float *hf, int n, int T, int d);
/* Gradient of sum_n sum_tj G_tj ht[n,t] hf[n,j]: dht (n, T) +=, dhf (n, d) += (either NULL). */
void tr_align_backward(float *dht, float *dhf, const float *G, const float *ht, const float *hf,
                       int n, int T, int d);

/* ---- MMoE: gated mixture of expert outputs ------------------------------------------------ */
/* out (n, de) = sum_e g[n, e] * ex[n, e, :]; ex rows are `ld` floats apart
 * (sample n's experts start at ex + n * ld, (E, de) contiguous). */
void tr_moe_combine_forward(float *out, const float *g, const float *ex, int n, int E, int de,
                            int ld);
/* dg (n, E) +=, dex (same layout as ex) += (either NULL) */
void tr_moe_combine_backward(float *dg, float *dex, const float *dout, const float *g,
                             const float *ex, int n, int E, int de, int ld);

#ifdef __cplusplus
}
#endif
#endif
