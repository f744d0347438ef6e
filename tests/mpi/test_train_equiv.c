// mpi-ranks: 1 2 3 4
/*
 * Distributed training gives the 1-rank result: the same short run on P ranks
 * (every grid the rank count allows: task-sharded, replicated, both), in the
 * multi-input and the shared-input setting, for HPS, STL, MRN and
 * cross-stitch networks, agrees with a
 * 1-rank run made inside the test on MPI_COMM_SELF to 1e-5 relative in every
 * per-task loss of 20 steps; two runs at the same P are bitwise identical;
 * and the bytes each collective moved equal the analytic volume of the grid.
 * The same for every train.weighting (HPS, both settings; with batch norm,
 * on cross-stitch's task columns and on MMoE's experts for some).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "equiv.h"
#include "mpi_data.h"
#include "mpi_test.h"
#include "taskrel/dataset.h"
#include "taskrel/train.h"

#define STEPS 20
#define TOL 1e-5

static char g_dir[256];
static int g_rank, g_size;

static int g_mrn_gradient;            /* MRN cases: prior_step = gradient instead of prox */
static tr_weighting_kind g_weighting; /* train.weighting of the weighting rows */
static int g_rep_grad;                /* MGDA-UB */

static void make_config(tr_config *c, const char *data, tr_model_kind kind, int batchnorm) {
    tr_config_default(c);
    snprintf(c->data_path, sizeof(c->data_path), "%s/%s", g_dir, data);
    c->model_kind = kind;
    c->trunk = TR_TRUNK_MLP;
    c->mlp_hidden[0] = 32;
    c->mlp_hidden[1] = 24;
    c->mlp_layers = 2;
    c->head_hidden = 16;
    c->batchnorm = batchnorm;
    c->dropout = 0.2f; /* keyed on sample ids: must not depend on P */
    c->batch_size = 12;
    c->epochs = 100;
    c->max_steps = STEPS;
    c->eval_every = 10;
    c->sched.base_lr = 0.05f;
    c->progress = TR_PROGRESS_OFF;
    c->seed = 3;
    if (kind == TR_MODEL_MRN) { /* 4 covariance updates in the 20 steps; a strong prior */
        c->mrn_update_every = 5;
        c->mrn_lambda = g_mrn_gradient ? 0.1f : 20.0f; /* the gradient form diverges at 2 */
        c->mrn_prior_step = g_mrn_gradient ? TR_MRN_GRADIENT : TR_MRN_PROX;
    }
    c->weighting = g_weighting;
    c->rep_grad = g_rep_grad;
    if (batchnorm) { /* the batch-norm variants also cover AdamW */
        c->opt.kind = TR_OPT_ADAMW;
        c->sched.base_lr = 0.003f;
    }
}

static int64_t pad16(int64_t n) {
    return (n + 15) / 16 * 16;
}

/* Analytic bytes moved by this rank's collectives for the mlp model:
 *   trunk all-reduce over world   = the shared tensors (padded arena range)
 *   head all-reduce over shard    = this rank's task tensors
 *   features over replica_comm    = (my rows + replica rows) x feature width
 * once per step each, and nothing where the communicator has one rank. */
static void check_weighting_volume(const tr_config *c, const tr_train_result *r, int S, int T,
                                   int shared_input, int in_dim);

