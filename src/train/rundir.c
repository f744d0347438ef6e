/*
 * Run directories: whether one already holds a run, clearing a run's outputs
 * (--overwrite), and the run id (<run dir>/run.id) that ties a run's
 * checkpoints to it across resumes. Rank 0 only; local file system calls.
 * Not here: choosing checkpoints (checkpointing.c), writing outputs (report.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trainer_internal.h"

/* What a run writes into its directory (besides the checkpoint directory). */
static const char *const k_outputs[] = {"config.ini",        "metrics.jsonl", "model.h5",
                                        "relations.h5",      "timeline.json", "run.id",
                                        "metrics.jsonl.tmp", "run.id.tmp"};
#define N_OUTPUTS (sizeof(k_outputs) / sizeof(k_outputs[0]))

/* 1 if name is one of ours in a checkpoint directory. */
static int is_ckpt_file(const char *name) {
    return strncmp(name, "ckpt-", 5) == 0 || strcmp(name, "latest") == 0 ||
           strcmp(name, "latest.tmp") == 0;
}

int tr_rundir_holds_run(const char *run_dir, const char *ckpt_dir, char *what, size_t n) {
    char p[TR_PATH_LEN + 64];
    for (size_t i = 0; i < N_OUTPUTS; i++) {
        snprintf(p, sizeof(p), "%s/%s", run_dir, k_outputs[i]);
        struct stat sb;
        if (lstat(p, &sb) == 0) {
            snprintf(what, n, "%s", k_outputs[i]);
            return 1;
        }
    }
    DIR *d = opendir(ckpt_dir);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL)
        if (is_ckpt_file(e->d_name)) {
            snprintf(what, n, "%s/%s", ckpt_dir, e->d_name);
            found = 1;
        }
    closedir(d);
    return found;
}

tr_status tr_rundir_clear(const char *run_dir, const char *ckpt_dir) {
    char p[TR_PATH_LEN + 300];
    int removed = 0;
    for (size_t i = 0; i < N_OUTPUTS; i++) {
        snprintf(p, sizeof(p), "%s/%s", run_dir, k_outputs[i]);
        if (unlink(p) == 0)
            removed++;
        else
            TR_CHECK(errno == ENOENT, TR_ERR_IO, "--overwrite: cannot remove %s: %s", p,
                     strerror(errno));
    }
    DIR *d = opendir(ckpt_dir);
    if (d) {
        struct dirent *e;
        tr_status st = TR_OK;
        while (st == TR_OK && (e = readdir(d)) != NULL) {
            if (!is_ckpt_file(e->d_name))
                continue;
            snprintf(p, sizeof(p), "%s/%s", ckpt_dir, e->d_name);
            if (unlink(p) == 0)
                removed++;
            else if (errno != ENOENT)
                st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                                  "--overwrite: cannot remove %s: %s", p, strerror(errno));
        }
        closedir(d);
        TR_CALL(st);
    }
    tr_log(TR_LOG_INFO, "--overwrite: removed %d file(s) of the previous run in %s", removed,
           run_dir);
    return TR_OK;
}

int tr_rundir_read_id(const char *run_dir, char *id, size_t n) {
    char p[TR_PATH_LEN + 16];
    snprintf(p, sizeof(p), "%s/run.id", run_dir);
    id[0] = '\0';
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char line[128] = "";
    int ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, " \t\r\n")] = '\0';
    if (!ok || !line[0])
        return 0;
    snprintf(id, n, "%s", line);
    return 1;
}

tr_status tr_rundir_write_id(const char *run_dir, const char *id) {
    char p[TR_PATH_LEN + 16], tmp[TR_PATH_LEN + 32];
    snprintf(p, sizeof(p), "%s/run.id", run_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    TR_CHECK(f != NULL, TR_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    int ok = fprintf(f, "%s\n", id) > 0;
    ok = fclose(f) == 0 && ok;
    TR_CHECK(ok && rename(tmp, p) == 0, TR_ERR_IO, "cannot write %s: %s", p, strerror(errno));
    return TR_OK;
}

void tr_run_id_new(char *id, size_t n) {
    unsigned char r[6] = {0};
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x =
            (unsigned long long)ts.tv_nsec ^ ((unsigned long long)getpid() << 20);
        for (int i = 0; i < 6; i++)
            r[i] = (unsigned char)(x >> (8 * i));
    }
    if (fd >= 0)
        close(fd);
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tmv);
    snprintf(id, n, "%s-%02x%02x%02x%02x%02x%02x", stamp, r[0], r[1], r[2], r[3], r[4], r[5]);
}
