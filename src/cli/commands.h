/*
 * Subcommands of the `taskrel` executable (private to src/cli). Each takes the
 * arguments after `taskrel`, so argv[0] is the command name, and returns a
 * status; main() prints the error and maps it to the exit code. Commands
 * never exit themselves.
 */
#ifndef TASKREL_CLI_COMMANDS_H
#define TASKREL_CLI_COMMANDS_H

#include "taskrel/config.h"
#include "taskrel/core.h"

/* taskrel config --markdown | --defaults | [-c FILE] [--set section.key=value ...]
 * Prints the key reference (docs/config.md), a default INI, or the resolved
 * and validated config. Local: no MPI, no data. */
tr_status tr_cmd_config(int argc, char **argv);

/* taskrel train -c CONFIG [--set section.key=value ...] [--run-dir DIR]
 * Collective over MPI_COMM_WORLD. */
tr_status tr_cmd_train(int argc, char **argv);

/* taskrel eval -c CONFIG --checkpoint PATH [--set ...]. Collective. */
tr_status tr_cmd_eval(int argc, char **argv);

/* taskrel inspect RUN_DIR|FILE.h5: attributes, tensors, relation matrices. Serial. */
tr_status tr_cmd_inspect(int argc, char **argv);

/* taskrel plot relations RUN_DIR|FILE.h5 -o FILE.png [--name NAME]. Serial (gnuplot). */
tr_status tr_cmd_plot(int argc, char **argv);

/* taskrel calibrate [--out FILE] [--max-bytes N] [--reps N]: MPI alpha/beta
 * (ping-pong, all-reduce) and GEMM rate for the scaling cost model.
 * Collective over MPI_COMM_WORLD; needs >= 2 ranks. */
/* taskrel export csv RUN [-o FILE]: metrics.jsonl as one CSV row per step,
 * kind (train, val) and task. cmd_export.c */
tr_status tr_cmd_export(int argc, char **argv);

/* A run's metrics.jsonl read back (metrics_read.c). */
typedef struct {
    int64_t step;
    int train; /* 1: a training line (loss = that step's); 0: a validation line */
    double lr;
    double *loss;   /* (T) */
    double *metric; /* (T) validation lines: val acc or mse, by task kind (NaN otherwise) */
    int count;      /* tasks on the line */
} tr_metrics_row;
typedef struct {
    tr_metrics_row *rows;
    int n, T;
    char (*names)[64]; /* (T) from the final line, else task<k> */
    char metric[8];    /* "acc", "mse", or "metric" (mixed kinds: each task's own) */
} tr_metrics;
tr_status tr_metrics_read(const char *run, tr_metrics *m);
void tr_metrics_free(tr_metrics *m);

tr_status tr_cmd_calibrate(int argc, char **argv);
/* Least-squares fit of t = alpha + beta * n on relative errors (m >= 2 sizes). */
tr_status tr_calib_fit(const double *n, const double *t, int m, double *alpha, double *beta);

/* `taskrel data BUILDER --out FILE [options]` (argv[0] = BUILDER). Serial. */
tr_status tr_cmd_data(int argc, char **argv);

/* `taskrel data import FILE... --out OUT.h5 [options]` (argv[0] = "import"). Serial. */
tr_status tr_cmd_import(int argc, char **argv);

#endif
