/*
 * Every HDF5 reader of taskrel distrusts its input and cleans up after it:
 *  - damaged copies of a dataset, a checkpoint, a weights file and a relations
 *    file (truncations, single-bit flips spread over the file, runs of random
 *    bytes) are read by every reader (dataset, checkpoint load, validation
 *    summary, stored config, weights, relations, inspect summary, matrix);
 *    whatever each returns, afterwards no file, group, dataset or attribute
 *    is left open (H5Fget_obj_count), so the library closes cleanly (no
 *    "infinite loop closing library" at exit);
 *  - a dataset that claims far more data than its file holds is refused before
 *    anything is allocated;
 *  - string attributes of every kind h5py writes (UTF-8 and ASCII, fixed and
 *    variable length) are read: a dataset whose attributes are all UTF-8
 *    variable-length strings loads.
 * One MPI process (singleton).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "taskrel/checkpoint.h"
#include "taskrel/dataset.h"
#include "taskrel/h5summary.h"
#include "taskrel/relations.h"
#include "taskrel/weights.h"

#define NT 2

static char g_dir[256], g_data[300], g_ckpt[300], g_weights[300], g_rel[300];
static tr_grid g_grid;
static tr_params g_p;
static float *g_m;

/* ---- fixtures ------------------------------------------------------------------- */

static void make_params(tr_params *p) {
    tr_params_init(p);
    int id;
    int64_t s1[2] = {6, 4}, t1[2] = {4, 3};
    assert_int_equal(tr_params_add(p, &id, "trunk.w", TR_GROUP_TRUNK, 1, 2, s1, 0, 1, 0, 1), TR_OK);
    assert_int_equal(tr_params_add(p, &id, "head.w", TR_GROUP_HEAD, 1, 2, t1, 1, NT, 0, NT), TR_OK);
    assert_int_equal(tr_params_alloc(p), TR_OK);
}

static tr_ckpt_state state(tr_params *p, float *m) {
    tr_ckpt_state s = {.params = p, .opt_m = m};
    s.sc = (tr_ckpt_scalars){.step = 3, .steps_per_epoch = 2, .seed = 1, .best_step = -1};
    return s;
}

/* A 2-task multi-input dataset: x (n, 3) float32, classification labels. */
static void write_dataset(const char *path) {
    tr_dataset ds;
    memset(&ds, 0, sizeof(ds));
    ds.setting = TR_SETTING_MULTI_INPUT;
    ds.T = NT;
    ds.ndim = 1;
    ds.dims[0] = 3;
    ds.sample_size = 3;
    ds.tasks = tr_calloc(NT, sizeof(tr_task_info));
    assert_non_null(ds.tasks);
    for (int t = 0; t < NT; t++) {
        snprintf(ds.tasks[t].name, sizeof(ds.tasks[t].name), "task%d", t);
        ds.tasks[t].kind = TR_TASK_CLASSIFICATION;
        ds.tasks[t].classes = 2;
        for (int s = 0; s < TR_SPLIT_COUNT; s++) {
            tr_split_data *sd = &ds.tasks[t].split[s];
            sd->n = 8;
            sd->x = tr_calloc(8 * 3, sizeof(float));
            sd->y = tr_calloc(8, sizeof(int32_t));
            assert_true(sd->x && sd->y);
            for (int i = 0; i < 8 * 3; i++)
                sd->x[i] = (float)(i % 7) - 3.0f;
            for (int i = 0; i < 8; i++)
                sd->y[i] = i % 2;
        }
    }
    assert_int_equal(tr_dataset_save(&ds, path, "test", 1, ""), TR_OK);
    tr_dataset_free(&ds);
}

