/*
 * `taskrel data import`: NumPy arrays or CSV tables to the dataset layout.
 * Inputs become sources (one for shared-input data, one per task for
 * multi-input), each with x (n, d) and y (n, columns) per split; missing val
 * and test splits are cut from train by a seeded permutation; then kinds,
 * class counts and names are settled and tr_dataset_save writes the file.
 * Not here: the readers (npy.c, csv.c) and the command line (src/cli).
 */
#include "taskrel/import.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/config.h"
#include "taskrel/dataset.h"
#include "io/dataset_extra.h"

typedef struct {
    int64_t n;
    double *x; /* (n, d) */
    double *y; /* (n, ycols) */
} imp_part;

typedef struct {
    char name[64];
    imp_part part[TR_SPLIT_COUNT];
    int have[TR_SPLIT_COUNT];
    int y_integer; /* labels stored with an integer dtype, or all integral (CSV) */
} imp_source;

typedef struct {
    int shared; /* 1: one source whose y has T columns */
    int nsrc;
    imp_source *src;
    int64_t d;
    int ndim;
    int64_t dims[3];
    int ycols;
    char (*colname)[64]; /* (ycols) shared-input task names */
} imp_data;

void tr_import_opts_default(tr_import_opts *o) {
    memset(o, 0, sizeof(*o));
    o->kind = -1;
    o->seed = 1;
}

static void imp_free(imp_data *D) {
    for (int s = 0; D->src && s < D->nsrc; s++)
        for (int p = 0; p < TR_SPLIT_COUNT; p++) {
            free(D->src[s].part[p].x);
            free(D->src[s].part[p].y);
        }
    free(D->src);
    free(D->colname);
    memset(D, 0, sizeof(*D));
}

static int split_of(const char *s) {
    for (int p = 0; p < TR_SPLIT_COUNT; p++)
        if (strcmp(s, tr_split_name((tr_split)p)) == 0)
            return p;
    return -1;
}

static tr_status add_source(imp_data *D, const char *name, int *idx) {
    for (int s = 0; s < D->nsrc; s++)
        if (strcmp(D->src[s].name, name) == 0) {
            *idx = s;
            return TR_OK;
        }
    TR_CHECK(D->nsrc < TR_MAX_TASKS, TR_ERR_DATA, "import: more than %d tasks", TR_MAX_TASKS);
    TR_CHECK(strlen(name) < 64, TR_ERR_DATA, "import: task name '%s' is longer than 63 bytes",
             name);
    imp_source *src = realloc(D->src, (size_t)(D->nsrc + 1) * sizeof(*src));
    TR_CHECK(src != NULL, TR_ERR_NOMEM, "import: out of memory");
    D->src = src;
    memset(&src[D->nsrc], 0, sizeof(*src));
    snprintf(src[D->nsrc].name, 64, "%s", name);
    *idx = D->nsrc++;
    return TR_OK;
}

/* Per-sample shape from x's trailing dims (or --image), checked against earlier ones. */
static tr_status set_shape(imp_data *D, int ndim, const int64_t *dims, const int64_t *image,
                           const char *what) {
    int64_t d = 1, sd[3] = {0, 0, 0};
    for (int i = 0; i < ndim; i++)
        d *= dims[i];
    int nd;
    if (image[0] > 0) {
        TR_CHECK(image[0] * image[1] * image[2] == d, TR_ERR_USAGE,
                 "import: --image %lldx%lldx%lld does not match the %lld values per example of %s",
                 (long long)image[0], (long long)image[1], (long long)image[2], (long long)d, what);
        nd = 3;
        memcpy(sd, image, sizeof(sd));
    } else if (ndim == 1) {
        nd = 1, sd[0] = dims[0];
    } else if (ndim == 2) {
        nd = 3, sd[0] = 1, sd[1] = dims[0], sd[2] = dims[1];
    } else {
        TR_CHECK(ndim == 3, TR_ERR_DATA,
                 "import: %s: examples of rank %d; expected (n, d), (n, H, W) or (n, C, H, W)",
                 what, ndim);
        nd = 3;
        memcpy(sd, dims, sizeof(sd));
    }
    TR_CHECK(d >= 1, TR_ERR_DATA, "import: %s: examples have no values", what);
    if (D->d == 0) {
        D->d = d, D->ndim = nd;
        memcpy(D->dims, sd, sizeof(sd));
    } else {
        TR_CHECK(D->ndim == nd && memcmp(D->dims, sd, sizeof(sd)) == 0, TR_ERR_DATA,
                 "import: %s: per-example shape differs from the earlier x arrays", what);
    }
    return TR_OK;
}

