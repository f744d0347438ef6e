/*
 * The HDF5 layer of src/io (see h5util.h): file access, attributes, arenas.
 * Every function closes every identifier it opened, on every path: a leaked
 * identifier is what makes HDF5 print "infinite loop closing library" at exit.
 */
#include "h5util.h"

#include <stdlib.h>
#include <string.h>

/* Largest string attribute read (the resolved config is ~10 kB). */
#define MAX_ATTR_TEXT ((size_t)1 << 24)

/* ---- files -------------------------------------------------------------------- */

hid_t tr_h5_fapl(MPI_Comm comm) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    herr_t rc = comm != MPI_COMM_NULL ? H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) : 0;
    /* 1.8+ object format: checksummed superblock and object headers */
    if (rc >= 0)
        rc = H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    if (rc < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

hid_t tr_h5_open_read(const char *path, MPI_Comm comm) {
    hid_t fapl = tr_h5_fapl(comm);
    if (fapl < 0)
        return -1;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return file;
}

hid_t tr_h5_dxpl_collective(void) {
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
        H5Pclose(dxpl);
        return -1;
    }
    return dxpl;
}

void tr_h5_quiet_begin(tr_h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void tr_h5_quiet_end(const tr_h5_quiet *q) {
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

/* ---- attributes --------------------------------------------------------------- */

/* Replace attribute `name` of loc by one value of file type ftype. */
static tr_status attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *v) {
    htri_t ex = H5Aexists(loc, name);
    TR_H5(ex);
    if (ex > 0)
        TR_H5(H5Adelete(loc, name));
    hid_t sp = H5Screate(H5S_SCALAR);
    TR_H5(sp);
    hid_t a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mtype, v);
    if (a >= 0 && H5Aclose(a) < 0)
        rc = -1;
    H5Sclose(sp);
    TR_CHECK(rc >= 0, TR_ERR_IO, "HDF5: cannot write attribute '%s'", name);
    return TR_OK;
}

tr_status tr_h5_attr_write_int(hid_t loc, const char *name, long long v) {
    return attr_write(loc, name, H5T_NATIVE_LLONG, H5T_NATIVE_LLONG, &v);
}

tr_status tr_h5_attr_write_int32(hid_t loc, const char *name, int v) {
    return attr_write(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v);
}

tr_status tr_h5_attr_write_u64(hid_t loc, const char *name, uint64_t v) {
    return attr_write(loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

tr_status tr_h5_attr_write_double(hid_t loc, const char *name, double v) {
    return attr_write(loc, name, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, &v);
}

tr_status tr_h5_attr_write_str(hid_t loc, const char *name, const char *v) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    TR_H5(ty);
    tr_status st = H5Tset_size(ty, strlen(v) + 1) < 0
                       ? tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                                      "HDF5: attribute '%s' is too long", name)
                       : attr_write(loc, name, ty, ty, v);
    H5Tclose(ty);
    return st;
}

/* Open attribute name of class `want` holding exactly one value; *a and *ft
 * (its file type) are left open for the caller only on success with *found. */
static tr_status attr_open(hid_t loc, const char *name, H5T_class_t want, hid_t *a, hid_t *ft,
                           int *found) {
    *found = 0;
    *a = *ft = -1;
    htri_t ex = H5Aexists(loc, name);
    TR_CHECK(ex >= 0, TR_ERR_DATA, "cannot look up attribute '%s'", name);
    if (!ex)
        return TR_OK;
    *a = H5Aopen(loc, name, H5P_DEFAULT);
    TR_CHECK(*a >= 0, TR_ERR_DATA, "cannot open attribute '%s'", name);
    *ft = H5Aget_type(*a);
    hid_t sp = H5Aget_space(*a);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0)
        H5Sclose(sp);
    H5T_class_t cls = *ft >= 0 ? H5Tget_class(*ft) : H5T_NO_CLASS;
    int ok = np == 1 && (cls == want || (want == H5T_FLOAT && cls == H5T_INTEGER));
    if (!ok) {
        if (*ft >= 0)
            H5Tclose(*ft);
        H5Aclose(*a);
        *a = *ft = -1;
        TR_RAISE(TR_ERR_DATA, "attribute '%s' must be a single %s", name,
                 want == H5T_STRING  ? "string"
                 : want == H5T_FLOAT ? "number"
                                     : "integer");
    }
    *found = 1;
    return TR_OK;
}

static tr_status attr_read_scalar(hid_t loc, const char *name, H5T_class_t want, hid_t mtype,
                                  void *v, int *found) {
    hid_t a, ft;
    TR_CALL(attr_open(loc, name, want, &a, &ft, found));
    if (!*found)
        return TR_OK;
    herr_t rc = H5Aread(a, mtype, v);
    H5Tclose(ft);
    H5Aclose(a);
    if (rc < 0) {
        *found = 0;
        TR_RAISE(TR_ERR_DATA, "cannot read attribute '%s'", name);
    }
    return TR_OK;
}

