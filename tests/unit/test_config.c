/*
 * Run configuration: defaults, INI files, --set overrides, every error kind
 * (status and a message naming the key), the write/load roundtrip, the
 * generated docs/config.md and the example configs in launch/configs/.
 * Needs no MPI and no data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskrel/config.h"

/* Write text to a fresh temporary .ini file; returns its path (static buffer per slot). */
static const char *tmp_ini(const char *text) {
    static char paths[4][256];
    static int slot = 0;
    char *p = paths[slot++ % 4];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(p, 256, "%s/taskrel-test-config-XXXXXX.ini", dir);
    int fd = mkstemps(p, 4);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return p;
}

static void expect_message(const char *needle) {
    const char *msg = tr_error_message();
    if (!strstr(msg, needle))
        fail_msg("error message '%s' does not contain '%s'", msg, needle);
}

static void expect_set_error(const char *assignment, const char *needle) {
    tr_config c;
    tr_config_default(&c);
    tr_error_clear();
    assert_int_equal(tr_config_set(&c, assignment), TR_ERR_CONFIG);
    expect_message(needle);
    tr_error_clear();
}

static void expect_file_error(const char *text, int line, const char *needle) {
    tr_config c, before;
    tr_config_default(&c);
    before = c;
    const char *path = tmp_ini(text);
    tr_error_clear();
    assert_int_equal(tr_config_load_file(&c, path), TR_ERR_CONFIG);
    char where[300];
    snprintf(where, sizeof(where), "%s:%d: ", path, line);
    expect_message(where);
    expect_message(needle);
    assert_memory_equal(&c, &before, sizeof(c)); /* a failed load changes nothing */
    tr_error_clear();
    unlink(path);
}

/* The defaults given in the comments of include/taskrel/config.h. */
static void test_defaults(void **state) {
    (void)state;
    tr_config c;
    tr_config_default(&c);
    assert_string_equal(c.data_path, "");
    assert_int_equal(c.model_kind, TR_MODEL_HPS);
    assert_int_equal(c.trunk, TR_TRUNK_LENET);
    assert_int_equal(c.mlp_layers, 2);
    assert_int_equal(c.mlp_hidden[0], 256);
    assert_int_equal(c.mlp_hidden[1], 256);
    assert_int_equal(c.lenet_fc, 512);
    assert_int_equal(c.head_hidden, 256);
    assert_int_equal(c.head_init, TR_HEAD_INIT_SHARED);
    assert_true(c.dropout == 0.0f);
    assert_int_equal(c.batchnorm, 0);
    assert_int_equal(c.epochs, 10);
    assert_int_equal(c.max_steps, 0);
    assert_int_equal(c.batch_size, 128);
    assert_int_equal(c.seed, 1);
    assert_int_equal(c.eval_every, 0);
    assert_int_equal(c.log_every, 50);
    assert_int_equal(c.opt.kind, TR_OPT_SGD);
    assert_true(c.opt.momentum == 0.9f);
    assert_int_equal(c.opt.nesterov, 0);
    assert_true(c.opt.weight_decay == 5e-4f);
    assert_true(c.opt.beta1 == 0.9f);
    assert_true(c.opt.beta2 == 0.999f);
    assert_true(c.opt.eps == 1e-8f);
    assert_true(c.opt.lr_mult[TR_GROUP_TRUNK] == 1.0f);
    assert_true(c.opt.lr_mult[TR_GROUP_HEAD] == 1.0f);
    assert_true(c.sched.base_lr == 0.01f);
    assert_int_equal(c.sched.kind, TR_SCHED_CONST);
    assert_int_equal(c.sched.warmup_steps, 0);
    assert_int_equal(c.sched.step_size, 1000);
    assert_true(c.sched.gamma == 0.1f);
    assert_true(c.sched.power == 0.75f);
    assert_true(c.sched.min_lr == 0.0f);
    assert_int_equal(c.sched.total_steps, 0);
    assert_int_equal(c.n_task_weights, 0);
    assert_int_equal(c.data_tasks.first, 0);
    assert_int_equal(c.data_tasks.n_names, 0);
    assert_int_equal(c.mrn_layers, TR_MRN_LAYER_FC7 | TR_MRN_LAYER_FC8);
    assert_int_equal(c.mrn_modes, TR_MRN_MODES_FEATURE | TR_MRN_MODES_CLASS | TR_MRN_MODES_TASK);
    assert_int_equal(c.mran_modules, TR_MRAN_MODULE_TT | TR_MRAN_MODULE_FF | TR_MRAN_MODULE_TF);
    assert_string_equal(c.run_dir, "");
    assert_int_equal(c.progress, TR_PROGRESS_AUTO);
    assert_int_equal(c.task_shards, 0);
    assert_string_equal(tr_model_kind_str(TR_MODEL_MRAN), "mran");
    assert_string_equal(tr_model_kind_str((tr_model_kind)99), "unknown");
}

