/*
 * Collective HDF5 checkpoints (see taskrel/checkpoint.h): save, load, the
 * atomic tmp + rename + latest + keep-K write, and the directory listing.
 * Not here: validation and the read-only summary (checkpoint_check.c), when
 * to checkpoint and what to do with one (src/train/checkpointing.c).
 */
#include "taskrel/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "h5util.h"

/* ---- datasets --------------------------------------------------------------------- */

/* A replicated float64 array: rank 0 writes, every rank reads all of it. */
static tr_status doubles_io(hid_t file, const char *name, double *data, int ndim,
                            const int64_t *dims64, const tr_grid *g, hid_t dxpl, int write,
                            const char *path, tr_h5_io *io) {
    hsize_t dims[3], n = 1;
    for (int d = 0; d < ndim; d++) {
        dims[d] = (hsize_t)dims64[d];
        n *= dims[d];
    }
    hid_t ds = write ? tr_h5_dataset_create(file, name, H5T_NATIVE_DOUBLE, ndim, dims, 0)
                     : H5Dopen2(file, name, H5P_DEFAULT);
    TR_CHECK(ds >= 0, write ? TR_ERR_IO : TR_ERR_DATA, "checkpoint %s: cannot %s %s", path,
             write ? "create" : "open", name);
    hid_t fspace = H5Dget_space(ds);
    int ok = fspace >= 0 && H5Sget_simple_extent_npoints(fspace) == (hssize_t)n;
    hsize_t mdim = n > 0 ? n : 1;
    hid_t mspace = H5Screate_simple(1, &mdim, NULL);
    herr_t rc = ok && mspace >= 0 ? 0 : -1;
    if (rc >= 0 && write && g->rank != 0)
        rc = H5Sselect_none(fspace) < 0 || H5Sselect_none(mspace) < 0 ? -1 : 0;
    if (rc >= 0)
        rc = write ? H5Dwrite(ds, H5T_NATIVE_DOUBLE, mspace, fspace, dxpl, data)
                   : H5Dread(ds, H5T_NATIVE_DOUBLE, mspace, fspace, dxpl, data);
    if (rc >= 0)
        tr_h5_note_io(dxpl, io);
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    H5Dclose(ds);
    TR_CHECK(ok, TR_ERR_DATA, "checkpoint %s: %s does not have the expected size", path, name);
    TR_CHECK(rc >= 0, write ? TR_ERR_IO : TR_ERR_DATA, "checkpoint %s: cannot %s %s", path,
             write ? "write" : "read", name);
    return TR_OK;
}

/* ---- save ------------------------------------------------------------------------- */

static tr_status write_attrs(hid_t file, const tr_ckpt_state *s, const tr_grid *g,
                             const tr_config *cfg) {
    const tr_ckpt_scalars *c = &s->sc;
    int64_t spe = c->steps_per_epoch > 0 ? c->steps_per_epoch : 1;
    TR_CALL(tr_h5_attr_write_str(file, "format", TR_CHECKPOINT_FORMAT));
    TR_CALL(tr_h5_attr_write_int(file, "version", TR_CHECKPOINT_VERSION));
    TR_CALL(tr_h5_attr_write_int(file, "step", c->step));
    TR_CALL(tr_h5_attr_write_int(file, "epoch", c->step / spe));
    TR_CALL(tr_h5_attr_write_int(file, "cursor", c->step % spe));
    TR_CALL(tr_h5_attr_write_int(file, "steps_per_epoch", c->steps_per_epoch));
    TR_CALL(tr_h5_attr_write_int(file, "total_steps", c->total_steps));
    TR_CALL(tr_h5_attr_write_int(file, "seed", (long long)c->seed));
    TR_CALL(tr_h5_attr_write_str(file, "rng",
                                 "philox4x32-10 keyed (seed, purpose, index): shuffle index = "
                                 "epoch*65536+task, dropout index = step"));
    TR_CALL(tr_h5_attr_write_int(file, "opt_kind", s->opt_v ? TR_OPT_ADAMW : TR_OPT_SGD));
    TR_CALL(tr_h5_attr_write_int(file, "opt_t", c->opt_t));
    TR_CALL(tr_h5_attr_write_int(file, "best_step", c->best_step));
    TR_CALL(tr_h5_attr_write_double(file, "best_score", c->best_score));
    TR_CALL(tr_h5_attr_write_double(file, "train_seconds", c->train_seconds));
    TR_CALL(tr_h5_attr_write_int(file, "samples", c->samples));
    TR_CALL(tr_h5_attr_write_int(file, "tasks", g->T));
    TR_CALL(tr_h5_attr_write_str(file, "task_names", s->task_names ? s->task_names : ""));
    TR_CALL(tr_h5_attr_write_int(file, "world_size", g->size));
    TR_CALL(tr_h5_attr_write_int(file, "replicas", g->R));
    TR_CALL(tr_h5_attr_write_int(file, "shards", g->S));
    TR_CALL(tr_provenance_write_h5(file, s->prov));
    if (cfg) {
        TR_CALL(tr_h5_attr_write_str(file, "model_kind", tr_model_kind_str(cfg->model_kind)));
        char *text = NULL;
        TR_CALL(tr_config_text(cfg, &text));
        tr_status st = tr_h5_attr_write_str(file, "config", text);
        free(text);
        TR_CALL(st);
    }
    return TR_OK;
}

