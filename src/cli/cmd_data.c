/*
 * `taskrel data BUILDER --out FILE [options]`: the command line of the dataset
 * builders (src/data/build_*.c). Parsing only: every value is checked here or in
 * the builder, and a bad one is a TR_ERR_USAGE naming the option. Serial: run
 * it as one process.
 */
#include "taskrel/data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "taskrel/import.h"

enum {
    OPT_OUT = 1u << 0,
    OPT_SEED = 1u << 1,
    OPT_TRAIN_FRAC = 1u << 2,
    OPT_TASKS = 1u << 3,
    OPT_FASHION_DIR = 1u << 4,
    OPT_N_TRAIN = 1u << 5,
    OPT_N_VAL = 1u << 6,
    OPT_N_TEST = 1u << 7,
    OPT_DIM = 1u << 8,
    OPT_CLASSIFICATION = 1u << 9,
    OPT_CORR = 1u << 10,
};
#define OPT_SIZES (OPT_N_TRAIN | OPT_N_VAL | OPT_N_TEST)

static const struct {
    const char *name;
    unsigned bit;
    int takes_value;
} k_options[] = {
    {"--out", OPT_OUT, 1},
    {"--seed", OPT_SEED, 1},
    {"--train-frac", OPT_TRAIN_FRAC, 1},
    {"--tasks", OPT_TASKS, 1},
    {"--fashion-dir", OPT_FASHION_DIR, 1},
    {"--n-train", OPT_N_TRAIN, 1},
    {"--n-val", OPT_N_VAL, 1},
    {"--n-test", OPT_N_TEST, 1},
    {"--dim", OPT_DIM, 1},
    {"--classification", OPT_CLASSIFICATION, 0},
    {"--corr", OPT_CORR, 1},
};

static const struct {
    const char *name;
    tr_status (*build)(const tr_builder_opts *o);
    unsigned allowed;
} k_builders[] = {
    {"fashion-domains", tr_build_fashion_domains,
     OPT_OUT | OPT_SEED | OPT_TRAIN_FRAC | OPT_FASHION_DIR},
    {"multifashion", tr_build_multifashion,
     OPT_OUT | OPT_SEED | OPT_TASKS | OPT_FASHION_DIR | OPT_SIZES},
    {"synthetic-tn", tr_build_synthetic_tn,
     OPT_OUT | OPT_SEED | OPT_TASKS | OPT_SIZES | OPT_DIM | OPT_CLASSIFICATION},
    {"synthetic-mmoe", tr_build_synthetic_mmoe,
     OPT_OUT | OPT_SEED | OPT_TASKS | OPT_SIZES | OPT_DIM | OPT_CORR},
};
#define N_BUILDERS ((int)(sizeof(k_builders) / sizeof(k_builders[0])))
#define N_OPTIONS ((int)(sizeof(k_options) / sizeof(k_options[0])))

static const char k_help[] =
    "usage: taskrel data BUILDER --out FILE [options]\n"
    "       taskrel data import FILE.npz|FILE.npy|FILE.csv ... --out FILE.h5 [options]\n"
    "       (your own data; taskrel data import --help)\n"
    "\n"
    "Build a dataset file (HDF5) for taskrel. Builds are deterministic: the same\n"
    "builder, options and seed give identical data. See datasets/README.md.\n"
    "\n"
    "builders:\n"
    "  fashion-domains  6 multi-input tasks on disjoint Fashion-MNIST images:\n"
    "                   orig, noise, blur (true labels), orig_perm, rot90_perm,\n"
    "                   invert_perm (labels permuted); 28x28, 10 classes\n"
    "  multifashion     shared-input: 2 (36x36) or 4 (44x44) overlaid items,\n"
    "                   task k = class of item k\n"
    "  synthetic-tn     multi-input, x in R^d, task weights from a tensor normal\n"
    "                   with a known task covariance (/truth/sigma3)\n"
    "  synthetic-mmoe   shared-input regression, MMoE generator (Ma et al. 2018)\n"
    "                   with a given task correlation (/truth/corr)\n"
    "\n"
    "options:\n"
    "  --out FILE          output file (required; parent directories are created)\n"
    "  --seed N            random seed (default 1)\n"
    "  --train-frac F      fashion-domains: labelled training fraction of each task's\n"
    "                      10000 images, in (0, 0.9] (default 0.10)\n"
    "  --tasks T           multifashion: 2 or 4 (default 2); synthetic-tn: default 8;\n"
    "                      synthetic-mmoe: default 4\n"
    "  --fashion-dir DIR   Fashion-MNIST IDX .gz files\n"
    "                      (default /usr/share/datasets/fashion-mnist,\n"
    "                      Debian package dataset-fashion-mnist)\n"
    "  --n-train N, --n-val N, --n-test N\n"
    "                      examples per split (per task for synthetic-tn);\n"
    "                      defaults: multifashion 20000/4000/10000,\n"
    "                      synthetic-tn 200/200/1000, synthetic-mmoe 10000/2000/2000\n"
    "  --dim D             synthetic-*: input dimension (tn 16, mmoe 100)\n"
    "  --classification    synthetic-tn: 4-class labels instead of regression\n"
    "  --corr P            synthetic-mmoe: correlation of the task weight vectors\n"
    "                      within a pair of tasks, in [-1, 1] (default 0.9; 0.1\n"
    "                      across pairs); the paper's setting is --tasks 2 --corr P\n"
    "  -h, --help          this text\n";

