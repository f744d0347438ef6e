/*
 * Run configuration (taskrel/config.h): defaults, INI files read with inih,
 * `--set` overrides, cross-key validation, and the writers for a run's
 * resolved config and docs/config.md. Everything walks the key table of
 * config_keys.c, so docs, defaults and parsing cannot disagree. Not here:
 * checks that need the data (task count, input shape); the trainer does those.
 */
#include "taskrel/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config/config_keys.h"

/* inih's line buffer; longer lines cannot be read back. */
#define CFG_MAX_LINE (INI_MAX_LINE - 1)

/* ---- applying values ---------------------------------------------------- */

static const tr_cfg_key *gamma_key(void) {
    return tr_cfg_find("train", "gamma");
}

static float default_gamma(tr_sched_kind kind) {
    float g = 0.1f;
    tr_cfg_parse_float(kind == TR_SCHED_INV ? tr_cfg_gamma_inv_default : gamma_key()->def, &g);
    return g;
}

/* Set section.name = value in c; err gets "section.name: reason" on failure.
 * When train.schedule changes, train.gamma follows the new schedule's default
 * unless it was given explicitly or no longer holds the old default. */
static int apply(tr_config *c, const char *section, const char *name, const char *value,
                 int gamma_explicit, char *err, size_t errn) {
    const tr_cfg_key *k = tr_cfg_find(section, name);
    if (!k) {
        tr_cfg_unknown(section, name, err, errn);
        return 1;
    }
    tr_sched_kind old = c->sched.kind;
    char why[512];
    if (tr_cfg_parse(c, k, value, why, sizeof(why))) {
        snprintf(err, errn, "%s.%s: %s%s", section, name, why,
                 strstr(value, " #") ? " (a comment after a value starts with ' ;')" : "");
        return 1;
    }
    if (k->off == offsetof(tr_config, sched.kind) && c->sched.kind != old && !gamma_explicit &&
        c->sched.gamma == default_gamma(old))
        c->sched.gamma = default_gamma(c->sched.kind);
    return 0;
}

static int section_index(const char *section) {
    for (int s = 0; s < tr_cfg_nsections; s++)
        if (strcmp(tr_cfg_sections[s].name, section) == 0)
            return s;
    return -1;
}

void tr_config_default(tr_config *c) {
    memset(c, 0, sizeof(*c)); /* padding too, so equal configs compare equal with memcmp */
    for (int i = 0; i < tr_cfg_nkeys; i++) {
        const tr_cfg_key *k = &tr_cfg_keys[i];
        char err[512] = "section is not in tr_cfg_sections";
        if (section_index(k->section) < 0 || tr_cfg_parse(c, k, k->def, err, sizeof(err))) {
            /* A bad row in the static table is a bug, and every test would hit it. */
            fprintf(stderr, "taskrel: bug in the config table: %s.%s: %s\n", k->section, k->name,
                    err);
            abort();
        }
    }
}

typedef struct {
    tr_config cfg;
    FILE *file;
    int line;     /* line inih is on (counted by read_line) */
    int err_line; /* first error found by us, 0 if none */
    char err[1024];
    int seen[TR_CFG_MAX_KEYS]; /* line where each key was set, 0 if not yet */
} load_ctx;

/* fgets for inih that counts lines, flags lines longer than its buffer and
 * drops leading whitespace, so an indented key is a key and not (as inih
 * would read it) the continuation of the previous value. */
static char *read_line(char *str, int num, void *stream) {
    load_ctx *x = stream;
    int ch, len = 0, any = 0, too_long = 0;
    while ((ch = getc(x->file)) != EOF) {
        any = 1;
        if (ch == '\n')
            break;
        if (len == 0 && (ch == ' ' || ch == '\t'))
            continue;
        if (len < num - 1)
            str[len++] = (char)ch;
        else
            too_long = 1;
    }
    if (!any)
        return NULL;
    str[len] = '\0';
    x->line++;
    if (too_long && str[0] != ';' && str[0] != '#' && !x->err_line) {
        x->err_line = x->line;
        snprintf(x->err, sizeof(x->err),
                 "line is longer than %d characters (give long values with --set)", num - 1);
    }
    return str;
}

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    load_ctx *x = user;
    if (x->err_line)
        return 1; /* report the first error only */
    const tr_cfg_key *k = tr_cfg_find(section, name);
    if (k && x->seen[k - tr_cfg_keys]) {
        snprintf(x->err, sizeof(x->err), "%s.%s is set twice (first on line %d)", section, name,
                 x->seen[k - tr_cfg_keys]);
        x->err_line = x->line;
        return 0;
    }
    int gamma_explicit = x->seen[gamma_key() - tr_cfg_keys] != 0;
    if (apply(&x->cfg, section, name, value, gamma_explicit, x->err, sizeof(x->err))) {
        x->err_line = x->line;
        return 0;
    }
    x->seen[k - tr_cfg_keys] = x->line;
    return 1;
}