/* The arenas of a checkpoint: params and buffers, optimizer moments, and
 * the model selected so far; write or read them all. */
static tr_status arenas_io(hid_t file, const tr_ckpt_state *s, const tr_grid *g, hid_t dxpl,
                           int write, const char *what, tr_h5_io *io) {
    int has_buf = s->buffers && s->buffers->n > 0;
    const struct {
        const char *group;
        const tr_params *layout;
        float *data;
        int on;
    } arenas[] = {
        {"/params", s->params, s->params->data, 1},
        {"/buffers", s->buffers, has_buf ? s->buffers->data : NULL, has_buf},
        {"/optim/m", s->params, s->opt_m, 1},
        {"/optim/v", s->params, s->opt_v, s->opt_v != NULL},
        {"/best/params", s->params, s->best_params, s->sc.best_step >= 0 && s->best_params},
        {"/best/buffers", s->buffers, s->best_buffers,
         s->sc.best_step >= 0 && s->best_params && has_buf && s->best_buffers},
    };
    for (size_t i = 0; i < sizeof(arenas) / sizeof(arenas[0]); i++) {
        if (!arenas[i].on)
            continue;
        if (write)
            TR_CALL(tr_h5_arena_write(file, arenas[i].group, arenas[i].layout, arenas[i].data, g,
                                      dxpl, what, io));
        else
            TR_CALL(tr_h5_arena_read(file, arenas[i].group, arenas[i].layout, arenas[i].data, dxpl,
                                     what, io));
    }
    return TR_OK;
}

/* The replicated float64 state: the training window and the extra arrays. */
static tr_status doubles_all_io(hid_t file, const tr_ckpt_state *s, const tr_grid *g, hid_t dxpl,
                                int write, const char *path, tr_h5_io *io) {
    if (s->window) {
        int64_t dims[2] = {g->T, 4};
        TR_CALL(doubles_io(file, "/train/window", s->window, 2, dims, g, dxpl, write, path, io));
    }
    for (int i = 0; i < s->n_extra; i++) {
        tr_extra_state *e = &s->extra[i];
        TR_CALL(doubles_io(file, e->name, e->data, e->ndim, e->dims, g, dxpl, write, path, io));
    }
    return TR_OK;
}

/* Every dataset of the state but /relations, written or read collectively. */
static tr_status state_io(hid_t file, const tr_ckpt_state *s, const tr_grid *g, int write,
                          const char *path, tr_h5_io *io) {
    char what[TR_PATH_LEN + 32];
    snprintf(what, sizeof(what), "checkpoint %s", path);
    hid_t dxpl = tr_h5_dxpl_collective();
    TR_H5(dxpl);
    tr_status st = arenas_io(file, s, g, dxpl, write, what, io);
    if (st == TR_OK)
        st = doubles_all_io(file, s, g, dxpl, write, path, io);
    H5Pclose(dxpl);
    return st;
}

/* Add one transfer's bookkeeping to the caller's. */
static void add_io(tr_ckpt_io *io, const tr_h5_io *h) {
    if (!io)
        return;
    io->collective += h->collective;
    io->independent += h->independent;
    if (!io->cause[0])
        snprintf(io->cause, sizeof(io->cause), "%s", h->cause);
}

static tr_status save_body(hid_t file, const tr_ckpt_state *s, const tr_grid *g,
                           const tr_config *cfg, const char *path, tr_h5_io *io) {
    TR_CALL(write_attrs(file, s, g, cfg));
    TR_CALL(state_io(file, s, g, 1, path, io));
    if (s->relations && s->relations->n > 0)
        TR_CALL(tr_relations_write_h5(file, s->relations, g->rank == 0));
    return TR_OK;
}

tr_status tr_checkpoint_save(const char *path, const tr_ckpt_state *s, const tr_grid *g,
                             const tr_config *cfg, tr_ckpt_io *io) {
    double t0 = tr_time_now();
    hid_t fapl = tr_h5_fapl(g->world);
    TR_H5(fapl);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    tr_status st = TR_OK;
    if (file < 0)
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot create checkpoint %s",
                          path);
    st = tr_agree(g->world, st);
    tr_h5_io h = {0};
    if (st == TR_OK)
        st = save_body(file, s, g, cfg, path, &h);
    if (file >= 0 && H5Fclose(file) < 0 && st == TR_OK)
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot close %s", path);
    add_io(io, &h);
    if (io) {
        struct stat sb;
        io->bytes = stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
        io->seconds += tr_time_now() - t0;
    }
    return tr_agree(g->world, st);
}

/* ---- load ------------------------------------------------------------------------- */

