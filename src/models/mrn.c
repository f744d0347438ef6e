/*
 * MRN priors in training (see taskrel/mrn.h): state per prior layer, the
 * per-step gradient or proximal step, and the covariance updates assembled
 * over the rank grid.
 */
#include "taskrel/mrn.h"
#include "mrn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

/* mrn.modes is parsed by the config into bits 1u << tr_mrn_mode. */
_Static_assert(TR_MRN_MODES_FEATURE == 1u << TR_MRN_MODE_FEATURE &&
                   TR_MRN_MODES_CLASS == 1u << TR_MRN_MODE_CLASS &&
                   TR_MRN_MODES_TASK == 1u << TR_MRN_MODE_TASK,
               "mrn.modes bits follow tr_mrn_mode");

#include "taskrel/json.h"

/* ---- options ---------------------------------------------------------------- */

tr_status tr_mrn_opts_from_config(tr_mrn_opts *o, const tr_config *cfg, double n_mean) {
    memset(o, 0, sizeof *o);
    TR_CHECK(n_mean > 0, TR_ERR_DATA, "MRN: the training sets are empty");
    o->modes = cfg->mrn_modes;
    o->lambda = cfg->mrn_lambda / n_mean;
    o->update_every = cfg->mrn_update_every;
    o->flipflop_iters = cfg->mrn_flipflop_iters;
    o->prox = cfg->mrn_prior_step == TR_MRN_PROX;
    o->prox_every = cfg->mrn_prox_every;
    o->official = cfg->mrn_numerics == TR_MRN_OFFICIAL;
    o->prox_f64 = cfg->mrn_prox_precision == TR_MRN_PROX_DOUBLE;
    o->eps = o->official ? TR_MRN_OFFICIAL_EPS : cfg->mrn_eps;
    o->eig_floor = cfg->mrn_eig_floor;
    o->centred = cfg->mrn_mean == TR_MRN_MEAN_SHARED;
    o->task_fixed = cfg->mrn_task_scale == TR_MRN_TASK_SCALE_FIXED;
    o->shrink = cfg->mrn_shrink;
    o->scalapack_min_dim = cfg->scalapack_min_dim;
    if (o->official)
        o->modes = 1u << TR_MRN_MODE_TASK;
    return TR_OK;
}

/* ---- set-up ------------------------------------------------------------------ */

void tr_mrn_set_identity(double *a, int n) {
    memset(a, 0, (size_t)n * n * sizeof(double));
    for (int i = 0; i < n; i++)
        a[(size_t)i * n + i] = 1.0;
}

static tr_status layer_init(tr_mrn_layer *L, const char *name, int d1, int d2, int T, int centred) {
    snprintf(L->name, sizeof L->name, "%s", name);
    L->pid = -1;
    L->d1 = d1;
    L->d2 = d2;
    L->n[0] = d1;
    L->n[1] = d2;
    L->n[2] = T;
    for (int k = 0; k < TR_MRN_MODE_COUNT; k++) {
        int n = L->n[k];
        TR_ALLOC(L->sigma[k], (size_t)n * n, "MRN covariance");
        TR_ALLOC(L->omega[k], (size_t)n * n, "MRN precision");
        TR_ALLOC(L->u[k], (size_t)n * n, "MRN eigenvectors");
        TR_ALLOC(L->p[k], (size_t)n, "MRN precision eigenvalues");
        tr_mrn_set_identity(L->sigma[k], n);
        tr_mrn_set_identity(L->omega[k], n);
        tr_mrn_set_identity(L->u[k], n);
        for (int i = 0; i < n; i++)
            L->p[k][i] = 1.0;
    }
    size_t nn = (size_t)d1 * d2, big = (size_t)T * nn;
    size_t sq = (size_t)d1 * d1 > (size_t)d2 * d2 ? (size_t)d1 * d1 : (size_t)d2 * d2;
    if ((size_t)T * T > sq)
        sq = (size_t)T * T;
    TR_ALLOC(L->w_all, big, "MRN gathered weights");
    TR_ALLOC(L->w_init, big, "MRN initial weights");
    /* work: the covariance parts (sq) or the prox's owned tasks, all tasks and
     * two more (d1, d2) slices (the float prox's tmp, mean and W̄) */
    TR_ALLOC(L->work, big + (sq > nn ? sq : nn) + nn, "MRN scratch");
    if (centred)
        TR_ALLOC(L->w_dev, big, "MRN centred weights");
    TR_ALLOC(L->omega3c, (size_t)T * T, "MRN centred task precision");
    TR_ALLOC(L->w_f32, big, "MRN gather buffer");
    for (int k = 0; k < TR_MRN_MODE_COUNT; k++)
        TR_ALLOC(L->u_f32[k], (size_t)L->n[k] * L->n[k], "MRN float eigenvectors");
    L->u_f32_stamp = -1.0;
    return TR_OK;
}

