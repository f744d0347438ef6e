/*
 * The trainer's side of checkpoints: which state goes into one, where they
 * live, and resuming (--resume auto|none|PATH): pick the newest checkpoint
 * of this run that validates (rank 0 checks, everyone gets the verdict), fall
 * back past damaged ones, refuse one made for another run, model or dataset
 * or past the run's end, warn about changed settings, load it on any grid, and
 * trim metrics.jsonl back to the checkpoint's step. The run directory is
 * claimed here too (a run's files need --resume or --overwrite), and
 * rotation removes only this run's checkpoints.
 * Not here: the file format (src/io/checkpoint*.c), when to write one
 * (trainer.c), signals (signals.c).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trainer_internal.h"

#define MAX_CANDIDATES 4096

/* tr_state_fn: one array of the method's state rides in every checkpoint. */
static tr_status add_extra(void *ctx, const char *name, double *data, int ndim,
                           const int64_t *dims) {
    tr_trainer_ckpt *c = ctx;
    TR_CHECK(c->n_extra < TR_MAX_EXTRA, TR_ERR_INTERNAL, "more than %d extra state arrays",
             TR_MAX_EXTRA);
    TR_CHECK(name[0] == '/' && strlen(name) < TR_EXTRA_NAME_LEN && ndim >= 1 && ndim <= 3,
             TR_ERR_INTERNAL, "bad extra state array '%s' (ndim %d)", name, ndim);
    tr_extra_state *e = &c->extra[c->n_extra++];
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->data = data;
    e->ndim = ndim;
    for (int d = 0; d < 3; d++)
        e->dims[d] = d < ndim ? dims[d] : 1;
    return TR_OK;
}

tr_status tr_trainer_ckpt_register(tr_trainer *tr) {
    TR_CALL(tr_method_each_state(&tr->model, add_extra, &tr->ckpt));
    return tr_weighting_each_state(tr, add_extra, &tr->ckpt);
}

/* The trainer's state as a checkpoint sees it. */
static void fill_state(tr_trainer *tr, tr_ckpt_state *s, char *names, size_t namesn) {
    memset(s, 0, sizeof(*s));
    tr_model *m = &tr->model;
    s->params = &m->params;
    s->buffers = &m->buffers;
    s->opt_m = tr->opt.m;
    s->opt_v = tr->opt.v;
    s->best_params = tr->sel.best_params;
    s->best_buffers = m->buffers.total ? tr->sel.best_buffers : NULL;
    tr_stats_pack(tr->ckpt.window, tr->sel.window, tr->T);
    s->window = tr->ckpt.window;
    s->extra = tr->ckpt.extra;
    s->n_extra = tr->ckpt.n_extra;
    s->relations = &tr->relations;
    s->prov = &tr->ckpt.prov;
    size_t used = 0;
    names[0] = '\0';
    for (int t = 0; t < tr->T && used < namesn; t++)
        used += (size_t)snprintf(names + used, namesn - used, "%s%s", t ? "," : "",
                                 tr->ds.tasks[t].name);
    s->task_names = names;
    s->sc.steps_per_epoch = tr->batch.steps_per_epoch;
    s->sc.total_steps = tr->total_steps;
    s->sc.seed = tr->cfg->seed;
    s->sc.opt_t = tr->opt.t;
    s->sc.best_step = isnan(tr->sel.best_score) ? -1 : tr->sel.best_step;
    s->sc.best_score = tr->sel.best_score;
    s->sc.train_seconds = tr->rep.train_seconds;
    s->sc.samples = tr->rep.samples;
}

/* A killed job can leave ckpt-<step>.h5.tmp and latest.tmp behind. */
static void remove_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "ckpt-", 5) == 0 && n > 4 &&
            strcmp(e->d_name + n - 4, ".tmp") == 0) {
            char p[TR_PATH_LEN + 300];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            if (unlink(p) == 0)
                tr_log(TR_LOG_INFO, "removed %s (an unfinished checkpoint)", p);
        }
    }
    closedir(d);
}

static int resume_mode(const char *resume) {
    if (!resume || strcmp(resume, "none") == 0)
        return 0;
    return strcmp(resume, "auto") == 0 ? 1 : 2;
}

/* rank 0: a run directory that holds a run is continued (--resume), started
 * again (--overwrite) or refused, before anything in it changes. */
