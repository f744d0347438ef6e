/*
 * tr_dataset_task_names: a dataset file's task names in task order, from the
 * /tasks groups and their `index` attributes only (no examples are read), for
 * output that names tasks (taskrel eval --json). Not a validator: a file that
 * tr_dataset_load rejects may still list its names here.
 */
#include "taskrel/dataset.h"

#include <hdf5.h>
#include <string.h>

static tr_status read_names(hid_t f, const char *path, char (*names)[64], int cap, int *T) {
    hid_t g = H5Gopen2(f, "/tasks", H5P_DEFAULT);
    TR_CHECK(g >= 0, TR_ERR_DATA, "data: %s: no /tasks group", path);
    H5G_info_t info;
    tr_status st =
        H5Gget_info(g, &info) >= 0
            ? TR_OK
            : tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__, "data: %s: bad /tasks", path);
    if (st == TR_OK && (info.nlinks < 1 || (int)info.nlinks > cap))
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                          "data: %s: %llu tasks (1 to %d expected)", path,
                          (unsigned long long)info.nlinks, cap);
    int n = st == TR_OK ? (int)info.nlinks : 0;
    for (int i = 0; i < n; i++)
        names[i][0] = '\0';
    for (hsize_t i = 0; st == TR_OK && i < (hsize_t)n; i++) {
        char name[256];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name),
                                         H5P_DEFAULT);
        int index = -1;
        hid_t a =
            len > 0 && len < 64 ? H5Aopen_by_name(g, name, "index", H5P_DEFAULT, H5P_DEFAULT) : -1;
        if (a >= 0) {
            if (H5Aread(a, H5T_NATIVE_INT, &index) < 0)
                index = -1;
            H5Aclose(a);
        }
        if (index < 0 || index >= n || names[index][0] != '\0')
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "data: %s: task %llu has no valid name or index", path,
                              (unsigned long long)i);
        else
            memcpy(names[index], name, (size_t)len + 1);
    }
    H5Gclose(g);
    *T = st == TR_OK ? n : 0;
    return st;
}

tr_status tr_dataset_task_names(const char *path, char (*names)[64], int cap, int *T) {
    *T = 0;
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    tr_status st = f >= 0 ? read_names(f, path, names, cap, T)
                          : tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                                         "data: cannot open %s", path);
    if (f >= 0)
        H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return st;
}
