/*
 * `taskrel train` and `taskrel eval`: parse the command line into a config
 * and hand it to the trainer. Every rank parses the same argv, so usage and
 * config errors are raised identically everywhere. eval finds its weights in
 * a run directory and, without -c, its config in the weights file.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "taskrel/checkpoint.h"
#include "taskrel/dataset.h"
#include "taskrel/json.h"
#include "taskrel/train.h"

typedef struct {
    const char *config;
    const char *run_dir;
    const char *resume;
    char weights[4096];      /* eval: the weights file ("" if not given) */
    int json;                /* eval --json */
    const char *predictions; /* eval --predictions FILE.h5, or NULL */
    int overwrite;           /* train --overwrite */
} train_args;

static void usage_train(FILE *f, int is_eval) {
    if (is_eval)
        fprintf(f,
                "usage: taskrel eval RUN_DIR|WEIGHTS.h5 [-c CONFIG] [--set section.key=value ...]\n"
                "                    [--json] [--predictions FILE.h5]\n"
                "Evaluates saved weights (a run directory's model.h5, a model.h5 or a\n"
                "checkpoint; also --checkpoint PATH) on the val and test splits and prints\n"
                "the per-task table. Without -c the config stored in the weights file is\n"
                "used (--set overrides it, e.g. --set data.path=...). --json prints the\n"
                "results as one JSON object on stdout (the table goes to stderr).\n"
                "--predictions FILE.h5 writes every val and test prediction per task (class\n"
                "and probabilities, or value, with labels and row indices; docs/guide.md).\n"
                "The data file may hold only a test split (or only some splits).\n");
    else
        fprintf(f, "usage: taskrel train -c CONFIG [--set section.key=value ...] [--run-dir DIR]\n"
                   "                     [--resume auto|none|CHECKPOINT | --overwrite]\n"
                   "A run directory that holds a run is continued with --resume auto (or a\n"
                   "checkpoint), started again with --overwrite (removes its outputs and\n"
                   "checkpoints), and otherwise left alone (exit 2). Without --run-dir (or\n"
                   "run.dir) a new directory runs/<model>-<date>-<n> is made.\n");
    fprintf(f, "Options take `--opt value` or `--opt=value`; -s is --set.\n"
               "Keys and defaults: docs/config.md (or `taskrel config --markdown`).\n");
}

enum {
    OPT_CONFIG,
    OPT_SET,
    OPT_RUN_DIR,
    OPT_RESUME,
    OPT_CHECKPOINT,
    OPT_JSON,
    OPT_OVERWRITE,
    OPT_PREDICTIONS
};

static const tr_cli_option k_train_opts[] = {
    {"config", 'c', 1, OPT_CONFIG},     {"set", 's', 1, OPT_SET},
    {"run-dir", 0, 1, OPT_RUN_DIR},     {"resume", 0, 1, OPT_RESUME},
    {"overwrite", 0, 0, OPT_OVERWRITE},
};
static const tr_cli_option k_eval_opts[] = {
    {"config", 'c', 1, OPT_CONFIG},
    {"set", 's', 1, OPT_SET},
    {"checkpoint", 0, 1, OPT_CHECKPOINT},
    {"weights", 0, 1, OPT_CHECKPOINT},
    {"json", 0, 0, OPT_JSON},
    {"predictions", 0, 1, OPT_PREDICTIONS},
};

/* eval: the weights file from RUN_DIR|FILE or --checkpoint (one of them). */
static tr_status find_weights(const tr_cli_args *ca, train_args *a) {
    const char *given = ca->npos > 0 ? ca->pos[0] : NULL;
    for (int i = 0; i < ca->nopts; i++)
        if (ca->opts[i].id == OPT_CHECKPOINT) {
            TR_CHECK(!given, TR_ERR_USAGE,
                     "taskrel eval: give the weights once (RUN_DIR|FILE or --checkpoint)");
            given = ca->opts[i].value;
        }
    TR_CHECK(given != NULL, TR_ERR_USAGE,
             "taskrel eval needs RUN_DIR or WEIGHTS.h5 (a run's model.h5 or a checkpoint)");
    int n = tr_cli_is_dir(given) ? snprintf(a->weights, sizeof(a->weights), "%s/model.h5", given)
                                 : snprintf(a->weights, sizeof(a->weights), "%s", given);
    TR_CHECK(n > 0 && n < (int)sizeof(a->weights), TR_ERR_USAGE, "path too long: %s", given);
    TR_CHECK(tr_cli_readable(a->weights), TR_ERR_DATA, "weights file not found: %s%s", a->weights,
             tr_cli_is_dir(given) ? " (has this run finished?)" : "");
    return TR_OK;
}