static tr_status claim_run_dir(tr_trainer *tr) {
    const char *run_dir = tr->rep.run_dir, *ckdir = tr->ckpt.dir;
    int mode = resume_mode(tr->opts.resume);
    TR_CHECK(!tr->opts.overwrite || mode == 0, TR_ERR_USAGE,
             "--overwrite starts a run afresh: it cannot be combined with --resume %s",
             tr->opts.resume);
    char what[TR_PATH_LEN + 300];
    int holds = tr_rundir_holds_run(run_dir, ckdir, what, sizeof(what));
    if (mode != 0 || !holds)
        return TR_OK;
    TR_CHECK(tr->opts.overwrite, TR_ERR_USAGE,
             "run directory %s already holds a run (%s); nothing was changed. Continue that run "
             "with --resume auto, start it again with --overwrite (removes its outputs and "
             "checkpoints), or give a new directory with --run-dir",
             run_dir, what);
    return tr_rundir_clear(run_dir, ckdir);
}

/* Where and how this start of the run runs: version, git revision, command
 * line, hosts, SLURM job; rank 0's view broadcast, so that every rank writes
 * the same attributes. */
static tr_status gather_provenance(tr_trainer *tr) {
    tr_provenance *p = &tr->ckpt.prov;
    int size = tr->grid.size, len = 0;
    char me[MPI_MAX_PROCESSOR_NAME] = "";
    MPI_Get_processor_name(me, &len);
    char *all = tr->grid.rank == 0 ? malloc((size_t)size * MPI_MAX_PROCESSOR_NAME) : NULL;
    TR_CHECK(tr->grid.rank != 0 || all, TR_ERR_NOMEM, "out of memory");
    TR_MPI(MPI_Gather(me, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                      0, tr->grid.world));
    if (tr->grid.rank == 0) {
        snprintf(p->version, sizeof(p->version), "%s", TASKREL_VERSION_STRING);
#ifdef TASKREL_GIT_REVISION
        snprintf(p->git_revision, sizeof(p->git_revision), "%s", TASKREL_GIT_REVISION);
#endif
        snprintf(p->command_line, sizeof(p->command_line), "%s",
                 tr->opts.command_line ? tr->opts.command_line : "");
        const char *job = getenv("SLURM_JOB_ID");
        snprintf(p->slurm_job_id, sizeof(p->slurm_job_id), "%s", job ? job : "");
        snprintf(p->blas, sizeof(p->blas), "%s", tr_blas_config());
        char advice[512];
        if (tr_blas_kernel_advice(advice, sizeof(advice)))
            tr_log(TR_LOG_WARN, "%s", advice);
        p->world_size = size;
        size_t used = 0;
        p->hosts[0] = '\0';
        for (int r = 0; r < size; r++) {
            const char *h = all + (size_t)r * MPI_MAX_PROCESSOR_NAME;
            int seen = 0;
            for (int q = 0; q < r && !seen; q++)
                seen = strncmp(h, all + (size_t)q * MPI_MAX_PROCESSOR_NAME,
                               MPI_MAX_PROCESSOR_NAME) == 0;
            if (!seen && used + strlen(h) + 2 < sizeof(p->hosts))
                used += (size_t)snprintf(p->hosts + used, sizeof(p->hosts) - used, "%s%s",
                                         used ? "," : "", h);
        }
        free(all);
    }
    TR_MPI(MPI_Bcast(p, (int)sizeof(*p), MPI_BYTE, 0, tr->grid.world));
    return TR_OK;
}

tr_status tr_trainer_ckpt_prepare(tr_trainer *tr) {
    tr_trainer_ckpt *c = &tr->ckpt;
    if (tr->cfg->ckpt_dir[0])
        snprintf(c->dir, sizeof(c->dir), "%s", tr->cfg->ckpt_dir);
    else
        snprintf(c->dir, sizeof(c->dir), "%.*s/checkpoints", TR_PATH_LEN - 16, tr->rep.run_dir);
    tr_status st = TR_OK;
    if (tr->grid.rank == 0) {
        st = claim_run_dir(tr);
        if (st == TR_OK)
            st = tr_path_make_dir(c->dir, "checkpoint directory");
        if (st == TR_OK)
            remove_stale(c->dir);
        tr_status fs = tr_dataset_fingerprint(&tr->ds, c->prov.data_fingerprint,
                                              sizeof(c->prov.data_fingerprint));
        if (st == TR_OK)
            st = fs;
    }
    TR_CALL(tr_agree(tr->grid.world, st));
    TR_CALL(gather_provenance(tr));
    return TR_OK;
}

