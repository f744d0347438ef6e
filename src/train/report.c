/*
 * What the run shows and writes: the run directory and each rank's phase
 * times and timeline; on rank 0 the progress line (a live line on a
 * terminal, plain log lines otherwise), metrics.jsonl, and the final
 * per-task table.
 */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "taskrel/timeline.h"

#include "taskrel/json.h"
#include "trainer_internal.h"

static const char *const k_phase_names[TR_PHASE_COUNT] = {
    "data", "forward", "backward", "comm", "optimizer", "eval", "mrn", /* "mrn": the method */
};

void tr_trainer_phase(tr_trainer *tr, tr_phase ph, const char *name, double t0, double t1) {
    tr->rep.phase[ph] += t1 - t0;
    tr_timeline_add(tr->rep.timeline, name, t0, t1, tr->step);
}

/* rank 0: a fresh directory runs/<method>-<UTC date>-<n> (the first n free). */
static tr_status fresh_run_dir(const tr_trainer *tr, char *dir, size_t n) {
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y%m%d", &tmv);
    TR_CALL(tr_path_make_dir("runs", "run directory"));
    for (int k = 1; k < 100000; k++) {
        snprintf(dir, n, "runs/%s-%s-%d", tr->model.method->name, stamp, k);
        if (mkdir(dir, 0755) == 0)
            return TR_OK;
        TR_CHECK(errno == EEXIST, TR_ERR_IO, "cannot create run directory %s: %s", dir,
                 strerror(errno));
    }
    TR_RAISE(TR_ERR_IO, "no free run directory name under runs/ (give --run-dir)");
}

static tr_status make_run_dir(tr_trainer *tr) {
    char dir[TR_PATH_LEN] = "";
    const char *want = tr->opts.run_dir ? tr->opts.run_dir : tr->cfg->run_dir;
    tr_status st = TR_OK;
    if (want && want[0])
        snprintf(dir, sizeof(dir), "%s", want);
    else if (tr->grid.rank == 0)
        st = fresh_run_dir(tr, dir, sizeof(dir));
    TR_CALL(tr_agree(tr->grid.world, st));
    TR_MPI(MPI_Bcast(dir, (int)sizeof(dir), MPI_CHAR, 0, tr->grid.world));
    snprintf(tr->rep.run_dir, sizeof(tr->rep.run_dir), "%s", dir);
    st = tr->grid.rank == 0 ? tr_path_make_dir(dir, "run directory") : TR_OK;
    TR_CALL(tr_agree(tr->grid.world, st));
    return TR_OK;
}

tr_status tr_reporting_init(tr_trainer *tr) {
    TR_CALL(make_run_dir(tr));
    /* ~10 events a step; a long run keeps its most recent events */
    int64_t cap = tr->total_steps * 12 + 64;
    return tr_timeline_create(&tr->rep.timeline, (int)(cap < 1000000 ? cap : 1000000));
}

/* The first line of metrics.jsonl (and one more at each resume). */
static void write_provenance(FILE *f, const tr_trainer *tr) {
    const tr_provenance *p = &tr->ckpt.prov;
    const struct {
        const char *key, *value;
    } s[] = {{"run_id", p->run_id},
             {"taskrel_version", p->version},
             {"git_revision", p->git_revision},
             {"command_line", p->command_line},
             {"hosts", p->hosts},
             {"slurm_job_id", p->slurm_job_id},
             {"blas", p->blas},
             {"data_path", tr->cfg->data_path},
             {"data_fingerprint", p->data_fingerprint}};
    fputs("{\"provenance\":{", f);
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        fprintf(f, "%s\"%s\":", i ? "," : "", s[i].key);
        if (s[i].value[0])
            tr_json_write_string(f, s[i].value);
        else
            fputs("null", f);
    }
    fprintf(f, ",\"world_size\":%d,\"start_step\":%lld}}\n", p->world_size,
            (long long)tr->ckpt.start_step);
    fflush(f);
}

