/* Relation matrices in HDF5 (see taskrel/relations.h). */
#include "taskrel/relations.h"

#include <stdlib.h>
#include <string.h>

#include "h5util.h"

tr_status tr_relations_add(tr_relations *r, const char *name, const char *title, const char *axes,
                           const double *data, int rows, int cols) {
    TR_ASSERT(rows > 0 && cols > 0 && strlen(name) < TR_RELATION_NAME_LEN);
    tr_relation *it = (tr_relation *)tr_relations_find(r, name);
    if (!it) {
        if (r->n == r->cap) {
            int cap = r->cap ? 2 * r->cap : 8;
            tr_relation *items = realloc(r->items, (size_t)cap * sizeof *items);
            if (!items)
                TR_RAISE(TR_ERR_NOMEM, "out of memory (relations)");
            r->items = items;
            r->cap = cap;
        }
        it = &r->items[r->n++];
        memset(it, 0, sizeof *it);
    }
    free(it->data);
    it->data = malloc((size_t)rows * (size_t)cols * sizeof(double));
    if (!it->data) {
        r->n--;
        TR_RAISE(TR_ERR_NOMEM, "out of memory (relation %s)", name);
    }
    memcpy(it->data, data, (size_t)rows * (size_t)cols * sizeof(double));
    snprintf(it->name, sizeof it->name, "%s", name);
    snprintf(it->title, sizeof it->title, "%s", title ? title : name);
    snprintf(it->axes, sizeof it->axes, "%s", axes ? axes : "");
    it->rows = rows;
    it->cols = cols;
    return TR_OK;
}

const tr_relation *tr_relations_find(const tr_relations *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->items[i].name, name) == 0)
            return &r->items[i];
    return NULL;
}

void tr_relations_free(tr_relations *r) {
    for (int i = 0; i < r->n; i++)
        free(r->items[i].data);
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* Create /relations/<name> and (writer) write it; every rank takes part. */
static tr_status write_data(hid_t ds, const tr_relation *it, const hsize_t *dims, int writer) {
    hid_t fs = H5Dget_space(ds);
    TR_H5(fs);
    hid_t ms = H5Screate_simple(2, dims, NULL);
    herr_t rc = ms < 0 ? -1 : 0;
    if (rc >= 0 && !writer)
        rc = H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0 ? -1 : 0;
    if (rc >= 0)
        rc = H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, it->data);
    if (ms >= 0)
        H5Sclose(ms);
    H5Sclose(fs);
    TR_CHECK(rc >= 0, TR_ERR_IO, "cannot write /relations/%s", it->name);
    return TR_OK;
}

static tr_status write_one(hid_t grp, const tr_relation *it, int writer) {
    hsize_t dims[2] = {(hsize_t)it->rows, (hsize_t)it->cols};
    hid_t fs = H5Screate_simple(2, dims, NULL);
    TR_H5(fs);
    hid_t ds = H5Dcreate2(grp, it->name, H5T_IEEE_F64LE, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(fs);
    TR_CHECK(ds >= 0, TR_ERR_IO, "cannot create /relations/%s", it->name);
    tr_status st = write_data(ds, it, dims, writer);
    if (st == TR_OK)
        st = tr_h5_attr_write_str(ds, "title", it->title);
    if (st == TR_OK)
        st = tr_h5_attr_write_str(ds, "axes", it->axes);
    H5Dclose(ds);
    return st;
}

tr_status tr_relations_write_h5(hid_t loc, const tr_relations *r, int writer) {
    hid_t grp = H5Gcreate2(loc, "relations", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0)
        TR_RAISE(TR_ERR_IO, "cannot create group /relations");
    tr_status st = tr_h5_attr_write_str(grp, "tasks", r->tasks);
    for (int i = 0; i < r->n && st == TR_OK; i++)
        st = write_one(grp, &r->items[i], writer);
    H5Gclose(grp);
    return st;
}

tr_status tr_relations_save(const char *path, const tr_relations *r) {
    hid_t fapl = tr_h5_fapl(MPI_COMM_NULL);
    TR_H5(fapl);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0)
        TR_RAISE(TR_ERR_IO, "cannot create %s", path);
    tr_status st = tr_relations_write_h5(f, r, 1);
    if (H5Fclose(f) < 0 && st == TR_OK)
        TR_RAISE(TR_ERR_IO, "cannot close %s", path);
    return st;
}

