/*
 * Read-only file summaries for the CLI (see taskrel/h5summary.h). Every
 * identifier opened here is closed on every path.
 */
#include "taskrel/h5summary.h"

#include <stdlib.h>
#include <string.h>

#include "h5util.h"

int tr_h5_is_file(const char *path) {
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    htri_t is = H5Fis_hdf5(path);
    tr_h5_quiet_end(&q);
    return is > 0;
}

void tr_h5_errors_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* Values of an open attribute into ai (kind OTHER if they cannot be read). */
static void attr_values(hid_t loc, hid_t a, tr_h5_attr_info *ai) {
    hid_t ty = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    ai->kind = TR_H5_ATTR_OTHER;
    ai->count = n;
    int small = n >= 1 && n <= TR_H5_SUMMARY_VALUES;
    if (cls == H5T_STRING && n == 1) {
        int found = 0;
        if (tr_h5_attr_read_text(loc, ai->name, &ai->text, &found) == TR_OK && found)
            ai->kind = TR_H5_ATTR_TEXT;
        tr_error_clear();
    } else if (cls == H5T_INTEGER && small && H5Aread(a, H5T_NATIVE_LLONG, ai->ints) >= 0) {
        ai->kind = TR_H5_ATTR_INT;
    } else if (cls == H5T_FLOAT && small && H5Aread(a, H5T_NATIVE_DOUBLE, ai->reals) >= 0) {
        ai->kind = TR_H5_ATTR_FLOAT;
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (ty >= 0)
        H5Tclose(ty);
}

static herr_t add_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op) {
    (void)info;
    tr_h5_summary *s = op;
    if (s->n_attrs % 32 == 0) {
        tr_h5_attr_info *v = realloc(s->attrs, (size_t)(s->n_attrs + 32) * sizeof(*v));
        if (!v)
            return -1;
        s->attrs = v;
    }
    tr_h5_attr_info *ai = &s->attrs[s->n_attrs];
    memset(ai, 0, sizeof(*ai));
    snprintf(ai->name, sizeof(ai->name), "%s", name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0)
        return 0; /* unreadable: left out, as before */
    attr_values(loc, a, ai);
    H5Aclose(a);
    s->n_attrs++;
    return 0;
}

static herr_t add_dataset(hid_t loc, const char *name, const H5O_info_t *info, void *op) {
    tr_h5_summary *s = op;
    if (info->type != H5O_TYPE_DATASET || strncmp(name, "relations/", 10) == 0)
        return 0;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0)
        return 0;
    if (s->n_datasets % 64 == 0) {
        tr_h5_dataset_info *v = realloc(s->datasets, (size_t)(s->n_datasets + 64) * sizeof(*v));
        if (!v) {
            H5Dclose(ds);
            return -1;
        }
        s->datasets = v;
    }
    tr_h5_dataset_info *di = &s->datasets[s->n_datasets++];
    memset(di, 0, sizeof(*di));
    snprintf(di->path, sizeof(di->path), "/%s", name);
    hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
    hsize_t dims[H5S_MAX_RANK] = {0};
    int nd = sp >= 0 ? H5Sget_simple_extent_dims(sp, dims, NULL) : 0;
    di->ndim = nd < 0 ? 0 : nd > 8 ? 8 : nd;
    for (int i = 0; i < di->ndim; i++)
        di->dims[i] = (int64_t)dims[i];
    H5T_class_t cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    snprintf(di->type, sizeof(di->type), "%s",
             cls == H5T_FLOAT     ? (H5Tget_size(ty) == 4 ? "float32" : "float64")
             : cls == H5T_INTEGER ? "int"
                                  : "other");
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(ds);
    return 0;
}

tr_status tr_h5_summary_read(const char *path, tr_h5_summary *s) {
    memset(s, 0, sizeof(*s));
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t f = tr_h5_open_read(path, MPI_COMM_NULL);
    herr_t rc = -1;
    if (f >= 0) {
        rc = H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, add_attr, s);
        if (rc >= 0)
            rc = H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, add_dataset, s, H5O_INFO_BASIC);
        H5Fclose(f);
    }
    tr_h5_quiet_end(&q);
    if (rc < 0)
        tr_h5_summary_free(s);
    TR_CHECK(f >= 0, TR_ERR_DATA, "%s: cannot open as HDF5", path);
    TR_CHECK(rc >= 0, TR_ERR_DATA, "%s: cannot list the file's objects (corrupt?)", path);
    return TR_OK;
}

void tr_h5_summary_free(tr_h5_summary *s) {
    if (!s)
        return;
    for (int i = 0; i < s->n_attrs; i++)
        free(s->attrs[i].text);
    free(s->attrs);
    free(s->datasets);
    memset(s, 0, sizeof(*s));
}

/* Read the open 2-D dataset ds into a new array. */
static tr_status read_matrix(hid_t ds, const char *path, const char *name, double **data, int *rows,
                             int *cols) {
    hid_t sp = H5Dget_space(ds);
    TR_CHECK(sp >= 0, TR_ERR_DATA, "%s: cannot read the shape of /%s", path, name);
    hsize_t dims[H5S_MAX_RANK] = {0};
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    TR_CHECK(nd == 2 && dims[0] > 0 && dims[1] > 0 && dims[0] <= 1u << 24 && dims[1] <= 1u << 24 &&
                 dims[0] * dims[1] <= 1u << 24,
             TR_ERR_DATA, "%s: /%s is not a matrix of at most 2^24 entries", path, name);
    double *buf = malloc(sizeof(double) * dims[0] * dims[1]);
    TR_CHECK(buf, TR_ERR_NOMEM, "out of memory reading /%s", name);
    if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        TR_RAISE(TR_ERR_DATA, "%s: cannot read /%s", path, name);
    }
    *data = buf;
    *rows = (int)dims[0];
    *cols = (int)dims[1];
    return TR_OK;
}

tr_status tr_h5_read_matrix(const char *path, const char *name, double **data, int *rows, int *cols,
                            int *found) {
    *data = NULL;
    *found = 0;
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t f = tr_h5_open_read(path, MPI_COMM_NULL);
    tr_status st = f < 0 ? tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                                        "%s: cannot open as HDF5", path)
                         : TR_OK;
    /* H5Lexists per component: a missing group is absent, not an error */
    char part[256];
    int exists = st == TR_OK;
    for (const char *p = name; exists && p;) {
        p = strchr(p, '/');
        snprintf(part, sizeof(part), "%.*s", p ? (int)(p - name) : (int)strlen(name), name);
        exists = H5Lexists(f, part, H5P_DEFAULT) > 0;
        if (p)
            p++;
    }
    hid_t ds = exists ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    if (st == TR_OK && exists && ds < 0)
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__, "%s: /%s is not a dataset",
                          path, name);
    if (ds >= 0) {
        st = read_matrix(ds, path, name, data, rows, cols);
        *found = st == TR_OK;
        H5Dclose(ds);
    }
    if (f >= 0)
        H5Fclose(f);
    tr_h5_quiet_end(&q);
    return st;
}
