/*
 * Checkpoint validation and the read-only summary (see taskrel/checkpoint.h).
 *
 * A file is checked serially on one rank: it must open as HDF5 (a truncated
 * file does not: its end-of-file is short of what the superblock records),
 * carry the checkpoint format attributes, and every dataset must read back in
 * full (fletcher32 verifies the data; the 1.8+ object format verifies the
 * metadata, attributes included). Then, against the model, every tensor must
 * be present with its global shape. The check runs in a forked child, so that
 * a damaged file that upsets the HDF5 library (a crash, a loop) costs the
 * caller a verdict, not the job. Not here: writing and collective reading.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "child.h"
#include "h5util.h"

typedef struct {
    tr_ckpt_info *info;
    const char *path;
    hsize_t max_bytes; /* no dataset of a sound file holds more than the file */
    char failed[160];  /* first dataset that did not read back */
} visit_ctx;

static herr_t visit_dataset(hid_t obj, const char *name, const H5O_info_t *oi, void *op) {
    visit_ctx *c = op;
    if (oi->type != H5O_TYPE_DATASET)
        return 0;
    tr_ckpt_info *info = c->info;
    if (info->n_datasets % 64 == 0) {
        tr_ckpt_dataset *d =
            realloc(info->datasets, (size_t)(info->n_datasets + 64) * sizeof(*info->datasets));
        if (!d)
            return -1;
        info->datasets = d;
    }
    tr_ckpt_dataset *d = &info->datasets[info->n_datasets++];
    memset(d, 0, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "/%s", name);
    hid_t ds = H5Dopen2(obj, name, H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hid_t ft = ds >= 0 ? H5Dget_type(ds) : -1;
    hid_t mt = ft >= 0 ? H5Tget_native_type(ft, H5T_DIR_ASCEND) : -1;
    int ok = sp >= 0 && mt >= 0;
    if (ok) {
        hsize_t dims[TR_MAX_DIMS] = {0};
        int nd = H5Sget_simple_extent_ndims(sp);
        ok = nd >= 0 && nd <= TR_MAX_DIMS;
        if (ok) {
            H5Sget_simple_extent_dims(sp, dims, NULL);
            d->ndim = nd;
            for (int i = 0; i < nd; i++)
                d->dims[i] = (int64_t)dims[i];
        }
        H5T_class_t cls = H5Tget_class(ft);
        size_t sz = H5Tget_size(ft);
        snprintf(d->type, sizeof(d->type), "%s",
                 cls == H5T_FLOAT && sz == 4   ? "float32"
                 : cls == H5T_FLOAT && sz == 8 ? "float64"
                                               : "other");
        /* read it all: checksums are verified on read; a size the file
         * cannot hold is damage, found before anything is allocated */
        hssize_t np = H5Sget_simple_extent_npoints(sp);
        size_t msz = H5Tget_size(mt);
        ok = ok && np >= 0 && msz > 0 && msz <= 16 && (hsize_t)np <= c->max_bytes / msz;
        void *buf = ok ? malloc((size_t)np * msz + 1) : NULL;
        ok = ok && buf && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
        free(buf);
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    if (!ok && !c->failed[0])
        snprintf(c->failed, sizeof(c->failed), "/%s", name);
    return 0;
}

static const tr_ckpt_dataset *find_ds(const tr_ckpt_info *info, const char *path) {
    for (int i = 0; i < info->n_datasets; i++)
        if (strcmp(info->datasets[i].path, path) == 0)
            return &info->datasets[i];
    return NULL;
}

static void fmt_shape(char *buf, size_t n, int ndim, const int64_t *dims) {
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", d ? ", " : "", (long long)dims[d]);
    if (used < n)
        snprintf(buf + used, n - used, ")");
}

/* 1 if the dataset at path exists with this shape; else why says which. */
static int expect_shape(const tr_ckpt_info *info, const char *file, const char *path, int ndim,
                        const int64_t *dims, char *why, size_t whyn) {
    const tr_ckpt_dataset *d = find_ds(info, path);
    char want[128], got[128];
    fmt_shape(want, sizeof(want), ndim, dims);
    if (!d) {
        snprintf(why, whyn, "checkpoint %s has no %s", file, path);
        return 0;
    }
    int ok = d->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = d->dims[i] == dims[i];
    if (!ok) {
        fmt_shape(got, sizeof(got), d->ndim, d->dims);
        snprintf(why, whyn,
                 "checkpoint %s: %s has shape %s but the model needs %s (check model.* settings "
                 "and data.tasks)",
                 file, path, got, want);
    }
    return ok;
}

static int expect_arena(const tr_ckpt_info *info, const char *file, const char *group,
                        const tr_params *p, char *why, size_t whyn) {
    for (int i = 0; p && i < p->n; i++) {
        char path[TR_NAME_LEN + 32];
        snprintf(path, sizeof(path), "%s/%s", group, p->t[i].name);
        if (!expect_shape(info, file, path, p->t[i].ndim, p->t[i].shape, why, whyn))
            return 0;
    }
    return 1;
}

static tr_ckpt_verdict expect_model(tr_ckpt_info *info, const char *file, const tr_ckpt_state *e,
                                    char *why, size_t whyn) {
    info->model_mismatch = 1; /* until every tensor was found */
    int has_buf = e->buffers && e->buffers->n > 0;
    if (!expect_arena(info, file, "/params", e->params, why, whyn) ||
        (has_buf && !expect_arena(info, file, "/buffers", e->buffers, why, whyn)) ||
        !expect_arena(info, file, "/optim/m", e->params, why, whyn) ||
        (e->opt_v && !expect_arena(info, file, "/optim/v", e->params, why, whyn)))
        return TR_CKPT_INCOMPATIBLE;
    if (info->sc.best_step >= 0 &&
        (!expect_arena(info, file, "/best/params", e->params, why, whyn) ||
         (has_buf && !expect_arena(info, file, "/best/buffers", e->buffers, why, whyn))))
        return TR_CKPT_INCOMPATIBLE;
    int64_t wdims[2] = {info->tasks, 4};
    if (e->window && !expect_shape(info, file, "/train/window", 2, wdims, why, whyn))
        return TR_CKPT_INCOMPATIBLE;
    for (int i = 0; i < e->n_extra; i++)
        if (!expect_shape(info, file, e->extra[i].name, e->extra[i].ndim, e->extra[i].dims, why,
                          whyn))
            return TR_CKPT_INCOMPATIBLE;
    if (e->sc.steps_per_epoch > 0 && info->sc.steps_per_epoch != e->sc.steps_per_epoch) {
        snprintf(why, whyn,
                 "checkpoint %s has %lld steps per epoch but this run has %lld (the dataset or "
                 "train.batch_size changed)",
                 file, (long long)info->sc.steps_per_epoch, (long long)e->sc.steps_per_epoch);
        return TR_CKPT_INCOMPATIBLE;
    }
    info->model_mismatch = 0;
    return TR_CKPT_VALID;
}

static int read_int(hid_t f, const char *name, int64_t *v) {
    long long x = 0;
    int found = 0;
    if (tr_h5_attr_read_int(f, name, &x, &found) != TR_OK || !found)
        return 0;
    *v = (int64_t)x;
    return 1;
}

/* Attributes into info; 0 and why if one is missing or unreadable. */
static tr_ckpt_verdict read_attrs(hid_t f, tr_ckpt_info *info, const char *file, char *why,
                                  size_t whyn) {
    int found = 0;
    tr_h5_attr_read_str(f, "format", info->format, sizeof(info->format), &found);
    if (!found || strcmp(info->format, TR_CHECKPOINT_FORMAT) != 0) {
        snprintf(why, whyn, "%s is not a taskrel checkpoint (format '%s')", file,
                 found ? info->format : "none");
        return found ? TR_CKPT_INCOMPATIBLE : TR_CKPT_CORRUPT;
    }
    static const char *const names[] = {
        "version", "step",      "epoch",   "cursor", "steps_per_epoch", "total_steps", "seed",
        "opt_t",   "best_step", "samples", "tasks",  "world_size",      "replicas",    "shards"};
    int64_t v[sizeof(names) / sizeof(names[0])];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!read_int(f, names[i], &v[i])) {
            snprintf(why, whyn, "checkpoint %s: attribute '%s' is missing or unreadable", file,
                     names[i]);
            return TR_CKPT_CORRUPT;
        }
    }
    info->version = (int)v[0];
    info->sc.step = v[1];
    info->epoch = v[2];
    info->cursor = v[3];
    info->sc.steps_per_epoch = v[4];
    info->sc.total_steps = v[5];
    info->sc.seed = (uint64_t)v[6];
    info->sc.opt_t = v[7];
    info->sc.best_step = v[8];
    info->sc.samples = v[9];
    info->tasks = (int)v[10];
    info->world_size = (int)v[11];
    info->replicas = (int)v[12];
    info->shards = (int)v[13];
    if (info->version > TR_CHECKPOINT_VERSION || info->version < 1) {
        snprintf(why, whyn, "checkpoint %s has format version %d; this taskrel reads up to %d",
                 file, info->version, TR_CHECKPOINT_VERSION);
        return TR_CKPT_INCOMPATIBLE;
    }
    if (tr_h5_attr_read_double(f, "best_score", &info->sc.best_score, &found) != TR_OK || !found) {
        snprintf(why, whyn, "checkpoint %s: attribute 'best_score' is missing", file);
        return TR_CKPT_CORRUPT;
    }
    tr_h5_attr_read_double(f, "train_seconds", &info->sc.train_seconds, &found);
    tr_h5_attr_read_str(f, "model_kind", info->model_kind, sizeof(info->model_kind), &found);
    tr_h5_attr_read_str(f, "task_names", info->task_names, sizeof(info->task_names), &found);
    tr_h5_attr_read_str(f, "run_id", info->run_id, sizeof(info->run_id), &found);
    tr_h5_attr_read_str(f, "data_fingerprint", info->data_fingerprint,
                        sizeof(info->data_fingerprint), &found);
    int64_t spe = info->sc.steps_per_epoch;
    if (info->sc.step < 0 || spe <= 0 || info->epoch != info->sc.step / spe ||
        info->cursor != info->sc.step % spe || info->tasks <= 0 || info->world_size <= 0 ||
        (int64_t)info->replicas * info->shards != info->world_size) {
        snprintf(why, whyn, "checkpoint %s: inconsistent attributes (step, epoch, grid)", file);
        return TR_CKPT_CORRUPT;
    }
    return TR_CKPT_VALID;
}