/* rank 0: this run's checkpoint at `step` joins the list; all but the newest
 * `keep` of the run's checkpoints are removed (other files are left alone). */
static void rotate(tr_trainer_ckpt *c, int64_t step, int keep) {
    int have = 0;
    for (int i = 0; i < c->n_own; i++)
        have |= c->own[i] == step;
    if (!have) {
        int64_t *o = realloc(c->own, (size_t)(c->n_own + 1) * sizeof(*o));
        if (!o)
            return;
        c->own = o;
        c->own[c->n_own++] = step;
    }
    for (int i = 1; i < c->n_own; i++) /* newest first */
        for (int j = i; j > 0 && c->own[j] > c->own[j - 1]; j--) {
            int64_t t = c->own[j];
            c->own[j] = c->own[j - 1];
            c->own[j - 1] = t;
        }
    if (keep <= 0)
        return;
    for (int i = keep; i < c->n_own; i++) {
        char old[TR_PATH_LEN + 32];
        snprintf(old, sizeof(old), "%s/ckpt-%lld.h5", c->dir, (long long)c->own[i]);
        if (c->own[i] != step && unlink(old) != 0 && errno != ENOENT)
            tr_log(TR_LOG_WARN, "cannot remove old checkpoint %s: %s", old, strerror(errno));
    }
    if (c->n_own > keep)
        c->n_own = keep;
}

tr_status tr_trainer_ckpt_write(tr_trainer *tr, int64_t steps) {
    tr_trainer_ckpt *c = &tr->ckpt;
    tr_ckpt_state s;
    char names[1024];
    TR_CALL(tr_method_before_save(&tr->model));
    tr_weighting_before_save(tr);
    TR_CALL(tr_weighting_relations(tr));
    fill_state(tr, &s, names, sizeof(names));
    s.sc.step = steps;
    /* keep = 0: rotation here considers this run's checkpoints only */
    TR_CALL(
        tr_checkpoint_write(c->dir, &s, &tr->grid, tr->cfg, 0, c->last, sizeof(c->last), &c->io));
    if (tr->grid.rank == 0)
        rotate(c, steps, tr->cfg->ckpt_keep);
    c->written++;
    c->last_time = tr_time_now();
    if (tr->grid.rank == 0 && !tr->opts.quiet)
        tr_log(TR_LOG_INFO, "checkpoint %s (step %lld, %.1f MB)", c->last, (long long)steps,
               (double)c->io.bytes / 1e6);
    return TR_OK;
}

/* ---- config compatibility ----------------------------------------------------------- */

/* ---- resume ------------------------------------------------------------------------- */

/* rank 0: drop metrics.jsonl lines of steps after `step` (a resumed run
 * appends from there). */
static void trim_metrics(const tr_trainer *tr, int64_t step) {
    char path[TR_PATH_LEN + 32], tmp[TR_PATH_LEN + 48];
    snprintf(path, sizeof(path), "%s/metrics.jsonl", tr->rep.run_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *in = fopen(path, "r");
    if (!in)
        return;
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        long long s = -1;
        int keep = strncmp(line, "{\"provenance\":", 14) == 0; /* each start's */
        if (!keep &&
            (strstr(line, "\"final\":true") || sscanf(line, "{\"step\":%lld", &s) != 1 || s > step))
            continue;
        fputs(line, out);
    }
    free(line);
    fclose(in);
    fclose(out);
    rename(tmp, path);
}

/* rank 0, --resume auto: which checkpoints of the directory are this run's.
 * The run is the one of run.id; without that file, the one run whose
 * checkpoints are there (several: refused). A checkpoint whose attributes do
 * not read stays a candidate (its check names the damage); one of another run
 * is never a candidate and never rotated. Fills steps (candidates, newest
 * first), *n and c->own; sets c->prov.run_id. */
