/*
 * Dataset files: the HDF5 reader and validator (tr_dataset_load). The
 * in-memory dataset (allocation, freeing) is in dataset_mem.c, the writer in
 * dataset_write.c. Layout: see include/taskrel/dataset.h.
 *
 * With data.load = stream (tr_dataset_stream_tasks) the inputs x are checked
 * here like the rest and then left in the file, read on demand by the
 * streams of dataset_stream.c.
 *
 * Files are opened serially with HDF5's default (sec2) driver on every rank;
 * nothing here is collective. HDF5's own error-stack printing is switched off
 * while a file is read: every failure is reported once, as a TR_ERR_DATA
 * message "data: FILE: HDF5-PATH ...".
 */
#include "taskrel/dataset.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dataset_extra.h"
#include "io/dataset_stream.h"
#include "io/h5util.h"

/* ---- reading -------------------------------------------------------------- */

typedef struct {
    const char *file;
    hid_t fid;
    uint64_t max_bytes; /* most bytes one dataset may claim (see tr_dataset_load) */
    char first_x[256];  /* path of the x that fixed the per-sample shape */
    tr_x_file *xf;      /* data.load = stream: inputs stay in this file; NULL: read them */
} loader;

typedef enum { DT_F32 = 0, DT_I32, DT_F64 } dtype;
static const char *const dtype_name[] = {"float32", "int32", "float64"};

/* 1 if every component of the absolute path exists (H5Lexists alone fails on a
 * missing intermediate group). */
static int path_exists(hid_t fid, const char *path) {
    char buf[512];
    size_t len = strlen(path);
    if (len >= sizeof(buf))
        return 0;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        htri_t e = H5Lexists(fid, buf, H5P_DEFAULT);
        buf[i] = c;
        if (e <= 0)
            return 0;
    }
    return 1;
}

/* A required attribute through the io attribute helper, with the file and
 * object named in the message. */
static tr_status attr_need(const loader *L, const char *objpath, const char *name, tr_status st,
                           int found) {
    if (st != TR_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s", tr_error_message());
        tr_error_clear();
        TR_RAISE(TR_ERR_DATA, "data: %s: %s: %s", L->file, objpath, why);
    }
    TR_CHECK(found, TR_ERR_DATA, "data: %s: %s: missing attribute '%s'", L->file, objpath, name);
    return TR_OK;
}

static tr_status attr_read_str(const loader *L, hid_t obj, const char *objpath, const char *name,
                               char *buf, size_t len) {
    int found = 0;
    tr_status st = tr_h5_attr_read_str(obj, name, buf, len, &found);
    return attr_need(L, objpath, name, st, found);
}

static tr_status attr_read_int(const loader *L, hid_t obj, const char *objpath, const char *name,
                               long long *v) {
    int found = 0;
    tr_status st = tr_h5_attr_read_int(obj, name, v, &found);
    return attr_need(L, objpath, name, st, found);
}

