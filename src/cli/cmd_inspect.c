/*
 * taskrel inspect PATH           a file's attributes, tensors and relation matrices
 * taskrel plot relations PATH -o FILE.png [--name NAME]   heatmaps (gnuplot)
 *
 * PATH is an HDF5 file written by taskrel (model.h5, relations.h5, a
 * checkpoint) or a run directory, for which its relations.h5 and model.h5 are
 * shown. Serial (rank 0); read-only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "taskrel/h5summary.h"
#include "taskrel/mrn_math.h"
#include "taskrel/relations.h"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p) {
    return access(p, R_OK) == 0;
}

/* ---- attributes and tensors --------------------------------------------------- */

static void print_attr(const tr_h5_attr_info *a) {
    switch (a->kind) {
    case TR_H5_ATTR_TEXT:
        if (strchr(a->text, '\n'))
            printf("  %-14s (%zu bytes of text; first line: %.*s)\n", a->name, strlen(a->text),
                   (int)strcspn(a->text, "\n"), a->text);
        else
            printf("  %-14s %s\n", a->name, a->text);
        return;
    case TR_H5_ATTR_INT:
        printf("  %-14s", a->name);
        for (int64_t i = 0; i < a->count; i++)
            printf(" %lld", a->ints[i]);
        printf("\n");
        return;
    case TR_H5_ATTR_FLOAT:
        printf("  %-14s", a->name);
        for (int64_t i = 0; i < a->count; i++)
            printf(" %.6g", a->reals[i]);
        printf("\n");
        return;
    case TR_H5_ATTR_OTHER:
        printf("  %-14s (%lld values)\n", a->name, (long long)a->count);
        return;
    }
}

static void print_dataset(const tr_h5_dataset_info *d) {
    char shape[128] = "";
    for (int i = 0; i < d->ndim; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", i ? " x " : "",
                 (unsigned long long)d->dims[i]);
    printf("  %-41s %-8s %s\n", d->path, d->type, d->ndim ? shape : "scalar");
}

static tr_status inspect_tensors(const char *path) {
    tr_h5_summary s;
    TR_CALL(tr_h5_summary_read(path, &s));
    printf("%s\n attributes:\n", path);
    for (int i = 0; i < s.n_attrs; i++)
        print_attr(&s.attrs[i]);
    printf(" tensors:\n");
    for (int i = 0; i < s.n_datasets; i++)
        print_dataset(&s.datasets[i]);
    if (s.n_datasets == 0)
        printf("  (none besides /relations)\n");
    tr_h5_summary_free(&s);
    return TR_OK;
}

/* ---- relation matrices ------------------------------------------------------- */

/* Task name k of the comma-separated list (or "k"). */
static void task_name(char *out, size_t cap, const char *tasks, int k) {
    const char *p = tasks;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    if (!p || !*p) {
        snprintf(out, cap, "%d", k);
        return;
    }
    size_t n = strcspn(p, ",");
    snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), p);
}

static void print_relation(const tr_relation *r, const char *tasks) {
    int row_tasks = strncmp(r->axes, "task", 4) == 0;
    int col_tasks = strcmp(r->axes, "task,task") == 0;
    printf("\n%s  [%s, %d x %d]\n%-12s", r->title, r->name, r->rows, r->cols, "");
    int cols = r->cols > 16 ? 16 : r->cols;
    char nm[64];
    for (int j = 0; j < cols; j++) {
        if (col_tasks)
            task_name(nm, sizeof nm, tasks, j);
        else
            snprintf(nm, sizeof nm, "%d", j);
        printf(" %8.8s", nm);
    }
    printf("%s\n", cols < r->cols ? " ..." : "");
    for (int i = 0; i < r->rows; i++) {
        if (row_tasks)
            task_name(nm, sizeof nm, tasks, i);
        else
            snprintf(nm, sizeof nm, "%d", i);
        printf("%-12.12s", nm);
        for (int j = 0; j < cols; j++)
            printf(" %8.3f", r->data[(size_t)i * r->cols + j]);
        printf("\n");
    }
}

/* The true task covariance of a synthetic-tn dataset (/truth/sigma3, T x T). */
static tr_status load_truth(const char *path, double **sigma, int *T) {
    TR_CHECK(exists(path) && tr_h5_is_file(path), TR_ERR_DATA, "%s: not a readable HDF5 file",
             path);
    int rows = 0, cols = 0, found = 0;
    TR_CALL(tr_h5_read_matrix(path, "truth/sigma3", sigma, &rows, &cols, &found));
    TR_CHECK(found, TR_ERR_DATA,
             "%s has no /truth/sigma3 (only synthetic-tn data has a known task covariance)", path);
    if (rows != cols || rows > 4096) {
        free(*sigma);
        *sigma = NULL;
        TR_RAISE(TR_ERR_DATA, "%s: /truth/sigma3 is not a square matrix", path);
    }
    *T = rows;
    return TR_OK;
}

