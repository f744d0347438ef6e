/*
 * `taskrel config`: the key reference as markdown (docs/config.md is this
 * output), every key with its default as INI, or the resolved config of
 * `-c FILE --set ...` after validation (a dry run of what `taskrel train`
 * would use). Not collective: it reads no data and needs no MPI.
 */
#include "commands.h"
#include "args.h"

#include <string.h>

#include "taskrel/config.h"

static void config_usage(FILE *f) {
    fprintf(f, "usage: taskrel config --markdown     key reference as markdown (docs/config.md)\n"
               "       taskrel config --defaults     every key with its default, as INI\n"
               "       taskrel config [-c FILE] [--set section.key=value ...]\n"
               "                                     resolved and validated config, as INI\n");
}

static tr_status flush_stdout(void) {
    TR_CHECK(fflush(stdout) == 0 && !ferror(stdout), TR_ERR_IO, "error writing to stdout");
    return TR_OK;
}

enum { OPT_MARKDOWN, OPT_DEFAULTS, OPT_CONFIG, OPT_SET };

static const tr_cli_option k_opts[] = {
    {"markdown", 0, 0, OPT_MARKDOWN},
    {"defaults", 0, 0, OPT_DEFAULTS},
    {"config", 'c', 1, OPT_CONFIG},
    {"set", 's', 1, OPT_SET},
};

/* The resolved config: the file, then every --set in order. */
static tr_status resolve(tr_config *c, const tr_cli_args *a, const char *file) {
    if (file)
        TR_CALL(tr_config_load_file(c, file));
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].id == OPT_SET)
            TR_CALL(tr_config_set(c, a->opts[i].value));
    TR_CALL(tr_config_validate(c));
    return TR_OK;
}

static tr_status run(const tr_cli_args *a) {
    if (a->help) {
        config_usage(stdout);
        return flush_stdout();
    }
    TR_CHECK(a->npos == 0, TR_ERR_USAGE, "taskrel config: unexpected argument '%s'",
             a->npos ? a->pos[0] : "");
    int markdown = 0, defaults = 0, nset = 0;
    const char *file = NULL;
    for (int i = 0; i < a->nopts; i++) {
        switch (a->opts[i].id) {
        case OPT_MARKDOWN:
            markdown = 1;
            break;
        case OPT_DEFAULTS:
            defaults = 1;
            break;
        case OPT_CONFIG:
            TR_CHECK(!file, TR_ERR_USAGE, "taskrel config: -c given twice");
            file = a->opts[i].value;
            break;
        default:
            nset++;
        }
    }
    TR_CHECK(markdown + defaults + (file || nset ? 1 : 0) <= 1, TR_ERR_USAGE,
             "taskrel config: --markdown, --defaults and -c/--set exclude each other");

    tr_config c;
    tr_config_default(&c);
    if (markdown) {
        tr_config_write_markdown(stdout);
        return flush_stdout();
    }
    if (file || nset) {
        TR_CALL(resolve(&c, a, file));
    } else if (!defaults) {
        config_usage(stderr);
        TR_RAISE(TR_ERR_USAGE, "taskrel config: nothing to do");
    }
    TR_CALL(tr_config_write(&c, stdout));
    return flush_stdout();
}

tr_status tr_cmd_config(int argc, char **argv) {
    tr_cli_args a;
    TR_CALL(tr_cli_parse(&a, "config", k_opts, 4, argc, argv));
    tr_status st = run(&a);
    tr_cli_args_free(&a);
    return st;
}
