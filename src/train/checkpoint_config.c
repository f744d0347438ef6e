/*
 * Does a checkpoint belong to this run's configuration? Rank 0 compares the
 * config text stored in the checkpoint with the run's, key by key: a change of
 * a hard key (the model, the tasks, the batch, the seed, the optimizer, the
 * weighting, MRN's prior options) refuses the checkpoint (exit 2), any other
 * change is a warning. Keys newer than the checkpoint count as written under
 * their legacy value or their default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_internal.h"

/* train.weighting and its hyper-parameters: their state is in the checkpoint. */
static int is_weighting_key(const char *key) {
    static const char *const keys[] = {"weighting",      "dwa_temp",  "gradnorm_alpha", "cagrad_c",
                                       "cagrad_rescale", "mgda_norm", "rep_grad",       "uw_init"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* Keys whose change makes a checkpoint meaningless for this run. */
static int is_hard_key(const char *sec, const char *key) {
    if (strcmp(sec, "model") == 0)
        return 1;
    if (strcmp(sec, "data") == 0)
        return strcmp(key, "tasks") == 0;
    if (strcmp(sec, "train") == 0)
        return strcmp(key, "batch_size") == 0 || strcmp(key, "seed") == 0 ||
               strcmp(key, "optimizer") == 0 || is_weighting_key(key);
    if (strcmp(sec, "relations") == 0) /* grad.cos's running mean */
        return 1;
    /* what the prior is on and how its covariances are estimated: the
     * checkpointed covariances belong to one choice */
    if (strcmp(sec, "mrn") == 0)
        return strcmp(key, "mean") == 0 || strcmp(key, "task_scale") == 0 ||
               strcmp(key, "shrink") == 0;
    return 0;
}

/* Value of section.key in INI text written by tr_config_write (NULL if absent). */
static const char *ini_value(const char *text, const char *sec, const char *key, char *buf,
                             size_t n) {
    char cur[64] = "";
    const char *p = text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[2048];
        snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
        if (line[0] == '[') {
            sscanf(line, "[%63[^]]]", cur);
        } else if (line[0] != ';' && strcmp(cur, sec) == 0) {
            size_t kl = strlen(key);
            if (strncmp(line, key, kl) == 0 && strncmp(line + kl, " =", 2) == 0) {
                const char *v = line + kl + 2;
                while (*v == ' ')
                    v++;
                snprintf(buf, n, "%s", v);
                return buf;
            }
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* rank 0: compare the checkpoint's config with this run's. */
tr_status tr_trainer_ckpt_check_config(const tr_trainer *tr, const char *path) {
    char *old = NULL, *cur = NULL;
    size_t curn = 0;
    TR_CALL(tr_checkpoint_read_config(path, &old));
    FILE *mem = open_memstream(&cur, &curn);
    if (!mem) {
        free(old);
        TR_RAISE(TR_ERR_NOMEM, "out of memory (config text)");
    }
    tr_config_write(tr->cfg, mem);
    fclose(mem);
    tr_config defaults;
    char *dflt = NULL;
    tr_config_default(&defaults);
    tr_status st = tr_config_text(&defaults, &dflt);
    char sec[64] = "";
    for (const char *p = cur; p && *p && st == TR_OK;) {
        const char *eol = strchr(p, '\n');
        char line[2048], key[128], a[1200], b[1200];
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
        p = eol ? eol + 1 : NULL;
        if (line[0] == '[') {
            sscanf(line, "[%63[^]]]", sec);
            continue;
        }
        if (line[0] == ';' || sscanf(line, "%127s =", key) != 1 ||
            !ini_value(cur, sec, key, a, sizeof(a)))
            continue;
        if (strcmp(sec, "run") == 0 || strcmp(sec, "dist") == 0 || strcmp(sec, "checkpoint") == 0)
            continue;
        if (strcmp(sec, "data") == 0 && strcmp(key, "load") == 0) /* the same numbers either way */
            continue;
        /* a hard key newer than the checkpoint: it was written under its legacy
         * value or the default */
        const char *legacy = tr_config_legacy_value(tr->cfg, sec, key);
        if (!ini_value(old, sec, key, b, sizeof(b)) && legacy)
            snprintf(b, sizeof(b), "%s", legacy);
        else if (!ini_value(old, sec, key, b, sizeof(b)) &&
                 (!is_hard_key(sec, key) || !dflt || !ini_value(dflt, sec, key, b, sizeof(b))))
            continue;
        if (tr_config_same_value(sec, key, a, b))
            continue;
        if (is_hard_key(sec, key))
            st = tr_error_set(TR_ERR_CONFIG, __FILE__, __LINE__, __func__,
                              "%s.%s = %s, but checkpoint %s was written with %s: resume with the "
                              "same setting, or start a new run (--overwrite, or a new "
                              "--run-dir)",
                              sec, key, a, path, b);
        else
            tr_log(TR_LOG_WARN, "%s.%s changed since checkpoint %s: %s -> %s", sec, key, path, b,
                   a);
    }
    free(old);
    free(cur);
    free(dflt);
    return st;
}
