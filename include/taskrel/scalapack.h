/*
 * Distributed dense symmetric eigen-decomposition with ScaLAPACK, for the MRN
 * covariances larger than linalg.scalapack_min_dim.
 *
 * The matrices are small enough to be replicated (n <= a few thousand), and
 * every rank already holds the assembled covariance after its all-reduce; what
 * is distributed is the O(n³) work. Each rank copies its blocks of the 2-D
 * block-cyclic layout out of its replicated copy (no communication), pdsyevd
 * runs on a BLACS grid over the communicator, and the distributed result is
 * assembled back into a replicated matrix by one all-reduce (every entry has
 * exactly one owner, so the sum of zeros and owners is exact and identical on
 * every rank).
 *
 * Layout conventions as in taskrel/mrn_math.h: row-major n×n, eigenvector k in
 * column k (u[i*n + k]), eigenvalues ascending.
 */
#ifndef TASKREL_LINALG_DIST_H
#define TASKREL_LINALG_DIST_H

#include <mpi.h>

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    MPI_Comm comm;    /* the BLACS grid's ranks (not owned) */
    int sys_handle;   /* Csys2blacs_handle(comm) */
    int ctxt;         /* BLACS context; -1 if not initialised */
    int nprow, npcol; /* process grid, nprow <= npcol, nprow·npcol = size of comm */
    int myrow, mycol;
    int nb; /* square block size of the block-cyclic layout */
} tr_blacs;

/* A nprow×npcol grid over all ranks of comm (the most square factorisation of
 * its size), block size nb (0 = 64). Collective over comm. */
tr_status tr_blacs_init(tr_blacs *b, MPI_Comm comm, int nb);
void tr_blacs_free(tr_blacs *b); /* no-op on a zeroed or failed grid */

/* Eigen-decomposition of the replicated symmetric a (n, n) by pdsyevd:
 * s (n) ascending eigenvalues and u (n, n) eigenvectors, replicated on every
 * rank. Every info is checked (TR_ERR_LAPACK naming the routine); a non-finite
 * entry of a is TR_ERR_NUMERIC. Collective over b->comm. */
tr_status tr_dist_sym_eig(const tr_blacs *b, double *s, double *u, const double *a, int n);

/* out (n, n) = U diag(f) Uᵀ by pdgemm, replicated on every rank, exactly
 * symmetric. u (n, n) replicated (as from tr_dist_sym_eig), f (n).
 * Collective over b->comm. */
tr_status tr_dist_from_eig(const tr_blacs *b, double *out, const double *u, const double *f, int n);

/* Floating-point operations of the two calls (for the scaling model):
 * pdsyevd ≈ (4/3 + 2·(2)) n³ with vectors (tridiagonal reduction and back
 * transformation dominate), pdgemm 2 n³. */
double tr_dist_eig_flops(int n);

#ifdef __cplusplus
}
#endif
#endif