tr_status tr_mrn_init(tr_mrn *mrn, const tr_mrn_opts *o, const tr_grid *g, int n_layers,
                      const char *const *names, const int *d1, const int *d2) {
    memset(mrn, 0, sizeof *mrn);
    mrn->blacs.ctxt = -1;
    mrn->o = *o;
    mrn->T = g->T;
    mrn->t0 = g->t0;
    mrn->tn = g->tn;
    TR_CHECK(n_layers >= 1 && n_layers <= TR_MRN_MAX_LAYERS, TR_ERR_INTERNAL, "MRN: %d layers",
             n_layers);
    mrn->n_layers = n_layers;
    int maxn = g->T;
    for (int l = 0; l < n_layers; l++) {
        TR_CALL(layer_init(&mrn->layer[l], names[l], d1[l], d2[l], g->T, o->centred));
        if (d1[l] > maxn)
            maxn = d1[l];
        if (d2[l] > maxn)
            maxn = d2[l];
    }
    TR_ALLOC(mrn->counts, 2 * (size_t)g->S, "MRN gather counts");
    mrn->displs = mrn->counts + g->S;
    TR_ALLOC(mrn->eye_tn, (size_t)(g->tn > 0 ? g->tn : 1) * (g->tn > 0 ? g->tn : 1), "MRN eye");
    tr_mrn_set_identity(mrn->eye_tn, g->tn > 0 ? g->tn : 1);
    mrn->use_blacs = g->size > 1 && maxn > o->scalapack_min_dim;
    if (mrn->use_blacs)
        TR_CALL(tr_blacs_init(&mrn->blacs, g->world, 0));
    return TR_OK;
}

void tr_mrn_free(tr_mrn *mrn) {
    if (!mrn->n_layers && !mrn->counts)
        return;
    for (int l = 0; l < mrn->n_layers; l++) {
        tr_mrn_layer *L = &mrn->layer[l];
        for (int k = 0; k < TR_MRN_MODE_COUNT; k++) {
            tr_free(L->sigma[k]);
            tr_free(L->omega[k]);
            tr_free(L->u[k]);
            tr_free(L->p[k]);
        }
        tr_free(L->w_all);
        tr_free(L->w_init);
        tr_free(L->w_dev);
        tr_free(L->omega3c);
        tr_free(L->work);
        tr_free(L->w_f32);
        for (int k = 0; k < TR_MRN_MODE_COUNT; k++)
            tr_free(L->u_f32[k]);
    }
    tr_free(mrn->counts);
    tr_free(mrn->eye_tn);
    if (mrn->use_blacs)
        tr_blacs_free(&mrn->blacs);
    memset(mrn, 0, sizeof *mrn);
}

/* ---- per step ---------------------------------------------------------------- */

void tr_mrn_set_counts(tr_mrn *mrn, const tr_grid *g, int nn) {
    for (int s = 0; s < g->S; s++) {
        mrn->counts[s] = g->shard_tn[s] * nn;
        mrn->displs[s] = g->shard_t0[s] * nn;
    }
}

tr_status tr_mrn_layer_gather(tr_mrn *mrn, int l, tr_grid *g, const float *w_local) {
    tr_mrn_layer *L = &mrn->layer[l];
    int nn = L->d1 * L->d2;
    tr_mrn_set_counts(mrn, g, nn);
    TR_CALL(tr_allgatherv_f32(g, g->replica_comm, w_local, mrn->tn * nn, L->w_f32, mrn->counts,
                              mrn->displs, TR_COLL_MRN));
    size_t total = (size_t)mrn->T * nn;
    for (size_t i = 0; i < total; i++)
        L->w_all[i] = L->w_f32[i];
    return TR_OK;
}