tr_status tr_config_load_file(tr_config *c, const char *path) {
    load_ctx *x = calloc(1, sizeof(*x));
    TR_CHECK(x, TR_ERR_NOMEM, "out of memory loading %s", path);
    x->cfg = *c;
    x->file = fopen(path, "r");
    if (!x->file) {
        int e = errno;
        free(x);
        TR_RAISE(TR_ERR_CONFIG, "cannot open config file %s: %s", path, strerror(e));
    }
    int r = ini_parse_stream(read_line, x, on_entry, x);
    int read_error = ferror(x->file);
    fclose(x->file);
    tr_status s = TR_OK;
    if (read_error)
        s = tr_error_set(TR_ERR_CONFIG, __FILE__, __LINE__, __func__, "%s: read error", path);
    else if (r < 0)
        s = tr_error_set(TR_ERR_CONFIG, __FILE__, __LINE__, __func__, "%s: inih failed (%d)", path,
                         r);
    else if (r > 0 && (!x->err_line || r < x->err_line))
        s = tr_error_set(TR_ERR_CONFIG, __FILE__, __LINE__, __func__,
                         "%s:%d: syntax error (expected [section] or key = value)", path, r);
    else if (x->err_line)
        s = tr_error_set(TR_ERR_CONFIG, __FILE__, __LINE__, __func__, "%s:%d: %s", path,
                         x->err_line, x->err);
    else
        *c = x->cfg;
    free(x);
    return s;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

tr_status tr_config_set(tr_config *c, const char *assignment) {
    char buf[2 * TR_PATH_LEN], err[1024];
    TR_CHECK(strlen(assignment) < sizeof(buf), TR_ERR_CONFIG, "assignment '%.40s...' is too long",
             assignment);
    strcpy(buf, assignment);
    char *eq = strchr(buf, '='), *dot = strchr(buf, '.');
    TR_CHECK(eq && dot && dot < eq, TR_ERR_CONFIG,
             "malformed assignment '%s' (expected section.key=value)", assignment);
    *eq = *dot = '\0';
    char *section = trim(buf), *name = trim(dot + 1), *value = trim(eq + 1);
    TR_CHECK(section[0] && name[0], TR_ERR_CONFIG,
             "malformed assignment '%s' (expected section.key=value)", assignment);
    tr_config tmp = *c;
    TR_CHECK(!apply(&tmp, section, name, value, 0, err, sizeof(err)), TR_ERR_CONFIG, "%s", err);
    *c = tmp;
    return TR_OK;
}

/* Keys of one method, checked only when model.kind selects it. */
static tr_status validate_method(const tr_config *c) {
    if (c->model_kind == TR_MODEL_MRN) {
        TR_CHECK(c->mrn_layers != 0, TR_ERR_CONFIG, "mrn.layers must name at least one entry");
        TR_CHECK(c->mrn_modes != 0, TR_ERR_CONFIG, "mrn.modes must name at least one entry");
        TR_CHECK(!(c->mrn_layers & TR_MRN_LAYER_FC7) || c->head_hidden > 0, TR_ERR_CONFIG,
                 "mrn.layers names fc7 but the heads have no fc7 (model.head_hidden = 0)");
        TR_CHECK(c->mrn_numerics != TR_MRN_OFFICIAL ||
                     (c->mrn_mean == TR_MRN_MEAN_NONE &&
                      c->mrn_task_scale == TR_MRN_TASK_SCALE_LEARNED && c->mrn_shrink == 0.0f),
                 TR_ERR_CONFIG,
                 "mrn.numerics = official reproduces the published code, which has none of "
                 "the bounded prior's options: give it with mrn.mean = none, "
                 "mrn.task_scale = learned and mrn.shrink = 0");
    }
    TR_CHECK(c->trunk != TR_TRUNK_NONE || c->model_kind == TR_MODEL_MMOE, TR_ERR_CONFIG,
             "model.trunk = none needs model.kind = mmoe (its experts are the shared layers); "
             "model.kind = %s needs trunk = mlp or lenet",
             tr_model_kind_str(c->model_kind));
    if (c->model_kind == TR_MODEL_MRAN)
        TR_CHECK(c->mran_attention != TR_ATTN_MULTIHEAD || c->mran_embed_dim % c->mran_heads == 0,
                 TR_ERR_CONFIG, "mran.heads = %d does not divide mran.embed_dim = %d",
                 c->mran_heads, c->mran_embed_dim);
    return TR_OK;
}

/* Weightings that need the per-task gradients of the shared parameters. */
int tr_weighting_uses_task_grads(tr_weighting_kind w) {
    return w == TR_WEIGHT_GRADNORM || w == TR_WEIGHT_MGDA || w == TR_WEIGHT_PCGRAD ||
           w == TR_WEIGHT_CAGRAD;
}

const char *tr_weighting_kind_str(tr_weighting_kind w) {
    static const char *const names[] = {"equal", "uncertainty", "dwa",   "gradnorm",
                                        "mgda",  "pcgrad",      "cagrad"};
    return (unsigned)w < sizeof(names) / sizeof(names[0]) ? names[w] : "?";
}

/* train.weighting against the model: STL has no shared layers to weigh, and
 * MRAN's shared stage carries batch statistics of every task's gradient (the
 * alignment gradient, the relation penalty), so it cannot be split per task. */
static tr_status validate_weighting(const tr_config *c) {
    TR_CHECK(c->model_kind != TR_MODEL_STL || c->grad_every <= 0, TR_ERR_CONFIG,
             "relations.grad_every = %d needs shared layers; model.kind = stl has none (set it "
             "to 0)",
             c->grad_every);
    if (c->weighting == TR_WEIGHT_EQUAL)
        return TR_OK;
    const char *w = tr_weighting_kind_str(c->weighting);
    TR_CHECK(c->model_kind != TR_MODEL_STL, TR_ERR_CONFIG,
             "train.weighting = %s needs shared layers, but model.kind = stl trains a separate "
             "network per task: use train.weighting = equal (and train.task_weights) with stl",
             w);
    TR_CHECK(!(c->model_kind == TR_MODEL_MRAN && tr_weighting_uses_task_grads(c->weighting)),
             TR_ERR_CONFIG,
             "train.weighting = %s needs per-task gradients of the shared layers, which "
             "model.kind = mran does not have (its attention couples the tasks' gradients); use "
             "equal, uncertainty or dwa with mran",
             w);
    TR_CHECK(!c->rep_grad || c->weighting == TR_WEIGHT_MGDA, TR_ERR_CONFIG,
             "train.rep_grad = true is only for train.weighting = mgda (not %s)", w);
    return TR_OK;
}

tr_status tr_config_validate(const tr_config *c) {
    TR_CALL(validate_method(c));
    TR_CALL(validate_weighting(c));
    TR_CHECK(c->data_path[0], TR_ERR_CONFIG,
             "data.path is required: give it in the config or with --set data.path=FILE");
    TR_CHECK(c->opt.kind != TR_OPT_SGD || !c->opt.nesterov || c->opt.momentum > 0.0f, TR_ERR_CONFIG,
             "train.nesterov = true needs train.momentum > 0");
    TR_CHECK(c->sched.kind != TR_SCHED_COSINE || c->sched.min_lr <= c->sched.base_lr, TR_ERR_CONFIG,
             "train.min_lr (%g) must not exceed train.lr (%g)", (double)c->sched.min_lr,
             (double)c->sched.base_lr);
    TR_CHECK(c->max_steps == 0 || c->sched.warmup_steps <= c->max_steps, TR_ERR_CONFIG,
             "train.warmup_steps (%" PRId64 ") exceeds train.max_steps (%" PRId64 ")",
             c->sched.warmup_steps, c->max_steps);
    TR_CHECK(c->trunk != TR_TRUNK_MLP || c->mlp_layers >= 1, TR_ERR_CONFIG,
             "model.mlp_hidden needs at least one layer for trunk = mlp");
    if (c->n_task_weights > 0) {
        double sum = 0;
        for (int i = 0; i < c->n_task_weights; i++)
            sum += c->task_weights[i];
        TR_CHECK(sum > 0, TR_ERR_CONFIG, "train.task_weights are all 0");
    }
    /* every value must also be writable as the run's config.ini */
    char *text = NULL;
    TR_CALL(tr_config_text(c, &text));
    free(text);
    return TR_OK;
}

tr_status tr_config_task_weights(const tr_config *c, int T, float *w) {
    TR_CHECK(T >= 1 && T <= TR_MAX_TASKS, TR_ERR_DATA, "%d tasks (expected 1..%d)", T,
             TR_MAX_TASKS);
    TR_CHECK(c->n_task_weights == 0 || c->n_task_weights == T, TR_ERR_CONFIG,
             "train.task_weights has %d entries but the data has %d tasks", c->n_task_weights, T);
    for (int t = 0; t < T; t++)
        w[t] = c->n_task_weights ? c->task_weights[t] : 1.0f;
    return TR_OK;
}

const char *tr_config_legacy_value(const tr_config *c, const char *section, const char *key) {
    if (c->model_kind != TR_MODEL_MRN || strcmp(section, "mrn") != 0)
        return NULL;
    if (strcmp(key, "mean") == 0)
        return "none";
    if (strcmp(key, "task_scale") == 0)
        return "learned";
    if (strcmp(key, "shrink") == 0)
        return "0";
    return NULL;
}

int tr_config_same_value(const char *section, const char *key, const char *a, const char *b) {
    const tr_cfg_key *k = tr_cfg_find(section, key);
    if (!k || strcmp(a, b) == 0)
        return strcmp(a, b) == 0;
    tr_config *ca = malloc(sizeof(*ca)), *cb = malloc(sizeof(*cb));
    char ta[2 * TR_PATH_LEN], tb[2 * TR_PATH_LEN], err[512];
    int same = 0;
    if (ca && cb) {
        tr_config_default(ca);
        tr_config_default(cb);
        if (!tr_cfg_parse(ca, k, a, err, sizeof(err)) &&
            !tr_cfg_parse(cb, k, b, err, sizeof(err))) {
            tr_cfg_format(ca, k, ta, sizeof(ta));
            tr_cfg_format(cb, k, tb, sizeof(tb));
            same = strcmp(ta, tb) == 0;
        }
    }
    free(ca);
    free(cb);
    return same;
}

/* ---- writers ------------------------------------------------------------ */

/* inih strips whitespace and cuts " ;comment"; values it would change cannot be written. */
static int ini_representable(const char *v) {
    size_t n = strlen(v);
    if (n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]) || v[0] == ';'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\n' || v[i] == '\r' || (i && isspace((unsigned char)v[i - 1]) && v[i] == ';'))
            return 0;
    return 1;
}

