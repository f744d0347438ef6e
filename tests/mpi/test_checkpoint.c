// mpi-ranks: 1 2 4
/*
 * Checkpoints under MPI:
 *  - io: a parameter arena with shared and task tensors saved on P ranks is
 *    written with collective I/O only (H5Pget_mpio_actual_io_mode), validates,
 *    and loads on every P' <= P with every grid P' allows (resharding), value
 *    for value; extra replicated arrays round-trip; /relations is readable.
 *  - exact resume: N steps straight versus k steps, a stop (the flag raised on
 *    the last rank only, so it must travel through the fused all-reduce),
 *    `--resume auto`, N - k more: the final checkpoint (weights, BN statistics,
 *    optimizer state, selected model) and model.h5 are bitwise identical, and
 *    so are the per-step losses and relations.h5. Rows in k_models: every
 *    model kind on both data settings (MRAN and MMoE: shared-input only),
 *    MRAN with each attention type, and every train.weighting (whose
 *    checkpoints refuse to resume under another weighting or its keys).
 *  - resharding (HPS, MRN, MMoE, cross-stitch): a run stopped at P = 2
 *    resumes at P' = 1, 3 and 4 (on 4 ranks; every grid), and its losses
 *    continue to agree with the uninterrupted P = 2 run to 1e-5 relative.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpi_data.h"
#include "mpi_test.h"
#include "taskrel/attention.h"
#include "taskrel/checkpoint.h"
#include "taskrel/dataset.h"
#include "taskrel/train.h"

#define N_STEPS 16
#define K_STOP 6
#define TOL 1e-5

static char g_dir[256];
static int g_rank, g_size;

typedef struct {
    const char *label, *data;
    tr_model_kind kind;
    int bn_adamw; /* batch norm + AdamW (else SGD with momentum, dropout) */
    int batch;    /* 0: 12 (8 steps per epoch on shared.h5); MRAN and MMoE use 4 so that
                     the stop and the end fall in one epoch and the epoch's relation
                     statistics must cross the stop */
    tr_attn_kind attention;
    tr_weighting_kind weighting; /* train.weighting (equal) */
    int rep_grad;
} model_row;

/* MRAN and MMoE need shared-input data; the other kinds run on both settings. */
static const model_row k_models[] = {
    {"hps-multi-sgd", "multi.h5", TR_MODEL_HPS, 0, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"hps-shared-bn-adamw", "shared.h5", TR_MODEL_HPS, 1, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"stl-multi-sgd", "multi.h5", TR_MODEL_STL, 0, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"mrn-multi-sgd", "multi.h5", TR_MODEL_MRN, 0, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"stl-shared-bn-adamw", "shared.h5", TR_MODEL_STL, 1, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"mrn-shared-sgd", "shared.h5", TR_MODEL_MRN, 0, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"mran-dot-bn-adamw", "shared.h5", TR_MODEL_MRAN, 1, 4, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"mran-general-sgd", "shared.h5", TR_MODEL_MRAN, 0, 4, TR_ATTN_GENERAL, TR_WEIGHT_EQUAL, 0},
    {"mran-concat-sgd", "shared.h5", TR_MODEL_MRAN, 0, 4, TR_ATTN_CONCAT, TR_WEIGHT_EQUAL, 0},
    {"mran-multihead-adamw", "shared.h5", TR_MODEL_MRAN, 1, 4, TR_ATTN_MULTIHEAD, TR_WEIGHT_EQUAL,
     0},
    {"mmoe-bn-adamw", "shared.h5", TR_MODEL_MMOE, 1, 4, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"xstitch-multi-sgd", "multi.h5", TR_MODEL_XSTITCH, 0, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL, 0},
    {"xstitch-shared-bn-adamw", "shared.h5", TR_MODEL_XSTITCH, 1, 0, TR_ATTN_DOT, TR_WEIGHT_EQUAL,
     0},
    /* train.weighting: the learned parameters and their optimizer state, the
     * epoch-mean losses (5 steps per epoch on multi.h5, 8 on shared.h5: the stop
     * at 6 falls inside DWA's and GradNorm's history) and grad.cos */
    {"uw-multi-sgd", "multi.h5", TR_MODEL_HPS, 0, 0, TR_ATTN_DOT, TR_WEIGHT_UNCERTAINTY, 0},
    {"uw-shared-bn-adamw", "shared.h5", TR_MODEL_HPS, 1, 0, TR_ATTN_DOT, TR_WEIGHT_UNCERTAINTY, 0},
    {"dwa-multi-sgd", "multi.h5", TR_MODEL_HPS, 0, 0, TR_ATTN_DOT, TR_WEIGHT_DWA, 0},
    {"gradnorm-multi-sgd", "multi.h5", TR_MODEL_HPS, 0, 0, TR_ATTN_DOT, TR_WEIGHT_GRADNORM, 0},
    {"gradnorm-shared-adamw", "shared.h5", TR_MODEL_HPS, 1, 0, TR_ATTN_DOT, TR_WEIGHT_GRADNORM, 0},
    {"mgda-multi-sgd", "multi.h5", TR_MODEL_HPS, 0, 0, TR_ATTN_DOT, TR_WEIGHT_MGDA, 0},
    {"mgda-rep-shared-sgd", "shared.h5", TR_MODEL_HPS, 0, 0, TR_ATTN_DOT, TR_WEIGHT_MGDA, 1},
    {"pcgrad-shared-bn-adamw", "shared.h5", TR_MODEL_HPS, 1, 0, TR_ATTN_DOT, TR_WEIGHT_PCGRAD, 0},
    {"cagrad-multi-sgd", "multi.h5", TR_MODEL_MRN, 0, 0, TR_ATTN_DOT, TR_WEIGHT_CAGRAD, 0},
};