tr_status tr_h5_attr_read_int(hid_t loc, const char *name, long long *v, int *found) {
    return attr_read_scalar(loc, name, H5T_INTEGER, H5T_NATIVE_LLONG, v, found);
}

tr_status tr_h5_attr_read_double(hid_t loc, const char *name, double *v, int *found) {
    return attr_read_scalar(loc, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, v, found);
}

/* Read an open string attribute (type ft) into a malloc'd text. The memory
 * type takes the file type's character set: HDF5 does not convert between
 * ASCII and UTF-8, which is why h5py's UTF-8 strings failed before. */
static tr_status read_string(hid_t a, hid_t ft, const char *name, char **text) {
    *text = NULL;
    htri_t vlen = H5Tis_variable_str(ft);
    H5T_cset_t cset = H5Tget_cset(ft);
    size_t n = vlen > 0 ? 0 : H5Tget_size(ft);
    TR_CHECK(vlen >= 0 && cset >= 0 && (vlen > 0 || (n > 0 && n <= MAX_ATTR_TEXT)), TR_ERR_DATA,
             "attribute '%s' is not a readable string", name);
    hid_t mt = H5Tcopy(H5T_C_S1);
    TR_H5(mt);
    herr_t rc = H5Tset_cset(mt, cset);
    char *buf = NULL;
    if (rc >= 0 && vlen > 0) {
        char *v = NULL;
        rc = H5Tset_size(mt, H5T_VARIABLE);
        if (rc >= 0)
            rc = H5Aread(a, mt, &v);
        size_t len = rc >= 0 && v ? strnlen(v, MAX_ATTR_TEXT) : 0;
        buf = rc >= 0 ? malloc(len + 1) : NULL;
        if (buf) {
            memcpy(buf, v ? v : "", len);
            buf[len] = '\0';
        }
        if (v)
            H5free_memory(v);
    } else if (rc >= 0) {
        H5T_str_t pad = H5Tget_strpad(ft);
        buf = malloc(n + 1);
        rc = buf && pad >= 0 ? H5Tset_size(mt, n) : -1;
        if (rc >= 0)
            rc = H5Tset_strpad(mt, pad);
        if (rc >= 0)
            rc = H5Aread(a, mt, buf);
        if (rc >= 0) {
            buf[n] = '\0';
            size_t len = strlen(buf);
            while (pad == H5T_STR_SPACEPAD && len > 0 && buf[len - 1] == ' ')
                buf[--len] = '\0';
        }
    }
    H5Tclose(mt);
    if (rc < 0 || !buf) {
        free(buf);
        TR_RAISE(rc < 0 ? TR_ERR_DATA : TR_ERR_NOMEM, "cannot read string attribute '%s'", name);
    }
    *text = buf;
    return TR_OK;
}

tr_status tr_h5_attr_read_text(hid_t loc, const char *name, char **text, int *found) {
    *text = NULL;
    hid_t a, ft;
    TR_CALL(attr_open(loc, name, H5T_STRING, &a, &ft, found));
    if (!*found)
        return TR_OK;
    tr_status st = read_string(a, ft, name, text);
    H5Tclose(ft);
    H5Aclose(a);
    if (st != TR_OK)
        *found = 0;
    return st;
}

tr_status tr_h5_attr_read_str(hid_t loc, const char *name, char *buf, size_t cap, int *found) {
    if (cap > 0)
        buf[0] = '\0';
    char *text = NULL;
    TR_CALL(tr_h5_attr_read_text(loc, name, &text, found));
    if (text && cap > 0)
        snprintf(buf, cap, "%s", text);
    free(text);
    return TR_OK;
}

/* ---- datasets ----------------------------------------------------------------- */

