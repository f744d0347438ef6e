/*
 * JSON output: strings escaped per RFC 8259 and numbers that stay valid JSON.
 * Everything taskrel writes as JSON (metrics.jsonl, `taskrel calibrate`, the
 * run summary) goes through these, so any task or tensor name is safe: quotes,
 * backslashes, control characters and non-ASCII letters.
 *
 * Strings are taken as UTF-8. Valid UTF-8 is written as is (JSON is UTF-8);
 * `"` and `\` are escaped, control characters become \b \f \n \r \t or \u00XX,
 * and every byte that is not part of valid UTF-8 (a stray continuation byte, a
 * truncated or overlong sequence, a surrogate, a code point above U+10FFFF) is
 * written as U+FFFD, so the output is always valid JSON and valid UTF-8.
 * Not here: a JSON reader.
 */
#ifndef TASKREL_JSON_H
#define TASKREL_JSON_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Escape s (NUL-terminated UTF-8) into buf as a quoted JSON string. Writes at
 * most cap bytes including the NUL (truncating at a character boundary of
 * the output) and returns the length the whole string needs, without the NUL,
 * like snprintf. buf may be NULL when cap is 0. */
size_t tr_json_escape(char *buf, size_t cap, const char *s);

/* Write s to f as a quoted, escaped JSON string. */
void tr_json_write_string(FILE *f, const char *s);

/* Write v with printf precision digits (%.*g), or null when v is NaN or
 * infinite (JSON has no such numbers). */
void tr_json_write_number(FILE *f, double v, int digits);

#ifdef __cplusplus
}
#endif
#endif