/* The whole check, in this process. */
static tr_ckpt_verdict check_file(const char *path, const tr_ckpt_state *expect, int attrs_only,
                                  tr_ckpt_info *info, char *why, size_t whyn) {
    memset(info, 0, sizeof(*info));
    why[0] = '\0';
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    tr_ckpt_verdict v = TR_CKPT_VALID;
    hid_t f = -1;
    struct stat sb;
    if (access(path, R_OK) != 0 || stat(path, &sb) != 0) {
        snprintf(why, whyn, "checkpoint %s cannot be read: %s", path, strerror(errno));
        v = TR_CKPT_CORRUPT;
    } else if ((f = tr_h5_open_read(path, MPI_COMM_NULL)) < 0) {
        snprintf(why, whyn, "checkpoint %s does not open as HDF5 (truncated or damaged)", path);
        v = TR_CKPT_CORRUPT;
    }
    if (v == TR_CKPT_VALID)
        v = read_attrs(f, info, path, why, whyn);
    if (v == TR_CKPT_VALID && !attrs_only) {
        visit_ctx c = {.info = info, .path = path, .max_bytes = (hsize_t)sb.st_size};
        if (H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit_dataset, &c, H5O_INFO_BASIC) < 0) {
            snprintf(why, whyn, "checkpoint %s: its group structure is damaged", path);
            v = TR_CKPT_CORRUPT;
        } else if (c.failed[0]) {
            snprintf(why, whyn,
                     "checkpoint %s: %s does not read back (checksum mismatch or damage)", path,
                     c.failed);
            v = TR_CKPT_CORRUPT;
        }
    }
    if (v == TR_CKPT_VALID && expect && !attrs_only)
        v = expect_model(info, path, expect, why, whyn);
    if (f >= 0)
        H5Fclose(f);
    tr_h5_quiet_end(&q);
    info->verdict = v;
    snprintf(info->why, sizeof(info->why), "%s", why);
    return v;
}

