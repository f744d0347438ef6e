/*
 * Compact inputs (taskrel/dataset.h): a loaded split whose inputs take at
 * most 256 distinct values (8-bit images stored as float32) is kept as one
 * byte per value and a palette of the values, and decoded when a batch is
 * assembled. The decoded numbers are the file's, bit for bit; a split with
 * more distinct values (noise, blur) stays float32. tr_split_x_read hands
 * out every kind of inputs: in memory, compact, or streamed from the file
 * (data.load = stream, src/io/dataset_stream.c; never compacted).
 */
#include <string.h>

#include "taskrel/dataset.h"

#define HASH_BITS 10 /* open addressing over 1024 slots for at most 256 values */

/* xq (n) the codes of x (n) and palette their values; 0 if x has more than
 * 256 distinct values (compared as bits: 0 and -0 are two values). */
static int encode(uint8_t *xq, float *palette, const float *x, size_t n) {
    uint32_t key[1u << HASH_BITS];
    int code[1u << HASH_BITS];
    for (size_t h = 0; h < (1u << HASH_BITS); h++)
        code[h] = -1;
    int k = 0, last = -1;
    uint32_t last_u = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof(u));
        if (last >= 0 && u == last_u) { /* runs of one value (background) */
            xq[i] = (uint8_t)last;
            continue;
        }
        uint32_t h = (u * 2654435761u) >> (32 - HASH_BITS);
        while (code[h] >= 0 && key[h] != u)
            h = (h + 1) & ((1u << HASH_BITS) - 1);
        if (code[h] < 0) {
            if (k == 256)
                return 0;
            key[h] = u;
            code[h] = k;
            palette[k++] = x[i];
        }
        last = code[h];
        last_u = u;
        xq[i] = (uint8_t)last;
    }
    return 1;
}

tr_status tr_dataset_compact(tr_dataset *ds) {
    if (ds->setting != TR_SETTING_MULTI_INPUT)
        return TR_OK;
    for (int t = 0; t < ds->T; t++)
        for (int s = 0; s < TR_SPLIT_COUNT; s++) {
            tr_split_data *sd = &ds->tasks[t].split[s];
            size_t n = (size_t)sd->n * (size_t)ds->sample_size;
            if (!sd->x || n == 0)
                continue;
            TR_ALLOC(sd->xq, n, "compact inputs");
            if (encode(sd->xq, sd->palette, sd->x, n)) {
                tr_free(sd->x);
                sd->x = NULL;
            } else {
                tr_free(sd->xq);
                sd->xq = NULL;
            }
        }
    return TR_OK;
}

tr_status tr_split_x_read(float *out, const tr_split_data *sd, size_t first, size_t count) {
    if (sd->x) {
        memcpy(out, sd->x + first, count * sizeof(float));
        return TR_OK;
    }
    if (sd->xs)
        return tr_x_stream_read(sd->xs, out, first, count);
    const uint8_t *q = sd->xq + first;
    for (size_t i = 0; i < count; i++)
        out[i] = sd->palette[q[i]];
    return TR_OK;
}
