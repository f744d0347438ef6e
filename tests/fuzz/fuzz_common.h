/*
 * Shared by the fuzz harnesses: the readers under test take a path, so each
 * input is written to one scratch file per process (removed at exit) and the
 * reader opens that. Header-only; each harness is one translation unit.
 */
#ifndef TASKREL_FUZZ_COMMON_H
#define TASKREL_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskrel/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_fuzz_path[256];

static void fuzz_remove_scratch(void) {
    if (g_fuzz_path[0])
        unlink(g_fuzz_path);
}

/* Write the input to this process's scratch file (suffix: ".ini", ".h5", ...)
 * and return its path; aborts if the file cannot be written (a harness bug,
 * not a finding). */
static const char *fuzz_write_input(const uint8_t *data, size_t size, const char *suffix) {
    if (!g_fuzz_path[0]) {
        const char *dir = getenv("TMPDIR");
        if (access("/dev/shm", W_OK) == 0)
            dir = "/dev/shm";
        snprintf(g_fuzz_path, sizeof(g_fuzz_path), "%s/taskrel-fuzz-%ld%s",
                 dir && dir[0] ? dir : "/tmp", (long)getpid(), suffix);
        tr_log_init(0, TR_LOG_ERROR); /* readers' warnings would drown the fuzzer's output */
        atexit(fuzz_remove_scratch);
    }
    FILE *f = fopen(g_fuzz_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(g_fuzz_path);
        abort();
    }
    return g_fuzz_path;
}

#endif