static void describe_type(hid_t t, char *buf, size_t len) {
    H5T_class_t c = H5Tget_class(t);
    size_t bits = H5Tget_size(t) * 8;
    if (c == H5T_FLOAT)
        snprintf(buf, len, "float%zu", bits);
    else if (c == H5T_INTEGER)
        snprintf(buf, len, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
    else if (c == H5T_STRING)
        snprintf(buf, len, "string");
    else
        snprintf(buf, len, "a non-numeric type (class %d)", (int)c);
}

/* The dtype, rank and shape of the open dataset d, with its size checked
 * against the file's; *count elements. */
static tr_status probe_open_dataset(const loader *L, const char *path, hid_t d, dtype want,
                                    int *rank, hsize_t dims[4], uint64_t *count) {
    hid_t t = H5Dget_type(d);
    TR_CHECK(t >= 0, TR_ERR_DATA, "data: %s: %s: cannot read its datatype", L->file, path);
    H5T_class_t c = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    int ok = (want == DT_F32 && c == H5T_FLOAT && sz == 4) ||
             (want == DT_F64 && c == H5T_FLOAT && sz == 8) ||
             (want == DT_I32 && c == H5T_INTEGER && sz == 4 && H5Tget_sign(t) == H5T_SGN_2);
    char found[64];
    describe_type(t, found, sizeof(found));
    H5Tclose(t);
    TR_CHECK(ok, TR_ERR_DATA, "data: %s: %s has dtype %s, expected %s", L->file, path, found,
             dtype_name[want]);

    hid_t sp = H5Dget_space(d);
    TR_CHECK(sp >= 0, TR_ERR_DATA, "data: %s: %s: cannot read its shape", L->file, path);
    int r = H5Sget_simple_extent_ndims(sp);
    if (r < 1 || r > 4) {
        H5Sclose(sp);
        TR_RAISE(TR_ERR_DATA, "data: %s: %s has rank %d (1 to 4 supported)", L->file, path, r);
    }
    int got = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    TR_CHECK(got == r, TR_ERR_DATA, "data: %s: %s: cannot read its shape", L->file, path);
    /* sizes from the file are checked before anything is allocated */
    size_t esz = want == DT_F64 ? 8 : 4;
    uint64_t n = 1, bytes = 0;
    int over = 0;
    for (int i = 0; i < r; i++)
        over |= __builtin_mul_overflow(n, (uint64_t)dims[i], &n);
    over |= __builtin_mul_overflow(n, (uint64_t)esz, &bytes);
    TR_CHECK(!over && bytes <= L->max_bytes && n <= SIZE_MAX / esz, TR_ERR_DATA,
             "data: %s: %s claims more data than the file can hold (corrupt file?)", L->file, path);
    *rank = r;
    *count = n;
    return TR_OK;
}

static tr_status read_open_dataset(const loader *L, const char *path, hid_t d, dtype want,
                                   int *rank, hsize_t dims[4], void **out) {
    uint64_t count;
    TR_CALL(probe_open_dataset(L, path, d, want, rank, dims, &count));
    size_t esz = want == DT_F64 ? 8 : 4;
    void *buf = tr_calloc(count ? (size_t)count : 1, esz);
    TR_CHECK(buf != NULL, TR_ERR_NOMEM, "out of memory reading %s (%llu elements)", path,
             (unsigned long long)count);
    hid_t mt = want == DT_F32   ? H5T_NATIVE_FLOAT
               : want == DT_I32 ? H5T_NATIVE_INT32
                                : H5T_NATIVE_DOUBLE;
    if (count > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        tr_free(buf);
        TR_RAISE(TR_ERR_DATA, "data: %s: %s: cannot read its data (corrupt file?)", L->file, path);
    }
    *out = buf;
    return TR_OK;
}

/* The dtype and shape of the dataset at path, without reading it. */
static tr_status probe_dataset(const loader *L, const char *path, dtype want, int *rank,
                               hsize_t dims[4]) {
    TR_CHECK(path_exists(L->fid, path), TR_ERR_DATA, "data: %s: missing dataset %s", L->file, path);
    hid_t d = H5Dopen2(L->fid, path, H5P_DEFAULT);
    TR_CHECK(d >= 0, TR_ERR_DATA, "data: %s: %s is not a dataset", L->file, path);
    uint64_t count;
    tr_status s = probe_open_dataset(L, path, d, want, rank, dims, &count);
    H5Dclose(d);
    TR_CALL(s);
    return TR_OK;
}

/* Read the whole dataset at path, checking its dtype. *out is tr_calloc'd. */
static tr_status read_dataset(const loader *L, const char *path, dtype want, int *rank,
                              hsize_t dims[4], void **out) {
    TR_CHECK(path_exists(L->fid, path), TR_ERR_DATA, "data: %s: missing dataset %s", L->file, path);
    hid_t d = H5Dopen2(L->fid, path, H5P_DEFAULT);
    TR_CHECK(d >= 0, TR_ERR_DATA, "data: %s: %s is not a dataset", L->file, path);
    tr_status s = read_open_dataset(L, path, d, want, rank, dims, out);
    H5Dclose(d);
    TR_CALL(s);
    return TR_OK;
}

tr_status tr_data_check_finite(const char *file, const char *path, const float *v, int64_t n,
                               int64_t first) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            TR_RAISE(TR_ERR_DATA, "data: %s: %s contains %s at element %lld", file, path,
                     isnan(v[i]) ? "NaN" : "Inf", (long long)(first + i));
    return TR_OK;
}