/* ---- io level: collective writes, resharding loads --------------------------------- */

#define IO_T 6

/* The value of global element i of tensor k: distinct everywhere. */
static float io_value(int k, int64_t i) {
    return (float)(k * 1000003 + i) * 0.25f;
}

/* A small arena: two shared tensors, two task tensors (T = IO_T). */
static tr_status io_params(tr_params *p, const tr_grid *g) {
    tr_params_init(p);
    int id;
    int64_t s1[2] = {5, 3}, s2[1] = {7}, t1[2] = {4, 3}, t2[1] = {9};
    TR_CALL(tr_params_add(p, &id, "shared.a", TR_GROUP_TRUNK, 1, 2, s1, 0, 1, 0, 1));
    TR_CALL(tr_params_add(p, &id, "shared.b", TR_GROUP_TRUNK, 0, 1, s2, 0, 1, 0, 1));
    TR_CALL(tr_params_add(p, &id, "task.a", TR_GROUP_HEAD, 1, 2, t1, 1, IO_T, g->t0, g->tn));
    TR_CALL(tr_params_add(p, &id, "task.b", TR_GROUP_HEAD, 0, 1, t2, 1, IO_T, g->t0, g->tn));
    return tr_params_alloc(p);
}

/* Fill (or check, returning mismatches) this rank's slices with io_value + shift. */
static int64_t io_fill(tr_params *p, float *arena, float shift, int check) {
    int64_t bad = 0;
    for (int k = 0; k < p->n; k++) {
        const tr_tensor *t = &p->t[k];
        int64_t base = t->task_axis ? t->t0 * (int64_t)t->per_task : 0;
        for (size_t i = 0; i < t->count; i++) {
            float v = io_value(k, base + (int64_t)i) + shift;
            if (check)
                bad += arena[t->offset + i] != v;
            else
                arena[t->offset + i] = v;
        }
    }
    return bad;
}

