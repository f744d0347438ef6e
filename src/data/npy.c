/*
 * NumPy file readers: the .npy format (a magic string, a Python-literal header
 * dict with descr, fortran_order and shape, then the raw array) and .npz, a
 * zip archive of .npy members, stored or deflated (zlib raw inflate), with
 * each member's CRC-32 checked. Not here: zip64 archives (members or archives
 * over 4 GiB) and Fortran-order arrays, which are refused with a message that
 * says how to write the file instead.
 */
#include "taskrel/import.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void tr_array_free(tr_array *a) {
    if (!a)
        return;
    tr_free(a->data);
    memset(a, 0, sizeof(*a));
}

/* ---- .npy -------------------------------------------------------------------- */

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* One element's bits u (little-endian order already) as a double. */
static double decode(uint64_t u, char kind, int size) {
    if (kind == 'f') {
        if (size == 2)
            return half_to_double((uint16_t)u);
        if (size == 4) {
            uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, 4);
            return f;
        }
        double g;
        memcpy(&g, &u, 8);
        return g;
    }
    if (kind == 'i') /* sign-extend from size bytes */
        return size == 8 ? (double)(int64_t)u
                         : (double)((int64_t)(u << (64 - 8 * size)) >> (64 - 8 * size));
    return (double)u; /* 'u' and 'b' */
}

/* The value of `key` in the header dict: a pointer just after "'key':". */
static const char *dict_value(const char *hdr, const char *key) {
    char pat[64];
    snprintf(pat, sizeof(pat), "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

tr_status tr_npy_parse(tr_array *out, const uint8_t *buf, size_t len, const char *what) {
    memset(out, 0, sizeof(*out));
    TR_CHECK(len >= 10 && memcmp(buf, "\x93NUMPY", 6) == 0, TR_ERR_DATA,
             "import: %s is not a .npy array (no \\x93NUMPY magic)", what);
    int major = buf[6];
    TR_CHECK(major >= 1 && major <= 3, TR_ERR_DATA,
             "import: %s: .npy format %d.%d is not supported", what, major, buf[7]);
    size_t hlen_bytes = major == 1 ? 2 : 4;
    TR_CHECK(len >= 8 + hlen_bytes, TR_ERR_DATA, "import: %s: truncated .npy header", what);
    size_t hlen = (size_t)rd_le(buf + 8, (int)hlen_bytes), off = 8 + hlen_bytes;
    TR_CHECK(hlen < 65536 && off + hlen <= len, TR_ERR_DATA, "import: %s: truncated .npy header",
             what);
    char hdr[65536];
    memcpy(hdr, buf + off, hlen);
    hdr[hlen] = '\0';
    off += hlen;

    const char *d = dict_value(hdr, "descr");
    TR_CHECK(d && (*d == '\'' || *d == '"'), TR_ERR_DATA,
             "import: %s: header has no simple 'descr' (structured arrays are not supported)",
             what);
    char descr[16];
    size_t dl = strcspn(d + 1, "'\"");
    TR_CHECK(dl >= 2 && dl < sizeof(descr), TR_ERR_DATA, "import: %s: bad descr", what);
    memcpy(descr, d + 1, dl);
    descr[dl] = '\0';
    char order = descr[0], kind = descr[1];
    int size = atoi(descr + 2);
    int big = order == '>';
    TR_CHECK((order == '<' || order == '>' || order == '|' || order == '=') &&
                 strchr("biuf", kind) && (size == 1 || size == 2 || size == 4 || size == 8) &&
                 !(kind == 'f' && size == 1),
             TR_ERR_DATA,
             "import: %s: dtype '%s' is not supported (use bool, integers or float16/32/64)", what,
             descr);

    const char *fo = dict_value(hdr, "fortran_order");
    TR_CHECK(fo != NULL, TR_ERR_DATA, "import: %s: header has no fortran_order", what);
    TR_CHECK(strncmp(fo, "False", 5) == 0, TR_ERR_DATA,
             "import: %s is in Fortran order; save numpy.ascontiguousarray(a) instead", what);

    const char *sh = dict_value(hdr, "shape");
    TR_CHECK(sh && *sh == '(', TR_ERR_DATA, "import: %s: header has no shape", what);
    sh++;
    out->count = 1;
    while (*sh && *sh != ')') {
        while (*sh == ' ' || *sh == ',')
            sh++;
        if (*sh == ')')
            break;
        char *end;
        errno = 0;
        long long v = strtoll(sh, &end, 10);
        TR_CHECK(end != sh && errno == 0 && v >= 0 && out->ndim < TR_ARRAY_MAX_DIMS, TR_ERR_DATA,
                 "import: %s: bad shape in header '%s'", what, hdr);
        out->shape[out->ndim++] = v;
        out->count *= v;
        sh = end;
    }
    size_t need = (size_t)out->count * (size_t)size;
    TR_CHECK(len - off >= need, TR_ERR_DATA,
             "import: %s: %zu data bytes for a shape of %lld elements of %d bytes (truncated?)",
             what, len - off, (long long)out->count, size);
    out->is_integer = kind != 'f';
    TR_ALLOC(out->data, (size_t)out->count, "imported array");
    const uint8_t *p = buf + off;
    for (int64_t i = 0; i < out->count; i++, p += size) {
        uint8_t b[8];
        for (int k = 0; k < size; k++)
            b[k] = big ? p[size - 1 - k] : p[k];
        out->data[i] = decode(rd_le(b, size), kind, size);
    }
    return TR_OK;
}

static tr_status read_whole(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    TR_CHECK(f != NULL, TR_ERR_DATA, "import: cannot open %s: %s", path, strerror(errno));
    tr_status st = TR_OK;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "import: cannot read %s", path);
    } else {
        *buf = malloc((size_t)n + 1);
        *len = (size_t)n;
        if (!*buf)
            st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__,
                              "import: out of memory reading %s (%ld bytes)", path, n);
        else if (fread(*buf, 1, (size_t)n, f) != (size_t)n)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "import: cannot read %s",
                              path);
    }
    fclose(f);
    if (st != TR_OK) {
        free(*buf);
        *buf = NULL;
    }
    return st;
}