tr_status tr_config_write(const tr_config *c, FILE *f) {
    char val[2 * TR_PATH_LEN], dom[256];
    fprintf(f, "; taskrel run configuration: every key with its value "
               "(`taskrel config --markdown` documents them)\n");
    for (int s = 0; s < tr_cfg_nsections; s++) {
        fprintf(f, "\n[%s]\n", tr_cfg_sections[s].name);
        for (int i = 0; i < tr_cfg_nkeys; i++) {
            const tr_cfg_key *k = &tr_cfg_keys[i];
            if (strcmp(k->section, tr_cfg_sections[s].name) != 0)
                continue;
            tr_cfg_format(c, k, val, sizeof(val));
            tr_config scratch = *c;
            char why[512];
            TR_CHECK(!tr_cfg_parse(&scratch, k, val, why, sizeof(why)), TR_ERR_CONFIG,
                     "%s.%s holds an invalid value: %s", k->section, k->name, why);
            TR_CHECK(ini_representable(val), TR_ERR_CONFIG,
                     "%s.%s: '%s' cannot be written to an INI file "
                     "(leading/trailing space, line break or ' ;')",
                     k->section, k->name, val);
            TR_CHECK(strlen(k->name) + 3 + strlen(val) <= CFG_MAX_LINE, TR_ERR_CONFIG,
                     "%s.%s: value is too long for an INI line (%d characters)", k->section,
                     k->name, CFG_MAX_LINE);
            fprintf(f, "; %s", k->doc);
            if (k->type != TR_CFG_BOOL && k->type != TR_CFG_STRING) {
                tr_cfg_domain(k, "|", dom, sizeof(dom));
                fprintf(f, " -- %s", dom);
            }
            fprintf(f, "\n%s =%s%s\n", k->name, val[0] ? " " : "", val);
        }
    }
    TR_CHECK(!ferror(f), TR_ERR_IO, "error writing the config: %s", strerror(errno));
    return TR_OK;
}

