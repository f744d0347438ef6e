/*
 * tr_io_in_child (see child.h): fork, a pipe for the child's result, a
 * deadline, and the child's fate read from waitpid.
 */
#include "child.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "taskrel/core.h"

#if defined(__SANITIZE_ADDRESS__)
#define TR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_SANITIZED 1
#endif
#endif

/* In the child: address space capped at its current size plus extra. */
static void cap_memory(size_t extra) {
#ifndef TR_SANITIZED
    unsigned long pages = 0;
    FILE *f = extra ? fopen("/proc/self/statm", "r") : NULL;
    if (!f)
        return;
    int ok = fscanf(f, "%lu", &pages) == 1;
    fclose(f);
    long psz = sysconf(_SC_PAGESIZE);
    if (ok && psz > 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_AS, &rl) == 0) {
            rlim_t want = (rlim_t)pages * (rlim_t)psz + (rlim_t)extra;
            if (rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max) {
                rl.rlim_cur = want;
                setrlimit(RLIMIT_AS, &rl);
            }
        }
    }
#else
    (void)extra;
#endif
}

tr_child_outcome tr_io_in_child(tr_child_fn fn, void *arg, void *out, size_t outn, double timeout_s,
                                size_t mem_extra, int *detail) {
    *detail = 0;
    int fds[2];
    fflush(NULL); /* nothing buffered is written twice */
    int piped = pipe(fds) == 0;
    pid_t pid = piped ? fork() : -1;
    if (pid < 0) { /* no child: read here */
        if (piped) {
            close(fds[0]);
            close(fds[1]);
        }
        fn(arg, out, outn);
        return TR_CHILD_DONE;
    }
    if (pid == 0) {
        close(fds[0]);
        cap_memory(mem_extra);
        fn(arg, out, outn);
        size_t done = 0;
        while (done < outn) {
            ssize_t w = write(fds[1], (const char *)out + done, outn - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                _exit(1);
            done += (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    double t_end = tr_time_now() + timeout_s;
    while (got < outn) {
        int left = (int)((t_end - tr_time_now()) * 1000.0);
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = left > 0 ? poll(&p, 1, left) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t n = read(fds[0], (char *)out + got, outn - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int timed_out = got < outn && tr_time_now() >= t_end;
    if (got < outn)
        kill(pid, SIGKILL); /* no-op on a child that already ended */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == outn)
        return TR_CHILD_DONE;
    if (timed_out)
        return TR_CHILD_TIMEOUT;
    if (WIFSIGNALED(status)) {
        *detail = WTERMSIG(status);
        return TR_CHILD_SIGNAL;
    }
    *detail = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return TR_CHILD_EXIT;
}