static tr_status check_finite(const double *v, int64_t n, const char *what) {
    for (int64_t i = 0; i < n; i++)
        TR_CHECK(isfinite(v[i]), TR_ERR_DATA, "import: %s contains %s at element %lld", what,
                 isnan(v[i]) ? "NaN" : "Inf", (long long)i);
    return TR_OK;
}

/* ---- NumPy arrays ----------------------------------------------------------------- */

/* "x_train" / "orig/y_val" / "orig.x_test" -> task prefix (or ""), x or y, split. */
static int parse_key(const char *key, char *task, size_t cap, int *is_y, int *split) {
    size_t L = strlen(key);
    for (int p = 0; p < TR_SPLIT_COUNT; p++) {
        const char *sn = tr_split_name((tr_split)p);
        size_t sl = strlen(sn);
        if (L < sl + 2 || strcmp(key + L - sl, sn) != 0 || key[L - sl - 1] != '_')
            continue;
        char xy = key[L - sl - 2];
        if (xy != 'x' && xy != 'y')
            continue;
        size_t pre = L - sl - 2;
        if (pre > 0 && key[pre - 1] != '/' && key[pre - 1] != '.')
            continue;
        if (pre == 0)
            task[0] = '\0';
        else
            snprintf(task, cap, "%.*s", (int)(pre - 1), key);
        *is_y = xy == 'y';
        *split = p;
        return 1;
    }
    return 0;
}

static tr_status take_array(imp_data *D, tr_array *a, const tr_import_opts *o) {
    char task[256];
    int is_y = 0, sp = 0;
    TR_CHECK(parse_key(a->name, task, sizeof(task), &is_y, &sp), TR_ERR_DATA,
             "import: array '%s': expected names x_train, y_train, x_val, y_val, x_test, y_test "
             "(shared-input) or TASK/x_train, TASK/y_train, ... (multi-input)",
             a->name);
    int multi = task[0] != '\0';
    TR_CHECK(D->nsrc == 0 || multi == !D->shared, TR_ERR_DATA,
             "import: array '%s': mixes shared-input names (x_train) and per-task names "
             "(TASK/x_train)",
             a->name);
    D->shared = !multi;
    TR_CHECK(!multi || strlen(task) > 0, TR_ERR_DATA, "import: array '%s': empty task", a->name);
    int s = 0;
    TR_CALL(add_source(D, multi ? task : "", &s));
    imp_part *P = &D->src[s].part[sp];
    TR_CHECK(a->ndim >= 1, TR_ERR_DATA, "import: array '%s' is a scalar", a->name);
    int64_t n = a->shape[0];
    TR_CHECK(P->n == 0 || P->n == n, TR_ERR_DATA,
             "import: '%s' has %lld rows, its %s partner has %lld", a->name, (long long)n,
             is_y ? "x" : "y", (long long)P->n);
    P->n = n;
    if (!is_y) {
        TR_CHECK(a->ndim >= 2, TR_ERR_DATA, "import: x array '%s' must be (n, ...), got rank 1",
                 a->name);
        TR_CALL(set_shape(D, a->ndim - 1, a->shape + 1, o->image, a->name));
        TR_CALL(check_finite(a->data, a->count, a->name));
        P->x = a->data;
    } else {
        int cols = a->ndim == 1 ? 1 : (int)a->shape[1];
        TR_CHECK(a->ndim <= 2 && cols >= 1 && (multi ? cols == 1 : 1), TR_ERR_DATA,
                 "import: y array '%s' must be (n)%s, got rank %d", a->name,
                 multi ? " or (n, 1)" : " or (n, T)", a->ndim);
        TR_CHECK(D->ycols == 0 || D->ycols == cols, TR_ERR_DATA,
                 "import: y array '%s' has %d columns, other y arrays have %d", a->name, cols,
                 D->ycols);
        D->ycols = cols;
        TR_CALL(check_finite(a->data, a->count, a->name));
        P->y = a->data;
        if (sp == TR_SPLIT_TRAIN || !D->src[s].have[TR_SPLIT_TRAIN])
            D->src[s].y_integer = a->is_integer;
    }
    a->data = NULL; /* moved */
    return TR_OK;
}