typedef struct {
    tr_relations *r;
    const char *path;
    tr_status st;
} load_ctx;

static herr_t load_item(hid_t grp, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    load_ctx *c = op;
    hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
    if (ds < 0) {
        c->st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                             "%s: /relations/%s is not a dataset", c->path, name);
        return -1;
    }
    hid_t fs = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    int nd = fs >= 0 ? H5Sget_simple_extent_ndims(fs) : -1;
    if (nd == 2 && H5Sget_simple_extent_dims(fs, dims, NULL) != 2)
        nd = -1;
    if (fs >= 0)
        H5Sclose(fs);
    /* sane bounds before allocating: a relation is at most 2^24 entries */
    if (nd != 2 || dims[0] == 0 || dims[1] == 0 || dims[0] > 1u << 20 || dims[1] > 1u << 20 ||
        dims[0] * dims[1] > 1u << 24) {
        H5Dclose(ds);
        c->st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                             "%s: /relations/%s is not a non-empty matrix", c->path, name);
        return -1;
    }
    double *buf = malloc((size_t)(dims[0] * dims[1]) * sizeof(double));
    herr_t rc = buf ? H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
    char title[TR_RELATION_TITLE_LEN], axes[32];
    int found;
    if (rc >= 0)
        rc = tr_h5_attr_read_str(ds, "title", title, sizeof title, &found) == TR_OK ? 0 : -1;
    if (rc >= 0 && !found)
        snprintf(title, sizeof title, "%s", name);
    if (rc >= 0)
        rc = tr_h5_attr_read_str(ds, "axes", axes, sizeof axes, &found) == TR_OK ? 0 : -1;
    H5Dclose(ds);
    if (rc < 0) {
        free(buf);
        c->st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                             "%s: cannot read /relations/%s (corrupt?)", c->path, name);
        return -1;
    }
    c->st = tr_relations_add(c->r, name, title, axes, buf, (int)dims[0], (int)dims[1]);
    free(buf);
    return c->st == TR_OK ? 0 : -1;
}

tr_status tr_relations_load(const char *path, tr_relations *r, int *found) {
    memset(r, 0, sizeof *r);
    *found = 0;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0)
        TR_RAISE(TR_ERR_DATA, "%s: not a readable HDF5 file", path);
    hid_t f = tr_h5_open_read(path, MPI_COMM_NULL);
    if (f < 0)
        TR_RAISE(TR_ERR_DATA, "%s: cannot open as HDF5", path);
    htri_t ex = H5Lexists(f, "relations", H5P_DEFAULT);
    if (ex <= 0) {
        H5Fclose(f);
        return TR_OK;
    }
    hid_t grp = H5Gopen2(f, "relations", H5P_DEFAULT);
    int got = 0;
    tr_status st = grp < 0 ? tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                                          "%s: /relations is not a group", path)
                           : tr_h5_attr_read_str(grp, "tasks", r->tasks, sizeof r->tasks, &got);
    if (st == TR_OK) {
        load_ctx c = {r, path, TR_OK};
        if (H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, NULL, load_item, &c) < 0 && c.st == TR_OK)
            c.st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                                "%s: cannot list /relations", path);
        st = c.st;
    }
    if (grp >= 0)
        H5Gclose(grp);
    H5Fclose(f);
    if (st != TR_OK)
        tr_relations_free(r);
    else
        *found = 1;
    return st;
}