tr_status tr_mrn_layer_prior_grad(tr_mrn *mrn, int l, float *g_local) {
    tr_mrn_layer *L = &mrn->layer[l];
    const double *omega3 = L->omega[2];
    if (mrn->o.centred) { /* the centred penalty's gradient: C Ω3 C with the uncentred W */
        TR_CALL(tr_mrn_centre_precision(L->omega3c, L->omega[2], mrn->T));
        omega3 = L->omega3c;
    }
    int nn = L->d1 * L->d2;
    if (!L->rotated[0] && !L->rotated[1] && !mrn->o.dense && mrn->tn > 0) {
        /* Ω1 = ω1 I, Ω2 = ω2 I: λ' ω1 ω2 Σ_j Ω3[t,j] W_j, no D1 x D1 product */
        double c = mrn->o.lambda * L->omega[0][0] * L->omega[1][0];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mrn->tn, nn, mrn->T, c,
                    omega3 + (size_t)mrn->t0 * mrn->T, mrn->T, L->w_all, nn, 0.0, L->work, nn);
    } else {
        TR_CALL(tr_mrn_prior_grad(L->work, NULL, L->w_all, L->omega[0], L->omega[1], omega3,
                                  mrn->o.lambda, L->d1, L->d2, mrn->T, mrn->t0, mrn->tn));
    }
    size_t n = (size_t)mrn->tn * nn;
    for (size_t i = 0; i < n; i++)
        g_local[i] += (float)L->work[i];
    return TR_OK;
}

/* ---- covariance updates ------------------------------------------------------- */

tr_status tr_mrn_precision(tr_mrn *mrn, double *omega, double *u, double *p, double *logdet,
                           const double *sigma, int n) {
    const tr_mrn_opts *o = &mrn->o;
    if (!mrn->use_blacs || n <= o->scalapack_min_dim) {
        mrn->lapack_calls++;
        if (o->official)
            return tr_mrn_precision_official(omega, u, p, logdet, sigma, n);
        return tr_mrn_precision_floor(omega, u, p, logdet, sigma, o->eig_floor, n);
    }
    mrn->scalapack_calls++;
    double *s;
    TR_ALLOC(s, (size_t)n, "eigenvalues");
    tr_status st = tr_dist_sym_eig(&mrn->blacs, s, u, sigma, n);
    /* every rank must apply the rule to the same eigenvalues */
    if (st == TR_OK && MPI_Bcast(s, n, MPI_DOUBLE, 0, mrn->blacs.comm) != MPI_SUCCESS)
        st = tr_error_set(TR_ERR_MPI, __FILE__, __LINE__, __func__, "MPI_Bcast of eigenvalues");
    if (st == TR_OK)
        st = tr_mrn_precision_eigvals(p, logdet, s, o->official, o->eig_floor, n);
    if (st == TR_OK)
        st = tr_dist_from_eig(&mrn->blacs, omega, u, p, n);
    tr_free(s);
    return st;
}

static double trace(const double *a, int n) {
    double t = 0.0;
    for (int i = 0; i < n; i++)
        t += a[(size_t)i * n + i];
    return t;
}

/* Floor numerics: Σ1, Σ2 to traces D1, D2, the factor into Σ3 (with
 * mrn.task_scale = fixed Σ3 then to trace T); precisions follow. */
tr_status tr_mrn_normalize(tr_mrn_layer *L, int task_fixed) {
    double a = L->d1 / trace(L->sigma[0], L->d1), b = L->d2 / trace(L->sigma[1], L->d2);
    TR_CALL(
        tr_mrn_cov_normalize(L->sigma[0], L->sigma[1], L->sigma[2], NULL, L->d1, L->d2, L->n[2]));
    tr_mrn_precision_scale(L->omega[0], L->p[0], &L->logdet[0], 1.0 / a, L->d1);
    tr_mrn_precision_scale(L->omega[1], L->p[1], &L->logdet[1], 1.0 / b, L->d2);
    tr_mrn_precision_scale(L->omega[2], L->p[2], &L->logdet[2], a * b, L->n[2]);
    if (task_fixed) {
        double c;
        TR_CALL(tr_mrn_cov_fix_task_scale(L->sigma[2], &c, L->n[2]));
        tr_mrn_precision_scale(L->omega[2], L->p[2], &L->logdet[2], 1.0 / c, L->n[2]);
    }
    return TR_OK;
}