static tr_status classify(tr_trainer *tr, int64_t *steps, int *n) {
    tr_trainer_ckpt *c = &tr->ckpt;
    int64_t *all = malloc(MAX_CANDIDATES * sizeof(*all));
    tr_ckpt_ident *ids = calloc(MAX_CANDIDATES, sizeof(*ids));
    tr_status st = TR_OK;
    if (!all || !ids)
        st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
    int m = st == TR_OK ? tr_checkpoint_list(c->dir, all, MAX_CANDIDATES) : 0;
    char why[512], p[TR_PATH_LEN + 64];
    for (int i = 0; i < m; i++) {
        snprintf(p, sizeof(p), "%s/ckpt-%lld.h5", c->dir, (long long)all[i]);
        tr_checkpoint_check(p, NULL, 1, &ids[i], why, sizeof(why));
    }
    char *run = c->prov.run_id;
    if (st == TR_OK && !run[0]) { /* no run.id: the checkpoints' run, if it is one */
        for (int i = 0; i < m && st == TR_OK; i++) {
            if (!ids[i].readable || !ids[i].run_id[0])
                continue;
            if (!run[0])
                snprintf(run, TR_RUN_ID_LEN, "%s", ids[i].run_id);
            else if (strcmp(run, ids[i].run_id) != 0)
                st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                                  "%s holds checkpoints of several runs (%s, %s) and %s/run.id "
                                  "does not say which is this one: keep one run's checkpoints "
                                  "there, or start again with --overwrite",
                                  c->dir, run, ids[i].run_id, tr->rep.run_dir);
        }
        if (st == TR_OK && run[0])
            tr_log(TR_LOG_INFO, "continuing run %s (the run of the checkpoints in %s)", run,
                   c->dir);
    }
    for (int i = 0; i < m && st == TR_OK; i++) {
        /* without any run id around, checkpoints without one are this run's */
        int own = ids[i].readable && strcmp(ids[i].run_id, run) == 0;
        if (ids[i].readable && !own) {
            tr_log(TR_LOG_WARN,
                   "ignoring %s/ckpt-%lld.h5: it belongs to another run (run id '%s'; this run "
                   "is '%s'); it is neither resumed nor removed",
                   c->dir, (long long)all[i], ids[i].run_id, run);
            continue;
        }
        steps[(*n)++] = all[i];
        if (own)
            rotate(c, all[i], 0);
    }
    free(all);
    free(ids);
    return st;
}

/* Candidate paths, newest first: this run's ckpt-<step>.h5 (auto) or the one
 * path given. Same list and run id on every rank (rank 0 decides). */
static tr_status candidates(tr_trainer *tr, const char *resume, int64_t *steps, int *n) {
    *n = 0;
    tr_status st = TR_OK;
    if (tr->grid.rank == 0) {
        tr_rundir_read_id(tr->rep.run_dir, tr->ckpt.prov.run_id, TR_RUN_ID_LEN);
        if (strcmp(resume, "auto") == 0) {
            st = classify(tr, steps, n);
        } else { /* PATH: the directory's own checkpoints still rotate */
            int64_t *tmp = malloc(MAX_CANDIDATES * sizeof(*tmp));
            int k = 0;
            if (tmp && tr->ckpt.prov.run_id[0])
                st = classify(tr, tmp, &k);
            free(tmp);
            *n = 1;
        }
    }
    TR_CALL(tr_agree(tr->grid.world, st));
    TR_MPI(MPI_Bcast(n, 1, MPI_INT, 0, tr->grid.world));
    TR_MPI(MPI_Bcast(steps, *n, MPI_INT64_T, 0, tr->grid.world));
    TR_MPI(MPI_Bcast(tr->ckpt.prov.run_id, TR_RUN_ID_LEN, MPI_CHAR, 0, tr->grid.world));
    return TR_OK;
}

/* Apply a loaded checkpoint's scalars to the trainer. */
static void apply(tr_trainer *tr, const tr_ckpt_state *s, const char *path) {
    int64_t spe = tr->batch.steps_per_epoch;
    tr->ckpt.start_step = s->sc.step;
    tr->opt.t = s->sc.opt_t;
    tr->sel.best_step = s->sc.best_step >= 0 ? s->sc.best_step : 0;
    tr->sel.best_score = s->sc.best_step >= 0 ? s->sc.best_score : NAN;
    tr_stats_unpack(tr->sel.window, tr->ckpt.window, tr->T);
    tr->rep.train_seconds = s->sc.train_seconds;
    tr->rep.samples = s->sc.samples;
    tr_method_after_load(&tr->model);
    tr_weighting_after_load(tr);
    if (tr->grid.rank == 0) {
        trim_metrics(tr, s->sc.step);
        if (!tr->opts.quiet)
            tr_log(TR_LOG_INFO, "resumed from %s at step %lld (epoch %lld, batch %lld)", path,
                   (long long)s->sc.step, (long long)(s->sc.step / spe),
                   (long long)(s->sc.step % spe));
    }
}