static int setup(void **unused) {
    (void)unused;
    snprintf(g_dir, sizeof(g_dir), "/tmp/taskrel-h5hostile-%d", (int)getpid());
    mkdir(g_dir, 0755);
    snprintf(g_data, sizeof(g_data), "%s/data.h5", g_dir);
    snprintf(g_ckpt, sizeof(g_ckpt), "%s/ckpt-3.h5", g_dir);
    snprintf(g_weights, sizeof(g_weights), "%s/model.h5", g_dir);
    snprintf(g_rel, sizeof(g_rel), "%s/relations.h5", g_dir);
    if (tr_grid_init(&g_grid, MPI_COMM_WORLD, NT, 1, NULL) != TR_OK)
        return 1;
    make_params(&g_p);
    g_m = calloc(g_p.total, sizeof(float));
    for (size_t i = 0; i < g_p.total; i++)
        g_p.data[i] = (float)i * 0.25f;
    write_dataset(g_data);
    tr_ckpt_state s = state(&g_p, g_m);
    tr_relations rel = {0};
    double corr[4] = {1, 0.5, 0.5, 1};
    snprintf(rel.tasks, sizeof(rel.tasks), "task0,task1");
    if (tr_relations_add(&rel, "mrn.fc8.task_corr", "corr", "task,task", corr, 2, 2) != TR_OK)
        return 1;
    s.relations = &rel;
    tr_status st = tr_checkpoint_save(g_ckpt, &s, &g_grid, NULL, NULL);
    if (st == TR_OK)
        st = tr_weights_save(g_weights, &g_p, NULL, &g_grid, NULL, NULL);
    if (st == TR_OK)
        st = tr_relations_save(g_rel, &rel);
    tr_relations_free(&rel);
    return st != TR_OK;
}

static int teardown(void **unused) {
    (void)unused;
    tr_params_free(&g_p);
    free(g_m);
    tr_grid_free(&g_grid);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) != 0;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* ---- identifier accounting ------------------------------------------------------- */

/* Open HDF5 objects of every file: files, groups, datasets, named datatypes
 * and attributes (H5Fget_obj_count; dataspaces and property lists are not
 * file objects and cannot be counted through the 1.10 API). */
typedef struct {
    ssize_t objs;
} id_census;

static id_census census(void) {
    id_census c = {.objs = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL)};
    return c;
}

/* The readers, as bits of read_all's result. */
enum {
    R_DATA = 1,
    R_CKPT = 2,
    R_WEIGHTS = 4,
    R_INFO = 8,
    R_CONFIG = 16,
    R_REL = 32,
    R_SUMMARY = 64,
    R_MATRIX = 128
};

/* Read path with every reader; none may leave an identifier open. Returns
 * the R_* bits of the readers that failed. */
static int read_all(const char *path, const id_census *before) {
    int failed = 0;
    tr_dataset ds;
    failed |= tr_dataset_load(&ds, path) != TR_OK ? R_DATA : 0;
    tr_dataset_free(&ds);
    tr_params p;
    make_params(&p);
    float *m = calloc(p.total, sizeof(float));
    tr_ckpt_state s = state(&p, m);
    failed |= tr_checkpoint_load(path, &s, &g_grid, NULL) != TR_OK ? R_CKPT : 0;
    failed |= tr_weights_load(path, &p, NULL, &g_grid) != TR_OK ? R_WEIGHTS : 0;
    free(m);
    tr_params_free(&p);
    tr_ckpt_info info;
    failed |=
        tr_checkpoint_info(path, &info) != TR_OK || info.verdict != TR_CKPT_VALID ? R_INFO : 0;
    tr_checkpoint_info_free(&info);
    char *text = NULL;
    failed |= tr_checkpoint_read_config(path, &text) != TR_OK ? R_CONFIG : 0;
    free(text);
    tr_relations rel;
    int found = 0;
    failed |= tr_relations_load(path, &rel, &found) != TR_OK ? R_REL : 0;
    tr_relations_free(&rel);
    tr_h5_summary sum;
    failed |= tr_h5_summary_read(path, &sum) != TR_OK ? R_SUMMARY : 0;
    tr_h5_summary_free(&sum);
    double *mat = NULL;
    int r, c;
    failed |= tr_h5_read_matrix(path, "relations/mrn.fc8.task_corr", &mat, &r, &c, &found) != TR_OK
                  ? R_MATRIX
                  : 0;
    free(mat);
    tr_error_clear();

    id_census after = census();
    if (after.objs != before->objs)
        fail_msg("%s: %zd HDF5 objects open after reading it (H5Fget_obj_count; before: %zd)", path,
                 after.objs, before->objs);
    return failed;
}