static void test_io_collective_reshard(void **unused) {
    (void)unused;
    tr_grid g;
    int S = g_size <= IO_T ? g_size : 1;
    MPI_ASSERT(tr_grid_init(&g, MPI_COMM_WORLD, IO_T, S, NULL) == TR_OK);
    tr_params p;
    MPI_ASSERT(io_params(&p, &g) == TR_OK);
    float *m = calloc(p.total, sizeof(float));
    double extra[6] = {1.5, -2.0, 3.25, 4.0, 5.5, 6.75}, window[IO_T * 4];
    for (int i = 0; i < IO_T * 4; i++)
        window[i] = i + 0.5;
    io_fill(&p, p.data, 0.0f, 0);
    io_fill(&p, m, 0.5f, 0);
    tr_extra_state ex = {.name = "/mrn/fc8/sigma3", .data = extra, .ndim = 2, .dims = {2, 3}};
    tr_relations rels;
    memset(&rels, 0, sizeof(rels));
    double corr[4] = {1.0, 0.5, 0.5, 1.0};
    MPI_ASSERT(tr_relations_add(&rels, "mrn.fc8.task_corr", "task correlation", "task,task", corr,
                                2, 2) == TR_OK);
    tr_ckpt_state s = {
        .params = &p, .opt_m = m, .window = window, .extra = &ex, .n_extra = 1, .relations = &rels};
    s.sc = (tr_ckpt_scalars){.step = 42,
                             .steps_per_epoch = 10,
                             .total_steps = 100,
                             .seed = 7,
                             .opt_t = 42,
                             .best_step = -1,
                             .best_score = NAN};
    char path[512];
    snprintf(path, sizeof(path), "%s/io.h5", g_dir);
    tr_ckpt_io io;
    memset(&io, 0, sizeof(io));
    MPI_ASSERT(tr_checkpoint_save(path, &s, &g, NULL, &io) == TR_OK);
    /* params (4) + optim/m (4) + window + extra: all collective on every rank */
    if (g_rank == 0)
        printf("  save on P=%d (S=%d): %lld collective, %lld independent transfers %s\n", g_size, S,
               (long long)io.collective, (long long)io.independent, io.cause);
    MPI_ASSERT(io.independent == 0);
    MPI_ASSERT(io.collective == 10);
    char why[512];
    MPI_ASSERT(tr_checkpoint_validate_all(path, &s, MPI_COMM_WORLD, why, sizeof(why)) ==
               TR_CKPT_VALID);
    tr_params_free(&p);
    tr_relations_free(&rels);
    free(m);
    tr_grid_free(&g);

    /* load on the first P' ranks, every grid */
    for (int P2 = 1; P2 <= g_size; P2++) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, g_rank < P2 ? 0 : MPI_UNDEFINED, g_rank, &sub);
        for (int S2 = 1; S2 <= P2; S2++) {
            int ok = 1;
            if (P2 % S2 || S2 > IO_T)
                continue;
            if (sub != MPI_COMM_NULL) {
                tr_grid g2;
                tr_params p2;
                ok =
                    tr_grid_init(&g2, sub, IO_T, S2, NULL) == TR_OK && io_params(&p2, &g2) == TR_OK;
                float *m2 = calloc(p2.total, sizeof(float));
                double ex2[6] = {0}, w2[IO_T * 4] = {0};
                tr_extra_state e2 = {
                    .name = "/mrn/fc8/sigma3", .data = ex2, .ndim = 2, .dims = {2, 3}};
                tr_ckpt_state s2 = {
                    .params = &p2, .opt_m = m2, .window = w2, .extra = &e2, .n_extra = 1};
                tr_ckpt_io io2;
                memset(&io2, 0, sizeof(io2));
                ok = ok && tr_checkpoint_load(path, &s2, &g2, &io2) == TR_OK;
                ok = ok && io_fill(&p2, p2.data, 0.0f, 1) == 0 && io_fill(&p2, m2, 0.5f, 1) == 0;
                ok = ok && memcmp(ex2, extra, sizeof(extra)) == 0 &&
                     memcmp(w2, window, sizeof(window)) == 0;
                ok = ok && s2.sc.step == 42 && s2.sc.seed == 7 && s2.sc.opt_t == 42 &&
                     s2.sc.best_step == -1 && isnan(s2.sc.best_score);
                ok = ok && io2.independent == 0 && io2.collective == 10;
                if (!ok)
                    fprintf(stderr, "[rank %d] load at P'=%d S=%d failed: %s (%lld/%lld)\n", g_rank,
                            P2, S2, tr_error_message(), (long long)io2.collective,
                            (long long)io2.independent);
                free(m2);
                tr_params_free(&p2);
                tr_grid_free(&g2);
            }
            MPI_ASSERT(ok);
        }
        if (sub != MPI_COMM_NULL)
            MPI_Comm_free(&sub);
    }
    /* the read-only summary */
    if (g_rank == 0) {
        tr_ckpt_info info;
        assert_int_equal(tr_checkpoint_info(path, &info), TR_OK);
        assert_int_equal(info.verdict, TR_CKPT_VALID);
        assert_int_equal(info.sc.step, 42);
        assert_int_equal(info.epoch, 4);
        assert_int_equal(info.cursor, 2);
        assert_int_equal(info.world_size, g_size);
        assert_int_equal(info.n_datasets, 11); /* and /relations/mrn.fc8.task_corr */
        tr_checkpoint_info_free(&info);
        tr_relations r;
        int found = 0;
        assert_int_equal(tr_relations_load(path, &r, &found), TR_OK);
        assert_true(found && r.n == 1 && r.items[0].data[1] == 0.5);
        tr_relations_free(&r);
    }
}

