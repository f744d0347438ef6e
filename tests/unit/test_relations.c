/*
 * Relation matrices in HDF5: save/load round trip (names, titles, axes, task
 * names, values bit-exact), replacing an item, a file without /relations, and
 * the errors for a file that is not HDF5 (TR_ERR_DATA naming the file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskrel/relations.h"

static char g_path[256], g_bad[256];

static void test_round_trip(void **state) {
    (void)state;
    tr_relations r = {0};
    snprintf(r.tasks, sizeof r.tasks, "a,b,c");
    double m[9] = {1, 0.5, -0.25, 0.5, 1, 0.125, -0.25, 0.125, 1};
    double q[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(tr_relations_add(&r, "mrn.fc8.task_corr", "MRN fc8", "task,task", m, 3, 3),
                     TR_OK);
    assert_int_equal(tr_relations_add(&r, "mran.alpha", NULL, "task,feature", q, 3, 2), TR_OK);
    q[0] = 7; /* replace: the list keeps a copy */
    assert_int_equal(tr_relations_add(&r, "mran.alpha", "alpha", "task,feature", q, 2, 3), TR_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(tr_relations_save(g_path, &r), TR_OK);

    tr_relations back;
    int found = 0;
    assert_int_equal(tr_relations_load(g_path, &back, &found), TR_OK);
    assert_int_equal(found, 1);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.tasks, "a,b,c");
    const tr_relation *a = tr_relations_find(&back, "mrn.fc8.task_corr");
    assert_non_null(a);
    assert_string_equal(a->title, "MRN fc8");
    assert_string_equal(a->axes, "task,task");
    assert_int_equal(a->rows, 3);
    assert_memory_equal(a->data, m, sizeof m);
    const tr_relation *b = tr_relations_find(&back, "mran.alpha");
    assert_non_null(b);
    assert_int_equal(b->rows, 2);
    assert_int_equal(b->cols, 3);
    assert_true(b->data[0] == 7.0);
    assert_string_equal(b->title, "alpha");
    tr_relations_free(&back);
    tr_relations_free(&r);
}

static void test_missing_and_bad(void **state) {
    (void)state;
    /* an HDF5 file without /relations: found = 0, no error */
    hid_t f = H5Fcreate(g_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    H5Fclose(f);
    tr_relations r;
    int found = 1;
    assert_int_equal(tr_relations_load(g_path, &r, &found), TR_OK);
    assert_int_equal(found, 0);
    assert_int_equal(r.n, 0);
    /* not HDF5 */
    FILE *fp = fopen(g_bad, "w");
    assert_non_null(fp);
    fputs("not hdf5\n", fp);
    fclose(fp);
    assert_int_equal(tr_relations_load(g_bad, &r, &found), TR_ERR_DATA);
    assert_non_null(strstr(tr_error_message(), g_bad));
    tr_error_clear();
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(g_path, sizeof g_path, "/tmp/taskrel-relations-%d.h5", (int)getpid());
    snprintf(g_bad, sizeof g_bad, "/tmp/taskrel-relations-%d.bad", (int)getpid());
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip),
                                       cmocka_unit_test(test_missing_and_bad)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(g_path);
    unlink(g_bad);
    return rc;
}
