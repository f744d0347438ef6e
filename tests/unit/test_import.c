/*
 * The readers of `taskrel data import` (src/io/npy.c, src/io/csv.c): .npy
 * images of every supported dtype and both byte orders, refused headers,
 * .npz archives with stored and deflated members built here byte by byte
 * (and one with a corrupted member), and CSV quoting, line ends and errors.
 * tests/e2e/data_import.sh runs the whole import on files NumPy wrote.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "taskrel/import.h"

/* A .npy image: header dict hdr (padded as NumPy does), then data. */
static size_t make_npy(uint8_t *out, const char *hdr, const void *data, size_t n) {
    size_t hl = strlen(hdr), total = 10 + hl + 1;
    size_t pad = (64 - total % 64) % 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    uint16_t L = (uint16_t)(hl + pad + 1);
    out[8] = (uint8_t)(L & 0xFF), out[9] = (uint8_t)(L >> 8);
    memcpy(out + 10, hdr, hl);
    memset(out + 10 + hl, ' ', pad);
    out[10 + hl + pad] = '\n';
    memcpy(out + total + pad, data, n);
    return total + pad + n;
}

static void expect_parse_error(const uint8_t *buf, size_t len, const char *needle) {
    tr_array a;
    tr_error_clear();
    tr_status st = tr_npy_parse(&a, buf, len, "t.npy");
    if (st != TR_ERR_DATA || !strstr(tr_error_message(), needle))
        fail_msg("want a data error with '%s', got %s: %s", needle, tr_status_str(st),
                 tr_error_message());
    tr_error_clear();
}

static void test_npy(void **state) {
    (void)state;
    uint8_t buf[512];
    tr_array a;
    float f[6] = {1.5f, -2, 0, 3, 4, 1e-3f};
    size_t n =
        make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof(f));
    assert_int_equal(tr_npy_parse(&a, buf, n, "t"), TR_OK);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], 3);
    assert_false(a.is_integer);
    for (int i = 0; i < 6; i++)
        assert_true(a.data[i] == (double)f[i]);
    tr_array_free(&a);
    tr_array_free(&a);

    uint8_t be[6] = {0xFF, 0xFE, 0x00, 0x07, 0x80, 0x00}; /* >i2: -2, 7, -32768 */
    n = make_npy(buf, "{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }", be, 6);
    assert_int_equal(tr_npy_parse(&a, buf, n, "t"), TR_OK);
    assert_true(a.is_integer);
    assert_int_equal(a.ndim, 1);
    assert_true(a.data[0] == -2 && a.data[1] == 7 && a.data[2] == -32768);
    tr_array_free(&a);

    uint16_t h[3] = {0x3C00, 0xC000, 0x3555}; /* float16: 1, -2, ~0.333 */
    n = make_npy(buf, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", h, 6);
    assert_int_equal(tr_npy_parse(&a, buf, n, "t"), TR_OK);
    assert_true(a.data[0] == 1 && a.data[1] == -2 && fabs(a.data[2] - 1.0 / 3) < 1e-3);
    tr_array_free(&a);

    uint8_t b[2] = {1, 0};
    n = make_npy(buf, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", b, 2);
    assert_int_equal(tr_npy_parse(&a, buf, n, "t"), TR_OK);
    assert_true(a.is_integer && a.data[0] == 1 && a.data[1] == 0);
    tr_array_free(&a);

    int64_t q[2] = {-5, 1LL << 40};
    n = make_npy(buf, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", q, 16);
    assert_int_equal(tr_npy_parse(&a, buf, n, "t"), TR_OK);
    assert_true(a.data[0] == -5 && a.data[1] == (double)(1LL << 40));
    tr_array_free(&a);

    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f, 24);
    expect_parse_error(buf, n, "Fortran order");
    n = make_npy(buf, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f, 8);
    expect_parse_error(buf, n, "dtype '<c8'");
    n = make_npy(buf, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", f, 4);
    expect_parse_error(buf, n, "structured");
    n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, 24);
    expect_parse_error(buf, n - 1, "truncated");
    expect_parse_error((const uint8_t *)"PK\3\4 not npy", 13, "magic");
}

/* ---- .npz built by hand --------------------------------------------------------- */

static void put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct {
    const char *name;
    const uint8_t *data;
    size_t len;
    int deflate;
} member;

/* Write a zip of the members to path; corrupt flips a byte of member 0's data. */
static void write_zip(const char *path, const member *m, int n, int corrupt) {
    static uint8_t out[1 << 16], cd[4096];
    size_t o = 0, c = 0;
    for (int i = 0; i < n; i++) {
        uint8_t comp[8192];
        size_t clen = m[i].len;
        if (m[i].deflate) {
            z_stream z;
            memset(&z, 0, sizeof(z));
            assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
            z.next_in = (Bytef *)m[i].data, z.avail_in = (uInt)m[i].len;
            z.next_out = comp, z.avail_out = sizeof(comp);
            assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
            clen = sizeof(comp) - z.avail_out;
            deflateEnd(&z);
        } else {
            memcpy(comp, m[i].data, m[i].len);
        }
        uint32_t crc = (uint32_t)crc32(0L, m[i].data, (uInt)m[i].len);
        size_t nl = strlen(m[i].name), lo = o;
        memset(out + o, 0, 30);
        put32(out + o, 0x04034b50), put16(out + o + 8, m[i].deflate ? 8 : 0);
        put32(out + o + 14, crc), put32(out + o + 18, (uint32_t)clen);
        put32(out + o + 22, (uint32_t)m[i].len), put16(out + o + 26, (unsigned)nl);
        memcpy(out + o + 30, m[i].name, nl);
        o += 30 + nl;
        memcpy(out + o, comp, clen);
        if (corrupt && i == 0)
            out[o + clen / 2] ^= 0x55;
        o += clen;
        memset(cd + c, 0, 46);
        put32(cd + c, 0x02014b50), put16(cd + c + 10, m[i].deflate ? 8 : 0);
        put32(cd + c + 16, crc), put32(cd + c + 20, (uint32_t)clen);
        put32(cd + c + 24, (uint32_t)m[i].len), put16(cd + c + 28, (unsigned)nl);
        put32(cd + c + 42, (uint32_t)lo);
        memcpy(cd + c + 46, m[i].name, nl);
        c += 46 + nl;
    }
    size_t cd_off = o;
    memcpy(out + o, cd, c);
    o += c;
    memset(out + o, 0, 22);
    put32(out + o, 0x06054b50), put16(out + o + 8, (unsigned)n), put16(out + o + 10, (unsigned)n);
    put32(out + o + 12, (uint32_t)c), put32(out + o + 16, (uint32_t)cd_off);
    o += 22;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(out, 1, o, f), o);
    fclose(f);
}

