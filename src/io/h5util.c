/* HDF5 attribute helpers (see h5util.h). */
#include "h5util.h"

#include <stdlib.h>
#include <string.h>

/* Scalar attribute of a native type (written collectively in a parallel file). */
static tr_status attr_write_scalar(hid_t loc, const char *name, hid_t type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    TR_H5(sp);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, type, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    TR_H5(rc);
    return TR_OK;
}

static tr_status attr_read_scalar(hid_t loc, const char *name, hid_t type, void *v, int *found) {
    *found = 0;
    htri_t ex = H5Aexists(loc, name);
    TR_H5(ex);
    if (!ex)
        return TR_OK;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    TR_H5(a);
    herr_t rc = H5Aread(a, type, v);
    H5Aclose(a);
    if (rc < 0)
        TR_RAISE(TR_ERR_DATA, "cannot read attribute '%s'", name);
    *found = 1;
    return TR_OK;
}

tr_status tr_h5_attr_write_int(hid_t loc, const char *name, long long v) {
    return attr_write_scalar(loc, name, H5T_NATIVE_LLONG, &v);
}

tr_status tr_h5_attr_write_double(hid_t loc, const char *name, double v) {
    return attr_write_scalar(loc, name, H5T_NATIVE_DOUBLE, &v);
}

tr_status tr_h5_attr_write_str(hid_t loc, const char *name, const char *v) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    TR_H5(ty);
    H5Tset_size(ty, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, ty, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(ty);
    TR_H5(rc);
    return TR_OK;
}

tr_status tr_h5_attr_read_str(hid_t loc, const char *name, char *buf, size_t cap, int *found) {
    *found = 0;
    if (cap > 0)
        buf[0] = '\0';
    htri_t ex = H5Aexists(loc, name);
    TR_H5(ex);
    if (!ex)
        return TR_OK;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    TR_H5(a);
    hid_t ft = H5Aget_type(a);
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0) {
        if (ft >= 0)
            H5Tclose(ft);
        H5Aclose(a);
        TR_RAISE(TR_ERR_DATA, "attribute '%s' is not a fixed-length string", name);
    }
    size_t n = H5Tget_size(ft);
    H5Tclose(ft);
    char *tmp = malloc(n + 1);
    if (!tmp) {
        H5Aclose(a);
        TR_RAISE(TR_ERR_NOMEM, "out of memory reading attribute '%s'", name);
    }
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, n);
    herr_t rc = H5Aread(a, mt, tmp);
    H5Tclose(mt);
    H5Aclose(a);
    if (rc < 0) {
        free(tmp);
        TR_RAISE(TR_ERR_DATA, "cannot read attribute '%s'", name);
    }
    tmp[n] = '\0';
    snprintf(buf, cap, "%s", tmp);
    free(tmp);
    *found = 1;
    return TR_OK;
}

tr_status tr_h5_attr_read_int(hid_t loc, const char *name, long long *v, int *found) {
    return attr_read_scalar(loc, name, H5T_NATIVE_LLONG, v, found);
}

tr_status tr_h5_attr_read_double(hid_t loc, const char *name, double *v, int *found) {
    return attr_read_scalar(loc, name, H5T_NATIVE_DOUBLE, v, found);
}

tr_status tr_h5_select_part(hid_t fspace, hid_t *mspace, const tr_tensor *t, int active) {
    hsize_t count = active ? (hsize_t)t->count : 0;
    hsize_t mdim = count > 0 ? count : 1;
    *mspace = H5Screate_simple(1, &mdim, NULL);
    TR_H5(*mspace);
    if (!active) {
        TR_H5(H5Sselect_none(fspace));
        TR_H5(H5Sselect_none(*mspace));
        return TR_OK;
    }
    if (t->task_axis) {
        hsize_t start[TR_MAX_DIMS] = {0}, cnt[TR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++)
            cnt[d] = (hsize_t)t->shape[d];
        start[0] = (hsize_t)t->t0;
        cnt[0] = (hsize_t)t->tn;
        TR_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL));
    } else {
        TR_H5(H5Sselect_all(fspace));
    }
    return TR_OK;
}