/* Labels y (n, cols); column j belongs to task (tasks are in order). */
static tr_status check_labels(const loader *L, const char *path, const tr_dataset *ds,
                              const int32_t *y, int64_t n, int first_task, int cols) {
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < cols; j++) {
            int32_t v = y[i * cols + j];
            int classes = ds->tasks[first_task + j].classes;
            if (v < 0 || v >= classes)
                TR_RAISE(TR_ERR_DATA,
                         "data: %s: %s has label %d at element %lld, outside [0, %d) of task %s",
                         L->file, path, v, (long long)(i * cols + j), classes,
                         ds->tasks[first_task + j].name);
        }
    return TR_OK;
}

/* Fix or compare the per-sample shape. */
static tr_status check_sample_shape(tr_dataset *ds, loader *L, const char *path, int rank,
                                    const hsize_t *dims) {
    TR_CHECK(rank == 2 || rank == 4, TR_ERR_DATA,
             "data: %s: %s has rank %d, expected 2 (n, d) or 4 (n, C, H, W)", L->file, path, rank);
    if (ds->ndim == 0) {
        ds->ndim = rank - 1;
        ds->sample_size = 1;
        for (int i = 0; i < 3; i++) {
            ds->dims[i] = i < rank - 1 ? (int64_t)dims[i + 1] : 0;
            if (i < rank - 1)
                ds->sample_size *= ds->dims[i];
        }
        TR_CHECK(ds->sample_size > 0, TR_ERR_DATA, "data: %s: %s has an empty sample shape",
                 L->file, path);
        snprintf(L->first_x, sizeof(L->first_x), "%s", path);
        return TR_OK;
    }
    int same = rank - 1 == ds->ndim;
    for (int i = 0; same && i < ds->ndim; i++)
        same = (int64_t)dims[i + 1] == ds->dims[i];
    if (!same) {
        char got[96], want[96];
        if (rank == 2)
            snprintf(got, sizeof(got), "(%llu)", (unsigned long long)dims[1]);
        else
            snprintf(got, sizeof(got), "(%llu, %llu, %llu)", (unsigned long long)dims[1],
                     (unsigned long long)dims[2], (unsigned long long)dims[3]);
        if (ds->ndim == 1)
            snprintf(want, sizeof(want), "(%lld)", (long long)ds->dims[0]);
        else
            snprintf(want, sizeof(want), "(%lld, %lld, %lld)", (long long)ds->dims[0],
                     (long long)ds->dims[1], (long long)ds->dims[2]);
        TR_RAISE(TR_ERR_DATA, "data: %s: %s has per-sample shape %s but %s has %s", L->file, path,
                 got, L->first_x, want);
    }
    return TR_OK;
}

/* Shared-input tasks of both kinds: y is float32 (n, T), class ids as whole
 * numbers in the classification columns. */
static int shared_mixed(const tr_dataset *ds) {
    if (ds->setting != TR_SETTING_SHARED_INPUT)
        return 0;
    for (int t = 1; t < ds->T; t++)
        if (ds->tasks[t].kind != ds->tasks[0].kind)
            return 1;
    return 0;
}

/* The dtype of a split's y: by the kind, float32 for mixed shared-input. */
static dtype y_dtype(const tr_dataset *ds, int t) {
    if (t < 0 && shared_mixed(ds))
        return DT_F32;
    return ds->tasks[t >= 0 ? t : 0].kind == TR_TASK_CLASSIFICATION ? DT_I32 : DT_F32;
}

/* Mixed shared-input: the class ids of yf's classification columns into y
 * (checked: whole numbers in [0, classes)); regression columns must be finite. */
