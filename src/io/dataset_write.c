/*
 * Dataset writer: tr_dataset_save and the small HDF5 helpers the builders use
 * to add provenance. Serial, default (sec2) driver; the file is written to
 * PATH.tmp and renamed into place only when complete, so an interrupted build
 * never leaves a plausible-looking half file.
 */
#include "taskrel/dataset.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/dataset_extra.h"
#include "io/h5util.h"

/* Create dataset name under loc with file type ftype and write data (mtype). */
static tr_status write_array(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                             const hsize_t *dims, const void *data) {
    hsize_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= dims[i];
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    TR_H5(sp);
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = d >= 0 ? 0 : -1;
    if (d >= 0 && count > 0)
        r = H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    TR_CHECK(r >= 0, TR_ERR_IO, "HDF5: cannot write dataset '%s'", name);
    return TR_OK;
}

static tr_status write_f64(hid_t loc, const char *name, int rank, const hsize_t *dims,
                           const double *data) {
    TR_CALL(write_array(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, dims, data));
    return TR_OK;
}

struct tr_data_file {
    hid_t id;
};

static tr_status attr_on(tr_data_file *f, const char *obj, const char *name, const char *sv,
                         int iv) {
    hid_t g = H5Gopen2(f->id, obj, H5P_DEFAULT);
    TR_CHECK(g >= 0, TR_ERR_IO, "HDF5: cannot open group '%s'", obj);
    tr_status s = sv ? tr_h5_attr_write_str(g, name, sv) : tr_h5_attr_write_int32(g, name, iv);
    H5Gclose(g);
    TR_CALL(s);
    return TR_OK;
}

tr_status tr_data_attr_str(tr_data_file *f, const char *obj, const char *name, const char *v) {
    TR_CALL(attr_on(f, obj, name, v, 0));
    return TR_OK;
}

tr_status tr_data_attr_int(tr_data_file *f, const char *obj, const char *name, int v) {
    TR_CALL(attr_on(f, obj, name, NULL, v));
    return TR_OK;
}

tr_status tr_data_write_array(tr_data_file *f, const char *path, int rank, const int64_t *dims,
                              const double *data) {
    TR_CHECK(rank >= 1 && rank <= 4, TR_ERR_INTERNAL, "array rank %d", rank);
    hsize_t hd[4];
    for (int i = 0; i < rank; i++)
        hd[i] = (hsize_t)dims[i];
    /* the parent group, created with any missing ancestors */
    char parent[256];
    const char *slash = strrchr(path, '/');
    TR_CHECK(slash && (size_t)(slash - path) < sizeof(parent), TR_ERR_INTERNAL, "array path '%s'",
             path);
    snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
    hid_t g = -1;
    if (!parent[0]) {
        g = H5Gopen2(f->id, "/", H5P_DEFAULT);
    } else if (H5Lexists(f->id, parent, H5P_DEFAULT) > 0) {
        g = H5Gopen2(f->id, parent, H5P_DEFAULT);
    } else {
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0)
            g = H5Gcreate2(f->id, parent, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (lcpl >= 0)
            H5Pclose(lcpl);
    }
    TR_CHECK(g >= 0, TR_ERR_IO, "HDF5: cannot open or create group '%s'", parent);
    tr_status s = write_f64(g, slash + 1, rank, hd, data);
    H5Gclose(g);
    TR_CALL(s);
    return TR_OK;
}

static tr_status group_create(hid_t loc, const char *name, hid_t *g) {
    *g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    TR_CHECK(*g >= 0, TR_ERR_IO, "HDF5: cannot create group '%s'", name);
    return TR_OK;
}

