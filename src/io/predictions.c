/*
 * `taskrel eval --predictions FILE.h5`: per-task predictions in HDF5 (layout
 * in taskrel/dataset.h and docs/guide.md). The trainer gathers every
 * (task, example) row on rank 0, which writes the file serially.
 */
#include <math.h>
#include <string.h>

#include "h5util.h"
#include "taskrel/dataset.h"

static int64_t split_n(const tr_dataset *ds, tr_split s, int t) {
    return ds->setting == TR_SETTING_SHARED_INPUT ? ds->shared[s].n : ds->tasks[t].split[s].n;
}

static int outputs(const tr_dataset *ds, int t) {
    return ds->tasks[t].kind == TR_TASK_CLASSIFICATION ? ds->tasks[t].classes : 1;
}

size_t tr_predictions_offset(const tr_dataset *ds, tr_split s, int t) {
    size_t off = 0;
    for (int u = 0; u < t; u++)
        off += (size_t)split_n(ds, s, u) * (size_t)(1 + outputs(ds, u));
    return off;
}

static tr_status write_array(hid_t g, const char *name, hid_t type, int ndim, const hsize_t *dims,
                             const void *data) {
    hid_t d = tr_h5_dataset_create(g, name, type, ndim, dims, 0);
    TR_CHECK(d >= 0, TR_ERR_IO, "cannot create dataset %s", name);
    herr_t rc = dims[0] > 0 ? H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0;
    H5Dclose(d);
    TR_CHECK(rc >= 0, TR_ERR_IO, "cannot write dataset %s", name);
    return TR_OK;
}

/* /tasks/<name>/<split>/{index,label,pred[,probs]} from rows (label, outputs). */
static tr_status write_split(hid_t tg, const tr_dataset *ds, tr_split s, int t,
                             const double *rows) {
    int64_t n = split_n(ds, s, t);
    int C = outputs(ds, t), cls = ds->tasks[t].kind == TR_TASK_CLASSIFICATION;
    size_t un = n > 0 ? (size_t)n : 1;
    int64_t *index = tr_calloc(un, sizeof(int64_t));
    int32_t *ilab = tr_calloc(un, sizeof(int32_t)), *ipred = tr_calloc(un, sizeof(int32_t));
    float *flab = tr_calloc(un, sizeof(float)), *fpred = tr_calloc(un, sizeof(float));
    float *probs = tr_calloc(un * (size_t)C, sizeof(float));
    tr_status st = TR_OK;
    if (!index || !ilab || !ipred || !flab || !fpred || !probs)
        st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__,
                          "out of memory writing predictions");
    for (int64_t i = 0; st == TR_OK && i < n; i++) {
        const double *r = rows + (size_t)i * (size_t)(1 + C);
        index[i] = i;
        ilab[i] = (int32_t)r[0];
        flab[i] = (float)r[0];
        int arg = 0;
        for (int c = 0; c < C; c++) {
            probs[(size_t)i * C + c] = (float)r[1 + c];
            if (r[1 + c] > r[1 + arg])
                arg = c;
        }
        ipred[i] = arg;
        fpred[i] = (float)r[1];
    }
    hid_t g = -1;
    if (st == TR_OK) {
        g = H5Gcreate2(tg, tr_split_name(s), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot create group %s",
                              tr_split_name(s));
    }
    hsize_t d1[1] = {(hsize_t)n}, d2[2] = {(hsize_t)n, (hsize_t)C};
    if (st == TR_OK)
        st = write_array(g, "index", H5T_NATIVE_INT64, 1, d1, index);
    if (st == TR_OK)
        st = write_array(g, "label", cls ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, 1, d1,
                         cls ? (void *)ilab : (void *)flab);
    if (st == TR_OK)
        st = write_array(g, "pred", cls ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, 1, d1,
                         cls ? (void *)ipred : (void *)fpred);
    if (st == TR_OK && cls)
        st = write_array(g, "probs", H5T_NATIVE_FLOAT, 2, d2, probs);
    if (g >= 0)
        H5Gclose(g);
    tr_free(index);
    tr_free(ilab);
    tr_free(ipred);
    tr_free(flab);
    tr_free(fpred);
    tr_free(probs);
    return st;
}

static tr_status write_task(hid_t f, const tr_dataset *ds, int t,
                            const double *const rows[TR_SPLIT_COUNT]) {
    char path[96];
    snprintf(path, sizeof(path), "/tasks/%s", ds->tasks[t].name);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0)
        H5Pset_create_intermediate_group(lcpl, 1);
    hid_t tg = lcpl >= 0 ? H5Gcreate2(f, path, lcpl, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (lcpl >= 0)
        H5Pclose(lcpl);
    TR_CHECK(tg >= 0, TR_ERR_IO, "cannot create group %s", path);
    const tr_task_info *ti = &ds->tasks[t];
    tr_status st = tr_h5_attr_write_str(
        tg, "kind", ti->kind == TR_TASK_CLASSIFICATION ? "classification" : "regression");
    if (st == TR_OK)
        st = tr_h5_attr_write_int32(tg, "classes",
                                    ti->kind == TR_TASK_CLASSIFICATION ? ti->classes : 1);
    if (st == TR_OK)
        st = tr_h5_attr_write_int32(tg, "index", t);
    for (int s = 0; s < TR_SPLIT_COUNT && st == TR_OK; s++)
        if (rows[s])
            st = write_split(tg, ds, (tr_split)s, t, rows[s] + tr_predictions_offset(ds, s, t));
    H5Gclose(tg);
    return st;
}

tr_status tr_predictions_write(const char *path, const tr_dataset *ds, const char *weights,
                               const double *const rows[TR_SPLIT_COUNT]) {
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t fapl = tr_h5_fapl(MPI_COMM_NULL);
    hid_t f = fapl >= 0 ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : -1;
    if (fapl >= 0)
        H5Pclose(fapl);
    tr_status st = TR_OK;
    if (f < 0) {
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                          "eval --predictions: cannot create %s", path);
    } else {
        st = tr_h5_attr_write_str(f, "weights", weights);
        if (st == TR_OK)
            st = tr_h5_attr_write_str(f, "setting",
                                      ds->setting == TR_SETTING_MULTI_INPUT ? "multi_input"
                                                                            : "shared_input");
        for (int t = 0; t < ds->T && st == TR_OK; t++)
            st = write_task(f, ds, t, rows);
        if (H5Fclose(f) < 0 && st == TR_OK)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                              "eval --predictions: cannot finish writing %s", path);
    }
    tr_h5_quiet_end(&q);
    TR_CALL(st);
    return TR_OK;
}