tr_status tr_report_open(tr_trainer *tr) {
    char path[TR_PATH_LEN + 32];
    snprintf(path, sizeof(path), "%s/config.ini", tr->rep.run_dir);
    FILE *f = fopen(path, "w");
    TR_CHECK(f != NULL, TR_ERR_USAGE, "cannot write %s: %s", path, strerror(errno));
    const tr_provenance *p = &tr->ckpt.prov;
    char git[64] = "", job[48] = "";
    if (p->git_revision[0])
        snprintf(git, sizeof(git), " (git %s)", p->git_revision);
    if (p->slurm_job_id[0])
        snprintf(job, sizeof(job), ", SLURM job %s", p->slurm_job_id);
    fprintf(f,
            "; run %s, taskrel %s%s, started at step %lld on %d rank(s), hosts %s%s\n"
            "; command: %s\n; data fingerprint: %s\n",
            p->run_id, p->version, git, (long long)tr->ckpt.start_step, p->world_size, p->hosts,
            job, p->command_line, p->data_fingerprint);
    tr_status st = tr_config_write(tr->cfg, f);
    fclose(f);
    TR_CALL(st);
    snprintf(path, sizeof(path), "%s/metrics.jsonl", tr->rep.run_dir);
    tr->rep.metrics = fopen(path, tr->ckpt.start_step > 0 ? "a" : "w"); /* a resumed run appends */
    TR_CHECK(tr->rep.metrics != NULL, TR_ERR_USAGE, "cannot write %s: %s", path, strerror(errno));
    write_provenance(tr->rep.metrics, tr);
    tr_progress_mode mode = tr->cfg->progress;
    tr->rep.progress_tty = mode == TR_PROGRESS_ON || (mode == TR_PROGRESS_AUTO && isatty(2));
    if (!tr->opts.quiet) {
        const tr_grid *g = &tr->grid;
        tr_log(TR_LOG_INFO,
               "%s on %s: %d task(s), %d rank(s) = %d replica(s) x %d shard(s), "
               "%lld steps (%lld per epoch), run directory %s",
               tr->model.method->name, tr->cfg->data_path, tr->T, g->size, g->R, g->S,
               (long long)tr->total_steps, (long long)tr->batch.steps_per_epoch, tr->rep.run_dir);
        for (int s = 0; s < g->S; s++)
            tr_log(TR_LOG_INFO, "  shard %d: tasks %d..%d (%s .. %s)", s, g->shard_t0[s],
                   g->shard_t0[s] + g->shard_tn[s] - 1, tr->ds.tasks[g->shard_t0[s]].name,
                   tr->ds.tasks[g->shard_t0[s] + g->shard_tn[s] - 1].name);
    }
    return TR_OK;
}

void tr_reporting_free(tr_reporting *rep) {
    if (rep->metrics)
        fclose(rep->metrics);
    rep->metrics = NULL;
    tr_timeline_free(rep->timeline);
    rep->timeline = NULL;
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0)
        s = 0;
    int h = (int)(s / 3600), mi = (int)(fmod(s, 3600) / 60), se = (int)fmod(s, 60);
    if (h > 0)
        snprintf(buf, n, "%dh%02dm", h, mi);
    else if (mi > 0)
        snprintf(buf, n, "%dm%02ds", mi, se);
    else
        snprintf(buf, n, "%ds", se);
}

void tr_report_progress(tr_trainer *tr, int64_t step, double loss, int force_line) {
    double rate = tr->rep.train_seconds > 0 ? (double)tr->rep.samples / tr->rep.train_seconds : 0.0;
    double per_step = step > 0 ? (tr_time_now() - tr->rep.t_start) / (double)step : 0.0;
    char eta[32];
    fmt_duration(eta, sizeof(eta), per_step * (double)(tr->total_steps - step));
    int64_t epoch = (step - 1) / tr->batch.steps_per_epoch + 1;
    int64_t epochs = (tr->total_steps + tr->batch.steps_per_epoch - 1) / tr->batch.steps_per_epoch;
    if (tr->rep.progress_tty) {
        fprintf(stderr, "\r  epoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f samples/s  ETA %s   ",
                (long long)epoch, (long long)epochs, (long long)step, (long long)tr->total_steps,
                loss, rate, eta);
        if (step == tr->total_steps)
            fprintf(stderr, "\n");
        fflush(stderr);
    } else {
        int every = tr->cfg->log_every > 0 ? tr->cfg->log_every : 50;
        if (force_line || step % every == 0 || step == tr->total_steps)
            tr_log(TR_LOG_INFO, "epoch %lld/%lld step %lld/%lld loss %.4f %.0f samples/s ETA %s",
                   (long long)epoch, (long long)epochs, (long long)step, (long long)tr->total_steps,
                   loss, rate, eta);
    }
}