static int find_builder(const char *name) {
    for (int b = 0; b < N_BUILDERS; b++)
        if (strcmp(k_builders[b].name, name) == 0)
            return b;
    return -1;
}

static tr_status parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *v) {
    long long x = 0;
    TR_CALL(tr_cli_int("data", opt, s, lo, hi, &x));
    *v = x;
    return TR_OK;
}

static tr_status parse_seed(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    TR_CHECK(s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0, TR_ERR_USAGE,
             "data: --seed: '%s' is not a non-negative integer", s);
    *v = x;
    return TR_OK;
}

static tr_status parse_frac(const char *s, double *v) {
    TR_CALL(tr_cli_number("data", "--train-frac", s, 0.0, 0.9, v));
    TR_CHECK(*v > 0.0, TR_ERR_USAGE, "data: --train-frac: %g out of range (0, 0.9]", *v);
    return TR_OK;
}

static tr_status set_option(tr_builder_opts *o, unsigned bit, const char *opt, const char *val) {
    int64_t v = 0;
    switch (bit) {
    case OPT_OUT:
        TR_CHECK(val[0] != '\0', TR_ERR_USAGE, "data: --out: empty file name");
        o->out = val;
        break;
    case OPT_SEED:
        TR_CALL(parse_seed(val, &o->seed));
        break;
    case OPT_TRAIN_FRAC:
        TR_CALL(parse_frac(val, &o->train_frac));
        break;
    case OPT_TASKS:
        TR_CALL(parse_i64(opt, val, 1, 256, &v));
        o->tasks = (int)v;
        break;
    case OPT_FASHION_DIR:
        TR_CHECK(val[0] != '\0', TR_ERR_USAGE, "data: --fashion-dir: empty directory name");
        o->fashion_dir = val;
        break;
    case OPT_N_TRAIN:
        TR_CALL(parse_i64(opt, val, 1, 100000000, &o->n_train));
        break;
    case OPT_N_VAL:
        TR_CALL(parse_i64(opt, val, 1, 100000000, &o->n_val));
        break;
    case OPT_N_TEST:
        TR_CALL(parse_i64(opt, val, 1, 100000000, &o->n_test));
        break;
    case OPT_DIM:
        TR_CALL(parse_i64(opt, val, 1, 100000, &v));
        o->dim = (int)v;
        break;
    case OPT_CLASSIFICATION:
        o->regression = 0;
        break;
    case OPT_CORR:
        TR_CALL(tr_cli_number("data", opt, val, -1.0, 1.0, &o->corr));
        break;
    default:
        TR_ASSERT(0);
    }
    return TR_OK;
}

/* Parse argv[1..] for builder b into o. Sets *help when --help was given. */
static tr_status parse_args(tr_builder_opts *o, int b, int argc, char **argv, int *help) {
    tr_cli_option opts[N_OPTIONS];
    for (int j = 0; j < N_OPTIONS; j++)
        opts[j] = (tr_cli_option){k_options[j].name + 2, 0, k_options[j].takes_value, j};
    tr_cli_args a;
    TR_CALL(tr_cli_parse(&a, "data", opts, N_OPTIONS, argc, argv));
    tr_status st = TR_OK;
    *help = a.help;
    if (a.npos > 0)
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          "data: unexpected argument '%s' (see taskrel data --help)", a.pos[0]);
    for (int i = 0; i < a.nopts && st == TR_OK && !a.help; i++) {
        int k = a.opts[i].id;
        if (!(k_builders[b].allowed & k_options[k].bit))
            st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                              "data: option %s does not apply to builder %s", k_options[k].name,
                              k_builders[b].name);
        else
            st = set_option(o, k_options[k].bit, k_options[k].name, a.opts[i].value);
    }
    tr_cli_args_free(&a);
    return st;
}

tr_status tr_cmd_data(int argc, char **argv) {
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        TR_CHECK(argc >= 1, TR_ERR_USAGE,
                 "data: missing BUILDER (fashion-domains, multifashion, synthetic-tn or "
                 "synthetic-mmoe; see taskrel data --help)");
        fputs(k_help, stdout);
        return TR_OK;
    }
    if (strcmp(argv[0], "import") == 0)
        return tr_cmd_import(argc, argv);
    int b = find_builder(argv[0]);
    TR_CHECK(b >= 0, TR_ERR_USAGE,
             "data: unknown builder '%s' (expected fashion-domains, multifashion, synthetic-tn, "
             "synthetic-mmoe or import)",
             argv[0]);
    tr_builder_opts o;
    tr_builder_opts_default(&o);
    int help = 0;
    TR_CALL(parse_args(&o, b, argc, argv, &help));
    if (help) {
        fputs(k_help, stdout);
        return TR_OK;
    }
    TR_CHECK(o.out != NULL, TR_ERR_USAGE, "data: missing --out FILE");
    TR_CALL(tr_path_check_writable(o.out, "--out"));
    double t0 = tr_time_now();
    TR_CALL(k_builders[b].build(&o));
    tr_log(TR_LOG_INFO, "data: wrote %s (%s, seed %llu) in %.1f s", o.out, k_builders[b].name,
           (unsigned long long)o.seed, tr_time_now() - t0);
    return TR_OK;
}
