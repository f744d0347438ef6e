/*
 * One configuration value: parse its text into tr_config by the key's type
 * (numbers in range, enum names, sets of names into bitmasks, lists, task
 * selections), print it back so that it reads back to the same value, and
 * describe what a key accepts. Not here: the key table (config_keys.c).
 */
#include "config/config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest text of a list value (float lists, task selections). */
#define LIST_TEXT_MAX 255

#define FIELD(c, k, T) ((T *)((char *)(c) + (k)->off))
#define CFIELD(c, k, T) ((const T *)((const char *)(c) + (k)->off))

static int in_range(const tr_cfg_key *k, double v) {
    if ((k->range & TR_CFG_LO) && ((k->range & TR_CFG_LO_OPEN) ? !(v > k->lo) : !(v >= k->lo)))
        return 0;
    if ((k->range & TR_CFG_HI) && ((k->range & TR_CFG_HI_OPEN) ? !(v < k->hi) : !(v <= k->hi)))
        return 0;
    return 1;
}

static void fmt_range(const tr_cfg_key *k, char *buf, size_t n) {
    if (!(k->range & TR_CFG_LO)) {
        snprintf(buf, n, "any");
        return;
    }
    char hi[32] = "inf";
    if (k->range & TR_CFG_HI)
        snprintf(hi, sizeof(hi), "%.10g", k->hi);
    snprintf(buf, n, "%c%.10g, %s%c", (k->range & TR_CFG_LO_OPEN) ? '(' : '[', k->lo, hi,
             (k->range & (TR_CFG_HI_OPEN)) || !(k->range & TR_CFG_HI) ? ')' : ']');
}

static void fmt_enum_names(const tr_cfg_key *k, const char *sep, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; k->names[i] && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? sep : "", k->names[i]);
}

/* Shortest decimal text that reads back as exactly v. */
static void fmt_float(float v, char *buf, size_t n) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

/* Whole-string integer; 0 ok, 1 not an integer, 2 overflow. */
static int parse_ll(const char *s, long long *out) {
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || isspace((unsigned char)*s))
        return 1;
    return errno == ERANGE ? 2 : 0;
}

int tr_cfg_parse_float(const char *s, float *out) {
    char *end;
    *out = strtof(s, &end);
    return end != s && *end == '\0' && !isspace((unsigned char)*s) && isfinite(*out) ? 0 : 1;
}

static int parse_bool(const char *s, int *out) {
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off",
                                                                             "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, f[i]) == 0)
            return *out = 0, 0;
    }
    return 1;
}

/* Parse the comma-separated list `s` of numbers into v[0..*n) (at most cap,
 * checked against k's range). 0 ok; otherwise err holds the reason. */
int tr_cfg_parse_list(const tr_cfg_key *k, const char *s, double *v, int cap, int *n, char *err,
                      size_t errn) {
    char rng[64];
    *n = 0;
    for (const char *p = s; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        long long iv = 0;
        float fv = 0.0f;
        int bad = len == 0 || len >= sizeof(item);
        if (!bad) {
            memcpy(item, p, len);
            item[len] = '\0';
            bad = k->type == TR_CFG_INT_LIST ? parse_ll(item, &iv) != 0
                                             : tr_cfg_parse_float(item, &fv) != 0;
        }
        if (bad) {
            snprintf(err, errn, "'%s' is not a comma-separated list of %s", s,
                     k->type == TR_CFG_INT_LIST ? "integers" : "numbers");
            return 1;
        }
        if (*n == cap) {
            snprintf(err, errn, "'%s' has more than %d entries", s, cap);
            return 1;
        }
        double x = k->type == TR_CFG_INT_LIST ? (double)iv : (double)fv;
        if (!in_range(k, x)) {
            fmt_range(k, rng, sizeof(rng));
            snprintf(err, errn, "entry %s is out of range %s", item, rng);
            return 1;
        }
        v[(*n)++] = x;
        if (!comma)
            break;
        p = comma + 1;
        if (*p == '\0') {
            snprintf(err, errn, "'%s' ends with a comma", s);
            return 1;
        }
    }
    return 0;
}