static void test_load_file(void **state) {
    (void)state;
    const char *path = tmp_ini("; a comment\n"
                               "# another\n"
                               "[data]\n"
                               "path = data/x.h5\n"
                               "\n"
                               "[model]\n"
                               "kind=mrn\n"
                               "  trunk = mlp ; inline comment\n"
                               "mlp_hidden = 64, 32 ,16\n"
                               "batchnorm = yes\r\n"
                               "dropout = 0.25\n"
                               "[train]\n"
                               "lr = 3e-2\n"
                               "seed = 18446744073709551615\n"
                               "max_steps = 123456789012\n"
                               "nesterov = ON\n"
                               "task_weights = 1, 0.5,2\n"
                               "[run]\n"
                               "progress = off\n"
                               "[dist]\n"
                               "task_shards = 3\n");
    tr_config c;
    tr_config_default(&c);
    tr_error_clear();
    assert_int_equal(tr_config_load_file(&c, path), TR_OK);
    assert_string_equal(c.data_path, "data/x.h5");
    assert_int_equal(c.model_kind, TR_MODEL_MRN);
    assert_int_equal(c.trunk, TR_TRUNK_MLP);
    assert_int_equal(c.mlp_layers, 3);
    assert_int_equal(c.mlp_hidden[0], 64);
    assert_int_equal(c.mlp_hidden[1], 32);
    assert_int_equal(c.mlp_hidden[2], 16);
    assert_int_equal(c.mlp_hidden[3], 0);
    assert_int_equal(c.batchnorm, 1);
    assert_true(c.dropout == 0.25f);
    assert_true(c.sched.base_lr == 0.03f);
    assert_true(c.seed == UINT64_MAX);
    assert_true(c.max_steps == 123456789012LL);
    assert_int_equal(c.opt.nesterov, 1);
    assert_int_equal(c.n_task_weights, 3);
    assert_true(c.task_weights[0] == 1.0f && c.task_weights[1] == 0.5f &&
                c.task_weights[2] == 2.0f);
    assert_int_equal(c.progress, TR_PROGRESS_OFF);
    assert_int_equal(c.task_shards, 3);
    assert_int_equal(c.epochs, 10); /* untouched keys keep their defaults */
    assert_int_equal(tr_config_validate(&c), TR_OK);

    float w[3];
    assert_int_equal(tr_config_task_weights(&c, 3, w), TR_OK);
    assert_true(w[0] == 1.0f && w[1] == 0.5f && w[2] == 2.0f);
    assert_int_equal(tr_config_task_weights(&c, 4, w), TR_ERR_CONFIG);
    expect_message("train.task_weights has 3 entries but the data has 4 tasks");
    tr_error_clear();
    tr_config_default(&c);
    assert_int_equal(tr_config_task_weights(&c, 2, w), TR_OK);
    assert_true(w[0] == 1.0f && w[1] == 1.0f);
    unlink(path);
}