static tr_status split_mixed_labels(const loader *L, const char *path, const tr_dataset *ds,
                                    tr_split_data *sd) {
    int T = ds->T;
    TR_ALLOC(sd->y, (size_t)(sd->n * T), "dataset labels");
    for (int64_t i = 0; i < sd->n; i++)
        for (int t = 0; t < T; t++) {
            float v = sd->yf[i * T + t];
            const tr_task_info *ti = &ds->tasks[t];
            if (ti->kind == TR_TASK_REGRESSION) {
                TR_CHECK(isfinite(v), TR_ERR_DATA, "data: %s: %s contains %s at element %lld",
                         L->file, path, isnan(v) ? "NaN" : "Inf", (long long)(i * T + t));
                continue;
            }
            TR_CHECK(v >= 0 && v < (float)ti->classes && v == floorf(v), TR_ERR_DATA,
                     "data: %s: %s has %g at element %lld: task %s is a classification task, "
                     "so its column holds class ids 0 to %d",
                     L->file, path, (double)v, (long long)(i * T + t), ti->name, ti->classes - 1);
            sd->y[i * T + t] = (int32_t)v;
        }
    return TR_OK;
}

/* The HDF5 paths of one split: multi-input task t (t >= 0) or the
 * shared-input split (t = -1). */
static void split_paths(const tr_dataset *ds, int t, tr_split s, char *base, char *xpath,
                        char *ypath) {
    if (t >= 0)
        snprintf(base, 160, "/tasks/%s/%s", ds->tasks[t].name, tr_split_name(s));
    else
        snprintf(base, 160, "/%s", tr_split_name(s));
    snprintf(xpath, 192, "%s/x", base);
    snprintf(ypath, 192, "%s/y", base);
}

/* One split's shapes without its numbers: the per-sample shape, x and y
 * rows, y's rank; sets sd->n. */
static tr_status probe_split(tr_dataset *ds, loader *L, tr_split_data *sd, int t, tr_split s) {
    char base[160], xpath[192], ypath[192];
    split_paths(ds, t, s, base, xpath, ypath);
    int xr, yr;
    hsize_t xd[4], yd[4];
    TR_CALL(probe_dataset(L, xpath, DT_F32, &xr, xd));
    TR_CALL(check_sample_shape(ds, L, xpath, xr, xd));
    sd->n = (int64_t)xd[0];
    TR_CALL(probe_dataset(L, ypath, y_dtype(ds, t), &yr, yd));
    if (t >= 0)
        TR_CHECK(yr == 1, TR_ERR_DATA, "data: %s: %s has rank %d, expected 1 (n)", L->file, ypath,
                 yr);
    else
        TR_CHECK(yr == 2 && (int64_t)yd[1] == ds->T, TR_ERR_DATA,
                 "data: %s: %s must have shape (n, %d) for %d tasks", L->file, ypath, ds->T, ds->T);
    TR_CHECK((int64_t)yd[0] == sd->n, TR_ERR_DATA, "data: %s: %s has %llu rows but %s has %lld",
             L->file, ypath, (unsigned long long)yd[0], xpath, (long long)sd->n);
    TR_CHECK(s != TR_SPLIT_TRAIN || sd->n > 0, TR_ERR_DATA,
             "data: %s: %s is empty: the train split needs at least one example", L->file, xpath);
    return TR_OK;
}

/* One split's numbers (after probe_split), with their values checked. */
static tr_status read_split(tr_dataset *ds, loader *L, tr_split_data *sd, int t, tr_split s) {
    char base[160], xpath[192], ypath[192];
    split_paths(ds, t, s, base, xpath, ypath);
    tr_task_kind kind = ds->tasks[t >= 0 ? t : 0].kind;
    int cols = t >= 0 ? 1 : ds->T;
    int xr, yr;
    hsize_t xd[4], yd[4];
    void *buf = NULL;
    if (L->xf)
        TR_CALL(probe_dataset(L, xpath, DT_F32, &xr, xd));
    else
        TR_CALL(read_dataset(L, xpath, DT_F32, &xr, xd, &buf));
    sd->x = buf;
    int64_t per = 1;
    for (int i = 1; i < xr; i++)
        per *= (int64_t)xd[i];
    TR_CHECK((int64_t)xd[0] == sd->n && per == ds->sample_size, TR_ERR_DATA,
             "data: %s: %s changed while it was read", L->file, xpath);
    dtype yt = y_dtype(ds, t);
    TR_CALL(read_dataset(L, ypath, yt, &yr, yd, &buf));
    if (yt == DT_I32)
        sd->y = buf;
    else
        sd->yf = buf;
    TR_CHECK((int64_t)yd[0] == sd->n, TR_ERR_DATA, "data: %s: %s changed while it was read",
             L->file, ypath);
    if (L->xf) /* checked by a pass over the file */
        TR_CALL(tr_x_stream_open(&sd->xs, L->xf, L->fid, xpath, sd->n, ds->sample_size));
    else
        TR_CALL(tr_data_check_finite(L->file, xpath, sd->x, sd->n * ds->sample_size, 0));
    if (t < 0 && shared_mixed(ds))
        TR_CALL(split_mixed_labels(L, ypath, ds, sd));
    else if (kind == TR_TASK_CLASSIFICATION)
        TR_CALL(check_labels(L, ypath, ds, sd->y, sd->n, t >= 0 ? t : 0, cols));
    else
        TR_CALL(tr_data_check_finite(L->file, ypath, sd->yf, sd->n * cols, 0));
    return TR_OK;
}

