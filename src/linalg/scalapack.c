/*
 * ScaLAPACK eigen-decomposition of replicated symmetric matrices (see
 * taskrel/scalapack.h). BLACS and ScaLAPACK have no C headers in Debian;
 * the prototypes below are those of ScaLAPACK 2.x (Fortran symbols take every
 * argument by reference; BLACS C entry points as in its manual).
 */
#include "taskrel/scalapack.h"

#include "taskrel/comm.h"

#include <math.h>
#include <string.h>

void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
              const int *ja, const int *desca, double *w, double *z, const int *iz, const int *jz,
              const int *descz, double *work, const int *lwork, int *iwork, const int *liwork,
              int *info);
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja, const int *desca,
             const double *b, const int *ib, const int *jb, const int *descb, const double *beta,
             double *c, const int *ic, const int *jc, const int *descc);

tr_status tr_blacs_init(tr_blacs *b, MPI_Comm comm, int nb) {
    memset(b, 0, sizeof *b);
    b->ctxt = -1;
    b->comm = comm;
    b->nb = nb > 0 ? nb : 64;
    int size;
    TR_MPI(MPI_Comm_size(comm, &size));
    int pr = (int)sqrt((double)size);
    while (pr > 1 && size % pr != 0)
        pr--;
    b->nprow = pr;
    b->npcol = size / pr;
    b->sys_handle = Csys2blacs_handle(comm);
    b->ctxt = b->sys_handle;
    Cblacs_gridinit(&b->ctxt, "Row", b->nprow, b->npcol);
    int npr, npc;
    Cblacs_gridinfo(b->ctxt, &npr, &npc, &b->myrow, &b->mycol);
    TR_CHECK(npr == b->nprow && npc == b->npcol && b->myrow >= 0, TR_ERR_MPI,
             "BLACS grid %dx%d could not be created", b->nprow, b->npcol);
    return TR_OK;
}

void tr_blacs_free(tr_blacs *b) {
    if (b->ctxt >= 0 && b->nprow > 0) {
        Cblacs_gridexit(b->ctxt);
        Cfree_blacs_system_handle(b->sys_handle);
    }
    b->ctxt = -1;
    b->nprow = 0;
}

/* Local dimensions and descriptor of an n×n matrix on the grid. */
static tr_status layout(const tr_blacs *b, int n, int *desc, int *lr, int *lc) {
    int zero = 0, info = 0;
    *lr = numroc_(&n, &b->nb, &b->myrow, &zero, &b->nprow);
    *lc = numroc_(&n, &b->nb, &b->mycol, &zero, &b->npcol);
    int lld = *lr > 1 ? *lr : 1;
    descinit_(desc, &n, &n, &b->nb, &b->nb, &zero, &zero, &b->ctxt, &lld, &info);
    TR_LAPACK(info, "descinit");
    return TR_OK;
}

/* Global index of local index l on process p of np (block nb). */
static int global_index(int l, int p, int np, int nb) {
    return (l / nb) * nb * np + p * nb + l % nb;
}

/* Local column-major blocks (lr, lc) of the replicated row-major a (n, n):
 * local (li, lj) = a[i*n + j] for the global (i, j) of (li, lj). */
static void scatter_local(const tr_blacs *b, double *loc, int lr, int lc, const double *a, int n) {
    for (int lj = 0; lj < lc; lj++) {
        int j = global_index(lj, b->mycol, b->npcol, b->nb);
        for (int li = 0; li < lr; li++) {
            int i = global_index(li, b->myrow, b->nprow, b->nb);
            loc[(size_t)lj * lr + li] = a[(size_t)i * n + j];
        }
    }
}

/* Replicated row-major out (n, n) with out[i*n + j] = local (i, j); every entry
 * comes from its one owner, the rest of each rank's copy is zero. */
static tr_status gather_replicated(const tr_blacs *b, double *out, const double *loc, int lr,
                                   int lc, int n) {
    memset(out, 0, (size_t)n * n * sizeof(double));
    for (int lj = 0; lj < lc; lj++) {
        int j = global_index(lj, b->mycol, b->npcol, b->nb);
        for (int li = 0; li < lr; li++) {
            int i = global_index(li, b->myrow, b->nprow, b->nb);
            out[(size_t)i * n + j] = loc[(size_t)lj * lr + li];
        }
    }
    TR_MPI(MPI_Allreduce(MPI_IN_PLACE, out, n * n, MPI_DOUBLE, MPI_SUM, b->comm));
    return TR_OK;
}

