/*
 * LD_PRELOAD shim for tests/e2e/no_mpi.sh: MPI_Init and MPI_Init_thread
 * report that they were called and end the process with code 97, so a command
 * that must not start MPI is caught doing it whatever the MPI library.
 */
#include <stdio.h>
#include <unistd.h>

int MPI_Init(int *argc, char ***argv);
int MPI_Init_thread(int *argc, char ***argv, int required, int *provided);

int MPI_Init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fputs("mpi_init_trap: MPI_Init called\n", stderr);
    _exit(97);
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
    (void)required;
    (void)provided;
    return MPI_Init(argc, argv);
}
