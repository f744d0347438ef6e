/*
 * Reading a run's metrics.jsonl back (taskrel export csv, taskrel plot
 * curves): its training lines (step, per-task loss, lr) and validation lines
 * (step, per-task loss and metric, lr), and the task names of its final line.
 * The file is the trainer's own output, one object per line, so a small
 * reader of those fields suffices; a line it cannot read is an error naming
 * the file and the line.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

/* The numbers of the array after "key":[ (null: NaN); -1 if the key is absent. */
static int read_array(const char *line, const char *key, double *v, int cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":[", key);
    const char *p = strstr(line, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    int n = 0;
    while (*p && *p != ']') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ']')
            break;
        double x = NAN;
        if (strncmp(p, "null", 4) == 0) {
            p += 4;
        } else {
            char *end;
            x = strtod(p, &end);
            if (end == p)
                return -2;
            p = end;
        }
        if (n < cap)
            v[n] = x;
        n++;
    }
    return *p == ']' ? (n < cap ? n : cap) : -2;
}

static int read_number(const char *line, const char *key, double *v) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return 0;
    char *end;
    *v = strtod(p + strlen(pat), &end);
    return end != p + strlen(pat);
}

/* The JSON strings of "tasks":[...] (escapes decoded; \u as UTF-8). */
static int read_names(const char *line, char (*names)[64], int cap) {
    const char *p = strstr(line, "\"tasks\":[");
    if (!p)
        return 0;
    p += 9;
    int n = 0;
    while (*p && *p != ']' && n < cap) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p != '"')
            break;
        p++;
        size_t k = 0;
        char *o = names[n];
        while (*p && *p != '"') {
            unsigned c = (unsigned char)*p++;
            if (c == '\\' && *p) {
                char e = *p++;
                c = e == 'n'   ? '\n'
                    : e == 't' ? '\t'
                    : e == 'r' ? '\r'
                    : e == 'b' ? '\b'
                    : e == 'f' ? '\f'
                               : (unsigned char)e;
                if (e == 'u') {
                    c = (unsigned)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
                    p += strlen(p) >= 4 ? 4 : strlen(p);
                    if (c >= 0x80 && k + 3 < 63) {
                        if (c < 0x800) {
                            o[k++] = (char)(0xc0 | (c >> 6));
                        } else {
                            o[k++] = (char)(0xe0 | (c >> 12));
                            o[k++] = (char)(0x80 | ((c >> 6) & 0x3f));
                        }
                        c = 0x80 | (c & 0x3f);
                    }
                }
            }
            if (k < 63)
                o[k++] = (char)c;
        }
        o[k] = '\0';
        if (*p == '"')
            p++;
        n++;
    }
    return n;
}

tr_status tr_metrics_read(const char *run, tr_metrics *m) {
    memset(m, 0, sizeof(*m));
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    TR_CHECK(f != NULL, TR_ERR_DATA, "%s: no metrics.jsonl (is it a run directory?)", run);
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, names = 0;
    tr_status st = TR_OK;
    static double loss[TR_MAX_TASKS], metric[TR_MAX_TASKS];
    static char all_names[TR_MAX_TASKS][64];
    while (st == TR_OK && getline(&line, &cap, f) > 0) {
        lineno++;
        long long step;
        if (strstr(line, "\"final\":true")) {
            names = read_names(line, all_names, TR_MAX_TASKS);
            continue;
        }
        if (sscanf(line, "{\"step\":%lld", &step) != 1)
            continue; /* provenance and other lines */
        if (m->n % 256 == 0) {
            tr_metrics_row *r = realloc(m->rows, (size_t)(m->n + 256) * sizeof(*r));
            if (!r) {
                st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
                break;
            }
            m->rows = r;
        }
        tr_metrics_row *r = &m->rows[m->n];
        memset(r, 0, sizeof(*r));
        r->step = step;
        r->train = strstr(line, "\"train\":true") != NULL;
        r->lr = NAN;
        read_number(line, "lr", &r->lr);
        int nl = read_array(line, r->train ? "loss" : "val_loss", loss, TR_MAX_TASKS);
        int nm = -1;
        for (int t = 0; t < TR_MAX_TASKS; t++)
            metric[t] = NAN;
        if (!r->train) {
            static double mse[TR_MAX_TASKS];
            nm = read_array(line, "val_acc", metric, TR_MAX_TASKS);
            int ne = read_array(line, "val_mse", mse, TR_MAX_TASKS);
            if (nm >= 0 && ne >= 0) { /* mixed kinds: each task's own metric */
                for (int t = 0; t < nm && t < ne; t++)
                    if (isnan(metric[t]))
                        metric[t] = mse[t];
                snprintf(m->metric, sizeof m->metric, "metric");
            } else if (nm >= 0) {
                snprintf(m->metric, sizeof m->metric, "acc");
            } else if ((nm = ne) >= 0) {
                memcpy(metric, mse, sizeof(double) * (size_t)ne);
                snprintf(m->metric, sizeof m->metric, "mse");
            }
        }
        if (nl < 0 || nm == -2) {
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "%s line %d: cannot read its losses", path, lineno);
            break;
        }
        r->loss = malloc(sizeof(double) * (size_t)(nl + 1));
        r->metric = malloc(sizeof(double) * (size_t)(nl + 1));
        if (!r->loss || !r->metric) {
            free(r->loss);
            free(r->metric);
            st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
            break;
        }
        memcpy(r->loss, loss, sizeof(double) * (size_t)nl);
        memcpy(r->metric, metric, sizeof(double) * (size_t)nl);
        r->count = nl;
        if (nl > m->T)
            m->T = nl;
        m->n++;
    }
    free(line);
    fclose(f);
    if (st != TR_OK) {
        tr_metrics_free(m);
        return st;
    }
    m->names = calloc((size_t)(m->T > 0 ? m->T : 1), sizeof(*m->names));
    if (!m->names) {
        tr_metrics_free(m);
        TR_RAISE(TR_ERR_NOMEM, "out of memory");
    }
    for (int t = 0; t < m->T; t++) {
        if (t < names)
            memcpy(m->names[t], all_names[t], sizeof(m->names[t]));
        else
            snprintf(m->names[t], sizeof m->names[t], "task%d", t);
    }
    for (int i = 0; i < m->n; i++) { /* rows with fewer tasks: NaN */
        tr_metrics_row *r = &m->rows[i];
        if (r->count >= m->T)
            continue;
        double *l = realloc(r->loss, sizeof(double) * (size_t)m->T);
        double *x = l ? realloc(r->metric, sizeof(double) * (size_t)m->T) : NULL;
        if (l)
            r->loss = l;
        if (x)
            r->metric = x;
        if (!l || !x) {
            tr_metrics_free(m);
            TR_RAISE(TR_ERR_NOMEM, "out of memory");
        }
        for (int t = r->count; t < m->T; t++)
            r->loss[t] = r->metric[t] = NAN;
        r->count = m->T;
    }
    if (!m->metric[0])
        snprintf(m->metric, sizeof m->metric, "metric");
    TR_CHECK(m->n > 0, TR_ERR_DATA, "%s has no training or validation lines yet", path);
    return TR_OK;
}

void tr_metrics_free(tr_metrics *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->rows[i].loss);
        free(m->rows[i].metric);
    }
    free(m->names);
    m->names = NULL;
    free(m->rows);
    m->rows = NULL;
    m->n = 0;
}
