/*
 * A program outside taskrel's tree that uses the installed library: it builds
 * a small synthetic-tn dataset, trains the installed HPS example config on it
 * for one epoch and prints the test MSE. tests/e2e/install_tree.sh compiles it
 * twice, through find_package(taskrel) and through pkg-config.
 *
 * usage: consumer CONFIG.ini WORKDIR
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include <taskrel/config.h>
#include <taskrel/data.h>
#include <taskrel/train.h>
#include <taskrel/version.h>

static int fail(const char *what, tr_status st) {
    fprintf(stderr, "consumer: %s: %s: %s\n", what, tr_status_str(st), tr_error_message());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: consumer CONFIG.ini WORKDIR\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    char data[4096], set[4200], run[4096];
    snprintf(data, sizeof(data), "%s/tn.h5", argv[2]);
    snprintf(run, sizeof(run), "%s/run", argv[2]);

    tr_builder_opts b;
    tr_builder_opts_default(&b);
    b.out = data;
    b.tasks = 3;
    b.n_train = 64;
    b.n_val = 16;
    b.n_test = 32;
    tr_status st = tr_build_synthetic_tn(&b);
    if (st != TR_OK)
        return fail("build synthetic-tn", st);

    tr_config cfg;
    tr_config_default(&cfg);
    if ((st = tr_config_load_file(&cfg, argv[1])) != TR_OK)
        return fail("load config", st);
    snprintf(set, sizeof(set), "data.path=%s", data);
    if ((st = tr_config_set(&cfg, set)) != TR_OK ||
        (st = tr_config_set(&cfg, "train.epochs=1")) != TR_OK)
        return fail("set config", st);

    tr_train_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.run_dir = run;
    opts.quiet = 1;
    tr_train_result res;
    if ((st = tr_train_run(&cfg, MPI_COMM_WORLD, &opts, &res)) != TR_OK)
        return fail("train", st);
    printf("taskrel %s: %d tasks, %lld steps, test mean %s %.4f\n", TR_VERSION_STRING, res.T,
           (long long)res.steps, res.classification ? "acc" : "mse", res.test_mean);
    int ok = res.steps > 0 && res.test_mean == res.test_mean; /* steps ran, metric not NaN */
    tr_train_result_free(&res);
    MPI_Finalize();
    return ok ? 0 : 1;
}