/* Pearson r over the off-diagonal entries of each task correlation matrix
 * against the true correlation. */
static tr_status score_truth(const tr_relations *rel, const char *truth) {
    double *sigma = NULL;
    int T = 0;
    tr_status st = load_truth(truth, &sigma, &T);
    if (st == TR_OK)
        st = tr_mrn_corr(sigma, sigma, T);
    printf("\nagreement with the true task correlation of %s\n(Pearson r over off-diagonal "
           "entries):\n",
           truth);
    for (int i = 0; i < rel->n && st == TR_OK; i++) {
        const tr_relation *r = &rel->items[i];
        if (strcmp(r->axes, "task,task") != 0 || !strstr(r->name, "corr"))
            continue;
        if (r->rows != T) {
            st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                              "%s is %d x %d but the dataset has %d tasks", r->name, r->rows,
                              r->cols, T);
            break;
        }
        double pr;
        tr_mrn_offdiag_pearson(&pr, r->data, sigma, T);
        printf("  %-28s r = %.4f\n", r->name, pr);
    }
    free(sigma);
    return st;
}

static tr_status inspect_relations(const char *path, const char *truth, int *found) {
    tr_relations rel;
    TR_CALL(tr_relations_load(path, &rel, found));
    for (int i = 0; i < rel.n; i++)
        print_relation(&rel.items[i], rel.tasks);
    tr_status st = *found && truth ? score_truth(&rel, truth) : TR_OK;
    tr_relations_free(&rel);
    return st;
}

static tr_status inspect_file(const char *path, const char *truth) {
    TR_CHECK(exists(path), TR_ERR_DATA, "%s: no such file", path);
    TR_CHECK(tr_h5_is_file(path), TR_ERR_DATA, "%s: not an HDF5 file", path);
    TR_CALL(inspect_tensors(path));
    int found = 0;
    TR_CALL(inspect_relations(path, truth, &found));
    return TR_OK;
}

static tr_status inspect_path(const char *path, const char *truth) {
    if (!is_dir(path))
        return inspect_file(path, truth);
    const char *names[] = {"checkpoints/latest", "model.h5", "relations.h5"};
    char p[2048];
    int shown = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        if (!exists(p))
            continue;
        if (shown++)
            printf("\n");
        TR_CALL(inspect_file(p, strstr(names[i], "relations") ? truth : NULL));
    }
    TR_CHECK(shown > 0, TR_ERR_DATA,
             "%s: no model.h5, relations.h5 or checkpoint in this directory", path);
    return TR_OK;
}

tr_status tr_cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *truth = NULL;
    static const tr_cli_option opts[] = {{"truth", 0, 1, 0}};
    tr_cli_args a;
    TR_CALL(tr_cli_parse(&a, "inspect", opts, 1, argc, argv));
    int help = a.help, npos = a.npos;
    const char *second = npos > 1 ? a.pos[1] : NULL;
    path = npos > 0 ? a.pos[0] : NULL;
    truth = a.nopts > 0 ? a.opts[a.nopts - 1].value : NULL;
    tr_cli_args_free(&a);
    if (help) {
        printf("usage: taskrel inspect RUN_DIR|FILE.h5 [--truth DATASET.h5]\n"
               "Prints a taskrel HDF5 file's attributes (step, grid, format), its tensors\n"
               "with their global shapes, and the learned relation matrices. For a run\n"
               "directory: its latest checkpoint, model.h5 and relations.h5. --truth scores\n"
               "the task correlations against a synthetic-tn dataset's true covariance.\n");
        return tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__, "help shown");
    }
    TR_CHECK(!second, TR_ERR_USAGE, "inspect takes one path ('%s' is a second one)", second);
    TR_CHECK(path != NULL, TR_ERR_USAGE,
             "usage: taskrel inspect RUN_DIR|FILE.h5 [--truth DATA.h5]");
    tr_h5_errors_quiet();
    return inspect_path(path, truth);
}

/* ---- plot --------------------------------------------------------------------- */

static int wanted(const tr_relation *r, const char *name) {
    if (name)
        return strcmp(r->name, name) == 0;
    return strcmp(r->axes, "task,task") == 0 && strstr(r->name, "corr") != NULL;
}

