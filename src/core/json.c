/*
 * JSON string escaping and number formatting (include/taskrel/json.h). A
 * small UTF-8 validator decides which bytes pass through; everything else is
 * an escape or U+FFFD.
 */
#include "taskrel/json.h"

#include <math.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if s does not start
 * one (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static int utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int n;
    unsigned min, cp;
    if ((c & 0xE0) == 0xC0) {
        n = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Appends to a bounded buffer, counting what the whole output needs. */
typedef struct {
    char *buf;
    size_t cap, len;
    int full; /* a piece did not fit: nothing more is written */
} out_buf;

static void put(out_buf *o, const char *p, size_t n) {
    if (!o->full && o->buf && o->len + n < o->cap)
        memcpy(o->buf + o->len, p, n);
    else
        o->full = 1;
    o->len += n;
}

size_t tr_json_escape(char *buf, size_t cap, const char *s) {
    out_buf o = {buf, cap, 0, 0};
    size_t written = 0; /* bytes of buf in use when it filled up */
    put(&o, "\"", 1);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        if (!o.full)
            written = o.len;
        unsigned c = *p;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(&o, esc, 2);
            p++;
        } else if (c < 0x20) {
            const char *named = c == '\b'   ? "\\b"
                                : c == '\f' ? "\\f"
                                : c == '\n' ? "\\n"
                                : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t"
                                            : NULL;
            if (named) {
                put(&o, named, 2);
            } else {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                put(&o, esc, 6);
            }
            p++;
        } else {
            int n = utf8_len(p);
            if (n > 0) {
                put(&o, (const char *)p, (size_t)n);
                p += n;
            } else {
                put(&o, "\xEF\xBF\xBD", 3); /* U+FFFD for one invalid byte */
                p++;
            }
        }
    }
    if (!o.full)
        written = o.len;
    put(&o, "\"", 1);
    if (!o.full)
        written = o.len;
    if (buf && cap > 0)
        buf[written < cap ? written : cap - 1] = '\0';
    return o.len;
}

void tr_json_write_string(FILE *f, const char *s) {
    char small[256];
    size_t need = tr_json_escape(small, sizeof(small), s);
    if (need < sizeof(small)) {
        fputs(small, f);
        return;
    }
    /* long strings: escape piecewise, one input character at a time */
    fputc('"', f);
    char one[8], tmp[16];
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = (*p >= 0x80) ? utf8_len(p) : 1;
        if (n == 0)
            n = 1;
        memcpy(one, p, (size_t)n);
        one[n] = '\0';
        size_t m = tr_json_escape(tmp, sizeof(tmp), one);
        fwrite(tmp + 1, 1, m - 2, f); /* without its quotes */
        p += n;
    }
    fputc('"', f);
}

void tr_json_write_number(FILE *f, double v, int digits) {
    if (isfinite(v))
        fprintf(f, "%.*g", digits, v);
    else
        fputs("null", f);
}
