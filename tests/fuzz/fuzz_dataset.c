/*
 * libFuzzer harness: the HDF5 dataset reader (tr_dataset_load: open, read
 * every split, validate). Any input must load or be refused as a data error,
 * and either way leave no HDF5 identifier open: an identifier left behind on
 * an error path is what makes the library loop when it shuts down.
 */
#include <hdf5.h>

#include "fuzz_common.h"
#include "taskrel/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(data, size, ".h5");
    tr_dataset ds;
    tr_status s = tr_dataset_load(&ds, path);
    if (s == TR_OK)
        tr_dataset_free(&ds);
    else if (s != TR_ERR_DATA && s != TR_ERR_IO && s != TR_ERR_NOMEM)
        abort();
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) {
        fprintf(stderr, "tr_dataset_load (%s: %s) left %zd HDF5 identifier(s) open\n",
                tr_status_str(s), tr_error_message(), open_ids);
        abort();
    }
    tr_error_clear();
    return 0;
}
