/*
 * Output paths the user names (a run directory, `taskrel data --out`, a plot's
 * -o): create them, or say why not. A path that cannot be created or written
 * is the user's to fix, so it is a usage error (exit 2) whose message names
 * the path and gives the system's reason. Not here: opening files for
 * reading (each reader reports its own input).
 */
#include "taskrel/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096

/* mkdir one component; an existing directory is fine, anything else there is not. */
static int make_one(const char *dir) {
    if (mkdir(dir, 0777) == 0)
        return 0;
    int err = errno;
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? 0 : ENOTDIR;
    return err;
}

/* Can this process create files in dir? */
static int probe_write(const char *dir) {
    /* access(2), not a probe file: checking must not touch the directory (a
     * refused run leaves a run directory exactly as it was); it reports a
     * read-only file system (EROFS) also to root. */
    return access(dir, W_OK | X_OK) == 0 ? 0 : errno;
}

/* mkdir -p dir; 0 or the errno of the first component that failed (its path in failed). */
static int make_dirs(const char *dir, char *failed, size_t n) {
    char tmp[PATH_CAP];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int err = make_one(tmp);
        if (err) {
            snprintf(failed, n, "%s", tmp);
            return err;
        }
        *p = c;
        if (c == '\0')
            return 0;
    }
}

tr_status tr_path_make_dir(const char *dir, const char *what) {
    TR_CHECK(dir && dir[0], TR_ERR_USAGE, "%s: empty path", what);
    TR_CHECK(strlen(dir) < PATH_CAP, TR_ERR_USAGE, "%s %.64s...: path too long", what, dir);
    char failed[PATH_CAP];
    int err = make_dirs(dir, failed, sizeof(failed));
    if (err && strcmp(failed, dir) != 0)
        TR_RAISE(TR_ERR_USAGE, "cannot create %s %s: %s: %s", what, dir, failed, strerror(err));
    TR_CHECK(err == 0, TR_ERR_USAGE, "cannot create %s %s: %s", what, dir, strerror(err));
    err = probe_write(dir);
    TR_CHECK(err == 0, TR_ERR_USAGE, "cannot write into %s %s: %s", what, dir, strerror(err));
    return TR_OK;
}

tr_status tr_path_check_writable(const char *file, const char *what) {
    TR_CHECK(file && file[0], TR_ERR_USAGE, "%s: empty path", what);
    TR_CHECK(strlen(file) < PATH_CAP, TR_ERR_USAGE, "%s %.64s...: path too long", what, file);
    char parent[PATH_CAP];
    snprintf(parent, sizeof(parent), "%s", file);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        char failed[PATH_CAP];
        int err = make_dirs(parent, failed, sizeof(failed));
        TR_CHECK(err == 0, TR_ERR_USAGE, "cannot write %s %s: %s: %s", what, file, failed,
                 strerror(err));
    }
    struct stat sb;
    int existed = stat(file, &sb) == 0;
    TR_CHECK(!existed || !S_ISDIR(sb.st_mode), TR_ERR_USAGE, "cannot write %s %s: %s", what, file,
             strerror(EISDIR));
    int fd = open(file, O_WRONLY | O_CREAT, 0666);
    TR_CHECK(fd >= 0, TR_ERR_USAGE, "cannot write %s %s: %s", what, file, strerror(errno));
    close(fd);
    if (!existed)
        unlink(file); /* the writer creates it; a failed run leaves nothing behind */
    return TR_OK;
}