static void check_volume(const tr_config *c, const tr_train_result *r, int S, int T,
                         int shared_input, int in_dim) {
    if (c->weighting != TR_WEIGHT_EQUAL) {
        check_weighting_volume(c, r, S, T, shared_input, in_dim);
        return;
    }
    int R = g_size / S, s = g_rank % S;
    int stl = c->model_kind == TR_MODEL_STL;
    int xs = c->model_kind == TR_MODEL_XSTITCH; /* T replicated columns and their alphas */
    int64_t cols = xs ? T : 1;
    int t0 = T * s / S, tn = T * (s + 1) / S - t0; /* equal costs: balanced blocks */
    int64_t trunk = 0, din = in_dim;               /* floats of one copy of the trunk */
    for (int i = 0; i < c->mlp_layers; i++) {
        int64_t h = c->mlp_hidden[i];
        trunk += pad16(cols * din * h) + (c->batchnorm ? 2 * pad16(cols * h) : pad16(cols * h));
        if (xs) /* BN: no bias; a cross-stitch unit after every layer */
            trunk += pad16((int64_t)T * T);
        din = h;
    }
    int out = shared_input ? 1 : 4; /* mmoe: regression; tn --classification: 4 classes */
    int64_t H = c->head_hidden;
    int64_t head = pad16(din * H * tn) + pad16(H * tn) + pad16(H * out * tn) + pad16(out * tn);
    int64_t trunk_floats = stl ? 0 : trunk;
    int64_t task_floats = head;
    if (stl) { /* per-task trunks are task tensors: tn copies, each tensor padded as a whole */
        int64_t d = in_dim;
        for (int i = 0; i < c->mlp_layers; i++) {
            int64_t h = c->mlp_hidden[i];
            task_floats += pad16(d * h * tn) + pad16(h * tn);
            d = h;
        }
    }
    int64_t steps = r->steps;
    const tr_coll_stats *tk = &r->comm[TR_COLL_TRUNK], *hd = &r->comm[TR_COLL_HEAD];
    const tr_coll_stats *ft = &r->comm[TR_COLL_FEATURES];
    int64_t want_tk = (g_size > 1 && trunk_floats > 0) ? steps * trunk_floats * 4 : 0;
    int64_t want_hd = R > 1 ? steps * task_floats * 4 : 0;
    int64_t want_ft = 0;
    if (shared_input && !stl && S > 1) {
        int r_idx = g_rank / S;
        int rep_n = c->batch_size * (r_idx + 1) / R - c->batch_size * r_idx / R;
        int my_n = rep_n * (s + 1) / S - rep_n * s / S;
        want_ft = steps * ((int64_t)my_n + rep_n) * din * cols * 4; /* every column */
    }
    if (tk->bytes != want_tk || hd->bytes != want_hd || ft->bytes != want_ft)
        fprintf(stderr, "[rank %d] bytes trunk %lld/%lld head %lld/%lld features %lld/%lld\n",
                g_rank, (long long)tk->bytes, (long long)want_tk, (long long)hd->bytes,
                (long long)want_hd, (long long)ft->bytes, (long long)want_ft);
    MPI_ASSERT(tk->bytes == want_tk);
    MPI_ASSERT(hd->bytes == want_hd);
    MPI_ASSERT(ft->bytes == want_ft);
    MPI_ASSERT(tk->calls == (want_tk ? steps : 0));
    MPI_ASSERT(hd->calls == (want_hd ? steps : 0));
    MPI_ASSERT(ft->calls == (want_ft ? 2 * steps : 0));
    /* one fused scalar all-reduce per step: (4 T + 2) doubles */
    const tr_coll_stats *sc = &r->comm[TR_COLL_SCALARS];
    MPI_ASSERT(sc->bytes == (g_size > 1 ? steps * (4 * T + 2) * 8 : 0));
}

/* Shared floats of the hps mlp model (the padded arena range). */
static int64_t hps_trunk_floats(const tr_config *c, int in_dim) {
    int64_t trunk = 0, din = in_dim;
    for (int i = 0; i < c->mlp_layers; i++) {
        int64_t h = c->mlp_hidden[i];
        trunk += pad16(din * h) + (c->batchnorm ? 2 * pad16(h) : pad16(h));
        din = h;
    }
    return trunk;
}

/* Weightings that take the task gradients of the shared parameters every step
 * (HPS): no trunk all-reduce; over world a reduce-scatter of the T task
 * gradients (T x shared floats), the Gram and the task losses (T^2 + 2T
 * doubles) and an all-gather of this rank's slice of the combined gradient;
 * within the replica one feature reduce-scatter per task. */