static int has_ext(const char *path, const char *ext) {
    size_t L = strlen(path), e = strlen(ext);
    return L > e && strcasecmp(path + L - e, ext) == 0;
}

static tr_status from_numpy(imp_data *D, const tr_import_opts *o) {
    for (int i = 0; i < o->ninputs; i++) {
        tr_array *arr = NULL;
        int n = 0;
        if (has_ext(o->inputs[i], ".npz")) {
            TR_CALL(tr_npz_read(o->inputs[i], &arr, &n));
        } else {
            TR_ALLOC(arr, 1, "array");
            n = 1;
            tr_status st = tr_npy_read(&arr[0], o->inputs[i]);
            if (st != TR_OK)
                tr_free(arr);
            TR_CALL(st);
        }
        tr_status st = TR_OK;
        for (int k = 0; k < n && st == TR_OK; k++)
            st = take_array(D, &arr[k], o);
        for (int k = 0; k < n; k++)
            tr_array_free(&arr[k]);
        tr_free(arr);
        TR_CALL(st);
    }
    for (int s = 0; s < D->nsrc; s++)
        for (int p = 0; p < TR_SPLIT_COUNT; p++) {
            imp_part *P = &D->src[s].part[p];
            const char *pre = D->shared ? "" : D->src[s].name, *sep = D->shared ? "" : "/";
            TR_CHECK((P->x == NULL) == (P->y == NULL), TR_ERR_DATA,
                     "import: %s%s%c_%s without %c_%s", pre, sep, P->x ? 'x' : 'y',
                     tr_split_name((tr_split)p), P->x ? 'y' : 'x', tr_split_name((tr_split)p));
            D->src[s].have[p] = P->x != NULL;
        }
    return TR_OK;
}

/* ---- CSV --------------------------------------------------------------------------- */

