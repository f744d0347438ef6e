/*
 * data.tasks: train on a subset of a dataset's tasks ("" all, "N" the first
 * N, or a comma-separated list of task names, in the given order).
 */
#include <stdlib.h>
#include <string.h>

#include "trainer_internal.h"

static tr_status parse_spec(const tr_dataset *ds, const char *spec, int *sel, int *nsel) {
    *nsel = 0;
    char *end;
    long count = strtol(spec, &end, 10);
    if (end != spec && *end == '\0') {
        TR_CHECK(count >= 1 && count <= ds->T, TR_ERR_CONFIG,
                 "data.tasks = %ld: the dataset has %d task(s)", count, ds->T);
        for (int t = 0; t < count; t++)
            sel[(*nsel)++] = t;
        return TR_OK;
    }
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        int found = -1;
        for (int t = 0; t < ds->T; t++)
            if (strcmp(ds->tasks[t].name, tok) == 0)
                found = t;
        TR_CHECK(found >= 0, TR_ERR_CONFIG, "data.tasks: the dataset has no task named '%s'", tok);
        for (int i = 0; i < *nsel; i++)
            TR_CHECK(sel[i] != found, TR_ERR_CONFIG, "data.tasks: task '%s' is listed twice", tok);
        sel[(*nsel)++] = found;
    }
    TR_CHECK(*nsel > 0, TR_ERR_CONFIG, "data.tasks = '%s' selects no task", spec);
    return TR_OK;
}

tr_status tr_dataset_select_tasks(tr_dataset *ds, const char *spec) {
    if (!spec || !spec[0])
        return TR_OK;
    int sel[TR_MAX_TASKS], nsel;
    TR_CHECK(ds->T <= TR_MAX_TASKS, TR_ERR_DATA, "too many tasks");
    TR_CALL(parse_spec(ds, spec, sel, &nsel));
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
        for (int s = 0; s < TR_SPLIT_COUNT; s++) {
            tr_free(ds->tasks[t].split[s].x);
            tr_free(ds->tasks[t].split[s].y);
            tr_free(ds->tasks[t].split[s].yf);
        }
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