static void check_weighting_volume(const tr_config *c, const tr_train_result *r, int S, int T,
                                   int shared_input, int in_dim) {
    tr_weighting_kind k = c->weighting;
    if (c->model_kind != TR_MODEL_HPS || c->rep_grad ||
        !(k == TR_WEIGHT_MGDA || k == TR_WEIGHT_PCGRAD || k == TR_WEIGHT_CAGRAD))
        return;
    int64_t len = hps_trunk_floats(c, in_dim), steps = r->steps;
    int64_t mine = len * (g_rank + 1) / g_size - len * g_rank / g_size;
    int64_t want = g_size > 1 ? steps * (T * len * 4 + (T * T + 2 * T) * 8 + mine * 4) : 0;
    const tr_coll_stats *wt = &r->comm[TR_COLL_WEIGHTING], *tk = &r->comm[TR_COLL_TRUNK];
    const tr_coll_stats *ft = &r->comm[TR_COLL_FEATURES];
    int64_t want_ft = 0;
    if (shared_input && S > 1) {
        int R = g_size / S, s = g_rank % S, r_idx = g_rank / S;
        int rep_n = c->batch_size * (r_idx + 1) / R - c->batch_size * r_idx / R;
        int my_n = rep_n * (s + 1) / S - rep_n * s / S;
        want_ft = steps * ((int64_t)my_n + (int64_t)T * rep_n) * c->mlp_hidden[1] * 4;
    }
    if (g_rank == 0)
        printf("  weighting %s P=%d S=%d: %lld bytes per step (trunk all-reduce of equal: "
               "%lld)\n",
               tr_weighting_kind_str(k), g_size, S, (long long)(wt->bytes / steps),
               (long long)(g_size > 1 ? len * 4 : 0));
    if (wt->bytes != want || ft->bytes != want_ft)
        fprintf(stderr, "[rank %d] weighting bytes %lld/%lld features %lld/%lld\n", g_rank,
                (long long)wt->bytes, (long long)want, (long long)ft->bytes, (long long)want_ft);
    MPI_ASSERT(tk->bytes == 0);
    MPI_ASSERT(wt->bytes == want);
    MPI_ASSERT(wt->calls == (want ? 3 * steps : 0));
    MPI_ASSERT(ft->bytes == want_ft);
}

static void check_setting(const char *data, tr_model_kind kind, int shared_input, int bn) {
    char tag[96];
    snprintf(tag, sizeof(tag), "%s-%s%s-bn%d%s%s%s", data, tr_model_kind_str(kind),
             kind == TR_MODEL_MRN && g_mrn_gradient ? "-grad" : "", bn, g_weighting ? "-" : "",
             g_weighting ? tr_weighting_kind_str(g_weighting) : "", g_rep_grad ? "-rep" : "");
    tr_config c;
    make_config(&c, data, kind, bn);
    double ref[STEPS * 8];
    int T = 0;
    char ref_tag[128];
    snprintf(ref_tag, sizeof(ref_tag), "%s-ref", tag);
    equiv_reference(g_dir, &c, STEPS, ref, &T, ref_tag, NULL);
    if (g_weighting != TR_WEIGHT_EQUAL) { /* the method must change the run */
        tr_config e = c;
        e.weighting = TR_WEIGHT_EQUAL;
        e.rep_grad = 0;
        double eq[STEPS * 8];
        snprintf(ref_tag, sizeof(ref_tag), "%s-equal", tag);
        equiv_reference(g_dir, &e, STEPS, eq, &T, ref_tag, NULL);
        double d = equiv_max_rel_diff(ref, eq, (size_t)STEPS * T);
        if (g_rank == 0)
            printf("  %-36s max relative loss difference to equal %.2e\n", tag, d);
        MPI_ASSERT(d > 1e-4);
    }
    /* every shard count that divides P and fits the tasks */
    for (int S = 1; S <= g_size; S++) {
        if (g_size % S || S > T)
            continue;
        c.task_shards = S;
        tr_train_result a, b;
        char t[120];
        snprintf(t, sizeof(t), "%s-P%d-S%d", tag, g_size, S);
        equiv_run_pair(g_dir, &c, STEPS, ref, T, TOL, t, &a, &b);
        check_volume(&c, &a, S, T, shared_input, shared_input ? 12 : 16);
        tr_train_result_free(&a);
        tr_train_result_free(&b);
    }
}

static void test_multi_input_hps(void **s) {
    (void)s;
    check_setting("multi.h5", TR_MODEL_HPS, 0, 0);
}
static void test_multi_input_hps_bn(void **s) {
    (void)s;
    check_setting("multi.h5", TR_MODEL_HPS, 0, 1);
}
static void test_multi_input_stl(void **s) {
    (void)s;
    check_setting("multi.h5", TR_MODEL_STL, 0, 0);
}
static void test_multi_input_mrn(void **s) {
    (void)s;
    g_mrn_gradient = 0;
    check_setting("multi.h5", TR_MODEL_MRN, 0, 0);
}
static void test_multi_input_mrn_gradient(void **s) {
    (void)s;
    g_mrn_gradient = 1;
    check_setting("multi.h5", TR_MODEL_MRN, 0, 0);
}
static void test_shared_input_hps(void **s) {
    (void)s;
    check_setting("shared.h5", TR_MODEL_HPS, 1, 0);
}
static void test_shared_input_hps_bn(void **s) {
    (void)s;
    check_setting("shared.h5", TR_MODEL_HPS, 1, 1);
}
static void test_multi_input_xstitch(void **s) {
    (void)s;
    check_setting("multi.h5", TR_MODEL_XSTITCH, 0, 0);
}
static void test_shared_input_xstitch(void **s) {
    (void)s;
    check_setting("shared.h5", TR_MODEL_XSTITCH, 1, 0);
}
static void test_shared_input_xstitch_bn(void **s) {
    (void)s;
    check_setting("shared.h5", TR_MODEL_XSTITCH, 1, 1);
}
static void test_shared_input_stl(void **s) {
    (void)s;
    check_setting("shared.h5", TR_MODEL_STL, 1, 0);
}

