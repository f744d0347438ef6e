/*
 * IDX reader against hostile headers: sizes that overflow, that exceed the
 * file's length, and gzip streams that claim more than they hold. Each must be
 * refused as a data error naming the file, quickly and without allocating what
 * the header claims (the process's peak resident size stays under 100 MB).
 * A separate process from test_data so that its peak RSS measures only this.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "taskrel/data.h"

#define MAX_SECONDS 1.0
#define MAX_RSS_MB 100.0

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", g_dir, name);
    return buf;
}

static void write_plain(const char *path, const uint8_t *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const uint8_t *bytes, size_t n) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, bytes, (unsigned)n), (int)n);
    assert_int_equal(gzclose(f), Z_OK);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* Read path expecting a data error whose message contains needle, within
 * MAX_SECONDS and with the peak RSS under MAX_RSS_MB. */
static void expect_refused(const char *path, const char *needle) {
    uint8_t *out = (uint8_t *)1;
    int nd = -1;
    int64_t dims[4];
    tr_error_clear();
    double t0 = tr_time_now();
    tr_status s = tr_idx_read(path, &out, &nd, dims);
    double secs = tr_time_now() - t0;
    double rss = peak_rss_mb();
    printf("  %s: %s in %.3f s, peak RSS %.1f MB: %s\n", path, tr_status_str(s), secs, rss,
           tr_error_message());
    if (s != TR_ERR_DATA)
        fail_msg("%s: expected a data error, got %s: %s", path, tr_status_str(s),
                 tr_error_message());
    if (!strstr(tr_error_message(), needle))
        fail_msg("%s: message '%s' lacks '%s'", path, tr_error_message(), needle);
    if (!strstr(tr_error_message(), path))
        fail_msg("%s: message '%s' does not name the file", path, tr_error_message());
    if (secs >= MAX_SECONDS)
        fail_msg("%s: refused after %.2f s (limit %.1f s)", path, secs, MAX_SECONDS);
    if (rss >= MAX_RSS_MB)
        fail_msg("%s: peak RSS %.0f MB (limit %.0f MB)", path, rss, MAX_RSS_MB);
    assert_null(out);
    tr_error_clear();
}

/* The 9-byte file: one dimension of 2^32 - 1 bytes, one byte of payload. */
static void test_nine_bytes(void **state) {
    (void)state;
    const uint8_t b[9] = {0, 0, 0x08, 1, 0xff, 0xff, 0xff, 0xff, 0x2a};
    write_plain(tmp_path("nine.idx"), b, sizeof(b));
    expect_refused(tmp_path("nine.idx"), "truncated");
}

/* 94 bytes: three dimensions claiming 12.6 GB, 78 bytes of payload. */
static void test_94_bytes(void **state) {
    (void)state;
    uint8_t b[94];
    memset(b, 0x55, sizeof(b));
    const uint8_t head[16] = {0, 0, 0x08, 3, 0, 0, 0x0b, 0xb8, 0, 0, 0x08, 0, 0, 0, 0x08, 0};
    memcpy(b, head, sizeof(head));
    write_plain(tmp_path("b94.idx"), b, sizeof(b));
    expect_refused(tmp_path("b94.idx"), "truncated");
}

/* Four dimensions of 2^32 - 1: the product overflows 64 bits (UBSan checks
 * that it is never formed). */
static void test_overflow(void **state) {
    (void)state;
    uint8_t b[24];
    memset(b, 0xff, sizeof(b));
    b[0] = b[1] = 0;
    b[2] = 0x08;
    b[3] = 4;
    write_plain(tmp_path("overflow.idx"), b, sizeof(b));
    expect_refused(tmp_path("overflow.idx"), "too large");
    write_gz(tmp_path("overflow.idx.gz"), b, sizeof(b));
    expect_refused(tmp_path("overflow.idx.gz"), "too large");
}

/* A plain file one byte longer than its header says. */
static void test_plain_too_long(void **state) {
    (void)state;
    const uint8_t b[11] = {0, 0, 0x08, 1, 0, 0, 0, 2, 7, 8, 9};
    write_plain(tmp_path("long.idx"), b, sizeof(b));
    expect_refused(tmp_path("long.idx"), "longer than its header");
}

/* gzip: a tiny stream claiming 4 GB cannot be deflate output of that size. */
static void test_gz_ratio(void **state) {
    (void)state;
    const uint8_t b[9] = {0, 0, 0x08, 1, 0xff, 0xff, 0xff, 0xff, 0x2a};
    write_gz(tmp_path("nine.idx.gz"), b, sizeof(b));
    expect_refused(tmp_path("nine.idx.gz"), "more than a");
}

/* gzip: a stream within deflate's ratio that still holds far less than its
 * header claims (64 KiB of noise claiming 60 MB): refused as truncated, having
 * allocated about what it read. */
static void test_gz_short(void **state) {
    (void)state;
    size_t n = 8 + 65536;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    const uint8_t head[8] = {0, 0, 0x08, 1, 0x03, 0x93, 0x87, 0x00}; /* 60,000,000 */
    memcpy(b, head, sizeof(head));
    uint32_t x = 12345;
    for (size_t i = 8; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        b[i] = (uint8_t)(x >> 24);
    }
    write_gz(tmp_path("short.idx.gz"), b, n);
    free(b);
    expect_refused(tmp_path("short.idx.gz"), "truncated");
}

/* A valid gzip payload larger than the first read chunk still reads back. */
static void test_gz_grows(void **state) {
    (void)state;
    size_t payload = 3u << 20, n = 8 + payload;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    const uint8_t head[8] = {0, 0, 0x08, 1, 0x00, 0x30, 0x00, 0x00}; /* 3 MiB */
    memcpy(b, head, sizeof(head));
    for (size_t i = 8; i < n; i++)
        b[i] = (uint8_t)(i * 7);
    write_gz(tmp_path("big.idx.gz"), b, n);
    uint8_t *out = NULL;
    int nd = 0;
    int64_t dims[4];
    tr_error_clear();
    if (tr_idx_read(tmp_path("big.idx.gz"), &out, &nd, dims) != TR_OK)
        fail_msg("reading a valid 3 MiB IDX file: %s", tr_error_message());
    assert_int_equal(nd, 1);
    assert_int_equal(dims[0], (int64_t)payload);
    assert_memory_equal(out, b + 8, payload);
    tr_free(out);
    free(b);
}

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/taskrel-idx.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nine_bytes), cmocka_unit_test(test_94_bytes),
        cmocka_unit_test(test_overflow),   cmocka_unit_test(test_plain_too_long),
        cmocka_unit_test(test_gz_ratio),   cmocka_unit_test(test_gz_short),
        cmocka_unit_test(test_gz_grows),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
