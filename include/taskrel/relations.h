/*
 * Relation matrices a run learned (MRN task correlations, MRAN relation
 * matrices and alignment weights), stored in an HDF5 group so that
 * `taskrel inspect` and `taskrel plot relations` can show them from a run
 * directory or a checkpoint without knowing the model.
 *
 * Layout: group /relations; one float64 2-D dataset per matrix, named by the
 * method, layer and quantity, e.g. "mrn.fc8.task_corr", "mran.tt". Attributes
 * per dataset: "title" (one line, for plots) and "axes" ("task,task",
 * "task,feature", ...). Group attribute "tasks": the task names joined by ','.
 *
 * A run writes <run_dir>/relations.h5 at the end of training (rank 0 only,
 * serial HDF5); a checkpoint carries the same group, written collectively
 * (src/io writes it into the open checkpoint file).
 */
#ifndef TASKREL_RELATIONS_H
#define TASKREL_RELATIONS_H

#include "taskrel/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_RELATION_NAME_LEN 64
#define TR_RELATION_TITLE_LEN 160

typedef struct {
    char name[TR_RELATION_NAME_LEN];   /* dataset name inside /relations */
    char title[TR_RELATION_TITLE_LEN]; /* e.g. "MRN fc8 task correlation" */
    char axes[32];                     /* e.g. "task,task" */
    int rows, cols;
    double *data; /* (rows, cols) row-major; owned by the list */
} tr_relation;

typedef struct {
    tr_relation *items;
    int n, cap;
    char tasks[1024]; /* task names joined by ',' (may be empty) */
} tr_relations;

/* Append a copy of data (rows, cols) under name (replaces an item of the same name). */
tr_status tr_relations_add(tr_relations *r, const char *name, const char *title, const char *axes,
                           const double *data, int rows, int cols);
const tr_relation *tr_relations_find(const tr_relations *r, const char *name);
void tr_relations_free(tr_relations *r);

/* Serial convenience: create (truncate) path and write the list (one rank). */
tr_status tr_relations_save(const char *path, const tr_relations *r);

/* Read /relations from an HDF5 file (serial). *found = 0 and an empty list when
 * the file has no /relations group. A file that is not HDF5 or a malformed
 * group is TR_ERR_DATA naming the file. */
tr_status tr_relations_load(const char *path, tr_relations *r, int *found);

#ifdef __cplusplus
}
#endif
#endif