/* The config stored in a weights file, loaded into cfg through a temporary
 * file (the config reader reads files). */
static tr_status load_stored_config(tr_config *cfg, const char *weights) {
    char *text = NULL;
    TR_CALL(tr_checkpoint_read_config(weights, &text));
    tr_status st = TR_OK;
    if (!text || !text[0]) {
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          "%s stores no config; give -c CONFIG", weights);
    } else {
        const char *dir = getenv("TMPDIR");
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s/taskrel-config-XXXXXX", dir && dir[0] ? dir : "/tmp");
        int fd = mkstemp(tmp);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                              "cannot write a temporary file in %s (set TMPDIR)", tmp);
        else
            st = tr_config_load_file(cfg, tmp);
        if (fd >= 0)
            unlink(tmp);
    }
    free(text);
    TR_CALL(st);
    return TR_OK;
}

/* The config file (or eval's stored config) first, then every --set in order
 * (so --set overrides the file wherever it appears). */
static tr_status apply(const tr_cli_args *ca, tr_config *cfg, train_args *a, int is_eval) {
    for (int i = 0; i < ca->nopts; i++)
        if (ca->opts[i].id == OPT_CONFIG) {
            TR_CHECK(!a->config, TR_ERR_USAGE, "-c/--config given twice");
            a->config = ca->opts[i].value;
        }
    if (is_eval)
        TR_CALL(find_weights(ca, a));
    if (a->config)
        TR_CALL(tr_config_load_file(cfg, a->config));
    else if (is_eval)
        TR_CALL(load_stored_config(cfg, a->weights));
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
        case OPT_PREDICTIONS:
            a->predictions = ca->opts[i].value;
            break;
        case OPT_JSON:
            a->json = 1;
            break;
        case OPT_OVERWRITE:
            a->overwrite = 1;
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
    TR_CALL(is_eval ? tr_cli_parse(&ca, cmd, k_eval_opts, 6, argc, argv)
                    : tr_cli_parse(&ca, cmd, k_train_opts, 5, argc, argv));
    tr_status st = TR_OK;
    if (ca.help) {
        usage_train(stdout, is_eval);
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__, "help shown");
    } else if (ca.npos > (is_eval ? 1 : 0)) {
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          "taskrel %s: unexpected argument '%s' (try taskrel %s --help)", cmd,
                          ca.pos[is_eval ? 1 : 0], cmd);
    } else {
        st = apply(&ca, cfg, a, is_eval);
    }
    tr_cli_args_free(&ca);
    TR_CALL(st);
    TR_CHECK(a->config != NULL || is_eval || cfg->data_path[0], TR_ERR_USAGE,
             "taskrel %s needs -c CONFIG (see launch/configs/)", cmd);
    TR_CALL(tr_config_validate(cfg));
    TR_CHECK(!a->overwrite || !a->resume || strcmp(a->resume, "none") == 0, TR_ERR_USAGE,
             "--overwrite starts a run afresh: it cannot be combined with --resume %s", a->resume);
    return TR_OK;
}

/* "taskrel train ARGS", each argument single-quoted when the shell would
 * split or expand it. */
static void command_line(char *buf, size_t n, int argc, char **argv) {
    size_t used = (size_t)snprintf(buf, n, "taskrel");
    for (int i = 0; i < argc && used + 4 < n; i++) {
        const char *a = argv[i];
        int plain = a[0] != '\0';
        for (const char *c = a; *c && plain; c++)
            plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                           "-_./=:,+@%",
                           *c) != NULL;
        used += (size_t)snprintf(buf + used, n - used, plain ? " %s" : " '", a);
        for (const char *c = a; !plain && *c && used + 6 < n; c++)
            used += *c == '\'' ? (size_t)snprintf(buf + used, n - used, "%s", "'\\''")
                               : (size_t)snprintf(buf + used, n - used, "%c", *c);
        if (!plain && used + 2 < n)
            used += (size_t)snprintf(buf + used, n - used, "'");
    }
}