/* Attributes of /tasks/<name>: kind, classes, index. */
static tr_status load_task_attrs(const loader *L, hid_t g, const char *gpath, tr_task_info *ti,
                                 long long *index) {
    char kind[64];
    TR_CALL(attr_read_str(L, g, gpath, "kind", kind, sizeof(kind)));
    if (strcmp(kind, "classification") == 0)
        ti->kind = TR_TASK_CLASSIFICATION;
    else if (strcmp(kind, "regression") == 0)
        ti->kind = TR_TASK_REGRESSION;
    else
        TR_RAISE(TR_ERR_DATA,
                 "data: %s: %s: unknown kind '%s' (expected classification or regression)", L->file,
                 gpath, kind);
    long long classes = 1;
    if (ti->kind == TR_TASK_CLASSIFICATION || H5Aexists(g, "classes") > 0)
        TR_CALL(attr_read_int(L, g, gpath, "classes", &classes));
    if (ti->kind == TR_TASK_CLASSIFICATION)
        TR_CHECK(classes >= 2 && classes <= (1 << 24), TR_ERR_DATA,
                 "data: %s: %s: classes = %lld, expected at least 2", L->file, gpath, classes);
    else
        TR_CHECK(classes == 1, TR_ERR_DATA,
                 "data: %s: %s: classes = %lld, expected 1 for a regression task", L->file, gpath,
                 classes);
    ti->classes = (int)classes;
    TR_CALL(attr_read_int(L, g, gpath, "index", index));
    return TR_OK;
}

/* The task table from /tasks/<name>, ordered by the `index` attribute. */
static tr_status load_tasks(tr_dataset *ds, const loader *L) {
    TR_CHECK(path_exists(L->fid, "/tasks"), TR_ERR_DATA, "data: %s: missing group /tasks", L->file);
    hid_t g = H5Gopen2(L->fid, "/tasks", H5P_DEFAULT);
    TR_CHECK(g >= 0, TR_ERR_DATA, "data: %s: /tasks is not a group", L->file);
    H5G_info_t info;
    herr_t r = H5Gget_info(g, &info);
    H5Gclose(g);
    TR_CHECK(r >= 0, TR_ERR_DATA, "data: %s: cannot list /tasks", L->file);
    TR_CHECK(info.nlinks >= 1 && info.nlinks <= 65536, TR_ERR_DATA,
             "data: %s: /tasks has %llu tasks (1 to 65536 supported)", L->file,
             (unsigned long long)info.nlinks);
    TR_CALL(tr_data_alloc_tasks(ds, (int)info.nlinks));
    for (int i = 0; i < ds->T; i++)
        ds->tasks[i].classes = 0; /* marks a free slot */

    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[256], gpath[300];
        ssize_t len = H5Lget_name_by_idx(L->fid, "/tasks", H5_INDEX_NAME, H5_ITER_INC, i, name,
                                         sizeof(name), H5P_DEFAULT);
        TR_CHECK(len > 0 && len < 64, TR_ERR_DATA,
                 "data: %s: /tasks: task %llu has an empty or too long name (max 63 chars)",
                 L->file, (unsigned long long)i);
        snprintf(gpath, sizeof(gpath), "/tasks/%s", name);
        hid_t tg = H5Gopen2(L->fid, gpath, H5P_DEFAULT);
        TR_CHECK(tg >= 0, TR_ERR_DATA, "data: %s: %s is not a group", L->file, gpath);
        tr_task_info ti;
        memset(&ti, 0, sizeof(ti));
        long long index = -1;
        tr_status s = load_task_attrs(L, tg, gpath, &ti, &index);
        H5Gclose(tg);
        TR_CALL(s);
        TR_CHECK(index >= 0 && index < ds->T, TR_ERR_DATA,
                 "data: %s: %s: index = %lld, expected 0 to %d", L->file, gpath, index, ds->T - 1);
        TR_CHECK(ds->tasks[index].classes == 0, TR_ERR_DATA,
                 "data: %s: %s: index %lld is also used by /tasks/%s", L->file, gpath, index,
                 ds->tasks[index].name);
        memcpy(ti.name, name, (size_t)len + 1); /* len < 64 checked above */
        ds->tasks[index] = ti;
    }
    return TR_OK;
}