/* w (T, d1, d2): the weights the covariances are estimated from (W or D). */
static tr_status update_mode(tr_mrn *mrn, tr_mrn_layer *L, tr_grid *g, const double *w, int k) {
    const tr_mrn_opts *o = &mrn->o;
    int n = L->n[k];
    double *part = L->work;
    if (g->r == 0) {
        TR_CALL(tr_mrn_cov_part(part, (tr_mrn_mode)k, w, L->omega[0], L->omega[1], L->omega[2],
                                L->d1, L->d2, mrn->T, mrn->t0, mrn->tn));
    } else {
        memset(part, 0, (size_t)n * n * sizeof(double)); /* replica 0 holds the same rows */
    }
    TR_CALL(tr_allreduce_f64(g, g->world, part, (size_t)n * n, TR_COLL_MRN));
    double scale = o->official ? 1.0 : tr_mrn_cov_scale((tr_mrn_mode)k, L->d1, L->d2, mrn->T);
    tr_mrn_cov_finalize(part, scale, o->eps, n);
    if (k != TR_MRN_MODE_TASK) /* D_k >> number of samples: shrink; Σ3 is not (see docs) */
        TR_CALL(tr_mrn_cov_shrink(part, o->shrink, n));
    memcpy(L->sigma[k], part, (size_t)n * n * sizeof(double));
    L->u_f32_stamp = -1.0; /* U changes below */
    TR_CALL(tr_mrn_precision(mrn, L->omega[k], L->u[k], L->p[k], &L->logdet[k], L->sigma[k], n));
    L->rotated[k] = 1;
    return TR_OK;
}

tr_status tr_mrn_layer_update(tr_mrn *mrn, int l, tr_grid *g) {
    tr_mrn_layer *L = &mrn->layer[l];
    double t0 = tr_time_now();
    const double *w = L->w_all;
    if (mrn->o.centred) {       /* every rank: the same W̄ from the same gathered W */
        double *mean = L->work; /* (d1, d2), consumed before update_mode uses work */
        tr_mrn_task_mean(mean, L->w_all, L->d1, L->d2, mrn->T);
        tr_mrn_centre(L->w_dev, L->w_all, mean, L->d1, L->d2, mrn->T);
        w = L->w_dev;
    }
    if (tr_mrn_iso_applies(mrn, L)) {
        TR_CALL(tr_mrn_update_iso(mrn, L, g, w));
        mrn->update_seconds += tr_time_now() - t0;
        return TR_OK;
    }
    for (int it = 0; it < mrn->o.flipflop_iters; it++) {
        for (int k = 0; k < TR_MRN_MODE_COUNT; k++)
            if (mrn->o.modes & (1u << k))
                TR_CALL(update_mode(mrn, L, g, w, k));
        if (!mrn->o.official)
            TR_CALL(tr_mrn_normalize(L, mrn->o.task_fixed));
    }
    /* prior value ½ vec(W)ᵀ Ω vec(W): owned parts of replica 0, summed */
    double v = 0.0;
    if (g->r == 0)
        TR_CALL(tr_mrn_prior_value(&v, w, L->omega[0], L->omega[1], L->omega[2], 1.0, L->d1, L->d2,
                                   mrn->T, mrn->t0, mrn->tn));
    TR_CALL(tr_allreduce_f64(g, g->world, &v, 1, TR_COLL_MRN));
    L->prior_value = v;
    mrn->update_seconds += tr_time_now() - t0;
    return TR_OK;
}

/* ---- model-level wrappers ------------------------------------------------------ */

tr_status tr_mrn_init_model(tr_mrn *mrn, const tr_mrn_opts *o, const tr_config *cfg, tr_model *m,
                            tr_grid *g) {
    unsigned mask = cfg->mrn_layers; /* validated: not empty, fc7 only with model.head_hidden */
    TR_CHECK(!(mask & TR_MRN_LAYER_FC7) || m->h7w >= 0, TR_ERR_CONFIG,
             "mrn.layers names fc7 but the heads have no fc7 (model.head_hidden = 0)");
    const char *names[TR_MRN_MAX_LAYERS] = {0};
    int d1[TR_MRN_MAX_LAYERS] = {0}, d2[TR_MRN_MAX_LAYERS] = {0}, pid[TR_MRN_MAX_LAYERS] = {0},
        n = 0;
    if (mask & TR_MRN_LAYER_FC7) {
        names[n] = "fc7";
        d1[n] = m->feat_dim;
        d2[n] = m->head_hidden;
        pid[n++] = m->h7w;
    }
    if (mask & TR_MRN_LAYER_FC8) {
        names[n] = "fc8";
        d1[n] = m->h7w >= 0 ? m->head_hidden : m->feat_dim;
        d2[n] = m->out_dim;
        pid[n++] = m->h8w;
    }
    TR_CALL(tr_mrn_init(mrn, o, g, n, names, d1, d2));
    for (int l = 0; l < n; l++) {
        tr_mrn_layer *L = &mrn->layer[l];
        L->pid = pid[l];
        TR_CALL(tr_mrn_layer_gather(mrn, l, g, tr_params_task_data(&m->params, L->pid, mrn->t0)));
        memcpy(L->w_init, L->w_all, (size_t)mrn->T * L->d1 * L->d2 * sizeof(double));
    }
    return TR_OK;
}

