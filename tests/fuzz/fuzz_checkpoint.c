/*
 * libFuzzer harness: the checkpoint validator (the check tr_checkpoint_validate
 * runs in a child process, here in this one through tr_checkpoint_info, so
 * that the sanitizers and the fuzzer see inside it). Any input must get a
 * verdict (valid, corrupt, incompatible) or be refused as a data error, and
 * leave no HDF5 identifier open.
 */
#include <hdf5.h>

#include "fuzz_common.h"
#include "taskrel/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(data, size, ".h5");
    tr_ckpt_info info;
    tr_status s = tr_checkpoint_info(path, &info);
    if (s != TR_OK && s != TR_ERR_DATA)
        abort();
    if (s == TR_OK && info.verdict != TR_CKPT_VALID && info.verdict != TR_CKPT_CORRUPT &&
        info.verdict != TR_CKPT_INCOMPATIBLE)
        abort();
    tr_checkpoint_info_free(&info);
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) {
        fprintf(stderr, "tr_checkpoint_info left %zd HDF5 identifier(s) open\n", open_ids);
        abort();
    }
    tr_error_clear();
    return 0;
}
