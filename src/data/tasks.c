/*
 * data.tasks: train on a subset of a dataset's tasks ("" all, "N" the first
 * N, or a comma-separated list of task names, in the given order).
 */
#include <stdlib.h>
#include <string.h>

#include "taskrel/data.h"

#include "io/dataset_extra.h"

/* The dataset's indices of the tasks data.tasks selects (parsed and checked
 * for form by the config; here only against the dataset). */
static tr_status resolve(const tr_dataset *ds, const tr_task_select *sel, int *idx, int *n) {
    *n = 0;
    if (sel->first > 0) {
        TR_CHECK(sel->first <= ds->T, TR_ERR_CONFIG, "data.tasks = %d: the dataset has %d task(s)",
                 sel->first, ds->T);
        for (int t = 0; t < sel->first; t++)
            idx[(*n)++] = t;
        return TR_OK;
    }
    for (int i = 0; i < sel->n_names; i++) {
        int found = -1;
        for (int t = 0; t < ds->T; t++)
            if (strcmp(ds->tasks[t].name, sel->names[i]) == 0)
                found = t;
        TR_CHECK(found >= 0, TR_ERR_CONFIG, "data.tasks: the dataset has no task named '%s'",
                 sel->names[i]);
        idx[(*n)++] = found;
    }
    return TR_OK;
}

tr_status tr_dataset_select_tasks(tr_dataset *ds, const tr_task_select *spec) {
    if (spec->first == 0 && spec->n_names == 0)
        return TR_OK;
    int sel[TR_MAX_TASKS], nsel;
    TR_CHECK(ds->T <= TR_MAX_TASKS, TR_ERR_DATA, "too many tasks");
    TR_CALL(resolve(ds, spec, sel, &nsel));
    tr_task_info *tasks;
    TR_ALLOC(tasks, (size_t)nsel, "task table");
    int keep[TR_MAX_TASKS] = {0};
    for (int i = 0; i < nsel; i++) {
        tasks[i] = ds->tasks[sel[i]];
        keep[sel[i]] = 1;
    }
    /* free the dropped tasks' data (multi-input) */
    for (int t = 0; t < ds->T; t++) {
        if (keep[t])
            continue;
        for (int s = 0; s < TR_SPLIT_COUNT; s++)
            tr_data_free_split(&ds->tasks[t].split[s]);
    }
    /* shared-input: keep the selected label columns */
    if (ds->setting == TR_SETTING_SHARED_INPUT) {
        for (int s = 0; s < TR_SPLIT_COUNT; s++) {
            tr_split_data *sd = &ds->shared[s];
            /* row by row through a copy: a reordering selection may read a
             * column that this row's compaction has already overwritten */
            for (int64_t i = 0; i < sd->n; i++) {
                int32_t yi[TR_MAX_TASKS];
                float yfi[TR_MAX_TASKS];
                for (int j = 0; j < nsel; j++) {
                    if (sd->y)
                        yi[j] = sd->y[i * ds->T + sel[j]];
                    if (sd->yf)
                        yfi[j] = sd->yf[i * ds->T + sel[j]];
                }
                for (int j = 0; j < nsel; j++) {
                    if (sd->y)
                        sd->y[i * nsel + j] = yi[j];
                    if (sd->yf)
                        sd->yf[i * nsel + j] = yfi[j];
                }
            }
        }
    }
    if (ds->sigma3) {
        double *s3;
        TR_ALLOC(s3, (size_t)nsel * (size_t)nsel, "task covariance");
        for (int i = 0; i < nsel; i++)
            for (int j = 0; j < nsel; j++)
                s3[i * nsel + j] = ds->sigma3[sel[i] * ds->T + sel[j]];
        tr_free(ds->sigma3);
        ds->sigma3 = s3;
    }
    tr_free(ds->tasks);
    ds->tasks = tasks;
    ds->T = nsel;
    return TR_OK;
}
