/*
 * libFuzzer harness: the IDX reader (plain and gzip). Any input must either
 * read back with consistent dimensions or be refused as a data error; the
 * reader must never allocate more than the file can hold (libFuzzer's
 * -rss_limit_mb and -malloc_limit_mb catch that).
 */
#include "fuzz_common.h"
#include "taskrel/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(data, size, ".idx");
    uint8_t *out = NULL;
    int nd = 0;
    int64_t dims[4];
    tr_status s = tr_idx_read(path, &out, &nd, dims);
    if (s == TR_OK) {
        int64_t total = 1;
        for (int i = 0; i < nd; i++)
            total *= dims[i];
        /* a plain file holds header + payload exactly */
        if (size >= 2 && !(data[0] == 0x1f && data[1] == 0x8b) &&
            (size_t)(4 + 4 * nd + total) != size)
            abort();
        if (total > 0) /* every byte readable (ASan checks the bounds) */
            if (out[0] + out[total - 1] > 510)
                abort();
        tr_free(out);
    } else if (s != TR_ERR_DATA || out != NULL) {
        abort(); /* a hostile file is a data error, and nothing is handed out */
    }
    tr_error_clear();
    return 0;
}