static tr_status read_scalars(hid_t file, tr_ckpt_scalars *c, const char *path) {
    static const char *const names[] = {"step",  "steps_per_epoch", "total_steps", "seed",
                                        "opt_t", "best_step",       "samples"};
    int64_t *dst[] = {&c->step,  &c->steps_per_epoch, &c->total_steps, (int64_t *)&c->seed,
                      &c->opt_t, &c->best_step,       &c->samples};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        long long v = 0;
        int found = 0;
        TR_CALL(tr_h5_attr_read_int(file, names[i], &v, &found));
        TR_CHECK(found, TR_ERR_DATA, "checkpoint %s has no attribute '%s'", path, names[i]);
        *dst[i] = (int64_t)v;
    }
    int found = 0;
    TR_CALL(tr_h5_attr_read_double(file, "best_score", &c->best_score, &found));
    TR_CHECK(found, TR_ERR_DATA, "checkpoint %s has no attribute 'best_score'", path);
    TR_CALL(tr_h5_attr_read_double(file, "train_seconds", &c->train_seconds, &found));
    return TR_OK;
}

static tr_status load_body(hid_t file, tr_ckpt_state *s, const tr_grid *g, const char *path,
                           tr_h5_io *io) {
    TR_CALL(read_scalars(file, &s->sc, path));
    return state_io(file, s, g, 0, path, io);
}

tr_status tr_checkpoint_load(const char *path, tr_ckpt_state *s, const tr_grid *g, tr_ckpt_io *io) {
    double t0 = tr_time_now();
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t file = tr_h5_open_read(path, g->world);
    tr_status st = TR_OK;
    if (file < 0)
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                          "%s is not a readable checkpoint", path);
    st = tr_agree(g->world, st);
    tr_h5_io h = {0};
    if (st == TR_OK)
        st = load_body(file, s, g, path, &h);
    if (file >= 0)
        H5Fclose(file);
    tr_h5_quiet_end(&q);
    add_io(io, &h);
    if (io)
        io->seconds += tr_time_now() - t0;
    return tr_agree(g->world, st);
}

/* ---- atomic write, keep K, listing -------------------------------------------------- */

static int cmp_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int tr_ckpt_parse_name(const char *name, int64_t *step) {
    long long v = 0;
    int n = 0;
    if (sscanf(name, "ckpt-%lld.h5%n", &v, &n) != 1 || name[n] != '\0' || v < 0 ||
        strncmp(name, "ckpt-", 5) != 0 || name[5] < '0' || name[5] > '9')
        return 0;
    *step = (int64_t)v;
    return 1;
}

int tr_checkpoint_list(const char *dir, int64_t *steps, int cap) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        int64_t st;
        if (tr_ckpt_parse_name(e->d_name, &st))
            steps[n++] = st;
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof(*steps), cmp_desc);
    return n;
}

static void fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Rank 0: rename tmp -> final, latest -> final, drop all but the newest keep. */
static tr_status commit(const char *dir, const char *tmp, const char *final, int64_t step,
                        int keep) {
    fsync_path(tmp, O_RDONLY);
    TR_CHECK(rename(tmp, final) == 0, TR_ERR_IO, "cannot rename %s to %s: %s", tmp, final,
             strerror(errno));
    char link_tmp[TR_PATH_LEN + 32], link[TR_PATH_LEN + 16], target[64];
    snprintf(link_tmp, sizeof(link_tmp), "%s/latest.tmp", dir);
    snprintf(link, sizeof(link), "%s/latest", dir);
    snprintf(target, sizeof(target), "ckpt-%lld.h5", (long long)step);
    unlink(link_tmp);
    TR_CHECK(symlink(target, link_tmp) == 0 && rename(link_tmp, link) == 0, TR_ERR_IO,
             "cannot point %s at %s: %s", link, target, strerror(errno));
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
    if (keep <= 0)
        return TR_OK;
    int64_t steps[4096];
    int n = tr_checkpoint_list(dir, steps, 4096);
    for (int i = keep; i < n; i++) {
        char old[TR_PATH_LEN + 32];
        snprintf(old, sizeof(old), "%s/ckpt-%lld.h5", dir, (long long)steps[i]);
        if (steps[i] != step && unlink(old) != 0)
            tr_log(TR_LOG_WARN, "cannot remove old checkpoint %s: %s", old, strerror(errno));
    }
    return TR_OK;
}

tr_status tr_checkpoint_write(const char *dir, const tr_ckpt_state *s, const tr_grid *g,
                              const tr_config *cfg, int keep, char *out, size_t outn,
                              tr_ckpt_io *io) {
    char tmp[TR_PATH_LEN + 64], final[TR_PATH_LEN + 32];
    snprintf(final, sizeof(final), "%s/ckpt-%lld.h5", dir, (long long)s->sc.step);
    snprintf(tmp, sizeof(tmp), "%s.tmp", final);
    TR_CALL(tr_checkpoint_save(tmp, s, g, cfg, io));
    tr_status st = TR_OK;
    if (g->rank == 0)
        st = commit(dir, tmp, final, s->sc.step, keep);
    TR_CALL(tr_agree(g->world, st));
    if (out)
        snprintf(out, outn, "%s", final);
    return TR_OK;
}
