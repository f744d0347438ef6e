/*
 * The taskrel executable: subcommand dispatch, MPI set-up for the commands
 * that need it, and the one place that turns a status into an exit code (0 ok,
 * 1 runtime failure, 2 usage, config or data error, 3 checkpointed for
 * requeue). Every rank returns the same code.
 *
 * Only train, eval and calibrate start MPI. --help, --version, config, data,
 * inspect and plot never call MPI_Init, so they run on a login node without a
 * process manager; under a launcher only its rank 0 runs them.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "taskrel/dataset.h"
#include "taskrel/comm.h"

typedef enum {
    CMD_LOCAL,      /* serial, no MPI: launcher rank 0 runs it, the others return 0 */
    CMD_COLLECTIVE, /* MPI_Init, every rank runs it */
} cmd_mode;

static tr_status cmd_data_entry(int argc, char **argv);

static const struct {
    const char *name;
    tr_status (*run)(int argc, char **argv);
    cmd_mode mode;
} k_commands[] = {
    {"train", tr_cmd_train, CMD_COLLECTIVE}, {"eval", tr_cmd_eval, CMD_COLLECTIVE},
    {"data", cmd_data_entry, CMD_LOCAL},     {"config", tr_cmd_config, CMD_LOCAL},
    {"inspect", tr_cmd_inspect, CMD_LOCAL},  {"plot", tr_cmd_plot, CMD_LOCAL},
    {"export", tr_cmd_export, CMD_LOCAL},    {"calibrate", tr_cmd_calibrate, CMD_COLLECTIVE},
};
#define N_COMMANDS ((int)(sizeof(k_commands) / sizeof(k_commands[0])))

static void usage(FILE *f) {
    fprintf(
        f,
        "taskrel %s - distributed multi-task training (MRN, MRAN, MMoE, HPS, STL)\n\n"
        "usage: taskrel COMMAND [options]\n\n"
        "  train   -c CONFIG [--set section.key=value ...] [--run-dir DIR] [--resume "
        "auto|none|PATH | --overwrite]\n"
        "  eval    RUN_DIR|WEIGHTS.h5 [-c CONFIG] [--set ...] [--json]\n"
        "  data    fashion-domains|multifashion|synthetic-tn|synthetic-mmoe --out FILE [options]\n"
        "  data    import FILE.npz|FILE.npy|FILE.csv ... --out FILE.h5 [options]\n"
        "  config  --markdown | --defaults | -c CONFIG [--set ...]\n"
        "  inspect RUN_DIR|FILE.h5\n"
        "  plot    relations RUN_DIR|FILE.h5 -o FILE.png [--name NAME]\n"
        "  plot    curves RUN_DIR -o FILE.png   training loss and validation metric\n"
        "  export  csv RUN_DIR [-o FILE.csv]\n"
        "  calibrate [--out FILE]   MPI alpha/beta and GEMM rate (>= 2 ranks)\n\n"
        "Options take `--opt value` or `--opt=value`. Run under mpirun/srun for several\n"
        "ranks (train, eval, calibrate); the other commands and --help never start MPI.\n"
        "`taskrel COMMAND --help` for details.\n",
        TASKREL_VERSION_STRING);
}

static tr_status cmd_data_entry(int argc, char **argv) {
    /* argv[0] = "data"; the builder expects argv[0] = builder name */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        char *help[] = {"--help"};
        return tr_cmd_data(1, help);
    }
    return tr_cmd_data(argc - 1, argv + 1);
}

/* This process's rank as the launcher (mpirun, srun, hydra) announces it in
 * the environment, read without MPI; 0 when not launched. */
static int launcher_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
                                       "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

static int find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(k_commands[i].name, name) == 0)
            return i;
    return -1;
}

static tr_status unknown_command(const char *cmd) {
    const char *names[N_COMMANDS + 2];
    for (int i = 0; i < N_COMMANDS; i++)
        names[i] = k_commands[i].name;
    names[N_COMMANDS] = "help";
    names[N_COMMANDS + 1] = "version";
    const char *guess = cmd[0] == '-' ? NULL : tr_cli_suggest(cmd, names, N_COMMANDS + 2);
    if (guess)
        TR_RAISE(TR_ERR_USAGE, "unknown command '%s' (did you mean '%s'?)", cmd, guess);
    TR_RAISE(TR_ERR_USAGE, "unknown command '%s' (try taskrel --help)", cmd);
}

/* -h or --help anywhere before a "--". */
static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

static int is_help_shown(tr_status st) {
    return st == TR_ERR_USAGE && strcmp(tr_error_message(), "help shown") == 0;
}

/* Report st on rank 0 (and a differing message of another rank). Collective
 * when world is not MPI_COMM_NULL. */
static void report(tr_status st, int rank, MPI_Comm world) {
    if (st == TR_OK || is_help_shown(st))
        return;
    char msg0[1024];
    snprintf(msg0, sizeof(msg0), "%s", tr_error_message());
    if (world != MPI_COMM_NULL)
        MPI_Bcast(msg0, (int)sizeof(msg0), MPI_CHAR, 0, world);
    int own = strncmp(tr_error_message(), "another rank failed", 19) != 0;
    /* Rank 0 always reports; another rank reports only a message of its own
     * that differs from rank 0's (so P identical config errors print once). */
    if (rank == 0 || (own && strcmp(msg0, tr_error_message()) != 0)) {
        /* a requested stop (exit 3) is not an error */
        tr_log(st == TR_STOPPED ? TR_LOG_WARN : TR_LOG_ERROR, "%s", tr_error_message());
        tr_log(TR_LOG_DEBUG, "(%s; at %s)", tr_status_str(st), tr_error_where());
    }
}

static int exit_code(tr_status st) {
    return tr_status_exit_code(is_help_shown(st) ? TR_OK : st);
}

int main(int argc, char **argv) {
    int rank = launcher_rank();
    tr_log_init(rank, TR_LOG_INFO);
    const char *cmd = argc > 1 ? argv[1] : "";

    tr_status st = TR_OK;
    int c = -1;
    if (argc < 2) {
        if (rank == 0)
            usage(stderr);
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          "no command given (try taskrel --help)");
    } else if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        if (rank == 0)
            usage(stdout);
    } else if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 ||
               strcmp(cmd, "version") == 0) {
        if (rank == 0)
            printf("taskrel %s\n", TASKREL_VERSION_STRING);
    } else if ((c = find_command(cmd)) < 0) {
        st = unknown_command(cmd);
    } else if (k_commands[c].mode == CMD_LOCAL || wants_help(argc - 1, argv + 1)) {
        /* serial commands and every --help: no MPI, launcher rank 0 only */
        if (rank == 0)
            st = k_commands[c].run(argc - 1, argv + 1);
    } else {
        int provided = 0;
        if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            fprintf(stderr, "taskrel: MPI_Init failed\n");
            return 1;
        }
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        tr_log_init(rank, TR_LOG_INFO);
        st = k_commands[c].run(argc - 1, argv + 1);
        report(st, rank, MPI_COMM_WORLD);
        int code = exit_code(st);
        MPI_Finalize();
        return code;
    }
    report(st, rank, MPI_COMM_NULL);
    return exit_code(st);
}
