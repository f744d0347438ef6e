/*
 * The one command-line parser of every `taskrel` subcommand (private to
 * src/cli): getopt_long underneath, so `--opt value`, `--opt=value`, short
 * options (`-c FILE`, `-cFILE`), flags, `--` and options after positional
 * arguments all work the same everywhere. It only splits the command line:
 * what a value means is the command's business.
 *
 * A usage error (unknown option, missing value, value given to a flag) is a
 * TR_ERR_USAGE whose message names the command and the option, with a "did you
 * mean" for a near miss. `-h`/`--help` sets help instead of failing.
 */
#ifndef TASKREL_CLI_ARGS_H
#define TASKREL_CLI_ARGS_H

#include "taskrel/core.h"

typedef struct {
    const char *name; /* long name without "--" */
    char short_name;  /* 'c' for -c, or 0 */
    int has_value;    /* 1: takes a value; 0: a flag */
    int id;           /* the caller's code for this option */
} tr_cli_option;

typedef struct {
    int id;            /* tr_cli_option.id */
    const char *name;  /* the long name (for messages) */
    const char *value; /* NULL for a flag */
} tr_cli_arg;

typedef struct {
    tr_cli_arg *opts; /* (nopts) options in command-line order */
    int nopts;
    char **pos; /* (npos) positional arguments in order (pointers into argv) */
    int npos;
    int help; /* -h or --help was given */
} tr_cli_args;

/* Parse argv[1..argc) of command `cmd` (argv[0] is not read) against options.
 * argv is not modified. Free the result with tr_cli_args_free. */
tr_status tr_cli_parse(tr_cli_args *out, const char *cmd, const tr_cli_option *options, int n,
                       int argc, char **argv);
void tr_cli_args_free(tr_cli_args *a); /* no-op on a zeroed struct */

/* An option's value as an integer or a number in [lo, hi]: the whole string
 * must parse. A usage error names cmd, opt (with its dashes) and the range. */
tr_status tr_cli_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi,
                     long long *v);
tr_status tr_cli_number(const char *cmd, const char *opt, const char *s, double lo, double hi,
                        double *v);

/* The candidate closest to word by edit distance if it is close enough to be a
 * likely typo (distance <= max(2, strlen(word) / 3)), else NULL. */
const char *tr_cli_suggest(const char *word, const char *const *candidates, int n);

/* Levenshtein distance between a and b (insertions, deletions, substitutions). */
int tr_cli_edit_distance(const char *a, const char *b);

/* p is a directory; p is a readable file (or directory). */
int tr_cli_is_dir(const char *p);
int tr_cli_readable(const char *p);

/* Task name k of the comma-separated list tasks (or "k" past its end). */
void tr_cli_task_name(char *out, size_t cap, const char *tasks, int k);

#endif