static tr_status from_csv(imp_data *D, const tr_csv *t, const tr_import_opts *o, const char *path) {
    TR_CHECK(o->nlabels >= 1, TR_ERR_USAGE,
             "import: a CSV needs --label COLUMN (the target; repeat it for several tasks)");
    int tcol = -1, scol = -1;
    if (o->task_column) {
        tcol = tr_csv_column(t, o->task_column);
        TR_CHECK(tcol >= 0, TR_ERR_DATA, "import: %s has no column '%s' (--task-column)", path,
                 o->task_column);
        TR_CHECK(o->nlabels == 1, TR_ERR_USAGE,
                 "import: with --task-column, give one --label (the target of every task)");
    }
    const char *sname = o->split_column ? o->split_column : "split";
    scol = tr_csv_column(t, sname);
    TR_CHECK(scol >= 0 || !o->split_column, TR_ERR_DATA,
             "import: %s has no column '%s' (--split-column)", path, sname);
    int lcol[TR_MAX_TASKS];
    int is_label[4096] = {0};
    for (int j = 0; j < o->nlabels; j++) {
        lcol[j] = tr_csv_column(t, o->labels[j]);
        TR_CHECK(lcol[j] >= 0, TR_ERR_DATA, "import: %s has no column '%s' (--label)", path,
                 o->labels[j]);
        is_label[lcol[j]] = 1;
    }
    int fcols[4096], nf = 0;
    for (int c = 0; c < t->ncols; c++)
        if (!is_label[c] && c != tcol && c != scol)
            fcols[nf++] = c;
    TR_CHECK(nf >= 1, TR_ERR_DATA, "import: %s has no feature columns besides the labels", path);
    int64_t one[1] = {nf};
    TR_CALL(set_shape(D, 1, one, o->image, path));

    D->shared = tcol < 0;
    D->ycols = D->shared ? o->nlabels : 1;
    if (D->shared) {
        int s = 0;
        TR_CALL(add_source(D, "", &s));
    }
    /* first pass: sources and counts; second: fill */
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t r = 0; r < t->nrows; r++) {
            const char *const *row = (const char *const *)t->text + r * t->ncols;
            const double *num = t->num + r * t->ncols;
            int sp = TR_SPLIT_TRAIN;
            if (scol >= 0) {
                sp = split_of(row[scol]);
                TR_CHECK(sp >= 0, TR_ERR_DATA,
                         "import: %s: row %lld: %s = '%s', expected train, val or test", path,
                         (long long)r + 2, sname, row[scol]);
            }
            int s = 0;
            if (tcol >= 0) {
                TR_CHECK(row[tcol][0] != '\0', TR_ERR_DATA, "import: %s: row %lld: empty task",
                         path, (long long)r + 2);
                TR_CALL(add_source(D, row[tcol], &s));
            }
            imp_part *P = &D->src[s].part[sp];
            if (pass == 0) {
                P->n++;
                D->src[s].have[sp] = 1;
                continue;
            }
            int64_t i = P->n++; /* reset to 0 between the passes */
            for (int f = 0; f < nf; f++) {
                double v = num[fcols[f]];
                TR_CHECK(isfinite(v), TR_ERR_DATA,
                         "import: %s: row %lld, feature column '%s': '%s' is not a number "
                         "(every column but --label, --task-column and split is a feature)",
                         path, (long long)r + 2, t->names[fcols[f]], row[fcols[f]]);
                P->x[i * nf + f] = v;
            }
            for (int j = 0; j < D->ycols; j++) {
                double v = num[lcol[j]];
                TR_CHECK(isfinite(v), TR_ERR_DATA,
                         "import: %s: row %lld, column '%s': '%s' is not a number", path,
                         (long long)r + 2, o->labels[j], row[lcol[j]]);
                P->y[i * D->ycols + j] = v;
            }
        }
        if (pass == 0)
            for (int s = 0; s < D->nsrc; s++)
                for (int p = 0; p < TR_SPLIT_COUNT; p++) {
                    imp_part *P = &D->src[s].part[p];
                    P->x = malloc((size_t)(P->n * nf + 1) * sizeof(double));
                    P->y = malloc((size_t)(P->n * D->ycols + 1) * sizeof(double));
                    TR_CHECK(P->x && P->y, TR_ERR_NOMEM, "import: out of memory");
                    P->n = 0;
                }
    }
    /* CSV has no dtypes: labels that are all whole numbers >= 0 look like classes */
    for (int s = 0; s < D->nsrc; s++) {
        int integral = 1;
        for (int p = 0; p < TR_SPLIT_COUNT; p++)
            for (int64_t i = 0; i < D->src[s].part[p].n * D->ycols; i++) {
                double v = D->src[s].part[p].y[i];
                integral &= v >= 0 && v == floor(v);
            }
        D->src[s].y_integer = integral;
    }
    if (D->shared) {
        D->colname = calloc((size_t)D->ycols, 64);
        TR_CHECK(D->colname != NULL, TR_ERR_NOMEM, "import: out of memory");
        for (int j = 0; j < D->ycols; j++)
            snprintf(D->colname[j], 64, "%s", o->labels[j]);
    }
    return TR_OK;
}

/* ---- splits, kinds, the dataset ------------------------------------------------------ */

