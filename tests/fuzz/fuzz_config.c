/*
 * libFuzzer harness: the config parser. The input is loaded as an INI file
 * (then validated and written back), and its first line is applied as a
 * `--set section.key=value` override. Any input must be accepted or refused
 * as a config error; a loaded config must write out and load again.
 */
#include "fuzz_common.h"
#include "taskrel/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(data, size, ".ini");
    static tr_config cfg, again;
    tr_config_default(&cfg);
    tr_status s = tr_config_load_file(&cfg, path);
    if (s != TR_OK && s != TR_ERR_CONFIG)
        abort();
    if (s == TR_OK) {
        tr_config_validate(&cfg);
        float w[16];
        tr_config_task_weights(&cfg, 16, w);
        /* write the resolved config and load it again */
        FILE *f = fopen(path, "w");
        if (!f || tr_config_write(&cfg, f) != TR_OK || fclose(f) != 0)
            abort();
        tr_config_default(&again);
        if (tr_config_load_file(&again, path) != TR_OK) {
            fprintf(stderr, "a written config does not load: %s\n", tr_error_message());
            abort();
        }
    }
    tr_error_clear();
    char line[512];
    size_t n = 0;
    while (n < size && n < sizeof(line) - 1 && data[n] != '\n') {
        line[n] = (char)data[n];
        n++;
    }
    line[n] = '\0';
    tr_config_default(&cfg);
    s = tr_config_set(&cfg, line);
    if (s != TR_OK && s != TR_ERR_CONFIG && s != TR_ERR_USAGE)
        abort();
    tr_error_clear();
    return 0;
}
