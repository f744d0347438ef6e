/*
 * taskrel inspect PATH           a file's attributes, tensors and relation matrices
 *
 * PATH is an HDF5 file written by taskrel (model.h5, relations.h5, a
 * checkpoint) or a run directory, for which its relations.h5 and model.h5 are
 * shown. Serial (rank 0); read-only. Not here: the plots (cmd_plot.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "taskrel/h5summary.h"
#include "taskrel/mrn_math.h"
#include "taskrel/relations.h"

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

static void print_relation(const tr_relation *r, const char *tasks) {
    int row_tasks = strncmp(r->axes, "task", 4) == 0;
    int col_tasks = strcmp(r->axes, "task,task") == 0;
    printf("\n%s  [%s, %d x %d]\n%-12s", r->title, r->name, r->rows, r->cols, "");
    int cols = r->cols > 16 ? 16 : r->cols;
    char nm[64];
    for (int j = 0; j < cols; j++) {
        if (col_tasks)
            tr_cli_task_name(nm, sizeof nm, tasks, j);
        else
            snprintf(nm, sizeof nm, "%d", j);
        printf(" %8.8s", nm);
    }
    printf("%s\n", cols < r->cols ? " ..." : "");
    for (int i = 0; i < r->rows; i++) {
        if (row_tasks)
            tr_cli_task_name(nm, sizeof nm, tasks, i);
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
    TR_CHECK(tr_cli_readable(path) && tr_h5_is_file(path), TR_ERR_DATA,
             "%s: not a readable HDF5 file", path);
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
    double *sigma = NULL, *centred = NULL;
    int T = 0;
    tr_status st = load_truth(truth, &sigma, &T);
    if (st == TR_OK) { /* C Sigma3 C, C = I - 11'/T: what a run with mrn.mean = shared estimates */
        centred = malloc((size_t)T * (size_t)T * sizeof(double));
        st = centred ? tr_mrn_centre_precision(centred, sigma, T)
                     : tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
    }
    if (st == TR_OK)
        st = tr_mrn_corr(centred, centred, T);
    if (st == TR_OK)
        st = tr_mrn_corr(sigma, sigma, T);
    printf("\nagreement with the true task correlation of %s\n(Pearson r over off-diagonal "
           "entries; relations of deviations from the task mean against the centred truth):\n",
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
        int is_centred = strstr(r->title, TR_MRN_CENTRED_TITLE) != NULL;
        tr_mrn_offdiag_pearson(&pr, r->data, is_centred ? centred : sigma, T);
        if (is_centred)
            printf("  (%s describes W_t - mean_t W_t: scored against C Sigma3 C)\n", r->name);
        printf("  %-28s r = %.4f\n", r->name, pr);
    }
    free(centred);
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
    TR_CHECK(tr_cli_readable(path), TR_ERR_DATA, "%s: no such file", path);
    TR_CHECK(tr_h5_is_file(path), TR_ERR_DATA, "%s: not an HDF5 file", path);
    TR_CALL(inspect_tensors(path));
    int found = 0;
    TR_CALL(inspect_relations(path, truth, &found));
    return TR_OK;
}

static tr_status inspect_path(const char *path, const char *truth) {
    if (!tr_cli_is_dir(path))
        return inspect_file(path, truth);
    const char *names[] = {"checkpoints/latest", "model.h5", "relations.h5"};
    char p[2048];
    int shown = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        if (!tr_cli_readable(p))
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