/* Damaged copies of src: truncations, single-bit flips over the whole file,
 * runs of random bytes. `own` is the reader of src's kind (R_*): it must
 * refuse some of them. */
static void damage_and_read(const char *src, int own) {
    size_t n;
    unsigned char *b = slurp(src, &n);
    char path[400];
    snprintf(path, sizeof(path), "%s/damaged.h5", g_dir);
    id_census before = census();
    int tried = 0, failed = 0;
    size_t cuts[] = {0, 7, 96, n / 3, n / 2, n - 9, n - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++, tried++) {
        spit(path, b, cuts[i]);
        failed += (read_all(path, &before) & own) != 0;
    }
    size_t stride = n / 80 > 0 ? n / 80 : 1;
    for (size_t off = 0; off < n; off += stride, tried++) {
        b[off] ^= (unsigned char)(1u << (off % 8));
        spit(path, b, n);
        b[off] ^= (unsigned char)(1u << (off % 8));
        failed += (read_all(path, &before) & own) != 0;
    }
    tr_rng rng;
    tr_rng_init(&rng, 7, TR_RNG_TEST, 0);
    unsigned char *junk = malloc(n);
    for (int k = 0; k < 30; k++, tried++) {
        memcpy(junk, b, n);
        size_t at = tr_rng_below(&rng, (uint32_t)n), len = 1 + tr_rng_below(&rng, 64);
        for (size_t j = at; j < at + len && j < n; j++)
            junk[j] = (unsigned char)tr_rng_u32(&rng);
        spit(path, junk, n);
        failed += (read_all(path, &before) & own) != 0;
    }
    printf("  %s: %d damaged copies, each read by 8 readers: its own reader refused %d; no "
           "object left open\n",
           strrchr(src, '/') + 1, tried, failed);
    assert_true(failed > 0);
    free(junk);
    free(b);
}

static void test_damaged_files_leave_nothing_open(void **unused) {
    (void)unused;
    id_census before = census();
    assert_int_equal(before.objs, 0);
    /* the sound files: each is read by its own readers, refused by the others */
    assert_int_equal(read_all(g_data, &before) & R_DATA, 0);
    assert_int_equal(read_all(g_ckpt, &before) & (R_CKPT | R_INFO | R_CONFIG | R_REL), 0);
    assert_int_equal(read_all(g_weights, &before) & R_WEIGHTS, 0);
    assert_int_equal(read_all(g_rel, &before) & (R_REL | R_MATRIX), 0);
    damage_and_read(g_data, R_DATA);
    damage_and_read(g_ckpt, R_CKPT | R_INFO);
    damage_and_read(g_weights, R_WEIGHTS);
    damage_and_read(g_rel, R_REL);
}

/* A dataset whose x claims 2^31 x 4 floats in a file of a few kB (chunked,
 * never written): refused before allocation, naming the dataset. */
static void test_oversized_claim(void **unused) {
    (void)unused;
    char path[400];
    snprintf(path, sizeof(path), "%s/huge.h5", g_dir);
    size_t n;
    unsigned char *b = slurp(g_data, &n);
    spit(path, b, n);
    free(b);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Ldelete(f, "/tasks/task1/train/x", H5P_DEFAULT) >= 0);
    hsize_t dims[2] = {(hsize_t)1 << 31, 4}, chunk[2] = {1024, 4};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t d =
        H5Dcreate2(f, "/tasks/task1/train/x", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    tr_dataset ds;
    double t0 = tr_time_now();
    tr_error_clear();
    assert_int_equal(tr_dataset_load(&ds, path), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), "/tasks/task1/train/x claims more data"));
    assert_true(tr_time_now() - t0 < 5.0);
    tr_error_clear();
}