tr_status tr_mrn_step_gradient(tr_mrn *mrn, tr_model *m, tr_grid *g) {
    for (int l = 0; l < mrn->n_layers; l++) {
        tr_mrn_layer *L = &mrn->layer[l];
        TR_CALL(tr_mrn_layer_gather(mrn, l, g, tr_params_task_data(&m->params, L->pid, mrn->t0)));
        TR_CALL(tr_mrn_layer_prior_grad(mrn, l, tr_params_task_grad(&m->params, L->pid, mrn->t0)));
    }
    return TR_OK;
}

tr_status tr_mrn_step_prox(tr_mrn *mrn, tr_model *m, tr_grid *g, double eta) {
    for (int l = 0; l < mrn->n_layers; l++)
        TR_CALL(tr_mrn_layer_prox(
            mrn, l, g, tr_params_task_data(&m->params, mrn->layer[l].pid, mrn->t0), eta));
    return TR_OK;
}

tr_status tr_mrn_step_update(tr_mrn *mrn, tr_model *m, tr_grid *g) {
    for (int l = 0; l < mrn->n_layers; l++) {
        tr_mrn_layer *L = &mrn->layer[l];
        TR_CALL(tr_mrn_layer_gather(mrn, l, g, tr_params_task_data(&m->params, L->pid, mrn->t0)));
        TR_CALL(tr_mrn_layer_update(mrn, l, g));
    }
    mrn->counters[0] += 1.0;
    return TR_OK;
}

/* ---- reporting ---------------------------------------------------------------- */

double tr_mrn_max_precision(const tr_mrn *mrn, int l, int k) {
    const tr_mrn_layer *L = &mrn->layer[l];
    double mx = 0.0;
    for (int i = 0; i < L->n[k]; i++)
        mx = fmax(mx, L->p[k][i]);
    return mx;
}

/* corr (T, T): Pearson correlation between tasks of W_t - W_init,t, from one
 * dsyrk of the per-task centred differences x (T, d1 d2) (scratch); sd: T
 * scratch. */
static void delta_corr(double *corr, double *sd, double *x, const tr_mrn_layer *L, int T) {
    size_t nn = (size_t)L->d1 * L->d2;
    for (int t = 0; t < T; t++) {
        const double *w = L->w_all + t * nn, *w0 = L->w_init + t * nn;
        double *xt = x + t * nn, s = 0.0;
        for (size_t i = 0; i < nn; i++) {
            xt[i] = w[i] - w0[i];
            s += xt[i];
        }
        double mean = s / (double)nn;
        for (size_t i = 0; i < nn; i++)
            xt[i] -= mean;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, (int)nn, 1.0, x, (int)nn, 0.0, corr, T);
    for (int a = 0; a < T; a++)
        sd[a] = corr[(size_t)a * T + a];
    for (int a = 0; a < T; a++)
        for (int b = a; b < T; b++) {
            double sab = corr[(size_t)a * T + b], saa = sd[a], sbb = sd[b];
            double r = saa > 0.0 && sbb > 0.0 ? sab / sqrt(saa * sbb) : (a == b ? 1.0 : 0.0);
            corr[(size_t)a * T + b] = r;
            corr[(size_t)b * T + a] = r;
        }
}

