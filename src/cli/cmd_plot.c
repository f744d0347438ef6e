/*
 * taskrel plot relations PATH -o FILE.png [--name NAME]   relation heatmaps
 * taskrel plot curves RUN -o FILE.png                     training curves
 *
 * PATH is a run directory or a relations.h5; the plots are drawn by gnuplot
 * from temporary data files. Serial (rank 0); read-only but for the output.
 * Not here: the text view of the same files (cmd_inspect.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "taskrel/h5summary.h"
#include "taskrel/relations.h"

/* ---- plot --------------------------------------------------------------------- */

/* Default: every relation the run wrote but covariances (their correlation
 * is shown); --name: that one. */
static int wanted(const tr_relation *r, const char *name) {
    if (name)
        return strcmp(r->name, name) == 0;
    size_t n = strlen(r->name);
    return !(n >= 4 && strcmp(r->name + n - 4, "_cov") == 0);
}

/* A string as a gnuplot single-quoted literal ('' is a quote inside). */
static void gp_quote(FILE *gp, const char *s) {
    fputc('\'', gp);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', gp);
        if (*s != '\n')
            fputc(*s, gp);
    }
    fputc('\'', gp);
}

/* The colour range and palette of one matrix: a correlation (or any matrix
 * with values of both signs, the diagonal included: a similarity with a
 * positive diagonal and negative off-diagonal entries is signed) on a
 * diverging palette symmetric about 0, scaled to its largest off-diagonal
 * magnitude; a non-negative (or non-positive) matrix on a sequential palette
 * from its smallest to its largest off-diagonal value. The diagonal of a
 * square matrix (1 for a correlation) is left out of the range so that it
 * does not flatten the rest. */
static void colour_range(FILE *gp, const tr_relation *r) {
    int sq = r->rows == r->cols && r->rows > 1, neg = 0, pos = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < r->rows; i++)
        for (int j = 0; j < r->cols; j++) {
            double v = r->data[(size_t)i * r->cols + j];
            if (!isfinite(v))
                continue;
            neg |= v < 0.0;
            pos |= v > 0.0;
            if (sq && i == j)
                continue;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    if (!(lo <= hi))
        lo = hi = 0.0;
    if (neg && pos) {
        double m = fmax(fmax(-lo, hi), 1e-12);
        fprintf(gp, "set palette defined (-1 '#2166ac', 0 '#f7f7f7', 1 '#b2182b')\n");
        fprintf(gp, "set cbrange [%.6g:%.6g]\n", -m, m);
    } else {
        double span = hi - lo, pad = span > 0 ? 0.0 : fmax(fabs(hi) * 0.05, 1e-6);
        fprintf(gp, "set palette defined (0 '#fff7ec', 0.5 '#fc8d59', 1 '#7f0000')\n");
        fprintf(gp, "set cbrange [%.6g:%.6g]\n", lo - pad, hi + pad);
    }
}

/* One heatmap panel per relation; values printed in the cells for small matrices. */
static void gnuplot_panel(FILE *gp, const tr_relation *r, const char *tasks, const char *datafile,
                          int index) {
    int sq = strcmp(r->axes, "task,task") == 0;
    fputs("set title ", gp);
    gp_quote(gp, r->title);
    fprintf(gp, " noenhanced\nset xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\n", r->cols - 1,
            r->rows - 1);
    colour_range(gp, r);
    /* square cells, unless the matrix is much wider than tall (or the reverse,
     * e.g. MRAN's T x D alignment weights): then a readable rectangle */
    int elongated = r->cols > 8 * r->rows || r->rows > 8 * r->cols;
    fprintf(gp, "set size ratio %s\nset format cb '%%.3g'\n", elongated ? "0.5" : "-1");
    char nm[64];
    fprintf(gp, "set xtics rotate by 45 right (");
    for (int j = 0; j < r->cols && r->cols <= 32; j++) {
        if (sq)
            tr_cli_task_name(nm, sizeof nm, tasks, j);
        else
            snprintf(nm, sizeof nm, "%d", j);
        fprintf(gp, "%s", j ? ", " : "");
        gp_quote(gp, nm);
        fprintf(gp, " %d", j);
    }
    fprintf(gp, ")\nset ytics (");
    for (int i = 0; i < r->rows && r->rows <= 32; i++) {
        tr_cli_task_name(nm, sizeof nm, tasks, i);
        fprintf(gp, "%s", i ? ", " : "");
        gp_quote(gp, nm);
        fprintf(gp, " %d", i);
    }
    fprintf(gp, ")\nplot ");
    gp_quote(gp, datafile);
    fprintf(gp, " index %d matrix with image notitle", index);
    if (r->rows <= 12 && r->cols <= 12)
        fprintf(gp,
                ", '' index %d matrix using 1:2:(abs($3) >= 0.01 || $3 == 0 ? "
                "sprintf('%%.2f',$3) : sprintf('%%.1e',$3)) with labels font ',8' notitle",
                index);
    fputc('\n', gp);
}