/* {x, y} of one split into the open group g. */
static tr_status write_split(hid_t g, const tr_dataset *ds, const tr_split_data *sd,
                             tr_task_kind kind, int cols) {
    hsize_t xd[4] = {(hsize_t)sd->n, 0, 0, 0};
    for (int i = 0; i < ds->ndim; i++)
        xd[i + 1] = (hsize_t)ds->dims[i];
    TR_ASSERT(sd->n == 0 || sd->x != NULL);
    TR_CALL(write_array(g, "x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1 + ds->ndim, xd, sd->x));
    hsize_t yd[2] = {(hsize_t)sd->n, (hsize_t)cols};
    int yr = ds->setting == TR_SETTING_SHARED_INPUT ? 2 : 1;
    if (sd->y && sd->yf) { /* shared-input tasks of both kinds: float32, class ids whole */
        int T = ds->T;
        float *m = tr_calloc(sd->n * T > 0 ? (size_t)(sd->n * T) : 1, sizeof(float));
        TR_CHECK(m != NULL, TR_ERR_NOMEM, "out of memory writing labels");
        for (int64_t i = 0; i < sd->n; i++)
            for (int t = 0; t < T; t++)
                m[i * T + t] = ds->tasks[t].kind == TR_TASK_CLASSIFICATION ? (float)sd->y[i * T + t]
                                                                           : sd->yf[i * T + t];
        tr_status st = write_array(g, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, yr, yd, m);
        tr_free(m);
        TR_CALL(st);
    } else if (kind == TR_TASK_CLASSIFICATION) {
        TR_ASSERT(sd->n == 0 || sd->y != NULL);
        TR_CALL(write_array(g, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, yr, yd, sd->y));
    } else {
        TR_ASSERT(sd->n == 0 || sd->yf != NULL);
        TR_CALL(write_array(g, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, yr, yd, sd->yf));
    }
    return TR_OK;
}

/* Open group g (already created), run write_split, close. */
static tr_status write_split_group(hid_t loc, const char *name, const tr_dataset *ds,
                                   const tr_split_data *sd, tr_task_kind kind, int cols) {
    hid_t g;
    TR_CALL(group_create(loc, name, &g));
    tr_status s = write_split(g, ds, sd, kind, cols);
    H5Gclose(g);
    TR_CALL(s);
    return TR_OK;
}

/* Split sp is written: every split unless has_split names some (a file with
 * only some splits, e.g. test-only). */
static int writes_split(const tr_dataset *ds, int sp) {
    return ds->has_split[sp] || !(ds->has_split[0] || ds->has_split[1] || ds->has_split[2]);
}

static tr_status write_task(hid_t tasks, const tr_dataset *ds, int t) {
    const tr_task_info *ti = &ds->tasks[t];
    hid_t g;
    TR_CALL(group_create(tasks, ti->name, &g));
    tr_status s = tr_h5_attr_write_str(
        g, "kind", ti->kind == TR_TASK_CLASSIFICATION ? "classification" : "regression");
    if (s == TR_OK)
        s = tr_h5_attr_write_int32(g, "classes",
                                   ti->kind == TR_TASK_CLASSIFICATION ? ti->classes : 1);
    if (s == TR_OK)
        s = tr_h5_attr_write_int32(g, "index", t);
    for (int sp = 0; s == TR_OK && ds->setting == TR_SETTING_MULTI_INPUT && sp < TR_SPLIT_COUNT;
         sp++)
        if (writes_split(ds, sp))
            s = write_split_group(g, tr_split_name((tr_split)sp), ds, &ti->split[sp], ti->kind, 1);
    H5Gclose(g);
    TR_CALL(s);
    return TR_OK;
}

static tr_status write_file(hid_t f, const tr_dataset *ds, const char *builder, uint64_t seed,
                            const char *options) {
    TR_CALL(tr_h5_attr_write_str(
        f, "setting", ds->setting == TR_SETTING_MULTI_INPUT ? "multi_input" : "shared_input"));
    TR_CALL(tr_h5_attr_write_str(f, "builder", builder ? builder : ""));
    TR_CALL(tr_h5_attr_write_u64(f, "seed", seed));
    TR_CALL(tr_h5_attr_write_str(f, "options", options ? options : ""));
    hid_t tasks;
    TR_CALL(group_create(f, "tasks", &tasks));
    tr_status s = TR_OK;
    for (int t = 0; s == TR_OK && t < ds->T; t++)
        s = write_task(tasks, ds, t);
    H5Gclose(tasks);
    TR_CALL(s);
    if (ds->setting == TR_SETTING_SHARED_INPUT)
        for (int sp = 0; sp < TR_SPLIT_COUNT; sp++)
            if (writes_split(ds, sp))
                TR_CALL(write_split_group(f, tr_split_name((tr_split)sp), ds, &ds->shared[sp],
                                          ds->tasks[0].kind, ds->T));
    if (ds->sigma3) {
        hid_t g;
        TR_CALL(group_create(f, "truth", &g));
        hsize_t d[2] = {(hsize_t)ds->T, (hsize_t)ds->T};
        s = write_f64(g, "sigma3", 2, d, ds->sigma3);
        H5Gclose(g);
        TR_CALL(s);
    }
    return TR_OK;
}

static tr_status check_writable(const tr_dataset *ds) {
    TR_CHECK(ds->T >= 1 && ds->tasks != NULL, TR_ERR_INTERNAL, "dataset to save has no tasks");
    TR_CHECK(ds->ndim == 1 || ds->ndim == 3, TR_ERR_INTERNAL, "dataset to save has ndim %d",
             ds->ndim);
    int64_t ss = 1;
    for (int i = 0; i < ds->ndim; i++)
        ss *= ds->dims[i];
    TR_CHECK(ss == ds->sample_size && ss > 0, TR_ERR_INTERNAL,
             "dataset to save: sample_size %lld is not the product of dims",
             (long long)ds->sample_size);
    for (int t = 0; t < ds->T; t++) {
        TR_CHECK(ds->tasks[t].name[0] != '\0' && strchr(ds->tasks[t].name, '/') == NULL,
                 TR_ERR_INTERNAL, "dataset to save: task %d has an invalid name", t);
    }
    return TR_OK;
}

tr_status tr_data_save_ex(const tr_dataset *ds, const char *path, const char *builder,
                          uint64_t seed, const char *options, tr_data_extra_fn extra,
                          const void *ctx) {
    TR_CALL(check_writable(ds));
    char tmp[4096];
    TR_CHECK(snprintf(tmp, sizeof(tmp), "%s.tmp", path) < (int)sizeof(tmp), TR_ERR_USAGE,
             "output path too long: %s", path);

    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t fapl = tr_h5_fapl(MPI_COMM_NULL);
    hid_t f = -1;
    /* STRONG: closing the file also closes anything an error path left open. */
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0)
        f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    tr_status s;
    herr_t closed = 0;
    if (f < 0) {
        s = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                         "data: cannot create %s (does the directory exist and is it writable?)",
                         tmp);
    } else {
        s = write_file(f, ds, builder, seed, options);
        if (s == TR_OK && extra) {
            tr_data_file df = {.id = f};
            s = extra(&df, ds, ctx);
        }
        closed = H5Fclose(f);
    }
    tr_h5_quiet_end(&q);
    if (s == TR_OK && closed < 0)
        s = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "data: cannot close %s", tmp);
    if (s == TR_OK && rename(tmp, path) != 0)
        s = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "data: cannot rename %s to %s",
                         tmp, path);
    if (s != TR_OK && f >= 0)
        unlink(tmp);
    TR_CALL(s);
    return TR_OK;
}

tr_status tr_dataset_save(const tr_dataset *ds, const char *path, const char *builder,
                          uint64_t seed, const char *options) {
    TR_CALL(tr_data_save_ex(ds, path, builder, seed, options, NULL, NULL));
    return TR_OK;
}