/* A sound checkpoint that is this run's but cannot continue it: another run
 * (PATH), other data, or past the run's end. Same verdict on every rank. */
static tr_status check_identity(tr_trainer *tr, const tr_ckpt_ident *id, const char *p,
                                int auto_mode) {
    const tr_provenance *prov = &tr->ckpt.prov;
    TR_CHECK(auto_mode || !prov->run_id[0] || !id->run_id[0] ||
                 strcmp(prov->run_id, id->run_id) == 0,
             TR_ERR_DATA,
             "checkpoint %s belongs to another run (run id %s) than run directory %s (run id "
             "%s): continue this directory's run with --resume auto, or continue that run in "
             "a new directory (--run-dir NEW --resume %s)",
             p, id->run_id, tr->rep.run_dir, prov->run_id, p);
    /* v1- fingerprints (an older formula) cannot be compared: not checked */
    TR_CHECK(!id->data_fingerprint[0] || strncmp(id->data_fingerprint, "v1-", 3) == 0 ||
                 strcmp(id->data_fingerprint, prov->data_fingerprint) == 0,
             TR_ERR_DATA,
             "checkpoint %s was trained on other data than data.path = %s now holds (data "
             "fingerprint %s, now %s): put that dataset back to continue the run, or start a "
             "new run on this data (--overwrite, or a new --run-dir)",
             p, tr->cfg->data_path, id->data_fingerprint, prov->data_fingerprint);
    TR_CHECK(id->step <= tr->total_steps, TR_ERR_CONFIG,
             "checkpoint %s is at step %lld, past the end of this run (%lld steps, from "
             "train.epochs and train.max_steps): raise them to continue it, or start a new run "
             "(--overwrite, or a new --run-dir)",
             p, (long long)id->step, (long long)tr->total_steps);
    return TR_OK;
}

/* Try candidate p: validate (rank 0, verdict shared), check its identity,
 * compare configs, load. *skip = 1 if it is damaged and (auto) an older one
 * may be tried. In auto mode a checkpoint of this run that lacks a tensor
 * while its config equals the run's is damaged, not another model. */
static tr_status try_one(tr_trainer *tr, tr_ckpt_state *s, const char *p, int auto_mode, int *skip,
                         int *partial) {
    char why[512];
    tr_ckpt_ident id;
    *skip = 0;
    tr_ckpt_verdict v = tr_checkpoint_check_all(p, s, 0, tr->grid.world, &id, why, sizeof(why));
    if (v == TR_CKPT_INCOMPATIBLE && !id.model_mismatch)
        TR_RAISE(TR_ERR_CONFIG, "%s", why);
    if (v == TR_CKPT_INCOMPATIBLE) { /* another model, or a damaged one of this model */
        tr_status st = tr->grid.rank == 0 ? tr_trainer_ckpt_check_config(tr, p) : TR_OK;
        TR_CALL(tr_agree(tr->grid.world, st));
        /* the same config: the tensor is missing or of another shape by damage */
        TR_CHECK(auto_mode, TR_ERR_DATA,
                 "%s, although it was written with this run's config: it is damaged; resume "
                 "from another checkpoint",
                 why);
        tr_log0(TR_LOG_WARN, "%s, although it was written with this run's config: damaged", why);
        *skip = 1;
        return TR_OK;
    }
    if (v == TR_CKPT_CORRUPT) {
        TR_CHECK(auto_mode, TR_ERR_DATA, "%s", why);
        tr_log0(TR_LOG_WARN, "%s", why);
        *skip = 1;
        return TR_OK;
    }
    TR_CALL(check_identity(tr, &id, p, auto_mode));
    tr_status st = tr->grid.rank == 0 ? tr_trainer_ckpt_check_config(tr, p) : TR_OK;
    TR_CALL(tr_agree(tr->grid.world, st));
    st = tr_checkpoint_load(p, s, &tr->grid, &tr->ckpt.io);
    if (st != TR_OK && auto_mode) {
        /* damage the serial check missed but the collective read caught */
        tr_log0(TR_LOG_WARN, "%s", tr_error_message());
        tr_error_clear();
        *skip = *partial = 1;
        return TR_OK;
    }
    TR_CALL(st);
    if (!tr->ckpt.prov.run_id[0]) /* continuing the run of the checkpoint given */
        snprintf(tr->ckpt.prov.run_id, TR_RUN_ID_LEN, "%s", id.run_id);
    return TR_OK;
}