/* ---- training level ------------------------------------------------------------------- */

static void make_config(tr_config *c, const model_row *row, const char *ckpt_dir) {
    tr_config_default(c);
    snprintf(c->data_path, sizeof(c->data_path), "%s/%s", g_dir, row->data);
    c->model_kind = row->kind;
    c->trunk = TR_TRUNK_MLP;
    c->mlp_hidden[0] = 32;
    c->mlp_hidden[1] = 24;
    c->mlp_layers = 2;
    c->head_hidden = 16;
    c->batchnorm = row->bn_adamw;
    c->dropout = row->bn_adamw ? 0.0f : 0.2f;
    c->batch_size = row->batch ? row->batch : 12;
    c->mran_attention = row->attention;
    c->weighting = row->weighting;
    c->rep_grad = row->rep_grad;
    c->epochs = 100;
    c->max_steps = N_STEPS;
    c->eval_every = 5; /* model selection state crosses the stop */
    c->sched.base_lr = 0.05f;
    c->sched.kind = TR_SCHED_COSINE;
    c->progress = TR_PROGRESS_OFF;
    c->seed = 5;
    c->ckpt_every_steps = 4;
    c->ckpt_every_seconds = 0;
    c->ckpt_keep = 0;
    snprintf(c->ckpt_dir, sizeof(c->ckpt_dir), "%s", ckpt_dir ? ckpt_dir : "");
    if (row->kind == TR_MODEL_MRN) {
        /* covariance updates before and after the stop, and a prox step size
         * pending across it (prox_every 3 does not divide the stop step) */
        c->mrn_update_every = 5;
        c->mrn_lambda = 20.0f;
        c->mrn_prox_every = 3;
    }
    if (row->bn_adamw) {
        c->opt.kind = TR_OPT_ADAMW;
        c->sched.base_lr = 0.003f;
    }
}

static tr_status run(const tr_config *c, MPI_Comm comm, const char *dir, const char *resume,
                     int64_t stop_after, tr_train_result *res) {
    tr_train_opts opts = {.run_dir = dir,
                          .quiet = 1,
                          .record_losses = 1,
                          .resume = resume,
                          .stop_after_steps = stop_after};
    tr_error_clear();
    tr_status st = tr_train_run(c, comm, &opts, res);
    if (st != TR_OK && st != TR_STOPPED)
        fprintf(stderr, "[rank %d] %s: %s\n", g_rank, dir, tr_error_message());
    return st;
}

typedef struct {
    const char *b;
    hid_t fb;
    int differ;
    char first[200];
} cmp_ctx;