/* Cut val and test off train where they were not given. */
static tr_status cut_splits(imp_data *D, const tr_import_opts *o) {
    for (int s = 0; s < D->nsrc; s++) {
        imp_source *S = &D->src[s];
        const char *who = D->shared ? "the data" : S->name;
        if (!S->have[TR_SPLIT_TRAIN] && (S->have[TR_SPLIT_VAL] || S->have[TR_SPLIT_TEST])) {
            /* only val and/or test: a file to evaluate on, taken as it is */
            TR_CHECK(o->val_frac == 0 && o->test_frac == 0, TR_ERR_USAGE,
                     "import: %s has no train split to cut --val-frac or --test-frac from", who);
            continue;
        }
        TR_CHECK(S->have[TR_SPLIT_TRAIN] && S->part[TR_SPLIT_TRAIN].n > 0, TR_ERR_DATA,
                 "import: %s has no training examples", who);
        double frac[TR_SPLIT_COUNT] = {0, o->val_frac, o->test_frac};
        int64_t n = S->part[TR_SPLIT_TRAIN].n, cut[TR_SPLIT_COUNT] = {0, 0, 0};
        for (int p = 1; p < TR_SPLIT_COUNT; p++) {
            TR_CHECK(!(S->have[p] && frac[p] > 0), TR_ERR_USAGE,
                     "import: %s has a %s split already; drop --%s-frac", who,
                     tr_split_name((tr_split)p), tr_split_name((tr_split)p));
            cut[p] = S->have[p] ? 0 : (int64_t)llround(frac[p] * (double)n);
        }
        if (cut[1] + cut[2] == 0)
            continue;
        TR_CHECK(cut[1] + cut[2] < n, TR_ERR_USAGE,
                 "import: %s: --val-frac and --test-frac leave no training examples of %lld", who,
                 (long long)n);
        int32_t *perm = malloc((size_t)n * sizeof(int32_t));
        TR_CHECK(perm != NULL && n < INT32_MAX, TR_ERR_NOMEM, "import: out of memory");
        tr_rng_permutation(perm, (int32_t)n, o->seed, TR_RNG_SPLIT, (uint64_t)s);
        imp_part old = S->part[TR_SPLIT_TRAIN];
        int64_t d = D->d, c = D->ycols, at = 0;
        int order[TR_SPLIT_COUNT] = {TR_SPLIT_VAL, TR_SPLIT_TEST, TR_SPLIT_TRAIN};
        tr_status st = TR_OK;
        for (int k = 0; k < TR_SPLIT_COUNT && st == TR_OK; k++) {
            int p = order[k];
            int64_t m = p == TR_SPLIT_TRAIN ? n - cut[1] - cut[2] : cut[p];
            if (p != TR_SPLIT_TRAIN && m == 0)
                continue;
            imp_part np = {m, malloc((size_t)(m * d + 1) * sizeof(double)),
                           malloc((size_t)(m * c + 1) * sizeof(double))};
            if (!np.x || !np.y) {
                free(np.x), free(np.y);
                st = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
                break;
            }
            for (int64_t i = 0; i < m; i++, at++) {
                memcpy(np.x + i * d, old.x + (int64_t)perm[at] * d, (size_t)d * sizeof(double));
                memcpy(np.y + i * c, old.y + (int64_t)perm[at] * c, (size_t)c * sizeof(double));
            }
            if (p != TR_SPLIT_TRAIN) { /* a CSV leaves an empty part here */
                free(S->part[p].x);
                free(S->part[p].y);
                S->have[p] = 1;
            }
            S->part[p] = np;
        }
        free(perm);
        free(old.x);
        free(old.y);
        TR_CALL(st);
    }
    return TR_OK;
}

/* Kind and classes of task column j of source s. */
static tr_status settle_task(const imp_data *D, int s, int j, const tr_import_opts *o,
                             tr_task_info *ti) {
    const imp_source *S = &D->src[s];
    int t = D->shared ? j : s;
    ti->kind = o->nkinds > 0  ? (tr_task_kind)o->kinds[t]
               : o->kind >= 0 ? (tr_task_kind)o->kind
               : S->y_integer ? TR_TASK_CLASSIFICATION
                              : TR_TASK_REGRESSION;
    ti->classes = 1;
    if (ti->kind == TR_TASK_REGRESSION)
        return TR_OK;
    double mx = 0;
    for (int p = 0; p < TR_SPLIT_COUNT; p++)
        for (int64_t i = 0; i < S->part[p].n; i++) {
            double v = S->part[p].y[i * D->ycols + j];
            TR_CHECK(v >= 0 && v == floor(v) && v < 1e6, TR_ERR_DATA,
                     "import: task %s: label %g is not a class id (a whole number >= 0); "
                     "use --kind regression for real-valued targets",
                     ti->name, v);
            if (v > mx)
                mx = v;
        }
    int given = o->nclasses > 0 ? o->class_list[t] : o->classes;
    ti->classes = given > 0 ? given : (int)mx + 1;
    TR_CHECK(mx < ti->classes, TR_ERR_USAGE, "import: task %s has label %g but --classes gives %d",
             ti->name, mx, ti->classes);
    TR_CHECK(ti->classes >= 2, TR_ERR_DATA,
             "import: task %s has one class only (every label is 0); use --classes N or --kind "
             "regression",
             ti->name);
    return TR_OK;
}

/* One split of tasks [t0, t0 + cols) (label columns from 0); shared-input
 * tasks of both kinds get both y and yf (each column used by its task's kind). */