typedef struct {
    int verdict;
    char why[512];
    tr_ckpt_ident id;
} verdict_msg;

static void ident_of(const tr_ckpt_info *info, tr_ckpt_ident *id) {
    memset(id, 0, sizeof(*id));
    id->readable = info->format[0] && info->sc.steps_per_epoch > 0;
    id->model_mismatch = info->model_mismatch;
    id->step = info->sc.step;
    snprintf(id->run_id, sizeof(id->run_id), "%s", info->run_id);
    snprintf(id->data_fingerprint, sizeof(id->data_fingerprint), "%s", info->data_fingerprint);
}

tr_ckpt_verdict tr_checkpoint_validate(const char *path, const tr_ckpt_state *expect, char *why,
                                       size_t whyn) {
    tr_ckpt_ident id;
    return tr_checkpoint_check(path, expect, 0, &id, why, whyn);
}

typedef struct {
    const char *path;
    const tr_ckpt_state *expect;
    int attrs_only;
} check_args;

/* The check itself, in the child (or here when no child can be started). */
static void check_in_child(void *arg, void *out, size_t outn) {
    const check_args *a = arg;
    verdict_msg *m = out;
    memset(m, 0, outn);
    tr_ckpt_info info;
    m->verdict = (int)check_file(a->path, a->expect, a->attrs_only, &info, m->why, sizeof(m->why));
    ident_of(&info, &m->id);
    tr_checkpoint_info_free(&info);
}