static herr_t cmp_one(hid_t fa, const char *name, const H5O_info_t *oi, void *op) {
    cmp_ctx *c = op;
    if (oi->type != H5O_TYPE_DATASET)
        return 0;
    hid_t da = H5Dopen2(fa, name, H5P_DEFAULT), db = H5Dopen2(c->fb, name, H5P_DEFAULT);
    int same = da >= 0 && db >= 0;
    if (same) {
        hid_t sa = H5Dget_space(da), sb = H5Dget_space(db), ta = H5Dget_type(da);
        size_t n = (size_t)H5Sget_simple_extent_npoints(sa), sz = H5Tget_size(ta);
        same = (size_t)H5Sget_simple_extent_npoints(sb) == n;
        char *x = calloc(n * sz + 1, 1), *y = calloc(n * sz + 1, 1);
        same = same && H5Dread(da, ta, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0 &&
               H5Dread(db, ta, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0 && memcmp(x, y, n * sz) == 0;
        free(x);
        free(y);
        H5Sclose(sa);
        H5Sclose(sb);
        H5Tclose(ta);
    }
    if (da >= 0)
        H5Dclose(da);
    if (db >= 0)
        H5Dclose(db);
    if (!same && !c->differ++)
        snprintf(c->first, sizeof(c->first), "/%s", name);
    return 0;
}

/* Rank 0: every dataset of a also in b, bitwise equal. */
static int files_equal(const char *a, const char *b) {
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT),
          fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    cmp_ctx c = {.b = b, .fb = fb};
    int ok = fa >= 0 && fb >= 0 &&
             H5Ovisit2(fa, H5_INDEX_NAME, H5_ITER_NATIVE, cmp_one, &c, H5O_INFO_BASIC) >= 0 &&
             c.differ == 0;
    if (!ok)
        fprintf(stderr, "%s and %s differ (%d datasets, first %s)\n", a, b, c.differ, c.first);
    if (fa >= 0)
        H5Fclose(fa);
    if (fb >= 0)
        H5Fclose(fb);
    return ok;
}

static int exists(const char *path) {
    return access(path, F_OK) == 0;
}

/* A checkpoint of one train.weighting (or of its hyper-parameters) does not
 * resume under another: a config error (exit 2), and the run is left as it was. */
static void refuse_other_weighting(const tr_config *c, const char *dir) {
    tr_train_result r;
    tr_config o = *c;
    o.weighting = c->weighting == TR_WEIGHT_DWA ? TR_WEIGHT_EQUAL : TR_WEIGHT_DWA;
    o.rep_grad = 0;
    MPI_ASSERT(run(&o, MPI_COMM_WORLD, dir, "auto", 0, &r) == TR_ERR_CONFIG);
    tr_train_result_free(&r);
    o = *c;
    o.dwa_temp = 3.0f;
    MPI_ASSERT(run(&o, MPI_COMM_WORLD, dir, "auto", 0, &r) == TR_ERR_CONFIG);
    tr_train_result_free(&r);
    tr_error_clear();
}

static void exact_resume(const model_row *row) {
    char a[400], b[400], p1[600], p2[600];
    snprintf(a, sizeof(a), "%s/%s-P%d-straight", g_dir, row->label, g_size);
    snprintf(b, sizeof(b), "%s/%s-P%d-stopped", g_dir, row->label, g_size);
    tr_config c;
    make_config(&c, row, NULL);
    tr_train_result ra, rb, rc;
    MPI_ASSERT(run(&c, MPI_COMM_WORLD, a, "none", 0, &ra) == TR_OK);
    MPI_ASSERT(ra.steps == N_STEPS && ra.checkpoints == N_STEPS / 4);
    MPI_ASSERT(ra.ckpt_io_independent == 0 && ra.ckpt_io_collective > 0);
    /* stop after K_STOP steps (not a multiple of every_steps) */
    MPI_ASSERT(run(&c, MPI_COMM_WORLD, b, "none", K_STOP, &rb) == TR_STOPPED);
    MPI_ASSERT(rb.steps == K_STOP);
    snprintf(p1, sizeof(p1), "%s/checkpoints/ckpt-%d.h5", b, K_STOP);
    MPI_ASSERT(exists(p1) && strcmp(rb.checkpoint, p1) == 0);
    snprintf(p2, sizeof(p2), "%s/model.h5", b);
    MPI_ASSERT(!exists(p2)); /* a stopped run has not finished */
    if (row->weighting != TR_WEIGHT_EQUAL)
        refuse_other_weighting(&c, b);
    MPI_ASSERT(run(&c, MPI_COMM_WORLD, b, "auto", 0, &rc) == TR_OK);
    MPI_ASSERT(rc.first_step == K_STOP && rc.steps == N_STEPS);
    int same_losses = memcmp(ra.losses + K_STOP * ra.T, rc.losses + K_STOP * rc.T,
                             sizeof(double) * (size_t)((N_STEPS - K_STOP) * ra.T)) == 0;
    MPI_ASSERT(same_losses);
    MPI_ASSERT(ra.best_step == rc.best_step && ra.test_mean == rc.test_mean &&
               ra.val_mean == rc.val_mean);
    int ok = 1;
    if (g_rank == 0) {
        /* every checkpoint, every group (those written after the resume too:
         * /relations included before the method's next update) */
        for (int k = 4; k <= N_STEPS; k += 4) {
            snprintf(p1, sizeof(p1), "%s/checkpoints/ckpt-%d.h5", a, k);
            snprintf(p2, sizeof(p2), "%s/checkpoints/ckpt-%d.h5", b, k);
            ok = ok && files_equal(p1, p2) && files_equal(p2, p1);
        }
        snprintf(p1, sizeof(p1), "%s/model.h5", a);
        snprintf(p2, sizeof(p2), "%s/model.h5", b);
        ok = ok && files_equal(p1, p2);
        snprintf(p1, sizeof(p1), "%s/relations.h5", a);
        snprintf(p2, sizeof(p2), "%s/relations.h5", b);
        ok = ok && exists(p1) == exists(p2) && (!exists(p1) || files_equal(p1, p2));
        printf("  %-22s P=%d: stop at %d, resume to %d: every checkpoint and model.h5 %s\n",
               row->label, g_size, K_STOP, N_STEPS, ok ? "bitwise identical" : "DIFFER");
    }
    MPI_ASSERT(mpi_all(ok, "bitwise identical files"));
    tr_train_result_free(&ra);
    tr_train_result_free(&rb);
    tr_train_result_free(&rc);
}

static void test_exact_resume(void **unused) {
    (void)unused;
    for (size_t i = 0; i < sizeof(k_models) / sizeof(k_models[0]); i++)
        exact_resume(&k_models[i]);
}

static double max_rel_diff(const double *a, const double *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-12);
        if (!(d <= worst))
            worst = d;
    }
    return worst;
}

