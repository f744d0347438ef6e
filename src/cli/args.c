/*
 * tr_cli_parse: getopt_long over a copy of argv, collecting options in order
 * and positional arguments (GNU getopt moves them to the end of the copy).
 * Not reentrant (getopt's state is global), which a command line never needs.
 * Also the small helpers several commands share (paths, task names).
 */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tr_cli_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 128 || lb > 128)
        return 1 << 20;
    int row[129];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *tr_cli_suggest(const char *word, const char *const *candidates, int n) {
    int limit = (int)strlen(word) / 3;
    if (limit < 2)
        limit = 2;
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        int d = tr_cli_edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best;
}

tr_status tr_cli_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi,
                     long long *v) {
    char *end = NULL;
    errno = 0;
    long long x = s ? strtoll(s, &end, 10) : 0;
    TR_CHECK(s && s[0] && *end == '\0' && errno == 0 && x >= lo && x <= hi, TR_ERR_USAGE,
             "taskrel %s: %s: '%s' is not an integer in [%lld, %lld]", cmd, opt, s ? s : "", lo,
             hi);
    *v = x;
    return TR_OK;
}

tr_status tr_cli_number(const char *cmd, const char *opt, const char *s, double lo, double hi,
                        double *v) {
    char *end = NULL;
    errno = 0;
    double x = s ? strtod(s, &end) : 0;
    TR_CHECK(s && s[0] && *end == '\0' && errno == 0 && x >= lo && x <= hi, TR_ERR_USAGE,
             "taskrel %s: %s: '%s' is not a number in [%g, %g]", cmd, opt, s ? s : "", lo, hi);
    *v = x;
    return TR_OK;
}

void tr_cli_args_free(tr_cli_args *a) {
    if (!a)
        return;
    free(a->opts);
    free(a->pos);
    memset(a, 0, sizeof(*a));
}

/* The message for an argument getopt rejected: argv[optind - 1] (or the
 * short option optopt). */
static tr_status bad_option(const char *cmd, const tr_cli_option *options, int n, const char *arg,
                            int short_opt, int missing_value) {
    if (short_opt) {
        if (missing_value)
            TR_RAISE(TR_ERR_USAGE, "taskrel %s: option -%c needs a value", cmd, short_opt);
        TR_RAISE(TR_ERR_USAGE, "taskrel %s: unknown option '-%c' (try taskrel %s --help)", cmd,
                 short_opt, cmd);
    }
    const char *name = arg;
    while (*name == '-')
        name++;
    size_t len = strcspn(name, "=");
    char word[128];
    snprintf(word, sizeof(word), "%.*s", (int)(len < sizeof(word) ? len : sizeof(word) - 1), name);
    for (int i = 0; i < n; i++) {
        if (strcmp(options[i].name, word) != 0)
            continue;
        if (missing_value)
            TR_RAISE(TR_ERR_USAGE, "taskrel %s: option --%s needs a value", cmd, word);
        if (!options[i].has_value && name[len] == '=')
            TR_RAISE(TR_ERR_USAGE, "taskrel %s: option --%s takes no value", cmd, word);
    }
    if (missing_value) /* an abbreviation getopt expanded */
        TR_RAISE(TR_ERR_USAGE, "taskrel %s: option %s needs a value", cmd, arg);
    const char *names[64];
    int m = 0;
    for (int i = 0; i < n && m < 63; i++)
        names[m++] = options[i].name;
    names[m++] = "help";
    const char *guess = tr_cli_suggest(word, names, m);
    if (guess)
        TR_RAISE(TR_ERR_USAGE, "taskrel %s: unknown argument '%s' (did you mean --%s?)", cmd, arg,
                 guess);
    TR_RAISE(TR_ERR_USAGE, "taskrel %s: unknown argument '%s' (try taskrel %s --help)", cmd, arg,
             cmd);
}

tr_status tr_cli_parse(tr_cli_args *out, const char *cmd, const tr_cli_option *options, int n,
                       int argc, char **argv) {
    memset(out, 0, sizeof(*out));
    TR_ASSERT(n >= 0 && n < 63);
    struct option longopts[64];
    char shortopts[3 * 64 + 4];
    size_t sp = 0;
    shortopts[sp++] = ':'; /* ':' for a missing value, '?' for an unknown option */
    for (int i = 0; i < n; i++) {
        longopts[i] = (struct option){
            options[i].name, options[i].has_value ? required_argument : no_argument, NULL, 256 + i};
        if (options[i].short_name) {
            shortopts[sp++] = options[i].short_name;
            if (options[i].has_value)
                shortopts[sp++] = ':';
        }
    }
    longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};
    shortopts[sp++] = 'h';
    shortopts[sp] = '\0';

    /* getopt permutes its argv: work on a copy, with argv[0] for its messages */
    char **copy = calloc((size_t)argc + 1, sizeof(char *));
    out->opts = calloc((size_t)argc + 1, sizeof(tr_cli_arg));
    out->pos = calloc((size_t)argc + 1, sizeof(char *));
    TR_CHECK(copy && out->opts && out->pos, TR_ERR_NOMEM, "out of memory parsing arguments");
    for (int i = 0; i < argc; i++)
        copy[i] = argv[i];
    tr_status st = TR_OK;
    opterr = 0;
    optind = 0; /* glibc: a full re-initialisation, so the parser can run again */
    for (;;) {
        int li = -1;
        int c = getopt_long(argc, copy, shortopts, longopts, &li);
        if (c == -1)
            break;
        if (c == 'h') {
            out->help = 1;
        } else if (c == '?' || c == ':') {
            const char *arg = optind - 1 < argc && optind > 0 ? copy[optind - 1] : "?";
            int is_long = strncmp(arg, "--", 2) == 0;
            st = bad_option(cmd, options, n, arg, is_long ? 0 : optopt, c == ':');
            break;
        } else {
            int k = c >= 256 ? c - 256 : -1;
            for (int i = 0; k < 0 && i < n; i++)
                if (options[i].short_name == c)
                    k = i;
            TR_ASSERT(k >= 0 && k < n);
            out->opts[out->nopts++] =
                (tr_cli_arg){options[k].id, options[k].name, options[k].has_value ? optarg : NULL};
        }
    }
    if (st == TR_OK)
        for (int i = optind; i < argc; i++)
            out->pos[out->npos++] = copy[i];
    free(copy);
    if (st != TR_OK)
        tr_cli_args_free(out);
    return st;
}

int tr_cli_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int tr_cli_readable(const char *p) {
    return access(p, R_OK) == 0;
}

void tr_cli_task_name(char *out, size_t cap, const char *tasks, int k) {
    const char *p = tasks;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    if (!p || !*p) {
        snprintf(out, cap, "%d", k);
        return;
    }
    size_t n = strcspn(p, ",");
    snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), p);
}
