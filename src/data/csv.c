/*
 * CSV reader for `taskrel data import`: RFC 4180 as spreadsheets and pandas
 * write it (comma separated, a header row, fields optionally in double quotes
 * with "" for a quote, LF or CRLF line ends, a UTF-8 byte-order mark ignored).
 * Every cell is kept as text and, when it parses completely, as a number.
 * Not here: other separators or quoted line breaks inside fields.
 */
#include "taskrel/import.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tr_csv_free(tr_csv *t) {
    if (!t)
        return;
    for (int c = 0; t->names && c < t->ncols; c++)
        free(t->names[c]);
    for (int64_t i = 0; t->text && i < t->nrows * t->ncols; i++)
        free(t->text[i]);
    free(t->names);
    free(t->text);
    free(t->num);
    memset(t, 0, sizeof(*t));
}

int tr_csv_column(const tr_csv *t, const char *name) {
    for (int c = 0; c < t->ncols; c++)
        if (strcmp(t->names[c], name) == 0)
            return c;
    return -1;
}

/* Split line (modified in place) into at most cap fields; returns the count,
 * or -1 for an unterminated quote. */
static int split_line(char *line, char **fields, int cap) {
    int n = 0;
    char *p = line;
    for (;;) {
        char *start = p, *w = p;
        if (*p == '"') { /* quoted: copy with "" -> " */
            p++;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            while (*p && *p != ',')
                p++; /* anything after the closing quote is dropped */
        } else {
            while (*p && *p != ',')
                p++;
            w = p;
        }
        char sep = *p;
        *w = '\0';
        if (n < cap)
            fields[n] = start;
        n++;
        if (sep != ',')
            break;
        p++;
    }
    return n;
}

static double parse_number(const char *s) {
    while (*s == ' ')
        s++;
    if (*s == '\0')
        return NAN;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    return *end == '\0' && errno == 0 ? v : NAN;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Append one data row of t (growing the arrays). */
static tr_status add_row(tr_csv *t, char **fields, int64_t *cap) {
    if (t->nrows == *cap) {
        int64_t nc = *cap ? *cap * 2 : 1024;
        double *num = realloc(t->num, (size_t)(nc * t->ncols) * sizeof(double));
        if (num)
            t->num = num;
        char **text = realloc(t->text, (size_t)(nc * t->ncols) * sizeof(char *));
        if (text)
            t->text = text;
        TR_CHECK(num && text, TR_ERR_NOMEM, "import: out of memory reading CSV rows");
        *cap = nc;
    }
    for (int c = 0; c < t->ncols; c++) {
        int64_t k = t->nrows * t->ncols + c;
        t->text[k] = dup_str(fields[c]);
        TR_CHECK(t->text[k] != NULL, TR_ERR_NOMEM, "import: out of memory reading CSV cells");
        t->num[k] = parse_number(fields[c]);
    }
    t->nrows++;
    return TR_OK;
}

static tr_status read_rows(tr_csv *t, FILE *f, const char *path) {
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int64_t lineno = 0, rcap = 0;
    char **fields = NULL;
    tr_status st = TR_OK;
    while (st == TR_OK && (got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        char *l = line;
        if (lineno == 1 && strncmp(l, "\xEF\xBB\xBF", 3) == 0)
            l += 3;
        if (*l == '\0')
            continue; /* blank lines */
        if (!fields) {
            fields = calloc(4096, sizeof(char *));
            if (!fields) {
                st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
                break;
            }
        }
        int n = split_line(l, fields, 4096);
        if (n < 0 || n > 4096) {
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              n < 0 ? "import: %s:%lld: unterminated quote"
                                    : "import: %s:%lld: more than 4096 columns",
                              path, (long long)lineno);
        } else if (!t->names) { /* the header */
            t->ncols = n;
            t->names = calloc((size_t)n, sizeof(char *));
            for (int c = 0; t->names && c < n; c++)
                t->names[c] = dup_str(fields[c]);
            if (!t->names)
                st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
        } else if (n != t->ncols) {
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "import: %s:%lld: %d fields, the header has %d", path,
                              (long long)lineno, n, t->ncols);
        } else {
            st = add_row(t, fields, &rcap);
        }
    }
    free(fields);
    free(line);
    return st;
}

tr_status tr_csv_read(tr_csv *out, const char *path) {
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "r");
    TR_CHECK(f != NULL, TR_ERR_DATA, "import: cannot open %s: %s", path, strerror(errno));
    tr_status st = read_rows(out, f, path);
    fclose(f);
    if (st == TR_OK && !out->names)
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                          "import: %s is empty (a header row is needed)", path);
    if (st != TR_OK)
        tr_csv_free(out);
    TR_CALL(st);
    return TR_OK;
}
