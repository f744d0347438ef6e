/*
 * Collective HDF5 weights files (see taskrel/weights.h). Not here: optimizer
 * state, data cursors and the rest of a resumable checkpoint.
 */
#include "taskrel/weights.h"

#include "h5util.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int owns_rows(const tr_tensor *t, const tr_grid *g) {
    return t->task_axis ? (g->r == 0 && t->tn > 0) : (g->rank == 0);
}

static tr_status save_group(hid_t file, const char *group, const tr_params *p, const tr_grid *g,
                            hid_t dxpl) {
    hid_t grp = H5Gcreate2(file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    TR_H5(grp);
    tr_status st = TR_OK;
    for (int i = 0; i < p->n && st == TR_OK; i++) {
        const tr_tensor *t = &p->t[i];
        hsize_t dims[TR_MAX_DIMS], chunk[TR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) {
            dims[d] = (hsize_t)t->shape[d];
            chunk[d] = dims[d];
        }
        if (t->task_axis)
            chunk[0] = 1;
        hid_t fspace = H5Screate_simple(t->ndim, dims, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, t->ndim, chunk);
        H5Pset_fletcher32(dcpl);
        hid_t ds =
            H5Dcreate2(grp, t->name, H5T_NATIVE_FLOAT, fspace, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        hid_t mspace = -1;
        if (ds < 0)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                              "cannot create dataset %s/%s", group, t->name);
        if (st == TR_OK)
            st = tr_h5_select_part(fspace, &mspace, t, owns_rows(t, g));
        if (st == TR_OK) {
            const float *src = p->data + t->offset;
            if (H5Dwrite(ds, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, src) < 0)
                st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s/%s",
                                  group, t->name);
        }
        if (mspace >= 0)
            H5Sclose(mspace);
        if (ds >= 0)
            H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(fspace);
    }
    H5Gclose(grp);
    return st;
}

tr_status tr_weights_save(const char *path, const tr_params *params, const tr_params *buffers,
                          const tr_grid *g, const tr_config *cfg) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    TR_H5(fapl);
    TR_H5(H5Pset_fapl_mpio(fapl, g->world, MPI_INFO_NULL));
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    TR_CHECK(file >= 0, TR_ERR_IO, "cannot create weights file %s", path);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    tr_status st = tr_h5_attr_write_str(file, "format", "taskrel-weights");
    if (st == TR_OK)
        st = tr_h5_attr_write_int(file, "version", TR_WEIGHTS_VERSION);
    if (st == TR_OK)
        st = tr_h5_attr_write_int(file, "tasks", g->T);
    if (st == TR_OK)
        st = tr_h5_attr_write_int(file, "world_size", g->size);
    if (st == TR_OK)
        st = tr_h5_attr_write_int(file, "replicas", g->R);
    if (st == TR_OK)
        st = tr_h5_attr_write_int(file, "shards", g->S);
    if (st == TR_OK && cfg) {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (mem) {
            tr_config_write(cfg, mem);
            fclose(mem);
            st = tr_h5_attr_write_str(file, "config", text);
            free(text);
        }
    }
    if (st == TR_OK)
        st = save_group(file, "/params", params, g, dxpl);
    if (st == TR_OK && buffers && buffers->n > 0)
        st = save_group(file, "/buffers", buffers, g, dxpl);
    H5Pclose(dxpl);
    if (H5Fclose(file) < 0 && st == TR_OK)
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot close %s", path);
    return st;
}

static tr_status load_group(hid_t file, const char *path, const char *group, tr_params *p,
                            const tr_grid *g, hid_t dxpl) {
    for (int i = 0; i < p->n; i++) {
        const tr_tensor *t = &p->t[i];
        char name[TR_NAME_LEN + 16];
        snprintf(name, sizeof(name), "%s/%s", group, t->name);
        htri_t exists =
            H5Lexists(file, group, H5P_DEFAULT) > 0 ? H5Lexists(file, name, H5P_DEFAULT) : 0;
        TR_CHECK(exists > 0, TR_ERR_DATA, "weights file %s has no tensor %s", path, name);
        hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
        TR_CHECK(ds >= 0, TR_ERR_DATA, "weights file %s: cannot open %s", path, name);
        hid_t fspace = H5Dget_space(ds);
        hsize_t dims[TR_MAX_DIMS];
        int nd = H5Sget_simple_extent_ndims(fspace);
        int ok = nd == t->ndim;
        if (ok) {
            H5Sget_simple_extent_dims(fspace, dims, NULL);
            for (int d = 0; d < nd; d++)
                ok = ok && dims[d] == (hsize_t)t->shape[d];
        }
        hid_t mspace = -1;
        tr_status st = TR_OK;
        if (!ok)
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "weights file %s: %s has a shape that does not match the model "
                              "(check model.* settings and data.tasks)",
                              path, name);
        if (st == TR_OK)
            st = tr_h5_select_part(fspace, &mspace, t, t->tn > 0);
        if (st == TR_OK &&
            H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, p->data + t->offset) < 0)
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "weights file %s: cannot read %s (corrupt file or checksum "
                              "mismatch)",
                              path, name);
        if (mspace >= 0)
            H5Sclose(mspace);
        H5Sclose(fspace);
        H5Dclose(ds);
        TR_CALL(st);
    }
    return TR_OK;
}

tr_status tr_weights_load(const char *path, tr_params *params, tr_params *buffers,
                          const tr_grid *g) {
    TR_CHECK(access(path, R_OK) == 0, TR_ERR_DATA, "weights file not found: %s", path);
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, g->world, MPI_INFO_NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    tr_status st = TR_OK;
    if (file < 0)
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                          "%s is not a readable HDF5 weights file", path);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    if (st == TR_OK)
        st = load_group(file, path, "/params", params, g, dxpl);
    if (st == TR_OK && buffers && buffers->n > 0)
        st = load_group(file, path, "/buffers", buffers, g, dxpl);
    H5Pclose(dxpl);
    if (file >= 0)
        H5Fclose(file);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}