static void test_overrides_beat_file(void **state) {
    (void)state;
    const char *path = tmp_ini("[train]\nepochs = 3\nlr = 0.5\n[data]\npath = a.h5\n");
    tr_config c;
    tr_config_default(&c);
    tr_error_clear();
    assert_int_equal(tr_config_load_file(&c, path), TR_OK);
    assert_int_equal(tr_config_set(&c, "train.epochs=7"), TR_OK);
    assert_int_equal(tr_config_set(&c, " data.path = b c.h5 "), TR_OK);
    assert_int_equal(tr_config_set(&c, "run.dir="), TR_OK);
    assert_int_equal(tr_config_set(&c, "train.task_weights=1,x=2"), TR_ERR_CONFIG);
    tr_error_clear();
    assert_int_equal(c.epochs, 7);
    assert_true(c.sched.base_lr == 0.5f);
    assert_string_equal(c.data_path, "b c.h5");
    assert_string_equal(c.run_dir, "");
    unlink(path);
}

static void test_set_errors(void **state) {
    (void)state;
    expect_set_error("trian.epochs=3", "unknown section [trian] (did you mean [train]?)");
    expect_set_error("train.epoch=3", "unknown key train.epoch (did you mean train.epochs?)");
    expect_set_error("model.lr=0.1", "unknown key model.lr (did you mean train.lr?)");
    expect_set_error("train.zzzzzzzz=1", "unknown key train.zzzzzzzz");
    expect_set_error("train.epochs=ten", "train.epochs: 'ten' is not an integer");
    expect_set_error("train.epochs=1.5", "train.epochs: '1.5' is not an integer");
    expect_set_error("train.epochs=-1", "train.epochs: -1 is out of range [0, 1000000]");
    expect_set_error("train.batch_size=0", "train.batch_size: 0 is out of range [1, 1048576]");
    expect_set_error("train.max_steps=99999999999999999999", "train.max_steps: ");
    expect_set_error("train.eval_every=3000000000", "train.eval_every: 3000000000 is out of range");
    expect_set_error("train.seed=-1", "train.seed: '-1' is not an integer");
    expect_set_error("train.lr=0", "train.lr: 0 is out of range (0, 10]");
    expect_set_error("train.lr=fast", "train.lr: 'fast' is not a number");
    expect_set_error("train.lr=nan", "train.lr: 'nan' is not a number");
    expect_set_error("train.momentum=1", "train.momentum: 1 is out of range [0, 1)");
    expect_set_error("model.dropout=1", "model.dropout: 1 is out of range [0, 1)");
    expect_set_error("model.kind=foo",
                     "model.kind: 'foo' is not one of stl|hps|mrn|mran|mmoe|cross_stitch");
    expect_set_error("model.batchnorm=maybe", "model.batchnorm: 'maybe' is not a boolean");
    expect_set_error("model.mlp_hidden=", "model.mlp_hidden: needs at least one entry");
    expect_set_error("model.mlp_hidden=64,,32", "model.mlp_hidden: '64,,32' is not a comma");
    expect_set_error("model.mlp_hidden=64,0", "model.mlp_hidden: entry 0 is out of range");
    expect_set_error("model.mlp_hidden=1,2,3,4,5,6,7,8,9",
                     "model.mlp_hidden: '1,2,3,4,5,6,7,8,9' has more than 8");
    expect_set_error("train.task_weights=1,-1",
                     "train.task_weights: entry -1 is out of range [0, inf)");
    expect_set_error("train.task_weights=1,", "train.task_weights: '1,' ends with a comma");
    expect_set_error("train.epochs", "malformed assignment 'train.epochs'");
    expect_set_error("epochs=3", "malformed assignment 'epochs=3'");
    expect_set_error(".epochs=3", "malformed assignment '.epochs=3'");
    expect_set_error("train.=3", "malformed assignment 'train.=3'");

    char long_path[TR_PATH_LEN + 32];
    snprintf(long_path, sizeof(long_path), "data.path=%0*d", TR_PATH_LEN, 0);
    expect_set_error(long_path, "data.path: value is longer than 1023 characters");

    /* a failed --set leaves the config as it was */
    tr_config c, before;
    tr_config_default(&c);
    before = c;
    assert_int_equal(tr_config_set(&c, "model.mlp_hidden=8,0"), TR_ERR_CONFIG);
    tr_error_clear();
    assert_memory_equal(&c, &before, sizeof(c));
}