/* "dir/x_train.npy" -> "x_train" (a file), or "a/x_train.npy" -> "a/x_train"
 * (an archive member, whose '/' names a task) */
static void key_of(char *key, size_t cap, const char *path, int keep_dirs) {
    const char *b = keep_dirs ? NULL : strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 4 && strcmp(b + n - 4, ".npy") == 0)
        n -= 4;
    snprintf(key, cap, "%.*s", (int)n, b);
}

tr_status tr_npy_read(tr_array *out, const char *path) {
    uint8_t *buf = NULL;
    size_t len = 0;
    TR_CALL(read_whole(path, &buf, &len));
    tr_status st = tr_npy_parse(out, buf, len, path);
    free(buf);
    TR_CALL(st);
    key_of(out->name, sizeof(out->name), path, 0);
    return TR_OK;
}

/* ---- .npz (zip) ----------------------------------------------------------------- */

/* Inflate a raw deflate stream of `clen` bytes into exactly `ulen` bytes. */
static int inflate_raw(const uint8_t *src, size_t clen, uint8_t *dst, size_t ulen) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
        return -1;
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)clen;
    z.next_out = dst;
    z.avail_out = (uInt)ulen;
    int r = inflate(&z, Z_FINISH);
    size_t got = ulen - z.avail_out;
    inflateEnd(&z);
    return r == Z_STREAM_END && got == ulen ? 0 : -1;
}

/* One member (central directory entry at cd) of the archive buf: parse it as
 * .npy into a. */