static void json_array(FILE *f, const char *key, const double *v, int n) {
    fprintf(f, "\"%s\":[", key);
    for (int i = 0; i < n; i++)
        fprintf(f, isfinite(v[i]) ? "%s%.6g" : "%snull", i ? "," : "", v[i]);
    fprintf(f, "]");
}

void tr_report_train_line(tr_trainer *tr, int64_t step, double lr, const tr_task_stats *st) {
    int every = tr->cfg->log_every > 0 ? tr->cfg->log_every : 50;
    if (!tr->rep.metrics || (step % every != 0 && step != tr->total_steps))
        return;
    double loss[TR_MAX_TASKS];
    for (int t = 0; t < tr->T; t++)
        loss[t] = st[t].count > 0 ? st[t].loss_sum / st[t].count : NAN;
    FILE *f = tr->rep.metrics;
    fprintf(f, "{\"step\":%lld,\"train\":true,\"lr\":%.6g,", (long long)step, lr);
    json_array(f, "loss", loss, tr->T);
    fprintf(f, ",\"samples_per_s\":%.6g}\n",
            tr->rep.train_seconds > 0 ? (double)tr->rep.samples / tr->rep.train_seconds : 0.0);
    fflush(f);
}

/* Algorithmic and bus bandwidth of an all-reduce kind, as nccl-tests defines
 * them: algbw = bytes per call / seconds per call, busbw = algbw * 2(n-1)/n
 * for n ranks in the communicator. Only the two gradient all-reduces have one
 * communicator and one algorithm; the other kinds mix collectives. The time
 * is this rank's and includes waiting for slower ranks (load imbalance). */
static void json_bandwidth(FILE *f, const tr_trainer *tr, tr_coll_kind k) {
    int n = k == TR_COLL_TRUNK ? tr->grid.size : k == TR_COLL_HEAD ? tr->grid.R : 0;
    const tr_coll_stats *c = &tr->grid.stats[k];
    if (n < 2 || c->seconds <= 0.0 || c->bytes <= 0)
        return;
    double algbw = (double)c->bytes / c->seconds / 1e9;
    fprintf(f, ",\"ranks\":%d,\"algbw_GBps\":%.6g,\"busbw_GBps\":%.6g", n, algbw,
            algbw * 2.0 * (n - 1) / n);
}

static void json_phases(FILE *f, const tr_trainer *tr) {
    fprintf(f, "\"phases_s\":{");
    for (int p = 0; p < TR_PHASE_COUNT; p++)
        fprintf(f, "%s\"%s\":%.6g", p ? "," : "", k_phase_names[p], tr->rep.phase[p]);
    fprintf(f, "},\"comm\":{");
    for (int k = 0; k < TR_COLL_COUNT; k++) {
        fprintf(f, "%s\"%s\":{\"calls\":%lld,\"bytes\":%lld,\"s\":%.6g", k ? "," : "",
                tr_coll_name((tr_coll_kind)k), (long long)tr->grid.stats[k].calls,
                (long long)tr->grid.stats[k].bytes, tr->grid.stats[k].seconds);
        json_bandwidth(f, tr, (tr_coll_kind)k);
        fprintf(f, "}");
    }
    fprintf(f, "}");
}

/* The sizes a cost model needs (final line): the data setting, tasks and
 * batch, then the model's sizes (tr_model_write_sizes). */
static void json_sizes(FILE *f, const tr_trainer *tr) {
    fprintf(f, "\"sizes\":{\"setting\":\"%s\",\"tasks\":%d,\"batch\":%d,",
            tr->batch.shared_input ? "shared-input" : "multi-input", tr->T, tr->batch.B);
    tr_model_write_sizes(&tr->model, f);
    fprintf(f, "},");
}

static void metrics_of(const tr_trainer *tr, const tr_task_stats *st, double *metric,
                       double *loss) {
    for (int t = 0; t < tr->T; t++) {
        metric[t] = tr_task_metric(&tr->sel, t, &st[t]);
        loss[t] = st[t].count > 0 ? st[t].loss_sum / st[t].count : NAN;
    }
}