static tr_status load_sigma3(tr_dataset *ds, const loader *L) {
    const char *path = "/truth/sigma3";
    if (!path_exists(L->fid, path))
        return TR_OK;
    int r;
    hsize_t d[4];
    void *buf;
    TR_CALL(read_dataset(L, path, DT_F64, &r, d, &buf));
    ds->sigma3 = buf;
    TR_CHECK(r == 2 && (int64_t)d[0] == ds->T && (int64_t)d[1] == ds->T, TR_ERR_DATA,
             "data: %s: %s must have shape (%d, %d)", L->file, path, ds->T, ds->T);
    for (int i = 0; i < ds->T * ds->T; i++)
        TR_CHECK(isfinite(ds->sigma3[i]), TR_ERR_DATA, "data: %s: %s contains %s at element %d",
                 L->file, path, isnan(ds->sigma3[i]) ? "NaN" : "Inf", i);
    return TR_OK;
}

/* Which splits the file has: the first task's (or the shared) split groups;
 * every task must have the same ones. */
static tr_status find_splits(tr_dataset *ds, const loader *L) {
    for (int s = 0; s < TR_SPLIT_COUNT; s++) {
        char base[160], xp[192], yp[192];
        split_paths(ds, ds->setting == TR_SETTING_MULTI_INPUT ? 0 : -1, (tr_split)s, base, xp, yp);
        ds->has_split[s] = path_exists(L->fid, base);
        for (int t = 1; ds->setting == TR_SETTING_MULTI_INPUT && t < ds->T; t++) {
            char other[160];
            split_paths(ds, t, (tr_split)s, other, xp, yp);
            TR_CHECK(path_exists(L->fid, other) == ds->has_split[s], TR_ERR_DATA,
                     "data: %s: %s %s but %s %s: every task needs the same splits", L->file,
                     ds->has_split[s] ? base : other, "exists", ds->has_split[s] ? other : base,
                     "is missing");
        }
    }
    TR_CHECK(ds->has_split[0] || ds->has_split[1] || ds->has_split[2], TR_ERR_DATA,
             "data: %s: no split: expected %s/train, /val or /test", L->file,
             ds->setting == TR_SETTING_MULTI_INPUT ? "/tasks/<name>" : "");
    return TR_OK;
}

/* Everything but the examples: setting, tasks, split sizes and shapes, the
 * true covariance. */
static tr_status load_header(tr_dataset *ds, loader *L) {
    char setting[64];
    TR_CALL(attr_read_str(L, L->fid, "/", "setting", setting, sizeof(setting)));
    if (strcmp(setting, "multi_input") == 0)
        ds->setting = TR_SETTING_MULTI_INPUT;
    else if (strcmp(setting, "shared_input") == 0)
        ds->setting = TR_SETTING_SHARED_INPUT;
    else
        TR_RAISE(TR_ERR_DATA,
                 "data: %s: /: unknown setting '%s' (expected multi_input or shared_input)",
                 L->file, setting);
    TR_CALL(load_tasks(ds, L));
    TR_CALL(find_splits(ds, L));
    for (int s = 0; s < TR_SPLIT_COUNT; s++) {
        if (!ds->has_split[s])
            continue;
        if (ds->setting == TR_SETTING_SHARED_INPUT)
            TR_CALL(probe_split(ds, L, &ds->shared[s], -1, (tr_split)s));
        else
            for (int t = 0; t < ds->T; t++)
                TR_CALL(probe_split(ds, L, &ds->tasks[t].split[s], t, (tr_split)s));
    }
    TR_CALL(load_sigma3(ds, L));
    return TR_OK;
}

