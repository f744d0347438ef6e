/*
 * Core: status codes and error propagation, the counter-based RNG's
 * determinism and stream independence, and the parameter arena layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "taskrel/core.h"
#include "taskrel/params.h"

static void test_exit_codes(void **state) {
    (void)state;
    assert_int_equal(tr_status_exit_code(TR_OK), 0);
    assert_int_equal(tr_status_exit_code(TR_ERR_USAGE), 2);
    assert_int_equal(tr_status_exit_code(TR_ERR_CONFIG), 2);
    assert_int_equal(tr_status_exit_code(TR_ERR_DATA), 2);
    assert_int_equal(tr_status_exit_code(TR_ERR_MPI), 1);
    assert_int_equal(tr_status_exit_code(TR_ERR_NUMERIC), 1);
    assert_int_equal(tr_status_exit_code(TR_ERR_INTERNAL), 1);
    assert_int_equal(tr_status_exit_code(TR_STOPPED), 3);
    for (int s = 0; s < TR_STATUS_COUNT; s++)
        assert_non_null(tr_status_str((tr_status)s));
}

static tr_status inner(int x) {
    TR_CHECK(x > 0, TR_ERR_CONFIG, "x must be positive, got %d", x);
    return TR_OK;
}

static tr_status outer(int x) {
    TR_CALL(inner(x));
    return TR_OK;
}

static void test_error_propagation(void **state) {
    (void)state;
    tr_error_clear();
    assert_int_equal(outer(1), TR_OK);
    assert_string_equal(tr_error_message(), "");
    assert_int_equal(outer(-3), TR_ERR_CONFIG);
    assert_string_equal(tr_error_message(), "x must be positive, got -3");
    assert_non_null(strstr(tr_error_where(), "inner()"));
    assert_non_null(strstr(tr_error_where(), "outer()"));
    /* the first message wins until cleared */
    assert_int_equal(outer(-4), TR_ERR_CONFIG);
    assert_string_equal(tr_error_message(), "x must be positive, got -3");
    tr_error_clear();
    assert_int_equal(tr_error_status(), TR_OK);
}

static void test_rng_deterministic_and_keyed(void **state) {
    (void)state;
    tr_rng a, b, c, d;
    tr_rng_init(&a, 42, TR_RNG_TEST, 7);
    tr_rng_init(&b, 42, TR_RNG_TEST, 7);
    tr_rng_init(&c, 42, TR_RNG_TEST, 8);
    tr_rng_init(&d, 43, TR_RNG_TEST, 7);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = tr_rng_u32(&a);
        assert_int_equal(x, tr_rng_u32(&b));
        same_c += x == tr_rng_u32(&c);
        same_d += x == tr_rng_u32(&d);
    }
    assert_true(same_c < 3 && same_d < 3);
}

/* A draw's value depends only on its key and position (counter-based). */
static void test_rng_random_access(void **state) {
    (void)state;
    tr_rng r;
    tr_rng_init(&r, 9, TR_RNG_DROPOUT, 123456789012ull);
    for (uint64_t k = 0; k < 100; k++)
        assert_true(tr_rng_uniform(&r) == tr_rng_uniform_at(9, TR_RNG_DROPOUT, 123456789012ull, k));
}

static void test_rng_moments(void **state) {
    (void)state;
    tr_rng r;
    tr_rng_init(&r, 1, TR_RNG_TEST, 0);
    const int n = 200000;
    double su = 0, su2 = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; i++) {
        double u = tr_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        su += u;
        su2 += u * u;
        double z = tr_rng_normal(&r);
        sn += z;
        sn2 += z * z;
    }
    /* 5-sigma bounds for n = 2e5: mean of U(0,1) +- 0.0032, of N(0,1) +- 0.011 */
    assert_true(fabs(su / n - 0.5) < 0.0033);
    assert_true(fabs(su2 / n - 1.0 / 3.0) < 0.004);
    assert_true(fabs(sn / n) < 0.012);
    assert_true(fabs(sn2 / n - 1.0) < 0.016);
    /* tr_rng_below is unbiased: each of 7 buckets gets 1/7 */
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++)
        counts[tr_rng_below(&r, 7)]++;
    for (int k = 0; k < 7; k++)
        assert_true(abs(counts[k] - 10000) < 500); /* 5 sigma = 463 */
}

