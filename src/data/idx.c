/*
 * IDX reader (the MNIST / Fashion-MNIST file format), through zlib so that
 * gzip-compressed and plain files read the same way. Only unsigned-byte data
 * (type 0x08) is supported; that is all Fashion-MNIST uses.
 *
 * Format: 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 dims, then
 * prod(dims) elements in row-major order.
 *
 * The header is not trusted: the product of the dimensions is checked for
 * overflow, and against the file's length before anything is allocated (a
 * plain file must hold exactly header + payload bytes; a gzip file cannot
 * expand more than deflate's maximum ratio). The payload buffer then grows
 * with the bytes actually decompressed, so a lying gzip header costs at most
 * about twice what the file really holds.
 */
#include "taskrel/data.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Largest payload accepted (bytes); guards against a corrupt header. */
#define IDX_MAX_BYTES ((int64_t)1 << 34)
/* deflate never expands data by more than 1032:1 (RFC 1951 block limits). */
#define DEFLATE_MAX_RATIO 1032
/* First payload buffer for a gzip file; it doubles as the data arrives. */
#define IDX_FIRST_CHUNK ((int64_t)1 << 20)

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

/* Read up to total payload bytes into a buffer that grows with the data, so
 * that a header claiming more than the stream holds allocates no more than
 * about twice what is there. *got is how many bytes arrived. */
static tr_status read_payload(gzFile gz, int64_t total, uint8_t **out, int64_t *got) {
    int64_t cap = total < IDX_FIRST_CHUNK ? total : IDX_FIRST_CHUNK;
    uint8_t *buf;
    TR_ALLOC(buf, cap > 0 ? (size_t)cap : 1, "IDX data");
    int64_t n = gz_read_full(gz, buf, cap);
    while (n == cap && cap < total) {
        int64_t next = cap > total / 2 ? total : 2 * cap;
        uint8_t *bigger = tr_calloc((size_t)next, 1);
        if (!bigger) {
            tr_free(buf);
            TR_RAISE(TR_ERR_NOMEM, "out of memory allocating IDX data (%lld bytes)",
                     (long long)next);
        }
        memcpy(bigger, buf, (size_t)cap);
        tr_free(buf);
        buf = bigger;
        n += gz_read_full(gz, buf + cap, next - cap);
        cap = next;
    }
    *out = buf;
    *got = n;
    return TR_OK;
}

static tr_status idx_read_open(gzFile gz, const char *path, int64_t file_bytes, uint8_t **data,
                               int *ndim, int64_t dims[4]) {
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
        /* d <= 2^32 - 1 and total <= IDX_MAX_BYTES: the division keeps the
         * product from ever being formed when it would exceed the limit */
        TR_CHECK(d == 0 || total <= IDX_MAX_BYTES / d, TR_ERR_DATA,
                 "data: %s: IDX dimensions too large (corrupt header?)", path);
        total *= d;
    }
    for (int i = nd; i < 4; i++)
        dims[i] = 1;

    int64_t header = 4 + 4 * (int64_t)nd;
    if (gzdirect(gz)) {
        TR_CHECK(file_bytes >= header + total, TR_ERR_DATA,
                 "data: %s: IDX file truncated (header says %lld data bytes, the file holds "
                 "%lld)",
                 path, (long long)total, (long long)(file_bytes - header));
        TR_CHECK(file_bytes == header + total, TR_ERR_DATA,
                 "data: %s: IDX file longer than its header says", path);
    } else {
        TR_CHECK((header + total) / DEFLATE_MAX_RATIO <= file_bytes, TR_ERR_DATA,
                 "data: %s: IDX header says %lld data bytes, more than a %lld-byte gzip file "
                 "can hold (truncated or corrupt)",
                 path, (long long)total, (long long)file_bytes);
    }

    uint8_t *buf = NULL;
    int64_t got = 0;
    TR_CALL(read_payload(gz, total, &buf, &got));
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
    struct stat sb;
    if (stat(path, &sb) != 0) {
        TR_CHECK(errno != ENOENT, TR_ERR_DATA, "data: IDX file not found: %s", path);
        TR_RAISE(TR_ERR_IO, "data: cannot open IDX file %s: %s", path, strerror(errno));
    }
    TR_CHECK(S_ISREG(sb.st_mode), TR_ERR_DATA, "data: %s: not a regular file", path);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        TR_CHECK(errno != ENOENT, TR_ERR_DATA, "data: IDX file not found: %s", path);
        TR_RAISE(TR_ERR_IO, "data: cannot open IDX file %s: %s", path,
                 errno ? strerror(errno) : "zlib error");
    }
    tr_status s = idx_read_open(gz, path, (int64_t)sb.st_size, data, ndim, dims);
    gzclose(gz);
    TR_CALL(s);
    return TR_OK;
}
