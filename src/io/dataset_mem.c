/*
 * The in-memory dataset (see include/taskrel/dataset.h): split names, the
 * allocation the reader, the builders and the importers fill, and freeing it.
 * Nothing here touches HDF5.
 */
#include <string.h>

#include "io/dataset_extra.h"

const char *tr_split_name(tr_split s) {
    switch (s) {
    case TR_SPLIT_TRAIN:
        return "train";
    case TR_SPLIT_VAL:
        return "val";
    case TR_SPLIT_TEST:
        return "test";
    default:
        return "?";
    }
}

void tr_data_free_split(tr_split_data *sd) {
    tr_free(sd->x);
    tr_free(sd->xq);
    tr_free(sd->y);
    tr_free(sd->yf);
    tr_x_stream_close(sd->xs);
    memset(sd, 0, sizeof(*sd));
}

void tr_dataset_free(tr_dataset *ds) {
    if (!ds)
        return;
    if (ds->tasks)
        for (int t = 0; t < ds->T; t++)
            for (int s = 0; s < TR_SPLIT_COUNT; s++)
                tr_data_free_split(&ds->tasks[t].split[s]);
    tr_free(ds->tasks);
    for (int s = 0; s < TR_SPLIT_COUNT; s++)
        tr_data_free_split(&ds->shared[s]);
    tr_free(ds->sigma3);
    memset(ds, 0, sizeof(*ds));
}

tr_status tr_data_alloc_tasks(tr_dataset *ds, int T) {
    TR_ASSERT(T >= 1 && ds->tasks == NULL);
    TR_ALLOC(ds->tasks, (size_t)T, "dataset tasks");
    ds->T = T;
    return TR_OK;
}

tr_status tr_data_alloc_split(tr_split_data *sd, int64_t n, int64_t sample_size, tr_task_kind kind,
                              int cols) {
    TR_ASSERT(n >= 0 && sample_size >= 1 && cols >= 1);
    sd->n = n;
    TR_ALLOC(sd->x, (size_t)(n * sample_size), "dataset inputs");
    if (kind == TR_TASK_CLASSIFICATION)
        TR_ALLOC(sd->y, (size_t)(n * cols), "dataset labels");
    else
        TR_ALLOC(sd->yf, (size_t)(n * cols), "dataset targets");
    return TR_OK;
}