static tr_status write_data(const char *datafile, const tr_relations *rel, const char *name) {
    FILE *f = fopen(datafile, "w");
    TR_CHECK(f != NULL, TR_ERR_IO, "cannot write %s", datafile);
    for (int k = 0; k < rel->n; k++) {
        const tr_relation *r = &rel->items[k];
        if (!wanted(r, name))
            continue;
        fprintf(f, "# %s\n", r->name);
        for (int i = 0; i < r->rows; i++) {
            for (int j = 0; j < r->cols; j++)
                fprintf(f, "%s%.6g", j ? " " : "", r->data[(size_t)i * r->cols + j]);
            fprintf(f, "\n");
        }
        fprintf(f, "\n\n");
    }
    return fclose(f) == 0
               ? TR_OK
               : tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", datafile);
}

/* MRN's task covariance still the identity: no update happened. */
static void warn_never_updated(const tr_relations *rel) {
    for (int k = 0; k < rel->n; k++) {
        const tr_relation *r = &rel->items[k];
        size_t n = strlen(r->name);
        if (strncmp(r->name, "mrn.", 4) != 0 || n < 9 ||
            strcmp(r->name + n - 9, ".task_cov") != 0 || r->rows != r->cols)
            continue;
        int identity = 1;
        for (int i = 0; i < r->rows && identity; i++)
            for (int j = 0; j < r->cols && identity; j++)
                identity = r->data[(size_t)i * r->cols + j] == (i == j ? 1.0 : 0.0);
        if (identity)
            fprintf(stderr,
                    "taskrel plot: warning: %s is the identity: MRN's covariances were never "
                    "updated (a run shorter than mrn.update_every steps?), so its correlations "
                    "show nothing learned\n",
                    r->name);
    }
}

/* A temporary file under $TMPDIR (or /tmp); path in buf. */
static tr_status temp_file(char *buf, size_t cap, const char *what) {
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/taskrel-%s-XXXXXX", dir && dir[0] ? dir : "/tmp", what);
    int fd = mkstemp(buf);
    TR_CHECK(fd >= 0, TR_ERR_IO, "cannot create a temporary file %s: %s (set TMPDIR)", buf,
             strerror(errno));
    close(fd);
    return TR_OK;
}

/* -o must be a writable file before gnuplot runs (gnuplot writes the image to
 * stdout when it cannot open its output). */
static tr_status check_output(const char *out) {
    FILE *f = fopen(out, "a");
    TR_CHECK(f != NULL, TR_ERR_USAGE, "cannot write %s: %s", out, strerror(errno));
    fclose(f);
    return TR_OK;
}

/* Run a gnuplot script (stdout discarded, stderr to a temporary file shown on
 * failure); gnuplot's own exit status is reported. */
static tr_status run_gnuplot(const char *script) {
    char err[4096], cmd[8400];
    TR_CALL(temp_file(err, sizeof err, "gnuplot-err"));
    snprintf(cmd, sizeof cmd, "gnuplot '%s' >/dev/null 2>'%s'", script, err);
    int rc = system(cmd);
    tr_status st = TR_OK;
    int code = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
    if (code != 0) {
        char msg[600] = "";
        FILE *f = fopen(err, "r");
        if (f) {
            size_t n = fread(msg, 1, sizeof msg - 1, f);
            msg[n] = '\0';
            fclose(f);
        }
        st = tr_error_set(code == 127 ? TR_ERR_USAGE : TR_ERR_IO, __FILE__, __LINE__, __func__,
                          "gnuplot failed (exit status %d)%s%s", code, msg[0] ? ": " : "",
                          code == 127 ? "gnuplot not found (install gnuplot-nox)" : msg);
    }
    unlink(err);
    return st;
}

