/*
 * `taskrel train` and `taskrel eval`: parse the command line into a config
 * and hand it to the trainer. Every rank parses the same argv, so usage and
 * config errors are raised identically everywhere.
 */
#include <string.h>

#include "args.h"
#include "commands.h"
#include "taskrel/train.h"

typedef struct {
    const char *config;
    const char *run_dir;
    const char *checkpoint;
    const char *resume;
} train_args;

static void usage_train(FILE *f, int is_eval) {
    if (is_eval)
        fprintf(f, "usage: taskrel eval -c CONFIG --checkpoint PATH [--set section.key=value ...]\n"
                   "Evaluates saved weights (a run's model.h5 or a checkpoint) on the val and\n"
                   "test splits of the config's dataset and prints the per-task table.\n");
    else
        fprintf(f, "usage: taskrel train -c CONFIG [--set section.key=value ...] [--run-dir DIR]\n"
                   "                     [--resume auto|none|CHECKPOINT]\n");
    fprintf(f, "Options take `--opt value` or `--opt=value`; -s is --set.\n"
               "Keys and defaults: docs/config.md (or `taskrel config --markdown`).\n");
}

enum { OPT_CONFIG, OPT_SET, OPT_RUN_DIR, OPT_RESUME, OPT_CHECKPOINT };

static const tr_cli_option k_train_opts[] = {
    {"config", 'c', 1, OPT_CONFIG},
    {"set", 's', 1, OPT_SET},
    {"run-dir", 0, 1, OPT_RUN_DIR},
    {"resume", 0, 1, OPT_RESUME},
};
static const tr_cli_option k_eval_opts[] = {
    {"config", 'c', 1, OPT_CONFIG},
    {"set", 's', 1, OPT_SET},
    {"checkpoint", 0, 1, OPT_CHECKPOINT},
    {"weights", 0, 1, OPT_CHECKPOINT},
};

/* The config file first, then every --set in order (so --set overrides the
 * file wherever it appears). */
static tr_status apply(const tr_cli_args *ca, tr_config *cfg, train_args *a) {
    for (int i = 0; i < ca->nopts; i++)
        if (ca->opts[i].id == OPT_CONFIG) {
            TR_CHECK(!a->config, TR_ERR_USAGE, "-c/--config given twice");
            a->config = ca->opts[i].value;
        }
    if (a->config)
        TR_CALL(tr_config_load_file(cfg, a->config));
    for (int i = 0; i < ca->nopts; i++) {
        const tr_cli_arg *o = &ca->opts[i];
        switch (o->id) {
        case OPT_SET:
            TR_CALL(tr_config_set(cfg, o->value));
            break;
        case OPT_RUN_DIR:
            TR_CHECK(o->value[0] != '\0', TR_ERR_USAGE, "--run-dir needs a directory");
            a->run_dir = o->value;
            break;
        case OPT_RESUME:
            TR_CHECK(o->value[0] != '\0', TR_ERR_USAGE, "--resume needs auto, none or a path");
            a->resume = o->value;
            break;
        case OPT_CHECKPOINT:
            a->checkpoint = o->value;
            break;
        default:
            break;
        }
    }
    return TR_OK;
}

static tr_status parse(int argc, char **argv, tr_config *cfg, train_args *a, int is_eval) {
    memset(a, 0, sizeof(*a));
    tr_config_default(cfg);
    const char *cmd = is_eval ? "eval" : "train";
    tr_cli_args ca;
    TR_CALL(is_eval ? tr_cli_parse(&ca, cmd, k_eval_opts, 4, argc, argv)
                    : tr_cli_parse(&ca, cmd, k_train_opts, 4, argc, argv));
    tr_status st = TR_OK;
    if (ca.help) {
        usage_train(stdout, is_eval);
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__, "help shown");
    } else if (ca.npos > 0) {
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          "taskrel %s: unexpected argument '%s' (try taskrel %s --help)", cmd,
                          ca.pos[0], cmd);
    } else {
        st = apply(&ca, cfg, a);
    }
    tr_cli_args_free(&ca);
    TR_CALL(st);
    TR_CHECK(a->config != NULL || cfg->data_path[0], TR_ERR_USAGE,
             "taskrel %s needs -c CONFIG (see launch/configs/)", cmd);
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