/* Next token of a comma- or space-separated list at *p (empty tokens are
 * skipped): its start and length, or 0 at the end. */
static size_t next_token(const char **p, const char **tok) {
    while (**p == ',' || isspace((unsigned char)**p))
        (*p)++;
    *tok = *p;
    size_t len = 0;
    while ((*p)[len] && (*p)[len] != ',' && !isspace((unsigned char)(*p)[len]))
        len++;
    *p += len;
    return len;
}

/* A set of names (any order, repeats allowed) into a bitmask. */
static int parse_set(const tr_cfg_key *k, const char *s, unsigned *mask, char *err, size_t errn) {
    unsigned m = 0;
    const char *p = s, *tok;
    for (size_t len; (len = next_token(&p, &tok)) > 0;) {
        int i = 0;
        while (k->names[i] && (strlen(k->names[i]) != len || strncmp(tok, k->names[i], len) != 0))
            i++;
        if (!k->names[i]) {
            char all[128];
            fmt_enum_names(k, ", ", all, sizeof(all));
            snprintf(err, errn, "'%.*s' is not one of %s", (int)len, tok, all);
            return 1;
        }
        m |= 1u << i;
    }
    *mask = m;
    return 0;
}

/* data.tasks: "" (all), a count N, or task names in order. */
static int parse_tasks(const char *s, tr_task_select *sel, char *err, size_t errn) {
    tr_task_select v;
    memset(&v, 0, sizeof(v));
    long long count = 0;
    if (strlen(s) > LIST_TEXT_MAX) {
        snprintf(err, errn, "value is longer than %d characters", LIST_TEXT_MAX);
        return 1;
    }
    if (s[0] && parse_ll(s, &count) != 1) {
        if (count < 1 || count > TR_MAX_TASKS) {
            snprintf(err, errn, "%s is out of range [1, %d] (a number is a count of tasks)", s,
                     TR_MAX_TASKS);
            return 1;
        }
        v.first = (int)count;
        *sel = v;
        return 0;
    }
    const char *p = s, *tok;
    for (size_t len; (len = next_token(&p, &tok)) > 0;) {
        if (len >= TR_TASK_NAME_LEN || v.n_names == TR_MAX_SELECT) {
            snprintf(err, errn, "%s",
                     len >= TR_TASK_NAME_LEN ? "a task name is longer than 63 "
                                               "characters"
                                             : "lists too many tasks");
            return 1;
        }
        for (int i = 0; i < v.n_names; i++)
            if (strlen(v.names[i]) == len && strncmp(v.names[i], tok, len) == 0) {
                snprintf(err, errn, "task '%.*s' is listed twice", (int)len, tok);
                return 1;
            }
        memcpy(v.names[v.n_names++], tok, len);
    }
    if (s[0] && v.n_names == 0) {
        snprintf(err, errn, "'%s' selects no task", s);
        return 1;
    }
    *sel = v;
    return 0;
}