/* The metric name of task t: acc or mse. */
static const char *task_mname(const tr_trainer *tr, int t) {
    return tr->sel.kinds[t] == TR_TASK_CLASSIFICATION ? "acc" : "mse";
}

/* "<prefix>_acc" and/or "<prefix>_mse": each task's metric in the array of
 * its kind (null in the other one when the kinds are mixed). */
static void json_metric_arrays(FILE *f, const tr_trainer *tr, const char *prefix,
                               const double *metric) {
    static const char *const names[2] = {"acc", "mse"};
    int first = 1;
    for (int k = 0; k < 2; k++) {
        double v[TR_MAX_TASKS];
        int any = 0;
        for (int t = 0; t < tr->T; t++) {
            int mine = strcmp(task_mname(tr, t), names[k]) == 0;
            v[t] = mine ? metric[t] : NAN;
            any |= mine;
        }
        if (!any)
            continue;
        char key[32];
        snprintf(key, sizeof(key), "%s_%s", prefix, names[k]);
        fputs(first ? "" : ",", f);
        json_array(f, key, v, tr->T);
        first = 0;
    }
}

/* The name of the selection score: acc, mse, or loss (mixed kinds). */
static const char *mean_name(const tr_trainer *tr) {
    return tr->sel.mixed ? "loss" : tr->sel.classification ? "acc" : "mse";
}

void tr_report_eval(tr_trainer *tr, int64_t step, const tr_task_stats *train_stats,
                    const tr_task_stats *val, double lr) {
    if (!tr->rep.metrics)
        return;
    double metric[TR_MAX_TASKS], loss[TR_MAX_TASKS];
    const char *mname = mean_name(tr);
    FILE *f = tr->rep.metrics;
    fprintf(f, "{\"step\":%lld,\"epoch\":%.4g,\"lr\":%.6g,", (long long)step,
            (double)step / (double)tr->batch.steps_per_epoch, lr);
    metrics_of(tr, train_stats, metric, loss);
    json_array(f, "train_loss", loss, tr->T);
    fprintf(f, ",");
    json_metric_arrays(f, tr, "train", metric);
    metrics_of(tr, val, metric, loss);
    fprintf(f, ",");
    json_array(f, "val_loss", loss, tr->T);
    fprintf(f, ",");
    json_metric_arrays(f, tr, "val", metric);
    fputs(",\"val_mean\":", f);
    tr_json_write_number(f, tr_mean_metric(&tr->sel, val, tr->T), 6); /* null without val data */
    fprintf(f, ",\"train_samples_per_s\":%.6g,\"train_seconds\":%.6g,\"elapsed_s\":%.6g,",
            tr->rep.train_seconds > 0 ? (double)tr->rep.samples / tr->rep.train_seconds : 0.0,
            tr->rep.train_seconds, tr_time_now() - tr->rep.t_start);
    json_phases(f, tr);
    tr_method_write_json(&tr->model, f);
    tr_weighting_write_json(tr, f);
    fprintf(f, "}\n");
    fflush(f);
    if (!tr->opts.quiet && !tr->rep.progress_tty)
        tr_log(TR_LOG_INFO, "validation at step %lld: mean %s %.4f", (long long)step, mname,
               tr_mean_metric(&tr->sel, val, tr->T));
}

