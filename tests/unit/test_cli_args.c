/*
 * The command-line parser shared by every subcommand (src/cli/args.c): both
 * value forms, short options, flags, positional arguments in any place, `--`,
 * help, and the usage errors with their "did you mean".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cli/args.h"

enum { O_CONFIG, O_SET, O_RUN_DIR, O_QUIET };
static const tr_cli_option k_opts[] = {
    {"config", 'c', 1, O_CONFIG},
    {"set", 's', 1, O_SET},
    {"run-dir", 0, 1, O_RUN_DIR},
    {"quiet", 'q', 0, O_QUIET},
};

/* Split line on spaces into argv (argv[0] = "cmd"). */
static int split(char *buf, char **argv) {
    int argc = 0;
    argv[argc++] = "cmd";
    for (char *tok = strtok(buf, " "); tok && argc < 31; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    return argc;
}

static tr_status parse(const char *line, tr_cli_args *a) {
    static char buf[512];
    static char *argv[32];
    snprintf(buf, sizeof(buf), "%s", line);
    int argc = split(buf, argv);
    tr_error_clear();
    return tr_cli_parse(a, "cmd", k_opts, 4, argc, argv);
}

static void expect_error(const char *line, const char *needle) {
    tr_cli_args a;
    tr_status st = parse(line, &a);
    if (st != TR_ERR_USAGE || !strstr(tr_error_message(), needle))
        fail_msg("'%s': want a usage error with '%s', got %s: '%s'", line, needle,
                 tr_status_str(st), tr_error_message());
    tr_error_clear();
}

static void test_forms(void **state) {
    (void)state;
    tr_cli_args a;
    assert_int_equal(parse("-c f.ini --set=a.b=1 pos1 --set a.c=2 -s a.d=3 --run-dir=R -q pos2 "
                           "--config g.ini -ch.ini -- --not-an-option",
                           &a),
                     TR_OK);
    assert_int_equal(a.nopts, 8);
    const int ids[] = {O_CONFIG, O_SET, O_SET, O_SET, O_RUN_DIR, O_QUIET, O_CONFIG, O_CONFIG};
    const char *vals[] = {"f.ini", "a.b=1", "a.c=2", "a.d=3", "R", NULL, "g.ini", "h.ini"};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(a.opts[i].id, ids[i]);
        if (vals[i])
            assert_string_equal(a.opts[i].value, vals[i]);
        else
            assert_null(a.opts[i].value);
    }
    assert_int_equal(a.npos, 3);
    assert_string_equal(a.pos[0], "pos1");
    assert_string_equal(a.pos[1], "pos2");
    assert_string_equal(a.pos[2], "--not-an-option");
    assert_false(a.help);
    tr_cli_args_free(&a);
    tr_cli_args_free(&a); /* a freed struct frees again as a no-op */

    assert_int_equal(parse("x --help", &a), TR_OK);
    assert_true(a.help);
    tr_cli_args_free(&a);
    /* a value that looks like an option is still the value */
    assert_int_equal(parse("--run-dir -q", &a), TR_OK);
    assert_int_equal(a.nopts, 1);
    assert_string_equal(a.opts[0].value, "-q");
    tr_cli_args_free(&a);
    /* the parser runs again from a clean state */
    assert_int_equal(parse("-q", &a), TR_OK);
    assert_int_equal(a.nopts, 1);
    assert_int_equal(a.opts[0].id, O_QUIET);
    tr_cli_args_free(&a);
}

static void test_errors(void **state) {
    (void)state;
    expect_error("--rundir x", "did you mean --run-dir?");
    expect_error("--confg=x", "did you mean --config?");
    expect_error("--frobnicate", "unknown argument '--frobnicate'");
    expect_error("--run-dir", "option --run-dir needs a value");
    expect_error("-c", "option -c needs a value");
    expect_error("--quiet=1", "option --quiet takes no value");
    expect_error("-z", "unknown option '-z'");
}

static void test_suggest(void **state) {
    (void)state;
    assert_int_equal(tr_cli_edit_distance("", ""), 0);
    assert_int_equal(tr_cli_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(tr_cli_edit_distance("trian", "train"), 2);
    const char *cmds[] = {"train", "eval", "data", "config", "inspect", "plot", "calibrate"};
    assert_string_equal(tr_cli_suggest("trian", cmds, 7), "train");
    assert_string_equal(tr_cli_suggest("evl", cmds, 7), "eval");
    assert_string_equal(tr_cli_suggest("calibrat", cmds, 7), "calibrate");
    assert_null(tr_cli_suggest("frobnicate", cmds, 7));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_suggest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