hid_t tr_h5_dataset_create(hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
                           int task_axis) {
    hsize_t chunk[TR_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        chunk[d] = dims[d] > 0 ? dims[d] : 1;
    if (task_axis)
        chunk[0] = 1;
    hid_t fspace = H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    hid_t ds = -1;
    if (fspace >= 0 && dcpl >= 0 && lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0 &&
        H5Pset_chunk(dcpl, ndim, chunk) >= 0 && H5Pset_fletcher32(dcpl) >= 0)
        ds = H5Dcreate2(loc, name, type, fspace, lcpl, dcpl, H5P_DEFAULT);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (fspace >= 0)
        H5Sclose(fspace);
    return ds;
}

void tr_h5_note_io(hid_t dxpl, tr_h5_io *io) {
    if (!io)
        return;
    H5D_mpio_actual_io_mode_t mode = H5D_MPIO_NO_COLLECTIVE;
    if (H5Pget_mpio_actual_io_mode(dxpl, &mode) < 0)
        mode = H5D_MPIO_NO_COLLECTIVE;
    if (mode == H5D_MPIO_CHUNK_COLLECTIVE || mode == H5D_MPIO_CONTIGUOUS_COLLECTIVE) {
        io->collective++;
        return;
    }
    io->independent++;
    if (!io->cause[0]) {
        uint32_t local = 0, global = 0;
        H5Pget_mpio_no_collective_cause(dxpl, &local, &global);
        snprintf(io->cause, sizeof(io->cause), "mode %d, no-collective cause 0x%x/0x%x", (int)mode,
                 local, global);
    }
}

/* Write (read) tensor t of the arena at buf through the open dataset ds. */
static tr_status tensor_io(hid_t ds, const tr_tensor *t, float *buf, int write, int active,
                           hid_t dxpl, const char *what, const char *name, tr_h5_io *io) {
    hid_t fspace = H5Dget_space(ds), mspace = -1;
    TR_CHECK(fspace >= 0, TR_ERR_DATA, "%s: cannot read the shape of %s", what, name);
    int ok = H5Sget_simple_extent_ndims(fspace) == t->ndim;
    if (ok && !write) {
        hsize_t fd[TR_MAX_DIMS];
        ok = H5Sget_simple_extent_dims(fspace, fd, NULL) == t->ndim;
        for (int d = 0; ok && d < t->ndim; d++)
            ok = fd[d] == (hsize_t)t->shape[d];
    }
    tr_status st = ok ? tr_h5_select_part(fspace, &mspace, t, active)
                      : tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                                     "%s: %s has a shape that does not match the model (check "
                                     "model.* settings and data.tasks)",
                                     what, name);
    if (st == TR_OK) {
        herr_t rc = write ? H5Dwrite(ds, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, buf)
                          : H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, buf);
        if (rc < 0)
            st = tr_error_set(write ? TR_ERR_IO : TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "%s: cannot %s %s%s", what, write ? "write" : "read", name,
                              write ? "" : " (corrupt file or checksum mismatch)");
        else
            tr_h5_note_io(dxpl, io);
    }
    if (mspace >= 0)
        H5Sclose(mspace);
    H5Sclose(fspace);
    return st;
}

static tr_status arena_io(hid_t file, const char *group, const tr_params *p, float *data,
                          const tr_grid *g, hid_t dxpl, int write, const char *what, tr_h5_io *io) {
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        char name[TR_NAME_LEN + 64];
        snprintf(name, sizeof(name), "%s/%s", group, t->name);
        hid_t ds;
        int active;
        if (write) {
            hsize_t dims[TR_MAX_DIMS];
            for (int d = 0; d < t->ndim; d++)
                dims[d] = (hsize_t)t->shape[d];
            ds = tr_h5_dataset_create(file, name, H5T_NATIVE_FLOAT, t->ndim, dims, t->task_axis);
            TR_CHECK(ds >= 0, TR_ERR_IO, "%s: cannot create %s", what, name);
            active = t->task_axis ? g->r == 0 && t->tn > 0 : g->rank == 0;
        } else {
            /* H5Lexists per component: a missing group is "absent", not an error */
            htri_t ex = H5Lexists(file, group, H5P_DEFAULT);
            if (ex > 0)
                ex = H5Lexists(file, name, H5P_DEFAULT);
            TR_CHECK(ex > 0, TR_ERR_DATA, "%s has no tensor %s", what, name);
            ds = H5Dopen2(file, name, H5P_DEFAULT);
            TR_CHECK(ds >= 0, TR_ERR_DATA, "%s: cannot open %s", what, name);
            active = t->count > 0;
        }
        tr_status st = tensor_io(ds, t, data + t->offset, write, active, dxpl, what, name, io);
        if (H5Dclose(ds) < 0 && st == TR_OK)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "%s: cannot close %s", what,
                              name);
        TR_CALL(st);
    }
    return TR_OK;
}

tr_status tr_h5_arena_write(hid_t file, const char *group, const tr_params *p, const float *data,
                            const tr_grid *g, hid_t dxpl, const char *what, tr_h5_io *io) {
    /* the writer never stores through the pointer */
    return arena_io(file, group, p, (float *)data, g, dxpl, 1, what, io);
}

tr_status tr_h5_arena_read(hid_t file, const char *group, const tr_params *p, float *data,
                           hid_t dxpl, const char *what, tr_h5_io *io) {
    return arena_io(file, group, p, data, NULL, dxpl, 0, what, io);
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