static void test_npz(void **state) {
    (void)state;
    char dir[] = "/tmp/taskrel-import-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.npz", dir);
    uint8_t a1[512], a2[512];
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)i / 8;
    int32_t y[4] = {0, 1, 2, 1};
    size_t n1 =
        make_npy(a1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 16), }", x, sizeof(x));
    size_t n2 = make_npy(a2, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", y, 16);
    member m[3] = {{"task/x_train.npy", a1, n1, 1},
                   {"README.txt", (const uint8_t *)"hi", 2, 0},
                   {"task/y_train.npy", a2, n2, 0}};
    write_zip(path, m, 3, 0);
    tr_array *arr = NULL;
    int n = 0;
    assert_int_equal(tr_npz_read(path, &arr, &n), TR_OK);
    assert_int_equal(n, 2); /* README.txt is not an array */
    assert_string_equal(arr[0].name, "task/x_train");
    assert_string_equal(arr[1].name, "task/y_train");
    assert_int_equal(arr[0].count, 64);
    assert_true(arr[0].data[63] == 63.0 / 8 && arr[1].data[2] == 2);
    for (int i = 0; i < n; i++)
        tr_array_free(&arr[i]);
    tr_free(arr);

    write_zip(path, m, 3, 1);
    tr_error_clear();
    assert_int_equal(tr_npz_read(path, &arr, &n), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "task/x_train.npy"));
    tr_error_clear();
    FILE *f = fopen(path, "w");
    fputs("not a zip at all", f);
    fclose(f);
    assert_int_equal(tr_npz_read(path, &arr, &n), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "not a .npz"));
    tr_error_clear();
    unlink(path);
    rmdir(dir);
}

/* ---- CSV ------------------------------------------------------------------------ */

static tr_status csv_of(const char *text, tr_csv *t) {
    char path[] = "/tmp/taskrel-csv-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    tr_error_clear();
    tr_status st = tr_csv_read(t, path);
    unlink(path);
    return st;
}

static void test_csv(void **state) {
    (void)state;
    tr_csv t;
    assert_int_equal(csv_of("\xEF\xBB\xBF"
                            "a,\"b, quoted\",c\r\n"
                            "1.5,\"say \"\"hi\"\"\",-2e3\r\n"
                            "\r\n"
                            ",x,7\n",
                            &t),
                     TR_OK);
    assert_int_equal(t.ncols, 3);
    assert_int_equal(t.nrows, 2);
    assert_string_equal(t.names[0], "a"); /* the BOM is gone */
    assert_string_equal(t.names[1], "b, quoted");
    assert_int_equal(tr_csv_column(&t, "c"), 2);
    assert_int_equal(tr_csv_column(&t, "d"), -1);
    assert_true(t.num[0] == 1.5 && isnan(t.num[1]) && t.num[2] == -2000);
    assert_string_equal(t.text[1], "say \"hi\"");
    assert_true(isnan(t.num[3]) && t.num[5] == 7); /* an empty cell is not a number */
    tr_csv_free(&t);
    tr_csv_free(&t);

    assert_int_equal(csv_of("a,b\n1,2\n1,2,3\n", &t), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), ":3: 3 fields, the header has 2"));
    assert_int_equal(csv_of("a,b\n\"1,2\n", &t), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "unterminated quote"));
    assert_int_equal(csv_of("", &t), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "empty"));
    tr_error_clear();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_npz),
        cmocka_unit_test(test_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