/* One heatmap panel per relation; values printed in the cells for small matrices. */
static void gnuplot_panel(FILE *gp, const tr_relation *r, const char *tasks, const char *datafile) {
    int sq = strcmp(r->axes, "task,task") == 0;
    fprintf(gp, "set title \"%s\" noenhanced\n", r->title);
    fprintf(gp, "set xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\n", r->cols - 1, r->rows - 1);
    if (sq) {
        fprintf(gp, "set cbrange [-1:1]\n");
    } else {
        fprintf(gp, "set autoscale cb\n");
    }
    char nm[64];
    fprintf(gp, "set xtics rotate by 45 right (");
    for (int j = 0; j < r->cols && r->cols <= 32; j++) {
        if (sq)
            task_name(nm, sizeof nm, tasks, j);
        else
            snprintf(nm, sizeof nm, "%d", j);
        fprintf(gp, "%s\"%s\" %d", j ? ", " : "", nm, j);
    }
    fprintf(gp, ")\nset ytics (");
    for (int i = 0; i < r->rows && r->rows <= 32; i++) {
        task_name(nm, sizeof nm, tasks, i);
        fprintf(gp, "%s\"%s\" %d", i ? ", " : "", nm, i);
    }
    fprintf(gp, ")\n");
    if (r->rows <= 12 && r->cols <= 12)
        fprintf(gp,
                "plot '%s' index %s matrix with image notitle, '' index %s matrix using "
                "1:2:(sprintf('%%.2f',$3)) with labels font ',8' notitle\n",
                datafile, r->name, r->name);
    else
        fprintf(gp, "plot '%s' index %s matrix with image notitle\n", datafile, r->name);
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

static tr_status plot_run(const tr_relations *rel, const char *name, const char *out) {
    int n = 0;
    for (int k = 0; k < rel->n; k++)
        n += wanted(&rel->items[k], name);
    TR_CHECK(n > 0, TR_ERR_DATA, "no relation matrix %s%sto plot", name ? name : "",
             name ? " " : "");
    char datafile[] = "/tmp/taskrel-plot-XXXXXX";
    int fd = mkstemp(datafile);
    TR_CHECK(fd >= 0, TR_ERR_IO, "cannot create a temporary file");
    close(fd);
    tr_status st = write_data(datafile, rel, name);
    if (st == TR_OK) {
        int cols = n < 3 ? n : 3, rows = (n + cols - 1) / cols;
        FILE *gp = popen("gnuplot 2>/tmp/taskrel-gnuplot.err", "w");
        if (!gp) {
            st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot run gnuplot");
        } else {
            fprintf(gp, "set terminal pngcairo size %d,%d font ',10'\nset output '%s'\n",
                    520 * cols, 480 * rows, out);
            fprintf(gp, "set palette defined (-1 '#2166ac', 0 '#f7f7f7', 1 '#b2182b')\n");
            fprintf(
                gp,
                "set size ratio -1\nset termoption noenhanced\nset datafile commentschars '#'\n");
            fprintf(gp, "set multiplot layout %d,%d\n", rows, cols);
            int idx = 0;
            for (int k = 0; k < rel->n; k++) {
                tr_relation r = rel->items[k];
                if (!wanted(&r, name))
                    continue;
                char index[16];
                snprintf(index, sizeof index, "%d", idx++);
                snprintf(r.name, sizeof r.name, "%s", index); /* gnuplot data-block index */
                gnuplot_panel(gp, &r, rel->tasks, datafile);
            }
            fprintf(gp, "unset multiplot\n");
            int rc = pclose(gp);
            if (rc != 0)
                st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__,
                                  "gnuplot failed (exit %d); see /tmp/taskrel-gnuplot.err", rc);
        }
    }
    unlink(datafile);
    return st;
}

static const char *relations_file(const char *path, char *buf, size_t cap) {
    if (!is_dir(path))
        return path;
    snprintf(buf, cap, "%s/relations.h5", path);
    if (!exists(buf))
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
        printf(
            "usage: taskrel plot relations RUN_DIR|FILE.h5 -o FILE.png [--name NAME]\n"
            "Heatmaps of the learned relation matrices (default: every task correlation\n"
            "matrix; --name picks one, e.g. mrn.fc8.task_corr; `taskrel inspect` lists them).\n");
        return tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                            help ? "help shown" : "plot needs a subject");
    }
    TR_CHECK(strcmp(what, "relations") == 0, TR_ERR_USAGE,
             "unknown plot '%s' (available: relations)", what);
    TR_CHECK(!extra, TR_ERR_USAGE, "plot relations: unexpected argument '%s'", extra);
    TR_CHECK(path && out, TR_ERR_USAGE, "usage: taskrel plot relations PATH -o FILE.png");
    tr_h5_errors_quiet();
    char buf[2048];
    const char *file = relations_file(path, buf, sizeof buf);
    TR_CHECK(exists(file), TR_ERR_DATA, "%s: no such file (no relations.h5 in a run directory?)",
             file);
    tr_relations rel;
    int found = 0;
    TR_CALL(tr_relations_load(file, &rel, &found));
    TR_CHECK(found, TR_ERR_DATA, "%s has no /relations group (was the model mrn or mran?)", file);
    tr_status st = plot_run(&rel, name, out);
    tr_relations_free(&rel);
    if (st == TR_OK)
        printf("wrote %s\n", out);
    return st;
}