/* Set key k of c from text; 0 ok, else err holds the reason (without the key). */
int tr_cfg_parse(tr_config *c, const tr_cfg_key *k, const char *s, char *err, size_t errn) {
    char rng[64];
    long long iv = 0;
    int r;
    fmt_range(k, rng, sizeof(rng));
    switch (k->type) {
    case TR_CFG_INT:
    case TR_CFG_INT64:
        r = parse_ll(s, &iv);
        if (r == 1) {
            snprintf(err, errn, "'%s' is not an integer", s);
            return 1;
        }
        if (r == 2 || !in_range(k, (double)iv) ||
            (k->type == TR_CFG_INT && (iv > INT_MAX || iv < INT_MIN))) {
            snprintf(err, errn, "%s is out of range %s", s, rng);
            return 1;
        }
        if (k->type == TR_CFG_INT)
            *FIELD(c, k, int) = (int)iv;
        else
            *FIELD(c, k, int64_t) = (int64_t)iv;
        return 0;
    case TR_CFG_UINT64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (end == s || *end != '\0' || !isdigit((unsigned char)*s) || errno == ERANGE) {
            snprintf(err, errn, "'%s' is not an integer in [0, 2^64)", s);
            return 1;
        }
        *FIELD(c, k, uint64_t) = (uint64_t)u;
        return 0;
    }
    case TR_CFG_FLOAT: {
        float f;
        if (tr_cfg_parse_float(s, &f)) {
            snprintf(err, errn, "'%s' is not a number", s);
            return 1;
        }
        if (!in_range(k, (double)f)) {
            snprintf(err, errn, "%s is out of range %s", s, rng);
            return 1;
        }
        *FIELD(c, k, float) = f;
        return 0;
    }
    case TR_CFG_BOOL:
        if (parse_bool(s, FIELD(c, k, int))) {
            snprintf(err, errn, "'%s' is not a boolean (true|false|yes|no|on|off|1|0)", s);
            return 1;
        }
        return 0;
    case TR_CFG_ENUM:
        for (int i = 0; k->names[i]; i++)
            if (strcmp(s, k->names[i]) == 0)
                return *FIELD(c, k, int) = i, 0;
        fmt_enum_names(k, "|", rng, sizeof(rng));
        snprintf(err, errn, "'%s' is not one of %s", s, rng);
        return 1;
    case TR_CFG_STRING: {
        size_t len = strlen(s);
        if (len >= k->aux) {
            snprintf(err, errn, "value is longer than %zu characters", k->aux - 1);
            return 1;
        }
        memset(FIELD(c, k, char), 0, k->aux);
        memcpy(FIELD(c, k, char), s, len);
        return 0;
    }
    case TR_CFG_FLOAT_LIST: {
        double v[TR_MAX_TASKS];
        int n;
        if (strlen(s) > LIST_TEXT_MAX) {
            snprintf(err, errn, "value is longer than %d characters", LIST_TEXT_MAX);
            return 1;
        }
        if (tr_cfg_parse_list(k, s, v, TR_MAX_TASKS, &n, err, errn))
            return 1;
        float *dst = FIELD(c, k, float);
        memset(dst, 0, TR_MAX_TASKS * sizeof(float));
        for (int i = 0; i < n; i++)
            dst[i] = (float)v[i]; /* exact: each entry was read as a float */
        *(int *)((char *)c + k->aux) = n;
        return 0;
    }
    case TR_CFG_SET:
        return parse_set(k, s, FIELD(c, k, unsigned), err, errn);
    case TR_CFG_TASKS:
        return parse_tasks(s, FIELD(c, k, tr_task_select), err, errn);
    case TR_CFG_INT_LIST: {
        double v[TR_MAX_MLP_LAYERS];
        int n;
        if (tr_cfg_parse_list(k, s, v, TR_MAX_MLP_LAYERS, &n, err, errn))
            return 1;
        if (n == 0) {
            snprintf(err, errn, "needs at least one entry");
            return 1;
        }
        int *dst = FIELD(c, k, int);
        memset(dst, 0, TR_MAX_MLP_LAYERS * sizeof(int));
        for (int i = 0; i < n; i++)
            dst[i] = (int)v[i];
        *(int *)((char *)c + k->aux) = n;
        return 0;
    }
    }
    snprintf(err, errn, "internal error: key type %d", (int)k->type);
    return 1;
}

