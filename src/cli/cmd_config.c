/*
 * `taskrel config`: the key reference as markdown (docs/config.md is this
 * output), every key with its default as INI, or the resolved config of
 * `-c FILE --set ...` after validation (a dry run of what `taskrel train`
 * would use). Not collective: it reads no data and needs no MPI.
 */
#include "commands.h"

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

tr_status tr_cmd_config(int argc, char **argv) {
    int markdown = 0, defaults = 0, nset = 0;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            config_usage(stdout);
            return flush_stdout();
        } else if (strcmp(a, "--markdown") == 0) {
            markdown = 1;
        } else if (strcmp(a, "--defaults") == 0) {
            defaults = 1;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            TR_CHECK(i + 1 < argc, TR_ERR_USAGE, "taskrel config: %s needs a file", a);
            TR_CHECK(!file, TR_ERR_USAGE, "taskrel config: -c given twice");
            file = argv[++i];
        } else if (strcmp(a, "--set") == 0) {
            TR_CHECK(i + 1 < argc, TR_ERR_USAGE, "taskrel config: --set needs section.key=value");
            i++;
            nset++;
        } else {
            config_usage(stderr);
            TR_RAISE(TR_ERR_USAGE, "taskrel config: unknown argument '%s'", a);
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
        if (file)
            TR_CALL(tr_config_load_file(&c, file));
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], "--set") == 0)
                TR_CALL(tr_config_set(&c, argv[++i]));
            else if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
                i++;
        TR_CALL(tr_config_validate(&c));
    } else if (!defaults) {
        config_usage(stderr);
        TR_RAISE(TR_ERR_USAGE, "taskrel config: nothing to do");
    }
    TR_CALL(tr_config_write(&c, stdout));
    return flush_stdout();
}