static tr_status plot_run(const tr_relations *rel, const char *name, const char *out,
                          const char *label) {
    int n = 0;
    for (int k = 0; k < rel->n; k++)
        n += wanted(&rel->items[k], name);
    TR_CHECK(n > 0, TR_ERR_DATA, "no relation matrix %s%sto plot", name ? name : "",
             name ? " " : "");
    TR_CALL(check_output(out));
    warn_never_updated(rel);
    char datafile[4096], script[4096];
    TR_CALL(temp_file(datafile, sizeof datafile, "plot-data"));
    tr_status st = temp_file(script, sizeof script, "plot-gp");
    if (st != TR_OK) {
        unlink(datafile);
        return st;
    }
    st = write_data(datafile, rel, name);
    FILE *gp = st == TR_OK ? fopen(script, "w") : NULL;
    if (st == TR_OK && !gp)
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", script);
    if (gp) {
        int cols = n < 3 ? n : 3, rows = (n + cols - 1) / cols;
        fprintf(gp, "set terminal pngcairo size %d,%d font ',10'\nset output ", 520 * cols,
                480 * rows + 30);
        gp_quote(gp, out);
        fprintf(gp,
                "\nset size ratio -1\nset termoption noenhanced\n"
                "set datafile commentschars '#'\nset multiplot layout %d,%d title ",
                rows, cols);
        gp_quote(gp, label);
        fputc('\n', gp);
        int idx = 0;
        for (int k = 0; k < rel->n; k++)
            if (wanted(&rel->items[k], name))
                gnuplot_panel(gp, &rel->items[k], rel->tasks, datafile, idx++);
        fprintf(gp, "unset multiplot\n");
        if (fclose(gp) != 0)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", script);
        if (st == TR_OK)
            st = run_gnuplot(script);
    }
    unlink(script);
    unlink(datafile);
    return st;
}

static void plot_label(char *buf, size_t cap, const char *path, const char *file);

/* taskrel plot curves RUN -o FILE.png: per task, the training loss (the
 * training lines of metrics.jsonl) and the validation metric against step. */
static tr_status plot_curves(const char *run, const char *out) {
    tr_metrics m;
    TR_CALL(tr_metrics_read(run, &m));
    tr_status st = check_output(out);
    char datafile[4096] = "", script[4096] = "";
    if (st == TR_OK)
        st = temp_file(datafile, sizeof datafile, "curves-data");
    if (st == TR_OK)
        st = temp_file(script, sizeof script, "curves-gp");
    FILE *d = st == TR_OK ? fopen(datafile, "w") : NULL;
    if (st == TR_OK && !d)
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", datafile);
    if (d) { /* block 0: training losses; block 1: validation metric */
        for (int pass = 0; pass < 2; pass++) {
            int any = 0;
            for (int i = 0; i < m.n; i++) {
                const tr_metrics_row *r = &m.rows[i];
                if (r->train != (pass == 0))
                    continue;
                any = 1;
                fprintf(d, "%lld", (long long)r->step);
                for (int t = 0; t < m.T; t++) {
                    double v = pass == 0 ? r->loss[t] : r->metric[t];
                    fprintf(d, isfinite(v) ? " %.9g" : " NaN", v);
                }
                fputc('\n', d);
            }
            if (!any) /* an empty block still counts as one */
                fprintf(d, "0%s\n", m.T > 0 ? " NaN" : "");
            fputs("\n\n", d);
        }
        if (fclose(d) != 0)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", datafile);
    }
    FILE *gp = st == TR_OK ? fopen(script, "w") : NULL;
    if (st == TR_OK && !gp)
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", script);
    if (gp) {
        char label[4200];
        plot_label(label, sizeof label, run, run);
        fputs("set terminal pngcairo size 1100,480 font ',10'\nset output ", gp);
        gp_quote(gp, out);
        fputs("\nset termoption noenhanced\nset datafile missing 'NaN'\nset key outside right\n"
              "set grid\nset xlabel 'step'\nset multiplot layout 1,2 title ",
              gp);
        gp_quote(gp, label);
        for (int pass = 0; pass < 2; pass++) {
            fprintf(gp, "\nset title '%s'\nset ylabel '%s'\nplot ",
                    pass == 0 ? "training loss (every train.log_every steps)" : "validation metric",
                    pass == 0 ? "loss" : m.metric);
            for (int t = 0; t < m.T; t++) {
                fprintf(gp, "%s", t ? ", " : "");
                gp_quote(gp, datafile);
                /* a colour and a marker per task: neighbours in the legend differ in both */
                static const int marker[] = {7, 5, 9, 11, 13, 15, 1, 2, 3, 4, 6, 8};
                fprintf(gp, " index %d using 1:%d with linespoints lc %d dt %d pt %d ps 0.5 title ",
                        pass, t + 2, t % 8 + 1, t / 8 % 4 + 1, marker[t % 12]);
                gp_quote(gp, m.names[t]);
            }
        }
        fputs("\nunset multiplot\n", gp);
        if (fclose(gp) != 0)
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", script);
        if (st == TR_OK)
            st = run_gnuplot(script);
    }
    if (script[0])
        unlink(script);
    if (datafile[0])
        unlink(datafile);
    tr_metrics_free(&m);
    return st;
}

/* "RUN (step N)": the run directory or file, and the step its matrices are of
 * (a checkpoint's step; a run's last step in its metrics.jsonl). */
