/*
 * `taskrel train` and `taskrel eval`: parse the command line into a config
 * and hand it to the trainer. Every rank parses the same argv, so usage and
 * config errors are raised identically everywhere.
 */
#include <string.h>

#include "commands.h"
#include "taskrel/train.h"

typedef struct {
    const char *config;
    const char *run_dir;
    const char *checkpoint;
    const char *resume;
} train_args;

static void usage_train(FILE *f) {
    fprintf(f, "usage: taskrel train -c CONFIG [--set section.key=value ...] [--run-dir DIR]\n"
               "                     [--resume auto|none|CHECKPOINT]\n"
               "       taskrel eval  -c CONFIG --checkpoint PATH [--set section.key=value ...]\n"
               "Keys and defaults: docs/config.md (or `taskrel config --markdown`).\n");
}

static tr_status parse(int argc, char **argv, tr_config *cfg, train_args *a, int is_eval) {
    memset(a, 0, sizeof(*a));
    tr_config_default(cfg);
    /* first pass: the config file (so that --set overrides it wherever it appears) */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            TR_CHECK(i + 1 < argc, TR_ERR_USAGE, "%s needs a file", argv[i]);
            a->config = argv[++i];
        }
    }
    if (a->config)
        TR_CALL(tr_config_load_file(cfg, a->config));
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
            i++;
        } else if (strcmp(arg, "--set") == 0 || strcmp(arg, "-s") == 0) {
            TR_CHECK(i + 1 < argc, TR_ERR_USAGE, "--set needs section.key=value");
            TR_CALL(tr_config_set(cfg, argv[++i]));
        } else if (strncmp(arg, "--set=", 6) == 0) {
            TR_CALL(tr_config_set(cfg, arg + 6));
        } else if (!is_eval && strcmp(arg, "--run-dir") == 0) {
            TR_CHECK(i + 1 < argc, TR_ERR_USAGE, "--run-dir needs a directory");
            a->run_dir = argv[++i];
        } else if (!is_eval && strcmp(arg, "--resume") == 0) {
            TR_CHECK(i + 1 < argc, TR_ERR_USAGE, "--resume needs auto, none or a path");
            a->resume = argv[++i];
            TR_CHECK(a->resume[0] != '\0', TR_ERR_USAGE, "--resume needs auto, none or a path");
        } else if (is_eval && (strcmp(arg, "--checkpoint") == 0 || strcmp(arg, "--weights") == 0)) {
            TR_CHECK(i + 1 < argc, TR_ERR_USAGE, "%s needs a path", arg);
            a->checkpoint = argv[++i];
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage_train(stdout);
            TR_RAISE(TR_ERR_USAGE, "help shown");
        } else {
            usage_train(stderr);
            TR_RAISE(TR_ERR_USAGE, "unknown argument '%s' for taskrel %s", arg, argv[0]);
        }
    }
    TR_CHECK(a->config != NULL || cfg->data_path[0], TR_ERR_USAGE,
             "taskrel %s needs -c CONFIG (see launch/configs/)", argv[0]);
    if (is_eval)
        TR_CHECK(a->checkpoint != NULL, TR_ERR_USAGE,
                 "taskrel eval needs --checkpoint PATH (a run's model.h5)");
    TR_CALL(tr_config_validate(cfg));
    return TR_OK;
}

tr_status tr_cmd_train(int argc, char **argv) {
    tr_config cfg;
    train_args a;
    TR_CALL(parse(argc, argv, &cfg, &a, 0));
    tr_train_opts opts = {.run_dir = a.run_dir, .resume = a.resume};
    tr_train_result res;
    tr_status st = tr_train_run(&cfg, MPI_COMM_WORLD, &opts, &res);
    tr_train_result_free(&res);
    return st;
}

tr_status tr_cmd_eval(int argc, char **argv) {
    tr_config cfg;
    train_args a;
    TR_CALL(parse(argc, argv, &cfg, &a, 1));
    tr_train_result res;
    tr_status st = tr_eval_run(&cfg, MPI_COMM_WORLD, a.checkpoint, &res);
    tr_train_result_free(&res);
    return st;
}