/* The examples of tasks [t0, t0 + tn) (multi-input), or all of them. */
static tr_status load_examples(tr_dataset *ds, loader *L, int t0, int tn) {
    for (int s = 0; s < TR_SPLIT_COUNT; s++) {
        if (!ds->has_split[s])
            continue;
        if (ds->setting == TR_SETTING_SHARED_INPUT) {
            if (!ds->shared[s].x && !ds->shared[s].xs)
                TR_CALL(read_split(ds, L, &ds->shared[s], -1, (tr_split)s));
        } else {
            for (int t = t0; t < t0 + tn; t++)
                if (!ds->tasks[t].loaded)
                    TR_CALL(read_split(ds, L, &ds->tasks[t].split[s], t, (tr_split)s));
        }
    }
    for (int t = t0; t < t0 + tn; t++)
        ds->tasks[t].loaded = 1;
    return TR_OK;
}

typedef tr_status (*load_fn)(tr_dataset *ds, loader *L, int t0, int tn);

/* load_examples with the inputs left in the file (tr_dataset_stream_tasks). */
static tr_status stream_examples(tr_dataset *ds, loader *L, int t0, int tn) {
    TR_CALL(tr_x_file_open(&L->xf, L->file));
    tr_status st = load_examples(ds, L, t0, tn);
    tr_x_file_release(L->xf); /* the streams hold their own references */
    L->xf = NULL;
    return st;
}

static tr_status header_fn(tr_dataset *ds, loader *L, int t0, int tn) {
    (void)t0;
    (void)tn;
    return load_header(ds, L);
}

/* Open path and run fn on it with HDF5's error printing off. */
static tr_status with_file(tr_dataset *ds, const char *path, load_fn fn, int t0, int tn) {
    struct stat st;
    TR_CHECK(stat(path, &st) == 0, TR_ERR_DATA, "dataset file not found: %s", path);
    TR_CHECK(S_ISREG(st.st_mode), TR_ERR_DATA, "data: %s: not a regular file", path);
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    tr_status s = TR_OK;
    /* Every identifier is closed on every path (unit.h5_hostile counts
     * them), so no STRONG close degree hides a leak here. */
    hid_t fid = tr_h5_open_read(path, MPI_COMM_NULL);
    if (fid < 0) {
        s = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                         "data: %s: cannot open as an HDF5 file", path);
    } else {
        /* A dataset may hold more than the file's size only through
         * compression: allow a generous ratio, and 64 MiB for tiny files. */
        uint64_t cap = (uint64_t)st.st_size * 64;
        loader L = {.file = path, .fid = fid, .max_bytes = cap > (64u << 20) ? cap : (64u << 20)};
        s = fn(ds, &L, t0, tn);
        H5Fclose(fid);
    }
    tr_h5_quiet_end(&q);
    if (s != TR_OK)
        tr_dataset_free(ds);
    TR_CALL(s);
    return TR_OK;
}

tr_status tr_dataset_load_header(tr_dataset *ds, const char *path) {
    memset(ds, 0, sizeof(*ds));
    return with_file(ds, path, header_fn, 0, 0);
}

tr_status tr_dataset_load_tasks(tr_dataset *ds, const char *path, int t0, int tn) {
    TR_ASSERT(ds->T >= 1 && t0 >= 0 && tn >= 0 && t0 + tn <= ds->T);
    return with_file(ds, path, load_examples, t0, tn);
}

tr_status tr_dataset_stream_tasks(tr_dataset *ds, const char *path, int t0, int tn) {
    TR_ASSERT(ds->T >= 1 && t0 >= 0 && tn >= 0 && t0 + tn <= ds->T);
    return with_file(ds, path, stream_examples, t0, tn);
}

tr_status tr_dataset_load(tr_dataset *ds, const char *path) {
    TR_CALL(tr_dataset_load_header(ds, path));
    TR_CALL(tr_dataset_load_tasks(ds, path, 0, ds->T));
    return TR_OK;
}