static void test_permutation(void **state) {
    (void)state;
    enum { N = 1000 };
    int32_t p[N], q[N];
    tr_rng_permutation(p, N, 5, TR_RNG_SHUFFLE, 3);
    tr_rng_permutation(q, N, 5, TR_RNG_SHUFFLE, 3);
    assert_memory_equal(p, q, sizeof(p));
    int seen[N] = {0}, fixed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(p[i] >= 0 && p[i] < N);
        seen[p[i]]++;
        fixed += p[i] == i;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_true(fixed < 10);
    tr_rng_permutation(q, N, 5, TR_RNG_SHUFFLE, 4);
    assert_true(memcmp(p, q, sizeof(p)) != 0);
}

static void test_params_layout(void **state) {
    (void)state;
    tr_params p;
    tr_params_init(&p);
    int a, b, c;
    int64_t s1[2] = {3, 5}, s2[1] = {7};
    assert_int_equal(tr_params_add(&p, &a, "trunk.w", TR_GROUP_TRUNK, 1, 2, s1, 0, 0, 0, 0), TR_OK);
    /* task tensor: T = 6, this rank holds tasks 2..4 */
    assert_int_equal(tr_params_add(&p, &b, "head.w", TR_GROUP_HEAD, 1, 2, s1, 1, 6, 2, 3), TR_OK);
    assert_int_equal(tr_params_add(&p, &c, "head.b", TR_GROUP_HEAD, 0, 1, s2, 1, 6, 2, 3), TR_OK);
    assert_int_equal(tr_params_alloc(&p), TR_OK);
    assert_int_equal(p.t[b].ndim, 3);
    assert_int_equal(p.t[b].shape[0], 6);
    assert_int_equal(p.t[b].count, 45);
    assert_int_equal(p.t[b].per_task, 15);
    for (int i = 0; i < p.n; i++)
        assert_int_equal(((uintptr_t)tr_params_data(&p, i)) % 64, 0);
    assert_ptr_equal(tr_params_task_data(&p, b, 3), tr_params_data(&p, b) + 15);
    size_t off, len;
    assert_int_equal(tr_params_domain_range(&p, 0, &off, &len), TR_OK);
    assert_int_equal(off, 0);
    assert_true(len >= 15 && len < p.total);
    assert_int_equal(tr_params_domain_range(&p, 1, &off, &len), TR_OK);
    assert_int_equal(off, p.t[b].offset);
    assert_int_equal(off + len, p.total);
    assert_int_equal(tr_params_global_count(&p), 15 + 90 + 42);
    assert_int_equal(tr_params_find(&p, "head.b"), c);
    assert_int_equal(tr_params_find(&p, "nope"), -1);
    tr_params_free(&p);
    tr_params_free(&p); /* no-op on a freed (zeroed) struct */
}

static void test_params_domain_contiguity(void **state) {
    (void)state;
    tr_params p;
    tr_params_init(&p);
    int64_t s[1] = {4};
    assert_int_equal(tr_params_add(&p, NULL, "a", TR_GROUP_TRUNK, 0, 1, s, 0, 0, 0, 0), TR_OK);
    assert_int_equal(tr_params_add(&p, NULL, "b", TR_GROUP_HEAD, 0, 1, s, 1, 2, 0, 2), TR_OK);
    assert_int_equal(tr_params_add(&p, NULL, "c", TR_GROUP_TRUNK, 0, 1, s, 0, 0, 0, 0), TR_OK);
    size_t off, len;
    tr_error_clear();
    assert_int_equal(tr_params_domain_range(&p, 0, &off, &len), TR_ERR_INTERNAL);
    tr_error_clear();
    tr_params_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_error_propagation),
        cmocka_unit_test(test_rng_deterministic_and_keyed),
        cmocka_unit_test(test_rng_random_access),
        cmocka_unit_test(test_rng_moments),
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_params_layout),
        cmocka_unit_test(test_params_domain_contiguity),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