static void test_file_errors(void **state) {
    (void)state;
    expect_file_error("[train]\nepochs = 3\n\n[trian]\nlr = 1\n", 5,
                      "unknown section [trian] (did you mean [train]?)");
    expect_file_error("[train]\n; c\nepoch = 3\n", 3,
                      "unknown key train.epoch (did you mean train.epochs?)");
    expect_file_error("epochs = 3\n", 1,
                      "key 'epochs' is outside any [section] (did you mean train.epochs?)");
    expect_file_error("[train]\nepochs = ten\nlr = 0\n", 2,
                      "train.epochs: 'ten' is not an integer");
    expect_file_error("[train]\nlr = 0\n", 2, "train.lr: 0 is out of range (0, 10]");
    expect_file_error("[model]\n\nkind = foo\n", 3,
                      "model.kind: 'foo' is not one of stl|hps|mrn|mran|mmoe|cross_stitch");
    expect_file_error("[train]\nlr = 0.1\nepochs = 2\nlr = 0.2\n", 4,
                      "train.lr is set twice (first on line 2)");
    expect_file_error("[train]\nlr = 0.1 # fast\n", 2,
                      "train.lr: '0.1 # fast' is not a number (a comment after a value starts "
                      "with ' ;')");
    expect_file_error("[train]\nepochs\n", 2, "syntax error");
    expect_file_error("[train\nepochs = 1\n", 1, "syntax error");
    /* a syntax error before a bad value is reported first */
    expect_file_error("[train]\noops\nepochs = x\n", 2, "syntax error");
    /* lines longer than inih's buffer are errors, long comments are fine */
    char text[1200];
    snprintf(text, sizeof(text), "; %0*d\n[data]\npath = %0*d\n", 400, 0, 300, 0);
    expect_file_error(text, 3, "line is longer than");
    snprintf(text, sizeof(text), "; %0*d\n[data]\npath = x\n", 400, 0);
    tr_config c;
    tr_config_default(&c);
    const char *path = tmp_ini(text);
    assert_int_equal(tr_config_load_file(&c, path), TR_OK);
    assert_string_equal(c.data_path, "x");
    unlink(path);
}

static void test_missing_file(void **state) {
    (void)state;
    tr_config c;
    tr_config_default(&c);
    tr_error_clear();
    assert_int_equal(tr_config_load_file(&c, "/nonexistent/taskrel/run.ini"), TR_ERR_CONFIG);
    expect_message("/nonexistent/taskrel/run.ini");
    tr_error_clear();
}