/* Stop at P = 2 (or 1), resume on every P' <= size with every grid. */
static void reshard(const model_row *row) {
    int P = g_size >= 2 ? 2 : 1;
    char ref[400], stop[400], ckpt[500];
    snprintf(ref, sizeof(ref), "%s/rs-%s-ref", g_dir, row->label);
    snprintf(stop, sizeof(stop), "%s/rs-%s-stop", g_dir, row->label);
    snprintf(ckpt, sizeof(ckpt), "%s/checkpoints/ckpt-%d.h5", stop, K_STOP);
    tr_config c;
    make_config(&c, row, NULL);
    c.ckpt_every_steps = 0;
    double losses[N_STEPS * 8];
    int T = 0, ok = 1;
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, g_rank < P ? 0 : MPI_UNDEFINED, g_rank, &sub);
    if (sub != MPI_COMM_NULL) {
        tr_train_result r, s;
        ok = run(&c, sub, ref, "none", 0, &r) == TR_OK &&
             run(&c, sub, stop, "none", K_STOP, &s) == TR_STOPPED;
        T = r.T;
        if (ok)
            memcpy(losses, r.losses, sizeof(double) * (size_t)(N_STEPS * T));
        tr_train_result_free(&r);
        tr_train_result_free(&s);
        MPI_Comm_free(&sub);
    }
    MPI_ASSERT(mpi_all(ok, "reference and stopped runs"));
    MPI_Bcast(&T, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(losses, N_STEPS * T, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    for (int P2 = 1; P2 <= g_size; P2++) {
        MPI_Comm_split(MPI_COMM_WORLD, g_rank < P2 ? 0 : MPI_UNDEFINED, g_rank, &sub);
        for (int S2 = 1; S2 <= P2; S2++) {
            if (P2 % S2 || S2 > T || (P2 == P && S2 == P))
                continue;
            double d = 0.0;
            ok = 1;
            if (sub != MPI_COMM_NULL) {
                char dir[500];
                snprintf(dir, sizeof(dir), "%s/rs-%s-P%d-S%d", g_dir, row->label, P2, S2);
                tr_config c2 = c;
                c2.task_shards = S2;
                tr_train_result r;
                ok = run(&c2, sub, dir, ckpt, 0, &r) == TR_OK && r.first_step == K_STOP &&
                     r.steps == N_STEPS;
                if (ok)
                    d = max_rel_diff(r.losses + K_STOP * T, losses + K_STOP * T,
                                     (size_t)((N_STEPS - K_STOP) * T));
                tr_train_result_free(&r);
            }
            if (g_rank == 0)
                printf("  %-22s saved at P=%d, resumed at P=%d S=%d: max relative loss "
                       "difference %.2e\n",
                       row->label, P, P2, S2, d);
            MPI_ASSERT(ok && d <= TOL);
        }
        if (sub != MPI_COMM_NULL)
            MPI_Comm_free(&sub);
    }
}

static void test_reshard(void **unused) {
    (void)unused;
    reshard(&k_models[0]);
    reshard(&k_models[1]);
    reshard(&k_models[3]);
    reshard(&k_models[10]); /* MMoE: the gate sums of P = 2 go to rank 0 of P' */
    reshard(&k_models[11]); /* cross-stitch: replicated columns and alphas */
    reshard(&k_models[16]); /* gradnorm: learned weights, initial losses */
    reshard(&k_models[20]); /* pcgrad: Gram slices of another P */
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    tr_log_init(g_rank, TR_LOG_WARN);
    mpi_data_setup(g_dir, sizeof(g_dir), "ckpttest", MPI_DATA_MULTI | MPI_DATA_SHARED);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_collective_reshard),
        cmocka_unit_test(test_exact_resume),
        cmocka_unit_test(test_reshard),
    };
    int rc = cmocka_run_group_tests_name("checkpoint", tests, NULL, NULL);
    mpi_data_cleanup(g_dir);
    MPI_Finalize();
    return rc;
}