static void plot_label(char *buf, size_t cap, const char *path, const char *file) {
    long long step = -1;
    char m[4096];
    snprintf(m, sizeof m, "%s/metrics.jsonl", path);
    FILE *f = tr_cli_is_dir(path) ? fopen(m, "r") : NULL;
    if (f) {
        char line[4096];
        long long s;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "{\"step\":%lld", &s) == 1 && s > step)
                step = s;
        fclose(f);
    } else {
        tr_h5_summary sm;
        if (tr_h5_summary_read(file, &sm) == TR_OK) {
            for (int i = 0; i < sm.n_attrs; i++)
                if (strcmp(sm.attrs[i].name, "step") == 0 && sm.attrs[i].kind == TR_H5_ATTR_INT &&
                    sm.attrs[i].count == 1)
                    step = sm.attrs[i].ints[0];
            tr_h5_summary_free(&sm);
        } else {
            tr_error_clear();
        }
    }
    if (step >= 0)
        snprintf(buf, cap, "%s (step %lld)", path, step);
    else
        snprintf(buf, cap, "%s", path);
}

/* Why a run may have no relation to plot. */
#define NO_RELATIONS                                                                               \
    "MRN, MRAN, MMoE and cross-stitch write them; HPS and STL only with "                          \
    "relations.grad_every > 0 or a gradient weighting, as grad.cos"

static const char *relations_file(const char *path, char *buf, size_t cap) {
    if (!tr_cli_is_dir(path))
        return path;
    snprintf(buf, cap, "%s/relations.h5", path);
    if (!tr_cli_readable(buf))
        snprintf(buf, cap, "%s/checkpoints/latest", path);
    return buf;
}

tr_status tr_cmd_plot(int argc, char **argv) {
    const char *what = NULL, *path = NULL, *out = NULL, *name = NULL;
    static const tr_cli_option opts[] = {{"out", 'o', 1, 'o'}, {"name", 0, 1, 'n'}};
    tr_cli_args a;
    TR_CALL(tr_cli_parse(&a, "plot", opts, 2, argc, argv));
    int help = a.help, npos = a.npos;
    const char *extra = npos > 2 ? a.pos[2] : NULL;
    what = npos > 0 ? a.pos[0] : NULL;
    path = npos > 1 ? a.pos[1] : NULL;
    for (int i = 0; i < a.nopts; i++)
        *(a.opts[i].id == 'o' ? &out : &name) = a.opts[i].value;
    tr_cli_args_free(&a);
    if (!what || help) {
        printf("usage: taskrel plot relations RUN_DIR|FILE.h5 -o FILE.png [--name NAME]\n"
               "       taskrel plot curves RUN_DIR -o FILE.png\n"
               "curves: per task the training loss (metrics.jsonl's training lines) and the\n"
               "validation metric against step.\n"
               "Heatmaps of the learned relation matrices (default: every matrix the run\n"
               "wrote but covariances; --name picks one, e.g. mrn.fc8.task_corr; `taskrel\n"
               "inspect` lists them). Colours: correlations and signed matrices diverge\n"
               "about 0, scaled to their largest off-diagonal magnitude; non-negative ones\n"
               "on a sequential palette. Temporary files go to $TMPDIR.\n");
        return tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                            help ? "help shown" : "plot needs a subject");
    }
    TR_CHECK(strcmp(what, "relations") == 0 || strcmp(what, "curves") == 0, TR_ERR_USAGE,
             "unknown plot '%s' (available: relations, curves)", what);
    TR_CHECK(!extra, TR_ERR_USAGE, "plot %s: unexpected argument '%s'", what, extra);
    if (strcmp(what, "curves") == 0) {
        TR_CHECK(path && out, TR_ERR_USAGE, "usage: taskrel plot curves RUN_DIR -o FILE.png");
        TR_CALL(plot_curves(path, out));
        printf("wrote %s\n", out);
        return TR_OK;
    }
    TR_CHECK(path && out, TR_ERR_USAGE, "usage: taskrel plot relations PATH -o FILE.png");
    TR_CALL(tr_path_check_writable(out, "-o"));
    tr_h5_errors_quiet();
    char buf[2048];
    const char *file = relations_file(path, buf, sizeof buf);
    TR_CHECK(!tr_cli_is_dir(path) || tr_cli_readable(file), TR_ERR_DATA,
             "%s: no relations.h5: the run wrote no learned relations "
             "(" NO_RELATIONS ")",
             path);
    TR_CHECK(tr_cli_readable(file), TR_ERR_DATA, "%s: no such file", file);
    tr_relations rel;
    int found = 0;
    TR_CALL(tr_relations_load(file, &rel, &found));
    TR_CHECK(found, TR_ERR_DATA, "%s has no learned relations (" NO_RELATIONS ")", file);
    char label[4200];
    plot_label(label, sizeof label, path, file);
    tr_status st = plot_run(&rel, name, out, label);
    tr_relations_free(&rel);
    if (st == TR_OK)
        printf("wrote %s\n", out);
    return st;
}