static tr_status eig_run(const tr_blacs *b, double *s, double *u, const double *a, int n,
                         double *loc_a, double *loc_z, int lr, int lc, const int *desc) {
    scatter_local(b, loc_a, lr, lc, a, n);
    int one = 1, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double wq = 0.0;
    pdsyevd_("V", "U", &n, loc_a, &one, &one, desc, s, loc_z, &one, &one, desc, &wq, &lwork, &iwq,
             &liwork, &info);
    TR_LAPACK(info, "pdsyevd (workspace query)");
    lwork = (int)wq + 1;
    liwork = iwq > 0 ? iwq : 1;
    double *work;
    int *iwork;
    TR_ALLOC(work, (size_t)lwork, "pdsyevd workspace");
    iwork = tr_calloc((size_t)liwork, sizeof(int));
    if (!iwork) {
        tr_free(work);
        TR_RAISE(TR_ERR_NOMEM, "out of memory (pdsyevd integer workspace)");
    }
    pdsyevd_("V", "U", &n, loc_a, &one, &one, desc, s, loc_z, &one, &one, desc, work, &lwork, iwork,
             &liwork, &info);
    tr_free(work);
    tr_free(iwork);
    TR_LAPACK(info, "pdsyevd (MRN covariance)");
    TR_CALL(gather_replicated(b, u, loc_z, lr, lc, n));
    return TR_OK;
}

tr_status tr_dist_sym_eig(const tr_blacs *b, double *s, double *u, const double *a, int n) {
    TR_CHECK(n > 0 && b->ctxt >= 0, TR_ERR_INTERNAL, "tr_dist_sym_eig: bad size or grid");
    for (size_t k = 0; k < (size_t)n * n; k++)
        TR_CHECK(isfinite(a[k]), TR_ERR_NUMERIC, "covariance entry %zu is not finite", k);
    int desc[9], lr, lc;
    TR_CALL(layout(b, n, desc, &lr, &lc));
    size_t nloc = (size_t)(lr > 0 ? lr : 1) * (size_t)(lc > 0 ? lc : 1);
    double *buf;
    TR_ALLOC(buf, 2 * nloc, "pdsyevd local blocks");
    tr_status st = eig_run(b, s, u, a, n, buf, buf + nloc, lr, lc, desc);
    tr_free(buf);
    return st;
}

tr_status tr_dist_from_eig(const tr_blacs *b, double *out, const double *u, const double *f,
                           int n) {
    TR_CHECK(n > 0 && b->ctxt >= 0, TR_ERR_INTERNAL, "tr_dist_from_eig: bad size or grid");
    int desc[9], lr, lc;
    TR_CALL(layout(b, n, desc, &lr, &lc));
    size_t nloc = (size_t)(lr > 0 ? lr : 1) * (size_t)(lc > 0 ? lc : 1);
    double *buf;
    TR_ALLOC(buf, 3 * nloc, "pdgemm local blocks");
    double *lu = buf, *lf = buf + nloc, *lo = buf + 2 * nloc;
    scatter_local(b, lu, lr, lc, u, n);
    for (int lj = 0; lj < lc; lj++) {
        double fj = f[global_index(lj, b->mycol, b->npcol, b->nb)];
        for (int li = 0; li < lr; li++)
            lf[(size_t)lj * lr + li] = lu[(size_t)lj * lr + li] * fj;
    }
    int one = 1;
    double alpha = 1.0, beta = 0.0;
    pdgemm_("N", "T", &n, &n, &n, &alpha, lf, &one, &one, desc, lu, &one, &one, desc, &beta, lo,
            &one, &one, desc);
    tr_status st = gather_replicated(b, out, lo, lr, lc, n);
    tr_free(buf);
    TR_CALL(st);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) {
            double m = 0.5 * (out[(size_t)i * n + j] + out[(size_t)j * n + i]);
            out[(size_t)i * n + j] = m;
            out[(size_t)j * n + i] = m;
        }
    return TR_OK;
}

double tr_dist_eig_flops(int n) {
    double nn = (double)n;
    return (4.0 / 3.0 + 4.0) * nn * nn * nn + 2.0 * nn * nn * nn;
}
