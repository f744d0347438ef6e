/*
 * The fingerprint of a loaded dataset (taskrel/data.h): a 64-bit hash of its
 * structure (setting, sample shape, task names, kinds and classes, split
 * sizes) and of its numbers — every byte of an array up to 1 MiB, and of a
 * larger one 256 evenly spaced 4 KiB blocks plus its last bytes, so that a
 * fingerprint costs milliseconds whatever the size. Two files with the same
 * contents have the same fingerprint wherever they are; a file rebuilt with
 * another seed, more or fewer examples, or other tasks has another.
 */
#include <string.h>

#include "taskrel/dataset.h"

#define FP_FULL (1u << 20)
#define FP_BLOCKS 256
#define FP_BLOCK 4096

typedef struct {
    uint64_t h;
} fp_state;

static void fp_bytes(fp_state *s, const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = s->h;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h ^= w;
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    s->h = h;
}

static void fp_u64(fp_state *s, uint64_t v) {
    fp_bytes(s, &v, sizeof(v));
}

static void fp_str(fp_state *s, const char *str) {
    fp_u64(s, strlen(str));
    fp_bytes(s, str, strlen(str));
}

static void fp_array(fp_state *s, const void *p, size_t n) {
    fp_u64(s, n);
    if (!p || n == 0)
        return;
    if (n <= FP_FULL) {
        fp_bytes(s, p, n);
        return;
    }
    const unsigned char *b = p;
    size_t stride = (n - FP_BLOCK) / (FP_BLOCKS - 1);
    for (size_t k = 0; k < FP_BLOCKS; k++)
        fp_bytes(s, b + k * stride, FP_BLOCK);
    fp_bytes(s, b + n - FP_BLOCK, FP_BLOCK);
}

/* fp_bytes of len bytes of sd's inputs as float32 from byte off, decoded
 * (compact) or read (streamed) into tmp (len / 4 + 2 floats). */
static tr_status fp_x_bytes(fp_state *s, const tr_split_data *sd, size_t off, size_t len,
                            float *tmp) {
    size_t f0 = off / sizeof(float), f1 = (off + len + sizeof(float) - 1) / sizeof(float);
    TR_CALL(tr_split_x_read(tmp, sd, f0, f1 - f0));
    fp_bytes(s, (const unsigned char *)tmp + off % sizeof(float), len);
    return TR_OK;
}

/* fp_array of sd's inputs (n bytes as float32), in memory, compact or
 * streamed: the same value. */
static tr_status fp_x(fp_state *s, const tr_split_data *sd, size_t n) {
    if (!sd->xq && !sd->xs) {
        fp_array(s, sd->x, n);
        return TR_OK;
    }
    float tmp[FP_BLOCK / sizeof(float) + 2];
    fp_u64(s, n);
    if (n <= FP_FULL) { /* in FP_BLOCK pieces: the hash takes 8 bytes at a time */
        for (size_t off = 0; off < n; off += FP_BLOCK)
            TR_CALL(fp_x_bytes(s, sd, off, n - off < FP_BLOCK ? n - off : FP_BLOCK, tmp));
        return TR_OK;
    }
    size_t stride = (n - FP_BLOCK) / (FP_BLOCKS - 1);
    for (size_t k = 0; k < FP_BLOCKS; k++)
        TR_CALL(fp_x_bytes(s, sd, k * stride, FP_BLOCK, tmp));
    return fp_x_bytes(s, sd, n - FP_BLOCK, FP_BLOCK, tmp);
}

static tr_status fp_split(fp_state *s, const tr_split_data *sd, int64_t sample, int cols) {
    fp_u64(s, (uint64_t)sd->n);
    size_t n = (size_t)sd->n;
    TR_CALL(fp_x(s, sd, n * (size_t)sample * sizeof(float)));
    fp_array(s, sd->y, sd->y ? n * (size_t)cols * sizeof(int32_t) : 0);
    fp_array(s, sd->yf, sd->yf ? n * (size_t)cols * sizeof(float) : 0);
    return TR_OK;
}

/* A task's examples (multi-input), hashed on their own. */
static tr_status task_digest(const tr_dataset *ds, const tr_task_info *ti, uint64_t *digest) {
    fp_state s = {0x84222325cbf29ce4ULL};
    for (int sp = 0; sp < TR_SPLIT_COUNT; sp++)
        TR_CALL(fp_split(&s, &ti->split[sp], ds->sample_size, 1));
    *digest = s.h ? s.h : 1; /* 0 means unknown */
    return TR_OK;
}

tr_status tr_dataset_task_digests(tr_dataset *ds) {
    if (ds->setting != TR_SETTING_MULTI_INPUT)
        return TR_OK;
    for (int t = 0; t < ds->T; t++)
        if (ds->tasks[t].loaded)
            TR_CALL(task_digest(ds, &ds->tasks[t], &ds->tasks[t].digest));
    return TR_OK;
}

tr_status tr_dataset_fingerprint(const tr_dataset *ds, char *out, size_t outn) {
    fp_state s = {0xcbf29ce484222325ULL};
    fp_u64(&s, (uint64_t)ds->setting);
    fp_u64(&s, (uint64_t)ds->T);
    fp_u64(&s, (uint64_t)ds->ndim);
    for (int d = 0; d < 3; d++)
        fp_u64(&s, (uint64_t)ds->dims[d]);
    for (int t = 0; t < ds->T; t++) {
        const tr_task_info *ti = &ds->tasks[t];
        fp_str(&s, ti->name);
        fp_u64(&s, (uint64_t)ti->kind);
        fp_u64(&s, (uint64_t)ti->classes);
        if (ds->setting == TR_SETTING_MULTI_INPUT) {
            for (int sp = 0; sp < TR_SPLIT_COUNT; sp++)
                fp_u64(&s, (uint64_t)ti->split[sp].n);
            uint64_t digest = ti->digest; /* tr_dataset_task_digests's, if it ran */
            if (ti->loaded && digest == 0)
                TR_CALL(task_digest(ds, ti, &digest));
            fp_u64(&s, digest);
        }
    }
    if (ds->setting == TR_SETTING_SHARED_INPUT)
        for (int sp = 0; sp < TR_SPLIT_COUNT; sp++)
            TR_CALL(fp_split(&s, &ds->shared[sp], ds->sample_size, ds->T));
    if (ds->sigma3)
        fp_array(&s, ds->sigma3, (size_t)ds->T * (size_t)ds->T * sizeof(double));
    snprintf(out, outn, "v2-%016llx", (unsigned long long)s.h);
    return TR_OK;
}