/* ---- train.weighting: every method, both data settings ---------------------------- */

static void check_weighting(tr_weighting_kind w, int rep, tr_model_kind kind, int bn) {
    g_weighting = w;
    g_rep_grad = rep;
    check_setting("multi.h5", kind, 0, bn);
    check_setting("shared.h5", kind, 1, bn);
    g_weighting = TR_WEIGHT_EQUAL;
    g_rep_grad = 0;
}
static void test_weighting_uncertainty(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_UNCERTAINTY, 0, TR_MODEL_HPS, 0);
}
static void test_weighting_dwa(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_DWA, 0, TR_MODEL_HPS, 0);
}
static void test_weighting_gradnorm(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_GRADNORM, 0, TR_MODEL_HPS, 0);
}
static void test_weighting_mgda(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_MGDA, 0, TR_MODEL_HPS, 0);
}
static void test_weighting_mgda_rep(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_MGDA, 1, TR_MODEL_HPS, 0);
}
static void test_weighting_pcgrad(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_PCGRAD, 0, TR_MODEL_HPS, 0);
}
static void test_weighting_cagrad(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_CAGRAD, 0, TR_MODEL_HPS, 0);
}
/* batch norm (its statistics couple the tasks' rows) with AdamW */
static void test_weighting_pcgrad_bn(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_PCGRAD, 0, TR_MODEL_HPS, 1);
}
static void test_weighting_gradnorm_bn(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_GRADNORM, 0, TR_MODEL_HPS, 1);
}
/* other shared layouts: task columns (cross-stitch) */
static void test_weighting_cagrad_xstitch(void **s) {
    (void)s;
    check_weighting(TR_WEIGHT_CAGRAD, 0, TR_MODEL_XSTITCH, 0);
}

/* MMoE (shared-input only): experts are shared layers too */
static void test_weighting_mgda_mmoe(void **s) {
    (void)s;
    g_weighting = TR_WEIGHT_MGDA;
    check_setting("shared.h5", TR_MODEL_MMOE, 1, 0);
    g_weighting = TR_WEIGHT_UNCERTAINTY;
    check_setting("shared.h5", TR_MODEL_MMOE, 1, 0);
    g_weighting = TR_WEIGHT_EQUAL;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    tr_log_init(g_rank, TR_LOG_WARN);
    mpi_data_setup(g_dir, sizeof(g_dir), "mpitest", MPI_DATA_MULTI | MPI_DATA_SHARED);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_input_hps),
        cmocka_unit_test(test_multi_input_hps_bn),
        cmocka_unit_test(test_multi_input_stl),
        cmocka_unit_test(test_shared_input_hps),
        cmocka_unit_test(test_shared_input_hps_bn),
        cmocka_unit_test(test_shared_input_stl),
        cmocka_unit_test(test_multi_input_mrn),
        cmocka_unit_test(test_multi_input_mrn_gradient),
        cmocka_unit_test(test_multi_input_xstitch),
        cmocka_unit_test(test_shared_input_xstitch),
        cmocka_unit_test(test_shared_input_xstitch_bn),
        cmocka_unit_test(test_weighting_uncertainty),
        cmocka_unit_test(test_weighting_dwa),
        cmocka_unit_test(test_weighting_gradnorm),
        cmocka_unit_test(test_weighting_mgda),
        cmocka_unit_test(test_weighting_mgda_rep),
        cmocka_unit_test(test_weighting_pcgrad),
        cmocka_unit_test(test_weighting_cagrad),
        cmocka_unit_test(test_weighting_pcgrad_bn),
        cmocka_unit_test(test_weighting_gradnorm_bn),
        cmocka_unit_test(test_weighting_cagrad_xstitch),
        cmocka_unit_test(test_weighting_mgda_mmoe),
    };
    int rc = cmocka_run_group_tests_name("train_equiv", tests, NULL, NULL);
    mpi_data_cleanup(g_dir);
    MPI_Finalize();
    return rc;
}
