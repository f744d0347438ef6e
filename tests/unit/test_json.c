/*
 * JSON escaping (src/core/json.c): quotes, backslashes and control characters
 * escaped, valid UTF-8 passed through, invalid UTF-8 replaced by U+FFFD,
 * truncation like snprintf, long strings, and non-finite numbers as null.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/json.h"

static void expect(const char *in, const char *want) {
    char buf[256];
    size_t n = tr_json_escape(buf, sizeof(buf), in);
    if (strcmp(buf, want) != 0 || n != strlen(want))
        fail_msg("escape of '%s': got '%s' (%zu), want '%s'", in, buf, n, want);
    /* the FILE* writer agrees */
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    assert_non_null(f);
    tr_json_write_string(f, in);
    fclose(f);
    assert_string_equal(mem, want);
    free(mem);
}

static void test_escapes(void **state) {
    (void)state;
    expect("", "\"\"");
    expect("orig", "\"orig\"");
    expect("say \"hi\"", "\"say \\\"hi\\\"\"");
    expect("back\\slash", "\"back\\\\slash\"");
    expect("a\nb\tc\rd\be\ff", "\"a\\nb\\tc\\rd\\be\\ff\"");
    expect("\x01\x1f", "\"\\u0001\\u001f\"");
    expect("/", "\"/\"");       /* '/' may stay as is */
    expect("\x7f", "\"\x7f\""); /* DEL is not a control character for JSON */
}

static void test_utf8(void **state) {
    (void)state;
    expect("naïve Ñandú", "\"naïve Ñandú\"");           /* 2-byte */
    expect("€ 任务", "\"€ 任务\"");                     /* 3-byte */
    expect("\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\""); /* 4-byte (emoji) */
    /* invalid: a lone continuation byte, a truncated sequence, an overlong
     * '/', a surrogate, a code point above U+10FFFF, a byte 0xFF */
    expect("a\x80z", "\"a\xEF\xBF\xBDz\"");
    expect("a\xC3", "\"a\xEF\xBF\xBD\"");
    expect("\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
    expect("\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    expect("\xF4\x90\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    expect("\xFF", "\"\xEF\xBF\xBD\"");
}

static void test_truncation(void **state) {
    (void)state;
    char buf[7];
    /* "say \"hi\"" needs 12 bytes escaped; 6 fit: cut before an escape, not inside it */
    size_t n = tr_json_escape(buf, sizeof(buf), "say \"hi\"");
    assert_int_equal(n, 12);
    assert_string_equal(buf, "\"say ");
    assert_int_equal(tr_json_escape(NULL, 0, "ab"), 4);
    /* a string longer than any internal buffer */
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[500] = '"';
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    tr_json_write_string(f, big);
    fclose(f);
    assert_int_equal(len, 999 + 2 + 1);
    assert_memory_equal(mem + 500, "x\\\"x", 4);
    free(mem);
}

static void test_numbers(void **state) {
    (void)state;
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    tr_json_write_number(f, 0.5, 6);
    fputc(',', f);
    tr_json_write_number(f, NAN, 6);
    fputc(',', f);
    tr_json_write_number(f, -INFINITY, 6);
    fputc(',', f);
    tr_json_write_number(f, 1.0 / 3.0, 3);
    fclose(f);
    assert_string_equal(mem, "0.5,null,null,0.333");
    free(mem);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