/* Every rank: the relation matrices stored with the checkpoint, so that the
 * next checkpoint carries them even before the method computes new ones. */
static tr_status restore_relations(tr_trainer *tr, const char *p) {
    tr_relations r;
    int found = 0;
    TR_CALL(tr_relations_load(p, &r, &found));
    if (!found || r.n == 0) {
        tr_relations_free(&r);
        return TR_OK;
    }
    tr_status st = TR_OK;
    for (int i = 0; i < r.n && st == TR_OK; i++) {
        const tr_relation *x = &r.items[i];
        st =
            tr_relations_add(&tr->relations, x->name, x->title, x->axes, x->data, x->rows, x->cols);
    }
    tr_relations_free(&r);
    return st;
}

/* rank 0: the run id of a new run (or of one whose checkpoints had none) is
 * made and recorded; every rank gets it. */
static tr_status settle_run_id(tr_trainer *tr) {
    tr_status st = TR_OK;
    char *id = tr->ckpt.prov.run_id;
    if (tr->grid.rank == 0) {
        if (!id[0])
            tr_run_id_new(id, TR_RUN_ID_LEN);
        char old[TR_RUN_ID_LEN];
        if (!tr_rundir_read_id(tr->rep.run_dir, old, sizeof(old)) || strcmp(old, id) != 0)
            st = tr_rundir_write_id(tr->rep.run_dir, id);
    }
    TR_CALL(tr_agree(tr->grid.world, st));
    TR_MPI(MPI_Bcast(id, TR_RUN_ID_LEN, MPI_CHAR, 0, tr->grid.world));
    return TR_OK;
}

tr_status tr_trainer_resume(tr_trainer *tr, const char *resume) {
    tr->ckpt.last_time = tr_time_now();
    if (!resume || strcmp(resume, "none") == 0)
        return settle_run_id(tr);
    int auto_mode = strcmp(resume, "auto") == 0;
    tr_ckpt_state s;
    char names[1024];
    fill_state(tr, &s, names, sizeof(names));
    int64_t *steps = malloc(MAX_CANDIDATES * sizeof(*steps));
    TR_CHECK(steps != NULL, TR_ERR_NOMEM, "out of memory");
    int n = 0, partial = 0, done = 0;
    tr_status st = candidates(tr, resume, steps, &n);
    char p[TR_PATH_LEN + 64] = "";
    for (int i = 0; i < n && st == TR_OK && !done; i++) {
        if (auto_mode)
            snprintf(p, sizeof(p), "%s/ckpt-%lld.h5", tr->ckpt.dir, (long long)steps[i]);
        else
            snprintf(p, sizeof(p), "%s", resume);
        int skip = 0;
        st = try_one(tr, &s, p, auto_mode, &skip, &partial);
        if (st == TR_OK && skip && i + 1 < n)
            tr_log0(TR_LOG_WARN, "falling back to the previous checkpoint");
        if (st == TR_OK && !skip) {
            st = restore_relations(tr, p);
            if (st == TR_OK)
                apply(tr, &s, p);
            done = 1;
        }
    }
    free(steps);
    TR_CALL(st);
    TR_CALL(settle_run_id(tr));
    if (done)
        return TR_OK;
    /* a failed load may have overwritten part of the state: no fresh start then */
    TR_CHECK(!partial, TR_ERR_DATA,
             "no checkpoint in %s could be loaded; move the damaged files away to start again",
             tr->ckpt.dir);
    if (n > 0)
        tr_log0(TR_LOG_WARN, "no checkpoint in %s validates: starting from step 0", tr->ckpt.dir);
    else if (tr->grid.rank == 0 && !tr->opts.quiet)
        tr_log(TR_LOG_INFO, "no checkpoint in %s: starting from step 0", tr->ckpt.dir);
    return TR_OK;
}
