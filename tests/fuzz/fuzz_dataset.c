/*
 * libFuzzer harness: the HDF5 dataset reader (tr_dataset_load: open, read
 * every split, validate). Any input must load or be refused as a data error,
 * and either way leave no HDF5 identifier open: an identifier left behind on
 * an error path is what makes the library loop when it shuts down.
 *
 * Guarded (TASKREL_FUZZ_GUARD=1; the default of the corpus replay), the input
 * first goes through tr_dataset_check, the child-process check that taskrel
 * train and eval run before loading, and is loaded only if that passes: what
 * a user's run does. A crash of the HDF5 library in the child is then a data
 * error, not a finding. Unguarded (=0; the default of the libFuzzer binary),
 * the reader runs in this process, so that the fuzzer sees its coverage and
 * the sanitizers see inside it.
 */
#include <hdf5.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "taskrel/data.h"

#ifdef TASKREL_FUZZ_REPLAY
#define GUARD_DEFAULT 1
#else
#define GUARD_DEFAULT 0
#endif

static int guarded(void) {
    static int g = -1;
    if (g < 0) {
        const char *e = getenv("TASKREL_FUZZ_GUARD");
        g = e && e[0] ? atoi(e) != 0 : GUARD_DEFAULT;
    }
    return g;
}

static void check_ids(const char *what, tr_status s) {
    ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_ids != 0) {
        fprintf(stderr, "%s (%s: %s) left %zd HDF5 identifier(s) open\n", what, tr_status_str(s),
                tr_error_message(), open_ids);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(data, size, ".h5");
    tr_status s = guarded() ? tr_dataset_check(path) : TR_OK;
    if (s != TR_OK) {
        if (s != TR_ERR_DATA && s != TR_ERR_IO && s != TR_ERR_NOMEM)
            abort();
        check_ids("tr_dataset_check", s);
        tr_error_clear();
        return 0;
    }
    tr_dataset ds;
    s = tr_dataset_load(&ds, path);
    if (s == TR_OK)
        tr_dataset_free(&ds);
    else if (s != TR_ERR_DATA && s != TR_ERR_IO && s != TR_ERR_NOMEM)
        abort();
    check_ids("tr_dataset_load", s);
    tr_error_clear();
    return 0;
}