/* ---- strings of every kind ------------------------------------------------------ */

/* Replace attribute name of obj by a string of the given kind. */
static void put_str(hid_t obj, const char *name, const char *v, H5T_cset_t cset, int vlen) {
    if (H5Aexists(obj, name) > 0)
        assert_true(H5Adelete(obj, name) >= 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    assert_true(H5Tset_size(t, vlen ? H5T_VARIABLE : strlen(v)) >= 0);
    assert_true(H5Tset_cset(t, cset) >= 0);
    if (!vlen)
        H5Tset_strpad(t, H5T_STR_NULLPAD); /* numpy's fixed-length bytes: no terminator */
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, t, vlen ? (const void *)&v : (const void *)v) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void test_string_attributes(void **unused) {
    (void)unused;
    static const struct {
        H5T_cset_t cset;
        int vlen;
    } kinds[] = {
        {H5T_CSET_UTF8, 1},  /* h5py: attrs["x"] = "text" */
        {H5T_CSET_ASCII, 1}, /* h5py with an ASCII vlen dtype */
        {H5T_CSET_UTF8, 0},  /* fixed-length UTF-8 */
        {H5T_CSET_ASCII, 0}, /* h5py: attrs["x"] = np.bytes_("text") */
    };
    char path[400];
    size_t n;
    unsigned char *b = slurp(g_data, &n);
    snprintf(path, sizeof(path), "%s/strings.h5", g_dir);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        spit(path, b, n);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(f >= 0);
        put_str(f, "setting", "multi_input", kinds[k].cset, kinds[k].vlen);
        for (int t = 0; t < NT; t++) {
            char g[64];
            snprintf(g, sizeof(g), "/tasks/task%d", t);
            hid_t grp = H5Gopen2(f, g, H5P_DEFAULT);
            put_str(grp, "kind", "classification", kinds[k].cset, kinds[k].vlen);
            H5Gclose(grp);
        }
        H5Fclose(f);
        tr_dataset ds;
        tr_error_clear();
        tr_status st = tr_dataset_load(&ds, path);
        if (st != TR_OK)
            fail_msg("string kind %zu (cset %d, vlen %d): %s", k, (int)kinds[k].cset, kinds[k].vlen,
                     tr_error_message());
        assert_int_equal(ds.T, NT);
        assert_int_equal(ds.setting, TR_SETTING_MULTI_INPUT);
        tr_dataset_free(&ds);
    }
    free(b);
    /* files written by h5py itself, when python3-h5py is there */
    const char *py = "import h5py, numpy as np, sys\n"
                     "f = h5py.File(sys.argv[1], 'a')\n"
                     "f.attrs['setting'] = 'multi_input'\n"
                     "for g in f['tasks'].values(): g.attrs['kind'] = 'classification'\n";
    /* Debian's python3 (launch/setup.sh installs python3-h5py for it), not one
     * that a PATH may put first */
    const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s -c \"import h5py\" 2>/dev/null", python);
    if (system(cmd) != 0) {
        printf("  (python3-h5py not installed: h5py-written file not tried)\n");
        return;
    }
    b = slurp(g_data, &n);
    spit(path, b, n);
    free(b);
    char script[400];
    snprintf(script, sizeof(script), "%s/h5py_attrs.py", g_dir);
    FILE *sf = fopen(script, "w");
    assert_non_null(sf);
    fputs(py, sf);
    fclose(sf);
    snprintf(cmd, sizeof(cmd), "%s %s %s", python, script, path);
    assert_int_equal(system(cmd), 0);
    tr_dataset ds;
    tr_error_clear();
    if (tr_dataset_load(&ds, path) != TR_OK)
        fail_msg("h5py-written attributes: %s", tr_error_message());
    tr_dataset_free(&ds);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    tr_log_init(0, TR_LOG_ERROR);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damaged_files_leave_nothing_open),
        cmocka_unit_test(test_oversized_claim),
        cmocka_unit_test(test_string_attributes),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    MPI_Finalize();
    return rc;
}
