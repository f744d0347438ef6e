/*
 * `taskrel data import FILE... --out OUT.h5 [options]`: the command line of
 * the importer (src/io/import.c). Parsing only. Serial.
 */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "taskrel/config.h"
#include "taskrel/dataset.h"
#include "taskrel/import.h"

static const char k_import_help[] =
    "usage: taskrel data import FILE... --out OUT.h5 [options]\n"
    "\n"
    "Import your own data into taskrel's dataset layout (datasets/README.md).\n"
    "\n"
    "NumPy (.npz archives and .npy files, numpy.savez or savez_compressed):\n"
    "  arrays named x_train, y_train, x_val, y_val, x_test, y_test: shared-input,\n"
    "  y of shape (n) for one task or (n, T) for T tasks; or TASK/x_train,\n"
    "  TASK/y_train, ...: multi-input, one task per TASK. x is (n, d), (n, H, W) or\n"
    "  (n, C, H, W). Integer labels make a classification task, float ones a\n"
    "  regression task. A .npy file's name is its array's name (x_train.npy).\n"
    "CSV (one file, a header row):\n"
    "  --label COL is a target column (repeat for several shared-input tasks);\n"
    "  --task-column COL makes multi-input data (rows belong to the task named\n"
    "  in COL); a column 'split' (train, val, test) assigns rows; every other\n"
    "  column is a feature. Whole-number labels >= 0 are classes.\n"
    "\n"
    "options:\n"
    "  --out FILE              output .h5 (required; parent directories are created)\n"
    "  --label COL             CSV target column (repeatable)\n"
    "  --task-column COL       CSV column naming each row's task (multi-input)\n"
    "  --split-column COL      CSV column with train/val/test (default: 'split' if present)\n"
    "  --task NAME             task names in order (repeatable; default: the column\n"
    "                          names, the TASK prefixes, or t0, t1, ...)\n"
    "  --kind classification|regression   every task's kind (default: from the labels);\n"
    "                          or a comma-separated list, one per task in order\n"
    "                          (shared-input tasks of both kinds: y holds class ids\n"
    "                          as whole numbers in the classification columns)\n"
    "  --classes N             classes per classification task (default: max label + 1);\n"
    "                          or N1,N2,... one per task (1 for a regression task)\n"
    "  --val-frac F, --test-frac F   cut val/test from train where not given (0)\n"
    "  --seed N                seed of that cut (1)\n"
    "  --image C,H,W           reshape each example's values to an image\n"
    "  -h, --help              this text\n";

enum {
    O_OUT,
    O_LABEL,
    O_TASK_COLUMN,
    O_SPLIT_COLUMN,
    O_TASK,
    O_KIND,
    O_CLASSES,
    O_VAL_FRAC,
    O_TEST_FRAC,
    O_SEED,
    O_IMAGE
};

static const tr_cli_option k_opts[] = {
    {"out", 'o', 1, O_OUT},
    {"label", 0, 1, O_LABEL},
    {"task-column", 0, 1, O_TASK_COLUMN},
    {"split-column", 0, 1, O_SPLIT_COLUMN},
    {"task", 0, 1, O_TASK},
    {"kind", 0, 1, O_KIND},
    {"classes", 0, 1, O_CLASSES},
    {"val-frac", 0, 1, O_VAL_FRAC},
    {"test-frac", 0, 1, O_TEST_FRAC},
    {"seed", 0, 1, O_SEED},
    {"image", 0, 1, O_IMAGE},
};
#define N_OPTS ((int)(sizeof(k_opts) / sizeof(k_opts[0])))