static tr_status fill_split(tr_split_data *sd, const imp_data *D, const imp_part *P, int t0,
                            int cols, const tr_dataset *ds) {
    tr_task_kind kind = ds->tasks[t0].kind;
    int mixed = 0;
    for (int j = 1; j < cols; j++)
        mixed |= ds->tasks[t0 + j].kind != kind;
    TR_CALL(tr_data_alloc_split(sd, P->n, D->d, kind, cols));
    if (mixed && !sd->y)
        TR_ALLOC(sd->y, (size_t)(P->n * cols), "dataset labels");
    if (mixed && !sd->yf)
        TR_ALLOC(sd->yf, (size_t)(P->n * cols), "dataset targets");
    for (int64_t i = 0; i < P->n * D->d; i++)
        sd->x[i] = (float)P->x[i];
    for (int64_t i = 0; i < P->n; i++)
        for (int j = 0; j < cols; j++) {
            double v = P->y[i * D->ycols + j];
            if (ds->tasks[t0 + j].kind == TR_TASK_CLASSIFICATION)
                sd->y[i * cols + j] = (int32_t)v;
            else
                sd->yf[i * cols + j] = (float)v;
        }
    return TR_OK;
}

/* Which splits the file gets: all three, unless a source has no train split
 * (a file to evaluate on): then the splits given, the same for every source. */
static tr_status settle_splits(tr_dataset *ds, const imp_data *D) {
    int partial = 0;
    for (int s = 0; s < D->nsrc; s++)
        partial |= !D->src[s].have[TR_SPLIT_TRAIN];
    if (!partial)
        return TR_OK;
    for (int p = 0; p < TR_SPLIT_COUNT; p++) {
        ds->has_split[p] = D->src[0].have[p];
        for (int s = 1; s < D->nsrc; s++)
            TR_CHECK(D->src[s].have[p] == ds->has_split[p], TR_ERR_DATA,
                     "import: task %s %s a %s split but task %s %s: every task needs the same "
                     "splits",
                     D->src[s].name, D->src[s].have[p] ? "has" : "lacks",
                     tr_split_name((tr_split)p), D->src[0].name,
                     ds->has_split[p] ? "has one" : "does not");
    }
    tr_log(TR_LOG_INFO, "import: no train split: the file can be evaluated (taskrel eval), not "
                        "trained on");
    return TR_OK;
}

static tr_status name_tasks(tr_dataset *ds, const imp_data *D, const tr_import_opts *o) {
    TR_CHECK(o->nnames == 0 || o->nnames == ds->T, TR_ERR_USAGE,
             "import: %d --task name(s) for %d task(s)", o->nnames, ds->T);
    for (int t = 0; t < ds->T; t++) {
        const char *nm = o->nnames   ? o->names[t]
                         : D->shared ? (D->colname ? D->colname[t] : NULL)
                                     : D->src[t].name;
        char def[32];
        if (!nm) {
            snprintf(def, sizeof(def), "t%d", t);
            nm = def;
        }
        TR_CHECK(nm[0] && strlen(nm) < 64 && !strchr(nm, '/') && strcmp(nm, ".") != 0, TR_ERR_USAGE,
                 "import: task name '%s' must be 1-63 bytes without '/'", nm);
        for (int u = 0; u < t; u++)
            TR_CHECK(strcmp(ds->tasks[u].name, nm) != 0, TR_ERR_USAGE,
                     "import: two tasks are named '%s'", nm);
        snprintf(ds->tasks[t].name, sizeof(ds->tasks[t].name), "%s", nm);
    }
    return TR_OK;
}

static tr_status build(tr_dataset *ds, const imp_data *D, const tr_import_opts *o) {
    ds->setting = D->shared ? TR_SETTING_SHARED_INPUT : TR_SETTING_MULTI_INPUT;
    ds->ndim = D->ndim;
    memcpy(ds->dims, D->dims, sizeof(ds->dims));
    ds->sample_size = D->d;
    int T = D->shared ? D->ycols : D->nsrc;
    TR_CHECK(T >= 1 && T <= TR_MAX_TASKS, TR_ERR_DATA, "import: %d tasks", T);
    TR_CHECK(o->nkinds == 0 || o->nkinds == T, TR_ERR_USAGE,
             "import: --kind lists %d kind(s) for %d task(s)", o->nkinds, T);
    TR_CHECK(o->nclasses == 0 || o->nclasses == T, TR_ERR_USAGE,
             "import: --classes lists %d count(s) for %d task(s)", o->nclasses, T);
    TR_CALL(tr_data_alloc_tasks(ds, T));
    TR_CALL(name_tasks(ds, D, o));
    for (int t = 0; t < T; t++)
        TR_CALL(settle_task(D, D->shared ? 0 : t, D->shared ? t : 0, o, &ds->tasks[t]));
    TR_CALL(settle_splits(ds, D));
    if (D->shared) {
        for (int p = 0; p < TR_SPLIT_COUNT; p++)
            TR_CALL(fill_split(&ds->shared[p], D, &D->src[0].part[p], 0, T, ds));
    } else {
        for (int t = 0; t < T; t++)
            for (int p = 0; p < TR_SPLIT_COUNT; p++)
                TR_CALL(fill_split(&ds->tasks[t].split[p], D, &D->src[t].part[p], t, 1, ds));
    }
    return TR_OK;
}

