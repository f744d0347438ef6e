/*
 * Stop signals. The handler for SIGUSR1 and SIGTERM only stores the signal
 * number in a volatile sig_atomic_t: no I/O, no MPI, no allocation. The
 * training loop reads the flag once per step and puts it into the fused
 * all-reduce, so every rank acts on it at the same step (trainer.c).
 * Not here: what a stop does (checkpoint, exit code 3).
 */
#include <signal.h>
#include <string.h>

#include "trainer_internal.h"

static volatile sig_atomic_t g_pending;
static struct sigaction g_old_usr1, g_old_term;
static int g_installed;

static void on_signal(int sig) {
    g_pending = sig;
}

void tr_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* blocking MPI and file calls continue */
    g_pending = 0;
    sigaction(SIGUSR1, &sa, &g_old_usr1);
    sigaction(SIGTERM, &sa, &g_old_term);
    g_installed = 1;
}

void tr_signals_restore(void) {
    if (!g_installed)
        return;
    sigaction(SIGUSR1, &g_old_usr1, NULL);
    sigaction(SIGTERM, &g_old_term, NULL);
    g_installed = 0;
}

int tr_signals_pending(void) {
    return (int)g_pending;
}