/* Text of key k's current value in c. */
void tr_cfg_format(const tr_config *c, const tr_cfg_key *k, char *buf, size_t n) {
    switch (k->type) {
    case TR_CFG_INT:
        snprintf(buf, n, "%d", *CFIELD(c, k, int));
        return;
    case TR_CFG_INT64:
        snprintf(buf, n, "%" PRId64, *CFIELD(c, k, int64_t));
        return;
    case TR_CFG_UINT64:
        snprintf(buf, n, "%" PRIu64, *CFIELD(c, k, uint64_t));
        return;
    case TR_CFG_FLOAT:
        fmt_float(*CFIELD(c, k, float), buf, n);
        return;
    case TR_CFG_BOOL:
        snprintf(buf, n, "%s", *CFIELD(c, k, int) ? "true" : "false");
        return;
    case TR_CFG_ENUM: {
        int v = *CFIELD(c, k, int), count = 0;
        while (k->names[count])
            count++;
        snprintf(buf, n, "%s", v >= 0 && v < count ? k->names[v] : "?");
        return;
    }
    case TR_CFG_STRING:
        snprintf(buf, n, "%s", CFIELD(c, k, char));
        return;
    case TR_CFG_FLOAT_LIST: {
        const float *v = CFIELD(c, k, float);
        int cnt = *(const int *)((const char *)c + k->aux);
        size_t used = 0;
        buf[0] = '\0';
        for (int i = 0; i < cnt && used < n; i++) {
            char num[32];
            fmt_float(v[i], num, sizeof(num));
            used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "", num);
        }
        return;
    }
    case TR_CFG_SET: {
        unsigned m = *CFIELD(c, k, unsigned);
        size_t used = 0;
        buf[0] = '\0';
        for (int i = 0, first = 1; k->names[i] && used < n; i++)
            if (m & (1u << i)) {
                used +=
                    (size_t)snprintf(buf + used, n - used, "%s%s", first ? "" : ",", k->names[i]);
                first = 0;
            }
        return;
    }
    case TR_CFG_TASKS: {
        const tr_task_select *v = CFIELD(c, k, tr_task_select);
        size_t used = 0;
        buf[0] = '\0';
        if (v->first > 0)
            snprintf(buf, n, "%d", v->first);
        for (int i = 0; i < v->n_names && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "", v->names[i]);
        return;
    }
    case TR_CFG_INT_LIST: {
        const int *v = CFIELD(c, k, int);
        int cnt = *(const int *)((const char *)c + k->aux);
        size_t used = 0;
        buf[0] = '\0';
        for (int i = 0; i < cnt && i < TR_MAX_MLP_LAYERS && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%d", i ? "," : "", v[i]);
        return;
    }
    }
}

/* Range or values column / comment text for key k. */
void tr_cfg_domain(const tr_cfg_key *k, const char *sep, char *buf, size_t n) {
    char rng[64];
    fmt_range(k, rng, sizeof(rng));
    switch (k->type) {
    case TR_CFG_ENUM:
        fmt_enum_names(k, sep, buf, n);
        return;
    case TR_CFG_BOOL:
        snprintf(buf, n, "true, false");
        return;
    case TR_CFG_STRING:
        snprintf(buf, n, "up to %zu characters", k->aux - 1);
        return;
    case TR_CFG_INT_LIST:
        snprintf(buf, n, "1 to %d entries in %s", TR_MAX_MLP_LAYERS, rng);
        return;
    case TR_CFG_FLOAT_LIST:
        snprintf(buf, n, "entries in %s", rng);
        return;
    case TR_CFG_SET: {
        char names[128];
        fmt_enum_names(k, sep, names, sizeof(names));
        snprintf(buf, n, "any of %s", names);
        return;
    }
    case TR_CFG_TASKS:
        snprintf(buf, n, "empty, a count in [1, %d], or up to %d names", TR_MAX_TASKS,
                 TR_MAX_SELECT);
        return;
    case TR_CFG_UINT64:
        snprintf(buf, n, "[0, 2^64)");
        return;
    default:
        snprintf(buf, n, "%s", (k->range & TR_CFG_LO) ? rng : "any");
        return;
    }
}
