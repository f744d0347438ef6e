/*
 * The taskrel executable: MPI set-up, subcommand dispatch, and the one place
 * that turns a status into an exit code (0 ok, 1 runtime failure, 2 usage,
 * config or data error, 3 checkpointed for requeue). Every rank returns the
 * same code.
 */
#include <mpi.h>
#include <string.h>

#include "commands.h"
#include "taskrel/data.h"
#include "taskrel/dist.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "taskrel %s - distributed multi-task training (MRN, MRAN, HPS, STL)\n\n"
        "usage: taskrel COMMAND [options]\n\n"
        "  train   -c CONFIG [--set section.key=value ...] [--run-dir DIR] [--resume "
        "auto|none|PATH]\n"
        "  eval    -c CONFIG --checkpoint PATH\n"
        "  data    fashion-domains|multifashion|synthetic-tn|synthetic-mmoe --out FILE [options]\n"
        "  config  --markdown | --defaults | -c CONFIG [--set ...]\n"
        "  inspect RUN_DIR|FILE.h5\n"
        "  plot    relations RUN_DIR|FILE.h5 -o FILE.png [--name NAME]\n"
        "  calibrate [--out FILE]   MPI alpha/beta and GEMM rate (>= 2 ranks)\n\n"
        "Run under mpirun/srun for several ranks. `taskrel COMMAND --help` for details.\n",
        TASKREL_VERSION_STRING);
}

/* Commands that only rank 0 runs (serial tools); the others wait and share
 * the outcome. */
static tr_status run_on_rank0(tr_status (*fn)(int, char **), int argc, char **argv, int rank) {
    tr_status st = TR_OK;
    if (rank == 0)
        st = fn(argc, argv);
    return tr_agree(MPI_COMM_WORLD, st);
}

static tr_status cmd_data_entry(int argc, char **argv) {
    /* argv[0] = "data"; the builder expects argv[0] = builder name */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        char *help[] = {"--help"};
        return tr_cmd_data(1, help);
    }
    return tr_cmd_data(argc - 1, argv + 1);
}

int main(int argc, char **argv) {
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "taskrel: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    tr_log_init(rank, TR_LOG_INFO);

    tr_status st = TR_OK;
    const char *cmd = argc > 1 ? argv[1] : "";
    if (argc < 2 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        if (rank == 0)
            usage(argc < 2 ? stderr : stdout);
        st = argc < 2 ? TR_ERR_USAGE : TR_OK;
        if (argc < 2)
            tr_error_set(st, __FILE__, __LINE__, __func__, "no command given");
    } else if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        if (rank == 0)
            printf("taskrel %s\n", TASKREL_VERSION_STRING);
    } else if (strcmp(cmd, "train") == 0) {
        st = tr_cmd_train(argc - 1, argv + 1);
    } else if (strcmp(cmd, "eval") == 0) {
        st = tr_cmd_eval(argc - 1, argv + 1);
    } else if (strcmp(cmd, "data") == 0) {
        st = run_on_rank0(cmd_data_entry, argc - 1, argv + 1, rank);
    } else if (strcmp(cmd, "calibrate") == 0) {
        st = tr_cmd_calibrate(argc - 1, argv + 1);
    } else if (strcmp(cmd, "config") == 0) {
        st = run_on_rank0(tr_cmd_config, argc - 1, argv + 1, rank);
    } else if (strcmp(cmd, "inspect") == 0) {
        st = run_on_rank0(tr_cmd_inspect, argc - 1, argv + 1, rank);
    } else if (strcmp(cmd, "plot") == 0) {
        st = run_on_rank0(tr_cmd_plot, argc - 1, argv + 1, rank);
    } else {
        if (rank == 0)
            usage(stderr);
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__, "unknown command '%s'", cmd);
    }

    if (st != TR_OK && !(st == TR_ERR_USAGE && strcmp(tr_error_message(), "help shown") == 0)) {
        /* Rank 0 always reports; another rank reports only a message of its own
         * that differs from rank 0's (so P identical config errors print once). */
        char msg0[1024];
        snprintf(msg0, sizeof(msg0), "%s", tr_error_message());
        MPI_Bcast(msg0, (int)sizeof(msg0), MPI_CHAR, 0, MPI_COMM_WORLD);
        int own = strncmp(tr_error_message(), "another rank failed", 19) != 0;
        if (rank == 0 || (own && strcmp(msg0, tr_error_message()) != 0)) {
            /* a requested stop (exit 3) is not an error */
            tr_log(st == TR_STOPPED ? TR_LOG_WARN : TR_LOG_ERROR, "%s", tr_error_message());
            tr_log(TR_LOG_DEBUG, "(%s; at %s)", tr_status_str(st), tr_error_where());
        }
    } else if (st == TR_ERR_USAGE) {
        st = TR_OK; /* --help */
    }
    int code = tr_status_exit_code(st);
    MPI_Finalize();
    return code;
}
