/*
 * IDX reader (the MNIST / Fashion-MNIST file format), through zlib so that
 * gzip-compressed and plain files read the same way. Only unsigned-byte data
 * (type 0x08) is supported; that is all Fashion-MNIST uses.
 *
 * Format: 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 dims, then
 * prod(dims) elements in row-major order.
 */
#include "taskrel/data.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

/* Largest payload accepted (bytes); guards against a corrupt header. */
#define IDX_MAX_BYTES ((int64_t)1 << 34)

/* Read exactly len bytes or report how many were read. */
static int64_t gz_read_full(gzFile gz, uint8_t *buf, int64_t len) {
    int64_t got = 0;
    while (got < len) {
        int64_t want = len - got;
        if (want > (1 << 30))
            want = 1 << 30;
        int r = gzread(gz, buf + got, (unsigned)want);
        if (r <= 0)
            break;
        got += r;
    }
    return got;
}

static tr_status idx_read_open(gzFile gz, const char *path, uint8_t **data, int *ndim,
                               int64_t dims[4]) {
    uint8_t head[4];
    TR_CHECK(gz_read_full(gz, head, 4) == 4, TR_ERR_DATA,
             "data: %s: not an IDX file (shorter than its 4-byte header)", path);
    TR_CHECK(head[0] == 0 && head[1] == 0, TR_ERR_DATA,
             "data: %s: not an IDX file (bad magic %02x %02x)", path, head[0], head[1]);
    TR_CHECK(head[2] == 0x08, TR_ERR_DATA,
             "data: %s: IDX element type 0x%02x not supported (only 0x08, unsigned byte)", path,
             head[2]);
    TR_CHECK(head[3] >= 1 && head[3] <= 4, TR_ERR_DATA,
             "data: %s: IDX file has %d dimensions (1 to 4 supported)", path, head[3]);
    int nd = head[3];
    int64_t total = 1;
    for (int i = 0; i < nd; i++) {
        uint8_t b[4];
        TR_CHECK(gz_read_full(gz, b, 4) == 4, TR_ERR_DATA,
                 "data: %s: IDX header truncated in dimension %d", path, i);
        int64_t d = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | b[3];
        dims[i] = d;
        total *= d;
        TR_CHECK(total <= IDX_MAX_BYTES, TR_ERR_DATA,
                 "data: %s: IDX dimensions too large (corrupt header?)", path);
    }
    for (int i = nd; i < 4; i++)
        dims[i] = 1;

    uint8_t *buf;
    TR_ALLOC(buf, total > 0 ? (size_t)total : 1, "IDX data");
    int64_t got = gz_read_full(gz, buf, total);
    if (got != total) {
        int zerr = 0;
        const char *zmsg = gzerror(gz, &zerr);
        tr_free(buf);
        TR_RAISE(TR_ERR_DATA,
                 "data: %s: IDX file truncated or corrupt (%lld of %lld data bytes%s%s)", path,
                 (long long)got, (long long)total, zerr < 0 ? "; zlib: " : "",
                 zerr < 0 ? zmsg : "");
    }
    uint8_t extra;
    if (gz_read_full(gz, &extra, 1) != 0) {
        tr_free(buf);
        TR_RAISE(TR_ERR_DATA, "data: %s: IDX file longer than its header says", path);
    }
    *data = buf;
    *ndim = nd;
    return TR_OK;
}

tr_status tr_idx_read(const char *path, uint8_t **data, int *ndim, int64_t dims[4]) {
    *data = NULL;
    *ndim = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        TR_CHECK(errno != ENOENT, TR_ERR_DATA, "data: IDX file not found: %s", path);
        TR_RAISE(TR_ERR_IO, "data: cannot open IDX file %s: %s", path,
                 errno ? strerror(errno) : "zlib error");
    }
    tr_status s = idx_read_open(gz, path, data, ndim, dims);
    gzclose(gz);
    TR_CALL(s);
    return TR_OK;
}
