/*
 * taskrel calibrate's alpha/beta fit (tr_calib_fit): exact recovery from
 * noise-free times over the sizes the command uses, relative weighting (a 5 %
 * error on a small message moves alpha as much as on a large one moves beta),
 * and the errors for unusable input. The measurements themselves run in the
 * e2e tests (scaling_local) on real ranks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "cli/commands.h"

static void test_exact(void **state) {
    (void)state;
    double n[11], t[11], a = 0, b = 0;
    for (int i = 0; i < 11; i++) {
        n[i] = 8.0 * pow(4.0, i); /* 8 B .. 8 MiB, as the command */
        t[i] = 2.5e-7 + n[i] * 6.0e-11;
    }
    assert_int_equal(tr_calib_fit(n, t, 11, &a, &b), TR_OK);
    assert_true(fabs(a - 2.5e-7) < 1e-12);
    assert_true(fabs(b - 6.0e-11) < 1e-16);
}

static void test_relative_weights(void **state) {
    (void)state;
    /* alternate +-5 % errors: the fit must stay within a few per cent of
     * both constants, which an unweighted fit of these sizes cannot do for
     * alpha (its residuals at 8 MiB are 1000x alpha) */
    double n[11], t[11], a = 0, b = 0;
    for (int i = 0; i < 11; i++) {
        n[i] = 8.0 * pow(4.0, i);
        t[i] = (3e-7 + n[i] * 1e-10) * (i % 2 ? 1.05 : 0.95);
    }
    assert_int_equal(tr_calib_fit(n, t, 11, &a, &b), TR_OK);
    assert_true(fabs(a / 3e-7 - 1) < 0.06);
    assert_true(fabs(b / 1e-10 - 1) < 0.06);
}

static void test_errors(void **state) {
    (void)state;
    double n[2] = {8, 8}, t[2] = {1e-6, 1e-6}, a, b;
    assert_int_equal(tr_calib_fit(n, t, 2, &a, &b), TR_ERR_INTERNAL); /* one size only */
    double n2[2] = {8, 64}, t2[2] = {1e-6, 0.0};
    assert_int_equal(tr_calib_fit(n2, t2, 2, &a, &b), TR_ERR_INTERNAL); /* zero time */
    tr_error_clear();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_relative_weights),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