tr_status tr_cmd_train(int argc, char **argv) {
    tr_config cfg;
    train_args a;
    TR_CALL(parse(argc, argv, &cfg, &a, 0));
    static char cmdline[1024];
    command_line(cmdline, sizeof(cmdline), argc, argv);
    tr_train_opts opts = {.run_dir = a.run_dir,
                          .resume = a.resume,
                          .overwrite = a.overwrite,
                          .command_line = cmdline};
    tr_train_result res;
    tr_status st = tr_train_run(&cfg, MPI_COMM_WORLD, &opts, &res);
    tr_train_result_free(&res);
    return st;
}

/* The names of the evaluated tasks: the data file's, as data.tasks selects
 * them ("" all, "N" the first N, "a,b" those names). */
static int eval_task_names(const tr_config *cfg, int T, char (*names)[64]) {
    static char all[TR_MAX_TASKS][64];
    int n = 0;
    if (tr_dataset_task_names(cfg->data_path, all, TR_MAX_TASKS, &n) != TR_OK) {
        tr_error_clear();
        return 0;
    }
    const tr_task_select *sel = &cfg->data_tasks;
    if (sel->n_names == 0) { /* all tasks, or the first sel->first */
        for (int t = 0; t < T && t < n; t++)
            memcpy(names[t], all[t], 64);
        return T <= n;
    }
    int t = 0;
    for (; t < T && t < sel->n_names; t++)
        snprintf(names[t], 64, "%s", sel->names[t]);
    return t == T;
}

static void json_metrics(FILE *f, const char *key, const double *v, int T) {
    fprintf(f, ",\"%s\":[", key);
    for (int t = 0; t < T; t++) {
        fputs(t ? "," : "", f);
        tr_json_write_number(f, v[t], 6);
    }
    fputs("]", f);
}

static void eval_json(FILE *f, const tr_config *cfg, const train_args *a,
                      const tr_train_result *r) {
    static char names[TR_MAX_TASKS][64];
    int named = eval_task_names(cfg, r->T, names);
    fputs("{\"weights\":", f);
    tr_json_write_string(f, a->weights);
    fputs(",\"data\":", f);
    tr_json_write_string(f, cfg->data_path);
    fprintf(f, ",\"metric\":\"%s\",\"tasks\":[",
            r->mixed            ? "loss"
            : r->classification ? "acc"
                                : "mse");
    for (int t = 0; t < r->T; t++) {
        char def[32];
        snprintf(def, sizeof(def), "%d", t);
        fputs(t ? "," : "", f);
        tr_json_write_string(f, named ? names[t] : def);
    }
    fputs("]", f);
    fputs(",\"task_metrics\":[", f); /* each task's: acc or mse */
    for (int t = 0; t < r->T; t++)
        fprintf(f, "%s\"%s\"", t ? "," : "", r->task_regression[t] ? "mse" : "acc");
    fputs("]", f);
    json_metrics(f, "val", r->val_metric, r->T);
    json_metrics(f, "test", r->test_metric, r->T);
    fputs(",\"val_mean\":", f);
    tr_json_write_number(f, r->val_mean, 6);
    fputs(",\"test_mean\":", f);
    tr_json_write_number(f, r->test_mean, 6);
    fputs("}\n", f);
    fflush(f);
}

tr_status tr_cmd_eval(int argc, char **argv) {
    tr_config cfg;
    train_args a;
    TR_CALL(parse(argc, argv, &cfg, &a, 1));
    int rank0 = tr_log_rank() == 0, saved = -1;
    if (a.json && rank0) { /* keep stdout for the JSON: the table goes to stderr */
        fflush(stdout);
        saved = dup(STDOUT_FILENO);
        dup2(STDERR_FILENO, STDOUT_FILENO);
    }
    tr_train_result res;
    tr_status st = tr_eval_run_ex(&cfg, MPI_COMM_WORLD, a.weights, a.predictions, &res);
    if (saved >= 0) {
        fflush(stdout);
        dup2(saved, STDOUT_FILENO);
        close(saved);
    }
    if (st == TR_OK && a.json && rank0)
        eval_json(stdout, &cfg, &a, &res);
    tr_train_result_free(&res);
    return st;
}