static tr_status npz_member(tr_array *a, const uint8_t *buf, size_t len, const uint8_t *cd,
                            const char *path, const char *name) {
    unsigned method = (unsigned)rd_le(cd + 10, 2);
    uint32_t crc = (uint32_t)rd_le(cd + 16, 4);
    uint64_t clen = rd_le(cd + 20, 4), ulen = rd_le(cd + 24, 4), loff = rd_le(cd + 42, 4);
    TR_CHECK(clen != 0xFFFFFFFFu && ulen != 0xFFFFFFFFu && loff != 0xFFFFFFFFu, TR_ERR_DATA,
             "import: %s: member %s is a zip64 entry (over 4 GiB), which is not supported; "
             "save the arrays as separate .npy files",
             path, name);
    TR_CHECK(loff + 30 <= len && rd_le(buf + loff, 4) == 0x04034b50, TR_ERR_DATA,
             "import: %s: member %s: bad local header", path, name);
    uint64_t data = loff + 30 + rd_le(buf + loff + 26, 2) + rd_le(buf + loff + 28, 2);
    TR_CHECK(data + clen <= len, TR_ERR_DATA, "import: %s: member %s is truncated", path, name);
    TR_CHECK(method == 0 || method == 8, TR_ERR_DATA,
             "import: %s: member %s uses zip compression method %u (only stored and deflated "
             "are supported)",
             path, name, method);
    uint8_t *raw = malloc(ulen ? ulen : 1);
    TR_CHECK(raw != NULL, TR_ERR_NOMEM, "import: out of memory for %s:%s", path, name);
    int bad = method == 0 ? (clen != ulen ? -1 : (memcpy(raw, buf + data, ulen), 0))
                          : inflate_raw(buf + data, clen, raw, ulen);
    if (!bad && crc32(0L, raw, (uInt)ulen) != crc)
        bad = -2;
    char what[600];
    snprintf(what, sizeof(what), "%s:%s", path, name);
    tr_status st =
        bad ? tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__, "import: %s: %s", what,
                           bad == -2 ? "CRC mismatch (corrupt archive)"
                                     : "cannot decompress member")
            : tr_npy_parse(a, raw, ulen, what);
    free(raw);
    TR_CALL(st);
    key_of(a->name, sizeof(a->name), name, 1);
    return TR_OK;
}

tr_status tr_npz_read(const char *path, tr_array **arrays, int *n) {
    *arrays = NULL;
    *n = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    TR_CALL(read_whole(path, &buf, &len));
    /* end of central directory: the last "PK\5\6" within 64 KiB + 22 of the end */
    const uint8_t *eocd = NULL;
    for (size_t i = len >= 22 ? len - 22 : 0; len >= 22; i--) {
        if (rd_le(buf + i, 4) == 0x06054b50) {
            eocd = buf + i;
            break;
        }
        if (i == 0 || len - i > 65535 + 22)
            break;
    }
    tr_status st = TR_OK;
    if (!eocd) {
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                          "import: %s is not a .npz (zip) archive", path);
        free(buf);
        return st;
    }
    int entries = (int)rd_le(eocd + 10, 2);
    uint64_t cd_off = rd_le(eocd + 16, 4);
    tr_array *arr = tr_calloc(entries > 0 ? (size_t)entries : 1, sizeof(tr_array));
    if (!arr)
        st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "import: out of memory");
    const uint8_t *cd = buf + cd_off;
    int got = 0;
    for (int e = 0; st == TR_OK && e < entries; e++) {
        if ((size_t)(cd - buf) + 46 > len || rd_le(cd, 4) != 0x02014b50) {
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "import: %s: bad zip central directory (zip64 archives are not "
                              "supported)",
                              path);
            break;
        }
        size_t nl = (size_t)rd_le(cd + 28, 2), xl = (size_t)rd_le(cd + 30, 2),
               cl = (size_t)rd_le(cd + 32, 2);
        char name[300];
        snprintf(name, sizeof(name), "%.*s", (int)(nl < 299 ? nl : 299), (const char *)cd + 46);
        size_t L = strlen(name);
        if (L > 4 && strcmp(name + L - 4, ".npy") == 0) /* skip anything else */
            st = npz_member(&arr[got++], buf, len, cd, path, name);
        cd += 46 + nl + xl + cl;
    }
    free(buf);
    if (st != TR_OK) {
        for (int i = 0; i < got; i++)
            tr_array_free(&arr[i]);
        tr_free(arr);
        return st;
    }
    *arrays = arr;
    *n = got;
    return TR_OK;
}