void tr_report_final(tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test) {
    if (!tr->rep.metrics)
        return;
    double metric[TR_MAX_TASKS], loss[TR_MAX_TASKS];
    FILE *f = tr->rep.metrics;
    fprintf(f, "{\"final\":true,\"best_step\":%lld,\"tasks\":[", (long long)tr->sel.best_step);
    for (int t = 0; t < tr->T; t++) {
        fputs(t ? "," : "", f);
        tr_json_write_string(f, tr->ds.tasks[t].name); /* any UTF-8 name, escaped */
    }
    fprintf(f, "],");
    metrics_of(tr, val, metric, loss);
    json_metric_arrays(f, tr, "val", metric);
    metrics_of(tr, test, metric, loss);
    fprintf(f, ",");
    json_metric_arrays(f, tr, "test", metric);
    if (!tr->sel.classification) {
        double mae[TR_MAX_TASKS];
        for (int t = 0; t < tr->T; t++)
            mae[t] = test[t].count > 0 && tr->sel.kinds[t] == TR_TASK_REGRESSION
                         ? test[t].abs_sum / test[t].count
                         : NAN;
        fprintf(f, ",");
        json_array(f, "test_mae", mae, tr->T);
    }
    if (tr->sel.mixed) {
        metrics_of(tr, test, metric, loss);
        fprintf(f, ",");
        json_array(f, "test_loss", loss, tr->T);
        fputs(",\"mean_of\":\"loss\"", f);
    }
    fputs(",\"val_mean\":", f);
    tr_json_write_number(f, tr_mean_metric(&tr->sel, val, tr->T), 6);
    fputs(",\"test_mean\":", f);
    tr_json_write_number(f, tr_mean_metric(&tr->sel, test, tr->T), 6);
    fprintf(f,
            ",\"train_samples_per_s\":%.6g,"
            "\"train_seconds\":%.6g,\"elapsed_s\":%.6g,\"ranks\":%d,\"replicas\":%d,\"shards\":%d,",
            tr->rep.train_seconds > 0 ? (double)tr->rep.samples / tr->rep.train_seconds : 0.0,
            tr->rep.train_seconds, tr_time_now() - tr->rep.t_start, tr->grid.size, tr->grid.R,
            tr->grid.S);
    json_sizes(f, tr);
    json_phases(f, tr);
    fprintf(f, "}\n");
    fflush(f);
}

void tr_report_table(const tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test,
                     double seconds) {
    const char *mname = mean_name(tr);
    if (tr->sel.mixed) /* each task's own metric */
        printf("\n%-16s %-14s %-6s %10s %10s\n", "task", "kind", "metric", "val", "test");
    else {
        char v[16], w[16];
        snprintf(v, sizeof(v), "val %s", mname);
        snprintf(w, sizeof(w), "test %s", mname);
        printf("\n%-16s %-14s %-6s %10s %10s\n", "task", "kind", "", v, w);
    }
    for (int t = 0; t < tr->T; t++)
        printf("%-16s %-14s %-6s %10.4f %10.4f\n", tr->ds.tasks[t].name,
               tr->sel.kinds[t] == TR_TASK_CLASSIFICATION ? "classification" : "regression",
               tr->sel.mixed ? task_mname(tr, t) : "", tr_task_metric(&tr->sel, t, &val[t]),
               tr_task_metric(&tr->sel, t, &test[t]));
    printf("%-16s %-14s %-6s %10.4f %10.4f\n", "mean", "", tr->sel.mixed ? mname : "",
           tr_mean_metric(&tr->sel, val, tr->T), tr_mean_metric(&tr->sel, test, tr->T));
    char dur[32];
    fmt_duration(dur, sizeof(dur), seconds);
    if (tr->eval_only) {
        printf("\nevaluated %s on %d rank(s) in %.1f s\n", tr->rep.run_dir, tr->grid.size, seconds);
        fflush(stdout);
        return;
    }
    printf("\nselected step %lld on validation %s; %d rank(s); time %s (%.1f s); "
           "%.0f training samples/s\nrun directory: %s\n",
           (long long)tr->sel.best_step, mname, tr->grid.size, dur, seconds,
           tr->rep.train_seconds > 0 ? (double)tr->rep.samples / tr->rep.train_seconds : 0.0,
           tr->rep.run_dir);
    fflush(stdout);
}

void tr_report_relations(const tr_trainer *tr, FILE *out) {
    for (int i = 0; i < tr->relations.n; i++) {
        const tr_relation *r = &tr->relations.items[i];
        if (strcmp(r->axes, "task,task") != 0 || strstr(r->name, "cov"))
            continue;
        fprintf(out, "\n%s\n%-14s", r->title, "");
        for (int j = 0; j < r->cols; j++)
            fprintf(out, " %8.8s", tr->ds.tasks[j].name);
        fprintf(out, "\n");
        for (int a = 0; a < r->rows; a++) {
            fprintf(out, "%-14.14s", tr->ds.tasks[a].name);
            for (int b = 0; b < r->cols; b++)
                fprintf(out, " %8.3f", r->data[(size_t)a * r->cols + b]);
            fprintf(out, "\n");
        }
    }
}