static tr_status read_inputs(imp_data *D, const tr_import_opts *o) {
    TR_CHECK(o->ninputs >= 1, TR_ERR_USAGE, "import: no input files (.npz, .npy or .csv)");
    int ncsv = 0;
    for (int i = 0; i < o->ninputs; i++) {
        const char *in = o->inputs[i];
        int csv = has_ext(in, ".csv");
        TR_CHECK(csv || has_ext(in, ".npz") || has_ext(in, ".npy"), TR_ERR_USAGE,
                 "import: %s: expected a .npz, .npy or .csv file", in);
        ncsv += csv;
    }
    TR_CHECK(ncsv == 0 || ncsv == o->ninputs, TR_ERR_USAGE,
             "import: give either NumPy files or CSV files, not both");
    TR_CHECK(ncsv == 0 || ncsv == 1, TR_ERR_USAGE,
             "import: one CSV file at a time (a 'split' column assigns rows to train, val, test)");
    TR_CHECK(ncsv > 0 || (o->nlabels == 0 && !o->task_column && !o->split_column), TR_ERR_USAGE,
             "import: --label, --task-column and --split-column are for CSV input");
    if (ncsv == 0)
        return from_numpy(D, o);
    tr_csv t;
    TR_CALL(tr_csv_read(&t, o->inputs[0]));
    tr_status st = from_csv(D, &t, o, o->inputs[0]);
    tr_csv_free(&t);
    return st;
}

tr_status tr_import(const tr_import_opts *o) {
    TR_CHECK(o->out && o->out[0], TR_ERR_USAGE, "import: missing --out FILE.h5");
    TR_CHECK(o->val_frac >= 0 && o->test_frac >= 0 && o->val_frac + o->test_frac < 1, TR_ERR_USAGE,
             "import: --val-frac and --test-frac must be >= 0 with a sum below 1");
    imp_data D;
    memset(&D, 0, sizeof(D));
    tr_dataset ds;
    memset(&ds, 0, sizeof(ds));
    tr_status st = read_inputs(&D, o);
    if (st == TR_OK)
        st = cut_splits(&D, o);
    if (st == TR_OK)
        st = build(&ds, &D, o);
    imp_free(&D);
    if (st == TR_OK) {
        char opts[1024];
        int k = snprintf(opts, sizeof(opts), "val_frac=%g test_frac=%g inputs=", o->val_frac,
                         o->test_frac);
        for (int i = 0; i < o->ninputs && k > 0 && k < (int)sizeof(opts); i++)
            k += snprintf(opts + k, sizeof(opts) - (size_t)k, "%s%s", i ? "," : "", o->inputs[i]);
        st = tr_dataset_save(&ds, o->out, "import", o->seed, opts);
    }
    for (int t = 0; st == TR_OK && t < ds.T; t++) {
        const tr_task_info *ti = &ds.tasks[t];
        const tr_split_data *sp = ds.setting == TR_SETTING_SHARED_INPUT ? ds.shared : ti->split;
        tr_log(TR_LOG_INFO, "import: task %s: %s%s%.0d, train %lld, val %lld, test %lld", ti->name,
               ti->kind == TR_TASK_CLASSIFICATION ? "classification" : "regression",
               ti->kind == TR_TASK_CLASSIFICATION ? ", classes " : "",
               ti->kind == TR_TASK_CLASSIFICATION ? ti->classes : 0, (long long)sp[0].n,
               (long long)sp[1].n, (long long)sp[2].n);
    }
    tr_dataset_free(&ds);
    TR_CALL(st);
    return TR_OK;
}