tr_status tr_mrn_relations(const tr_mrn *mrn, tr_relations *rel) {
    int T = mrn->T;
    double *buf;
    TR_ALLOC(buf, (size_t)T * T + T, "MRN relations");
    tr_status st = TR_OK;
    for (int l = 0; l < mrn->n_layers && st == TR_OK; l++) {
        const tr_mrn_layer *L = &mrn->layer[l];
        char name[TR_RELATION_NAME_LEN], title[TR_RELATION_TITLE_LEN];
        st = tr_mrn_corr(buf, L->sigma[2], T);
        if (st == TR_OK) {
            snprintf(name, sizeof name, "mrn.%s.task_corr", L->name);
            snprintf(title, sizeof title, "MRN %s: task correlation (from the task covariance%s)",
                     L->name, mrn->o.centred ? TR_MRN_CENTRED_TITLE : "");
            st = tr_relations_add(rel, name, title, "task,task", buf, T, T);
        }
        if (st == TR_OK) {
            snprintf(name, sizeof name, "mrn.%s.task_cov", L->name);
            snprintf(title, sizeof title, "MRN %s: task covariance%s", L->name,
                     mrn->o.centred ? TR_MRN_CENTRED_TITLE : "");
            st = tr_relations_add(rel, name, title, "task,task", L->sigma[2], T, T);
        }
        if (st == TR_OK) {
            delta_corr(buf, buf + (size_t)T * T, L->work, L, T); /* work: scratch */
            snprintf(name, sizeof name, "mrn.%s.delta_corr", L->name);
            snprintf(title, sizeof title, "MRN %s: correlation of W - W_init between tasks",
                     L->name);
            st = tr_relations_add(rel, name, title, "task,task", buf, T, T);
        }
    }
    tr_free(buf);
    return st;
}

void tr_mrn_write_json(const tr_mrn *mrn, FILE *f) {
    fprintf(f, "{\"updates\":%lld,\"update_s\":%.6g,\"lambda_batch\":%.6g,\"layers\":{",
            (long long)mrn->counters[0], mrn->update_seconds, mrn->o.lambda);
    for (int l = 0; l < mrn->n_layers; l++) {
        const tr_mrn_layer *L = &mrn->layer[l];
        fputs(l ? "," : "", f);
        tr_json_write_string(f, L->name);
        fputs(":{\"prior\":", f);
        tr_json_write_number(f, L->prior_value, 8);
        for (int k = 0; k < 3; k++) {
            fputs(k ? "," : ",\"logdet\":[", f);
            tr_json_write_number(f, L->logdet[k], 8); /* -inf for a singular covariance */
        }
        fputs("],\"max_precision\":[", f);
        double curv = mrn->o.lambda;
        for (int k = 0; k < TR_MRN_MODE_COUNT; k++) {
            double mx = tr_mrn_max_precision(mrn, l, k);
            curv *= mx;
            fputs(k ? "," : "", f);
            tr_json_write_number(f, mx, 6);
        }
        fputs("],\"curvature\":", f);
        tr_json_write_number(f, curv, 6);
        fputs("}", f);
    }
    fprintf(f, "}}");
}

tr_status tr_mrn_each_state(tr_mrn *mrn, tr_mrn_state_fn fn, void *ctx) {
    static const char *const what[4] = {"sigma", "omega", "u", "p"};
    char name[96];
    for (int l = 0; l < mrn->n_layers; l++) {
        tr_mrn_layer *L = &mrn->layer[l];
        for (int k = 0; k < TR_MRN_MODE_COUNT; k++) {
            int64_t sq[2] = {L->n[k], L->n[k]};
            double *arr[4] = {L->sigma[k], L->omega[k], L->u[k], L->p[k]};
            for (int a = 0; a < 4; a++) {
                snprintf(name, sizeof name, "/mrn/%s/%s%d", L->name, what[a], k + 1);
                TR_CALL(fn(ctx, name, arr[a], a == 3 ? 1 : 2, sq));
            }
        }
        int64_t three = TR_MRN_MODE_COUNT, one = 1;
        snprintf(name, sizeof name, "/mrn/%s/logdet", L->name);
        TR_CALL(fn(ctx, name, L->logdet, 1, &three));
        snprintf(name, sizeof name, "/mrn/%s/rotated", L->name);
        TR_CALL(fn(ctx, name, L->rotated, 1, &three));
        snprintf(name, sizeof name, "/mrn/%s/prior_value", L->name);
        TR_CALL(fn(ctx, name, &L->prior_value, 1, &one));
    }
    int64_t two = 2;
    return fn(ctx, "/mrn/counters", mrn->counters, 1, &two);
}
