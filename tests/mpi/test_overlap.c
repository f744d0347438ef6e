// mpi-ranks: 2 3 4
/*
 * dist.overlap: the trunk gradient's all-reduce buckets started during the
 * backward give the same bits as the same buckets all-reduced after it. For
 * HPS and MRN (whose buckets start early: the timeline shows
 * trunk_allreduce_inflight), MMoE and a per-task weighting (whose buckets
 * start after the backward), in both data settings, with and without batch
 * norm (its statistics are all-reduced inside the overlapped backward), with
 * and without the stall watchdog: a run with overlap and one without, at the
 * same P and with buckets of a few hundred floats (many buckets), have
 * bitwise equal per-task losses, test metric and trunk traffic, and agree
 * with the 1-rank run to 1e-5.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "equiv.h"
#include "mpi_data.h"
#include "mpi_test.h"
#include "taskrel/train.h"

#define STEPS 12
#define TOL 1e-5

static char g_dir[256];
static int g_rank, g_size;

static void make_config(tr_config *c, const char *data, tr_model_kind kind, int bn) {
    tr_config_default(c);
    snprintf(c->data_path, sizeof(c->data_path), "%s/%s", g_dir, data);
    c->model_kind = kind;
    c->trunk = TR_TRUNK_MLP;
    c->mlp_hidden[0] = 32;
    c->mlp_hidden[1] = 24;
    c->mlp_layers = 2;
    c->head_hidden = 16;
    c->batchnorm = bn;
    c->dropout = 0.2f;
    c->batch_size = 12;
    c->epochs = 100;
    c->max_steps = STEPS;
    c->eval_every = 6;
    c->sched.base_lr = 0.05f;
    c->progress = TR_PROGRESS_OFF;
    c->seed = 5;
    c->bucket_mb = 0.0005f; /* 131 floats: several buckets per layer */
    if (kind == TR_MODEL_MRN)
        c->mrn_update_every = 4;
    if (kind == TR_MODEL_MMOE) {
        c->mmoe_experts = 3;
        c->mmoe_expert_hidden = 8;
    }
}

/* Run directory of tag on MPI_COMM_WORLD holds "trunk_allreduce_inflight"
 * events in its timeline (rank 0 reads, every rank learns). */
static int saw_early_buckets(const char *tag) {
    int n = 0;
    if (g_rank == 0) {
        char dir[512], path[600];
        equiv_run_dir(dir, sizeof(dir), g_dir, tag, MPI_COMM_WORLD);
        snprintf(path, sizeof(path), "%s/timeline.json", dir);
        FILE *f = fopen(path, "r");
        char line[4096];
        while (f && fgets(line, sizeof(line), f))
            n += strstr(line, "\"trunk_allreduce_inflight\"") != NULL;
        if (f)
            fclose(f);
    }
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return n;
}

static void check_case(const char *data, tr_model_kind kind, int bn, tr_weighting_kind w,
                       float stall, int want_early) {
    char tag[128];
    snprintf(tag, sizeof(tag), "%s-%s-bn%d-%s-wd%g-P%d", data, tr_model_kind_str(kind), bn,
             tr_weighting_kind_str(w), stall, g_size);
    tr_config c;
    make_config(&c, data, kind, bn);
    c.weighting = w;
    c.stall_timeout = stall;
    double ref[STEPS * 8];
    int T = 0;
    char t[160];
    snprintf(t, sizeof(t), "%s-ref", tag);
    equiv_reference(g_dir, &c, STEPS, ref, &T, t, NULL);
    tr_train_result r[2];
    for (int ov = 0; ov < 2; ov++) {
        c.overlap = ov;
        snprintf(t, sizeof(t), "%s-ov%d", tag, ov);
        MPI_ASSERT(equiv_run(g_dir, &c, MPI_COMM_WORLD, &r[ov], t) == TR_OK);
        MPI_ASSERT(r[ov].steps == STEPS && r[ov].T == T);
    }
    size_t n = (size_t)STEPS * (size_t)T;
    double d = equiv_max_rel_diff(r[1].losses, ref, n);
    snprintf(t, sizeof(t), "%s-ov1", tag);
    int early = saw_early_buckets(t);
    if (g_rank == 0)
        printf("  %-44s overlap vs 1 rank %.2e, early bucket rounds %d, bitwise %s\n", tag, d,
               early, memcmp(r[0].losses, r[1].losses, n * sizeof(double)) == 0 ? "yes" : "NO");
    MPI_ASSERT(d <= TOL);
    MPI_ASSERT(memcmp(r[0].losses, r[1].losses, n * sizeof(double)) == 0);
    MPI_ASSERT(r[0].test_mean == r[1].test_mean);
    const tr_coll_stats *a = &r[0].comm[TR_COLL_TRUNK], *b = &r[1].comm[TR_COLL_TRUNK];
    MPI_ASSERT(a->bytes == b->bytes && a->calls == b->calls);
    MPI_ASSERT(want_early ? early >= STEPS : early == 0);
    tr_train_result_free(&r[0]);
    tr_train_result_free(&r[1]);
}

static void test_hps(void **s) {
    (void)s;
    check_case("multi.h5", TR_MODEL_HPS, 0, TR_WEIGHT_EQUAL, 0, 1);
}
static void test_hps_bn(void **s) {
    (void)s;
    check_case("multi.h5", TR_MODEL_HPS, 1, TR_WEIGHT_EQUAL, 0, 1);
}
static void test_hps_shared_input_bn(void **s) {
    (void)s;
    check_case("shared.h5", TR_MODEL_HPS, 1, TR_WEIGHT_EQUAL, 0, 1);
}
static void test_hps_watchdog(void **s) {
    (void)s;
    check_case("multi.h5", TR_MODEL_HPS, 1, TR_WEIGHT_EQUAL, 60, 1);
}
static void test_mrn(void **s) {
    (void)s;
    check_case("multi.h5", TR_MODEL_MRN, 0, TR_WEIGHT_EQUAL, 0, 1);
}
static void test_mmoe(void **s) { /* experts are shared tensors outside the trunk ops */
    (void)s;
    check_case("shared.h5", TR_MODEL_MMOE, 0, TR_WEIGHT_EQUAL, 0, 0);
}
static void test_uncertainty(void **s) {
    (void)s;
    check_case("multi.h5", TR_MODEL_HPS, 0, TR_WEIGHT_UNCERTAINTY, 0, 1);
}
static void test_pcgrad(void **s) { /* per-task gradients: no trunk all-reduce at all */
    (void)s;
    check_case("multi.h5", TR_MODEL_HPS, 0, TR_WEIGHT_PCGRAD, 0, 0);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    tr_log_init(g_rank, TR_LOG_WARN);
    mpi_data_setup(g_dir, sizeof(g_dir), "mpioverlap", MPI_DATA_MULTI | MPI_DATA_SHARED);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hps),
        cmocka_unit_test(test_hps_bn),
        cmocka_unit_test(test_hps_shared_input_bn),
        cmocka_unit_test(test_hps_watchdog),
        cmocka_unit_test(test_mrn),
        cmocka_unit_test(test_mmoe),
        cmocka_unit_test(test_uncertainty),
        cmocka_unit_test(test_pcgrad),
    };
    int rc = cmocka_run_group_tests_name("overlap", tests, NULL, NULL);
    mpi_data_cleanup(g_dir);
    MPI_Finalize();
    return rc;
}
