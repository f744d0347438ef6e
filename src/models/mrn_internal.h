/*
 * Private to src/models/mrn*.c: what the proximal step (mrn_prox.c) shares
 * with the rest of the MRN module (mrn.c).
 */
#ifndef TASKREL_MRN_INTERNAL_H
#define TASKREL_MRN_INTERNAL_H

#include "taskrel/mrn.h"

/* counts/displs of replica_comm's ranks for a gather of nn elements per task. */
void tr_mrn_set_counts(tr_mrn *mrn, const tr_grid *g, int nn);

#endif