static void test_validate(void **state) {
    (void)state;
    tr_config c;
    tr_config_default(&c);
    tr_error_clear();
    assert_int_equal(tr_config_validate(&c), TR_ERR_CONFIG);
    expect_message("data.path is required: give it in the config or with --set data.path=FILE");
    tr_error_clear();
    assert_int_equal(tr_config_set(&c, "data.path=d.h5"), TR_OK);
    assert_int_equal(tr_config_validate(&c), TR_OK);

    static const struct {
        const char *set[2], *needle;
    } cases[] = {
        {{"train.nesterov=true", "train.momentum=0"}, "train.nesterov"},
        {{"train.schedule=cosine", "train.min_lr=0.5"}, "train.min_lr"},
        {{"train.max_steps=10", "train.warmup_steps=11"}, "train.warmup_steps"},
        {{"train.task_weights=0,0", "train.epochs=1"}, "train.task_weights"},
        {{"model.trunk=none", "model.kind=hps"}, "model.trunk = none needs model.kind = mmoe"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_config v = c;
        assert_int_equal(tr_config_set(&v, cases[i].set[0]), TR_OK);
        assert_int_equal(tr_config_set(&v, cases[i].set[1]), TR_OK);
        tr_error_clear();
        assert_int_equal(tr_config_validate(&v), TR_ERR_CONFIG);
        expect_message(cases[i].needle);
        tr_error_clear();
    }
}

/* List-like values are parsed once into typed fields when they are set, and
 * every bad one is refused there or at validation (before any data is read). */
static void test_typed_lists(void **state) {
    (void)state;
    tr_config c;
    tr_config_default(&c);
    assert_int_equal(tr_config_set(&c, "mrn.layers=fc8, fc7,fc8"), TR_OK);
    assert_int_equal(c.mrn_layers, TR_MRN_LAYER_FC7 | TR_MRN_LAYER_FC8);
    assert_int_equal(tr_config_set(&c, "mrn.modes=task,feature"), TR_OK);
    assert_int_equal(c.mrn_modes, TR_MRN_MODES_TASK | TR_MRN_MODES_FEATURE);
    assert_int_equal(tr_config_set(&c, "mran.modules=tf"), TR_OK);
    assert_int_equal(c.mran_modules, TR_MRAN_MODULE_TF);
    assert_int_equal(tr_config_set(&c, "mran.modules="), TR_OK);
    assert_int_equal(c.mran_modules, 0);
    assert_int_equal(tr_config_set(&c, "data.tasks=3"), TR_OK);
    assert_int_equal(c.data_tasks.first, 3);
    assert_int_equal(c.data_tasks.n_names, 0);
    assert_int_equal(tr_config_set(&c, "data.tasks=blur, orig"), TR_OK);
    assert_int_equal(c.data_tasks.first, 0);
    assert_int_equal(c.data_tasks.n_names, 2);
    assert_string_equal(c.data_tasks.names[0], "blur");
    assert_string_equal(c.data_tasks.names[1], "orig");
    assert_int_equal(tr_config_set(&c, "data.tasks="), TR_OK);
    assert_int_equal(c.data_tasks.n_names, 0);

    expect_set_error("mrn.layers=fc9", "mrn.layers: 'fc9' is not one of fc7, fc8");
    expect_set_error("mrn.modes=feature,time",
                     "mrn.modes: 'time' is not one of feature, class, task");
    expect_set_error("mran.modules=tt,xx", "mran.modules: 'xx' is not one of tt, ff, tf");
    expect_set_error("data.tasks=0", "data.tasks: 0 is out of range [1, 1024]");
    expect_set_error("data.tasks=a,b,a", "data.tasks: task 'a' is listed twice");
    expect_set_error("data.tasks=,", "data.tasks: ',' selects no task");

    /* what only the combination of keys makes wrong: refused by validation */
    static const struct {
        const char *set[3], *needle;
    } cases[] = {
        {{"model.kind=mrn", "mrn.modes=,", "data.path=d.h5"}, "mrn.modes must name at least one"},
        {{"model.kind=mrn", "mrn.layers= ", "data.path=d.h5"}, "mrn.layers must name at least one"},
        {{"model.kind=mrn", "model.head_hidden=0", "data.path=d.h5"}, "mrn.layers names fc7"},
        {{"model.kind=mran", "mran.attention=multihead", "mran.heads=3"},
         "mran.heads = 3 does not divide mran.embed_dim = 8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_config v;
        tr_config_default(&v);
        for (int k = 0; k < 3; k++)
            assert_int_equal(tr_config_set(&v, cases[i].set[k]), TR_OK);
        tr_error_clear();
        assert_int_equal(tr_config_validate(&v), TR_ERR_CONFIG);
        expect_message(cases[i].needle);
        tr_error_clear();
    }
    /* texts that mean the same value compare equal (resume checks stored configs) */
    assert_true(tr_config_same_value("mrn", "layers", "fc8, fc7", "fc7,fc8"));
    assert_true(tr_config_same_value("train", "task_weights", "1, 0.5,2", "1,0.50,2"));
    assert_true(tr_config_same_value("data", "tasks", "b a", "b,a"));
    assert_false(tr_config_same_value("data", "tasks", "b,a", "a,b"));
    assert_false(tr_config_same_value("mrn", "modes", "task", "task,class"));
    assert_false(tr_config_same_value("mrn", "modes", "bogus", "task"));
    assert_true(tr_config_same_value("no", "such", "x", "x"));

    /* the same sets for another model kind are not its business */
    tr_config_default(&c);
    assert_int_equal(tr_config_set(&c, "data.path=d.h5"), TR_OK);
    assert_int_equal(tr_config_set(&c, "mrn.layers="), TR_OK);
    assert_int_equal(tr_config_validate(&c), TR_OK);
}

/* train.gamma defaults to 0.1 (step) and 1e-3 (inv); an explicit value wins. */
static void test_gamma_follows_schedule(void **state) {
    (void)state;
    tr_config c;
    tr_config_default(&c);
    assert_int_equal(tr_config_set(&c, "train.schedule=inv"), TR_OK);
    assert_true(c.sched.gamma == 1e-3f);
    assert_int_equal(tr_config_set(&c, "train.schedule=step"), TR_OK);
    assert_true(c.sched.gamma == 0.1f);
    assert_int_equal(tr_config_set(&c, "train.gamma=0.5"), TR_OK);
    assert_int_equal(tr_config_set(&c, "train.schedule=inv"), TR_OK);
    assert_true(c.sched.gamma == 0.5f);

    const char *a = tmp_ini("[train]\nschedule = inv\n");
    const char *b = tmp_ini("[train]\ngamma = 0.1\nschedule = inv\n");
    const char *d = tmp_ini("[train]\nschedule = inv\ngamma = 0.2\n");
    tr_config_default(&c);
    assert_int_equal(tr_config_load_file(&c, a), TR_OK);
    assert_true(c.sched.gamma == 1e-3f);
    tr_config_default(&c);
    assert_int_equal(tr_config_load_file(&c, b), TR_OK);
    assert_true(c.sched.gamma == 0.1f);
    tr_config_default(&c);
    assert_int_equal(tr_config_load_file(&c, d), TR_OK);
    assert_true(c.sched.gamma == 0.2f);
    unlink(a);
    unlink(b);
    unlink(d);
}

static void write_and_load(const tr_config *in, tr_config *out) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(tr_config_write(in, f), TR_OK);
    assert_int_equal(fclose(f), 0);
    const char *path = tmp_ini(text);
    tr_config_default(out);
    tr_error_clear();
    tr_status s = tr_config_load_file(out, path);
    if (s != TR_OK)
        fail_msg("reloading the written config failed: %s\n%s", tr_error_message(), text);
    free(text);
    unlink(path);
}

static void test_roundtrip(void **state) {
    (void)state;
    tr_config a, b;
    tr_config_default(&a);
    write_and_load(&a, &b);
    assert_memory_equal(&a, &b, sizeof(a));

    static const char *const sets[] = {
        "data.path=/scratch/data/fashion domains.h5",
        "model.kind=mmoe",
        "model.trunk=mlp",
        "model.mlp_hidden=300,7,1",
        "model.lenet_fc=100",
        "model.head_hidden=0",
        "model.head_init=independent",
        "model.dropout=0.3",
        "model.batchnorm=on",
        "train.epochs=0",
        "train.max_steps=9000000000",
        "train.batch_size=33",
        "train.seed=12345678901234567890",
        "train.eval_every=17",
        "train.log_every=1",
        "train.optimizer=adamw",
        "train.momentum=0.95",
        "train.nesterov=true",
        "train.weight_decay=1e-5",
        "train.beta1=0.85",
        "train.beta2=0.9999",
        "train.eps=3e-7",
        "train.lr_mult_trunk=0",
        "train.lr_mult_head=2.5",
        "train.lr=0.0301",
        "train.schedule=inv",
        "train.warmup_steps=5",
        "train.step_size=77",
        "train.gamma=0.0123",
        "train.power=0.6",
        "train.min_lr=1e-6",
        "train.task_weights=1,2.5,0",
        "data.tasks=b, a",
        "mrn.layers=fc8",
        "mrn.modes=task feature",
        "mran.modules=",
        "run.dir=runs/x;y",
        "run.progress=on",
        "dist.task_shards=4",
    };
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        assert_int_equal(tr_config_set(&a, sets[i]), TR_OK);
    write_and_load(&a, &b);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_string_equal(b.data_path, "/scratch/data/fashion domains.h5");
    assert_true(b.sched.gamma == 0.0123f);

    /* invalid values set in code, and values inih would alter, are refused, not written */
    tr_config bad = a;
    bad.sched.base_lr = 0.0f;
    FILE *nul = fopen("/dev/null", "w");
    assert_non_null(nul);
    tr_error_clear();
    assert_int_equal(tr_config_write(&bad, nul), TR_ERR_CONFIG);
    expect_message("train.lr holds an invalid value: 0 is out of range (0, 10]");
    tr_error_clear();
    bad = a;
    bad.model_kind = (tr_model_kind)42;
    assert_int_equal(tr_config_write(&bad, nul), TR_ERR_CONFIG);
    expect_message("model.kind");
    tr_error_clear();
    fclose(nul);
    /* values inih would alter are refused rather than written wrong */
    assert_int_equal(tr_config_set(&a, "run.dir=runs/a ;b"), TR_OK);
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    tr_error_clear();
    assert_int_equal(tr_config_write(&a, f), TR_ERR_CONFIG);
    expect_message("run.dir");
    tr_error_clear();
    fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

static void test_markdown_in_sync(void **state) {
    (void)state;
    const char *src = getenv("TASKREL_SOURCE_DIR");
    if (!src)
        skip();
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/config.md", src);
    char *have = read_text(path);
    if (!have)
        fail_msg("%s is missing: generate it with `taskrel config --markdown > docs/config.md`",
                 path);
    char *want = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&want, &len);
    tr_config_write_markdown(m);
    fclose(m);
    if (strcmp(have, want) != 0) {
        int line = 1;
        for (size_t i = 0; have[i] && have[i] == want[i]; i++)
            line += have[i] == '\n';
        fail_msg("%s is out of date (first difference on line %d): regenerate it with "
                 "`taskrel config --markdown > docs/config.md`",
                 path, line);
    }
    free(have);
    free(want);
}

static void test_launch_configs(void **state) {
    (void)state;
    const char *src = getenv("TASKREL_SOURCE_DIR");
    if (!src)
        skip();
    char pattern[1024];
    snprintf(pattern, sizeof(pattern), "%s/launch/configs/*.ini", src);
    glob_t g;
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 5);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        tr_config c;
        tr_config_default(&c);
        tr_error_clear();
        if (tr_config_load_file(&c, g.gl_pathv[i]) != TR_OK || tr_config_validate(&c) != TR_OK)
            fail_msg("%s: %s", g.gl_pathv[i], tr_error_message());
    }
    globfree(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_overrides_beat_file),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_typed_lists),
        cmocka_unit_test(test_gamma_follows_schedule),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_markdown_in_sync),
        cmocka_unit_test(test_launch_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