tr_status tr_config_text(const tr_config *c, char **text) {
    size_t len = 0;
    *text = NULL;
    FILE *mem = open_memstream(text, &len);
    TR_CHECK(mem != NULL, TR_ERR_NOMEM, "out of memory (config text)");
    tr_status st = tr_config_write(c, mem);
    if (fclose(mem) != 0 && st == TR_OK)
        st =
            tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory (config text)");
    if (st != TR_OK) {
        free(*text);
        *text = NULL;
    }
    return st;
}

/* Markdown table cell: escape '|'. */
static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

void tr_config_write_markdown(FILE *f) {
    fprintf(f,
            "# Configuration\n\n"
            "<!-- Generated from the key table in src/config/config_keys.c by\n"
            "     `taskrel config --markdown > docs/config.md`; do not edit by hand. -->\n\n"
            "A run is configured by an INI file (`taskrel train -c run.ini`): `[section]`\n"
            "headers and `key = value` lines. Comments take a line of their own starting\n"
            "with `;` or `#`, or follow a value after ` ;`. Any key can be overridden on the\n"
            "command line with `--set section.key=value` (repeatable, applied after the\n"
            "file, in order). `taskrel config --defaults` prints every key with its default;\n"
            "a run directory holds the resolved config in the same format.\n\n"
            "An unknown section or key, a key given twice, a value that does not parse or\n"
            "is out of range is an error that names `section.key` (with file and line, and\n"
            "the closest key for a misspelling); taskrel then exits with status 2.\n"
            "Booleans are true/false, yes/no, on/off or 1/0. Ranges: `[` and `]` include\n"
            "the end, `(` and `)` exclude it. Lines are limited to %d characters (inih);\n"
            "give longer values with `--set`.\n",
            CFG_MAX_LINE);
    char val[2 * TR_PATH_LEN], dom[256];
    tr_config def;
    tr_config_default(&def);
    for (int s = 0; s < tr_cfg_nsections; s++) {
        fprintf(f, "\n## [%s]\n\n%s\n\n", tr_cfg_sections[s].name, tr_cfg_sections[s].doc);
        fprintf(f, "| key | type | default | range / values | description |\n");
        fprintf(f, "|---|---|---|---|---|\n");
        for (int i = 0; i < tr_cfg_nkeys; i++) {
            const tr_cfg_key *k = &tr_cfg_keys[i];
            if (strcmp(k->section, tr_cfg_sections[s].name) != 0)
                continue;
            tr_cfg_format(&def, k, val, sizeof(val));
            tr_cfg_domain(k, ", ", dom, sizeof(dom));
            fprintf(f, "| `%s` | %s | ", k->name, tr_cfg_type_names[k->type]);
            if (val[0])
                fprintf(f, "`%s`", val);
            else
                fprintf(f, "(empty)");
            if (k == gamma_key())
                fprintf(f, " (`%s` if schedule = inv)", tr_cfg_gamma_inv_default);
            fprintf(f, " | ");
            md_cell(f, dom);
            fprintf(f, " | ");
            md_cell(f, k->doc);
            fprintf(f, " |\n");
        }
    }
}
