/*
 * Subcommands of the `taskrel` executable (private to src/cli). Each takes the
 * arguments after `taskrel`, so argv[0] is the command name, and returns a
 * status; main() prints the error and maps it to the exit code. Commands
 * never exit themselves.
 */
#ifndef TASKREL_CLI_COMMANDS_H
#define TASKREL_CLI_COMMANDS_H

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

#endif