tr_ckpt_verdict tr_checkpoint_check(const char *path, const tr_ckpt_state *expect, int attrs_only,
                                    tr_ckpt_ident *id, char *why, size_t whyn) {
    memset(id, 0, sizeof(*id));
    struct stat sb;
    double mb = stat(path, &sb) == 0 ? (double)sb.st_size / 1e6 : 0.0;
    double timeout = 60.0 + mb / 20.0; /* generous: >= 20 MB/s */
    check_args a = {.path = path, .expect = expect, .attrs_only = attrs_only};
    verdict_msg m;
    int detail = 0;
    /* every dataset is read in full: no memory cap */
    switch (tr_io_in_child(check_in_child, &a, &m, sizeof(m), timeout, 0, &detail)) {
    case TR_CHILD_DONE:
        break;
    case TR_CHILD_SIGNAL:
        snprintf(why, whyn, "checkpoint %s: checking it crashed the reader (signal %d)", path,
                 detail);
        return TR_CKPT_CORRUPT;
    case TR_CHILD_EXIT:
        snprintf(why, whyn, "checkpoint %s: checking it crashed the reader (exit code %d)", path,
                 detail);
        return TR_CKPT_CORRUPT;
    case TR_CHILD_TIMEOUT:
        snprintf(why, whyn, "checkpoint %s: checking it did not finish within %d s", path,
                 (int)timeout);
        return TR_CKPT_CORRUPT;
    }
    m.why[sizeof(m.why) - 1] = '\0';
    m.id.run_id[sizeof(m.id.run_id) - 1] = '\0';
    m.id.data_fingerprint[sizeof(m.id.data_fingerprint) - 1] = '\0';
    *id = m.id;
    snprintf(why, whyn, "%s", m.why);
    return (tr_ckpt_verdict)m.verdict;
}

tr_ckpt_verdict tr_checkpoint_check_all(const char *path, const tr_ckpt_state *expect,
                                        int attrs_only, MPI_Comm world, tr_ckpt_ident *id,
                                        char *why, size_t whyn) {
    int rank = 0;
    MPI_Comm_rank(world, &rank);
    verdict_msg m;
    memset(&m, 0, sizeof(m));
    if (rank == 0)
        m.verdict = (int)tr_checkpoint_check(path, expect, attrs_only, &m.id, m.why, sizeof(m.why));
    if (MPI_Bcast(&m, (int)sizeof(m), MPI_BYTE, 0, world) != MPI_SUCCESS) {
        memset(id, 0, sizeof(*id));
        snprintf(why, whyn, "checkpoint %s: could not share the validation verdict", path);
        return TR_CKPT_CORRUPT;
    }
    *id = m.id;
    snprintf(why, whyn, "%s", m.why);
    return (tr_ckpt_verdict)m.verdict;
}

tr_ckpt_verdict tr_checkpoint_validate_all(const char *path, const tr_ckpt_state *expect,
                                           MPI_Comm world, char *why, size_t whyn) {
    tr_ckpt_ident id;
    return tr_checkpoint_check_all(path, expect, 0, world, &id, why, whyn);
}

tr_status tr_checkpoint_info(const char *path, tr_ckpt_info *info) {
    char why[512];
    check_file(path, NULL, 0, info, why, sizeof(why));
    TR_CHECK(info->format[0] || info->verdict == TR_CKPT_VALID, TR_ERR_DATA, "%s", why);
    return TR_OK;
}

void tr_checkpoint_info_free(tr_ckpt_info *info) {
    if (!info)
        return;
    free(info->datasets);
    info->datasets = NULL;
    info->n_datasets = 0;
}

tr_status tr_checkpoint_read_config(const char *path, char **text) {
    *text = NULL;
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t f = tr_h5_open_read(path, MPI_COMM_NULL);
    tr_status st = TR_OK;
    int found = 0;
    if (f < 0)
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__, "cannot open checkpoint %s",
                          path);
    else
        st = tr_h5_attr_read_text(f, "config", text, &found);
    if (st == TR_OK && !found) {
        *text = calloc(1, 1);
        if (!*text)
            st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
    }
    if (f >= 0)
        H5Fclose(f);
    tr_h5_quiet_end(&q);
    return st;
}