static tr_status set_opt(tr_import_opts *o, const tr_cli_arg *a, const char **labels,
                         const char **names) {
    long long v = 0;
    switch (a->id) {
    case O_OUT:
        o->out = a->value;
        break;
    case O_LABEL:
        TR_CHECK(o->nlabels < TR_MAX_TASKS, TR_ERR_USAGE, "data import: too many --label");
        labels[o->nlabels++] = a->value;
        break;
    case O_TASK_COLUMN:
        o->task_column = a->value;
        break;
    case O_SPLIT_COLUMN:
        o->split_column = a->value;
        break;
    case O_TASK:
        TR_CHECK(o->nnames < TR_MAX_TASKS, TR_ERR_USAGE, "data import: too many --task");
        names[o->nnames++] = a->value;
        break;
    case O_KIND: { /* one kind for all, or a comma-separated list, one per task */
        const char *p = a->value;
        o->nkinds = 0;
        while (1) {
            size_t len = strcspn(p, ",");
            int cls = len == 14 && strncmp(p, "classification", 14) == 0;
            int reg = len == 10 && strncmp(p, "regression", 10) == 0;
            TR_CHECK(cls || reg, TR_ERR_USAGE,
                     "data import: --kind: '%s' (expected classification or regression, or a "
                     "comma-separated list of them, one per task)",
                     a->value);
            TR_CHECK(o->nkinds < TR_MAX_TASKS, TR_ERR_USAGE, "data import: --kind: too many");
            o->kinds[o->nkinds++] = reg ? TR_TASK_REGRESSION : TR_TASK_CLASSIFICATION;
            if (!p[len])
                break;
            p += len + 1;
        }
        if (o->nkinds == 1) {
            o->kind = o->kinds[0];
            o->nkinds = 0;
        }
        break;
    }
    case O_CLASSES: { /* one count for all, or a comma-separated list, one per task */
        char one[32];
        const char *p = a->value;
        o->nclasses = 0;
        while (1) {
            size_t len = strcspn(p, ",");
            TR_CHECK(len < sizeof(one) && o->nclasses < TR_MAX_TASKS, TR_ERR_USAGE,
                     "data import: --classes: '%s' (expected N or N1,N2,... one per task)",
                     a->value);
            memcpy(one, p, len);
            one[len] = '\0';
            TR_CALL(tr_cli_int("data import", "--classes", one, 1, 1000000, &v));
            o->class_list[o->nclasses++] = (int)v;
            if (!p[len])
                break;
            p += len + 1;
        }
        if (o->nclasses == 1) {
            TR_CHECK(o->class_list[0] >= 2, TR_ERR_USAGE,
                     "data import: --classes %d: a classification task has at least 2 classes",
                     o->class_list[0]);
            o->classes = o->class_list[0];
            o->nclasses = 0;
        }
        break;
    }
    case O_VAL_FRAC:
        TR_CALL(tr_cli_number("data import", "--val-frac", a->value, 0, 0.99, &o->val_frac));
        break;
    case O_TEST_FRAC:
        TR_CALL(tr_cli_number("data import", "--test-frac", a->value, 0, 0.99, &o->test_frac));
        break;
    case O_SEED:
        TR_CALL(tr_cli_int("data import", "--seed", a->value, 0, (long long)1 << 62, &v));
        o->seed = (uint64_t)v;
        break;
    case O_IMAGE: {
        long long c, h, w;
        char tail;
        TR_CHECK(
            sscanf(a->value, "%lld,%lld,%lld%c", &c, &h, &w, &tail) == 3 && c > 0 && h > 0 && w > 0,
            TR_ERR_USAGE, "data import: --image: '%s' (expected C,H,W, e.g. 1,28,28)", a->value);
        o->image[0] = c, o->image[1] = h, o->image[2] = w;
        break;
    }
    default:
        TR_ASSERT(0);
    }
    return TR_OK;
}

tr_status tr_cmd_import(int argc, char **argv) {
    tr_cli_args a;
    TR_CALL(tr_cli_parse(&a, "data import", k_opts, N_OPTS, argc, argv));
    tr_import_opts o;
    tr_import_opts_default(&o);
    const char **labels = calloc(TR_MAX_TASKS, sizeof(char *));
    const char **names = calloc(TR_MAX_TASKS, sizeof(char *));
    tr_status st = labels && names
                       ? TR_OK
                       : tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
    for (int i = 0; i < a.nopts && st == TR_OK && !a.help; i++)
        st = set_opt(&o, &a.opts[i], labels, names);
    o.labels = labels;
    o.names = names;
    o.inputs = (const char *const *)a.pos;
    o.ninputs = a.npos;
    if (st == TR_OK && a.help) {
        fputs(k_import_help, stdout);
    } else if (st == TR_OK) {
        if (!o.out)
            st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                              "data import: missing --out FILE.h5");
        if (st == TR_OK)
            st = tr_path_check_writable(o.out, "--out");
        double t0 = tr_time_now();
        if (st == TR_OK)
            st = tr_import(&o);
        if (st == TR_OK)
            tr_log(TR_LOG_INFO, "data: wrote %s (imported from %d file(s)) in %.1f s", o.out,
                   o.ninputs, tr_time_now() - t0);
    }
    free(labels);
    free(names);
    tr_cli_args_free(&a);
    return st;
}
