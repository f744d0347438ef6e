/*
 * Private to src/models/mrn*.c: what the proximal step (mrn_prox.c) shares
 * with the rest of the MRN module (mrn.c).
 */
#ifndef TASKREL_MRN_INTERNAL_H
#define TASKREL_MRN_INTERNAL_H

#include "taskrel/mrn.h"

/* counts/displs of replica_comm's ranks for a gather of nn elements per task. */
void tr_mrn_set_counts(tr_mrn *mrn, const tr_grid *g, int nn);

/* a (n, n) = I */
void tr_mrn_set_identity(double *a, int n);
/* Floor numerics after a flip-flop cycle: Σ1, Σ2 to traces D1, D2, the factor
 * into Σ3 (with task_fixed Σ3 to trace T); the precisions follow. */
tr_status tr_mrn_normalize(tr_mrn_layer *L, int task_fixed);

/* Scaled-identity covariance updates (mrn_iso.c). Whether layer L's update
 * can take them: Ω1, Ω2 are scaled identities now and stay so. */
int tr_mrn_iso_applies(const tr_mrn *mrn, const tr_mrn_layer *L);
/* tr_mrn_layer_update's cycles and prior value from the Gram matrix of w
 * (T, d1, d2: W, or D with the shared mean). Collective over world. */
tr_status tr_mrn_update_iso(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, const double *w);

#endif
