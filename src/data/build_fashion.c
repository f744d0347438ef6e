/*
 * Builders on Fashion-MNIST (the recipes are in datasets/README.md):
 *   fashion-domains  multi-input, six (image transform, label map) tasks on
 *                    disjoint images, two label families;
 *   multifashion     shared-input, 2 or 4 items overlaid on one canvas, task k =
 *                    class of item k.
 * Images come from the IDX files of Debian's dataset-fashion-mnist. Every
 * random choice is a tr_rng stream keyed on (seed, purpose, index), so a build
 * is a pure function of its options.
 */
#include "taskrel/data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/dataset_extra.h"

#define FASHION_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define IMG 28
#define NPIX (IMG * IMG)
#define N_TRAIN_IMAGES 60000
#define N_TEST_IMAGES 10000
#define N_CLASSES 10

/* fashion-domains */
#define DOM_TASKS 6
#define DOM_CHUNK 10000 /* training images per task */
#define DOM_VAL 1000    /* the last DOM_VAL of each chunk */
#define DOM_TEST 1666   /* test images per task */
#define NOISE_SIGMA 0.3
#define BLUR_SIGMA 1.0
#define BLUR_RADIUS 2 /* 5x5 kernel */

/* The label map of the *_perm tasks: a fixed derangement of 0..9, the same for
 * every seed, so the two families are comparable across runs. */
void tr_builder_opts_default(tr_builder_opts *o) {
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->train_frac = 0.10;
    o->regression = 1;
    o->corr = 0.9;
}

static const int32_t k_label_perm[N_CLASSES] = {3, 7, 0, 9, 5, 1, 8, 2, 6, 4};

typedef enum { TF_ORIG = 0, TF_NOISE, TF_BLUR, TF_ROT90, TF_INVERT } transform;

static const struct {
    const char *name;
    transform tf;
    int permuted;
    const char *tf_name;
} k_domains[DOM_TASKS] = {
    {"orig", TF_ORIG, 0, "identity"},        {"noise", TF_NOISE, 0, "gaussian_noise"},
    {"blur", TF_BLUR, 0, "gaussian_blur"},   {"orig_perm", TF_ORIG, 1, "identity"},
    {"rot90_perm", TF_ROT90, 1, "rot90_cw"}, {"invert_perm", TF_INVERT, 1, "invert"},
};

typedef struct {
    uint8_t *train_x, *train_y; /* (60000, 28, 28), (60000) */
    uint8_t *test_x, *test_y;   /* (10000, 28, 28), (10000) */
} fashion;

static void fashion_free(fashion *fm) {
    tr_free(fm->train_x);
    tr_free(fm->train_y);
    tr_free(fm->test_x);
    tr_free(fm->test_y);
    memset(fm, 0, sizeof(*fm));
}

static tr_status fashion_file(const char *dir, const char *name, int images, int64_t n,
                              uint8_t **data) {
    char path[4096];
    TR_CHECK(snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path), TR_ERR_USAGE,
             "--fashion-dir too long");
    if (access(path, F_OK) != 0)
        TR_RAISE(TR_ERR_DATA,
                 "data: Fashion-MNIST file not found: %s (install it with `apt-get install "
                 "dataset-fashion-mnist`, or point --fashion-dir at a directory holding the "
                 "four IDX files)",
                 path);
    int nd;
    int64_t dims[4];
    TR_CALL(tr_idx_read(path, data, &nd, dims));
    int ok = images ? (nd == 3 && dims[0] == n && dims[1] == IMG && dims[2] == IMG)
                    : (nd == 1 && dims[0] == n);
    TR_CHECK(ok, TR_ERR_DATA, "data: %s: expected %s of %lld %s", path,
             images ? "an image file" : "a label file", (long long)n,
             images ? "28x28 images" : "labels");
    if (!images)
        for (int64_t i = 0; i < n; i++)
            TR_CHECK((*data)[i] < N_CLASSES, TR_ERR_DATA, "data: %s: label %d at element %lld",
                     path, (*data)[i], (long long)i);
    return TR_OK;
}

static tr_status fashion_load(fashion *fm, const char *dir) {
    TR_CALL(fashion_file(dir, "train-images-idx3-ubyte.gz", 1, N_TRAIN_IMAGES, &fm->train_x));
    TR_CALL(fashion_file(dir, "train-labels-idx1-ubyte.gz", 0, N_TRAIN_IMAGES, &fm->train_y));
    TR_CALL(fashion_file(dir, "t10k-images-idx3-ubyte.gz", 1, N_TEST_IMAGES, &fm->test_x));
    TR_CALL(fashion_file(dir, "t10k-labels-idx1-ubyte.gz", 0, N_TEST_IMAGES, &fm->test_y));
    return TR_OK;
}

static const char *fashion_dir(const tr_builder_opts *o) {
    return o->fashion_dir && o->fashion_dir[0] ? o->fashion_dir : FASHION_DEFAULT_DIR;
}

/* ---- fashion-domains ------------------------------------------------------ */

/* Separable 5x5 gaussian blur with clamp-to-edge borders. */
static void blur_image(float *out, const float *in) // (28, 28) each
{
    double k[2 * BLUR_RADIUS + 1], ksum = 0.0;
    for (int i = -BLUR_RADIUS; i <= BLUR_RADIUS; i++)
        ksum += k[i + BLUR_RADIUS] = exp(-0.5 * i * i / (BLUR_SIGMA * BLUR_SIGMA));
    double tmp[NPIX];
    for (int r = 0; r < IMG; r++)
        for (int c = 0; c < IMG; c++) {
            double acc = 0.0;
            for (int i = -BLUR_RADIUS; i <= BLUR_RADIUS; i++) {
                int cc = c + i < 0 ? 0 : c + i >= IMG ? IMG - 1 : c + i;
                acc += k[i + BLUR_RADIUS] * in[r * IMG + cc];
            }
            tmp[r * IMG + c] = acc / ksum;
        }
    for (int r = 0; r < IMG; r++)
        for (int c = 0; c < IMG; c++) {
            double acc = 0.0;
            for (int i = -BLUR_RADIUS; i <= BLUR_RADIUS; i++) {
                int rr = r + i < 0 ? 0 : r + i >= IMG ? IMG - 1 : r + i;
                acc += k[i + BLUR_RADIUS] * tmp[rr * IMG + c];
            }
            out[r * IMG + c] = (float)(acc / ksum);
        }
}

/* One 28x28 image through a task's transform. gidx = the image's global index
 * (i for training image i, 60000 + i for test image i) keys the noise stream. */
static void transform_image(float *out, const uint8_t *in, transform tf, uint64_t seed,
                            uint64_t gidx) {
    float x[NPIX];
    for (int p = 0; p < NPIX; p++)
        x[p] = (float)in[p] / 255.0f;
    switch (tf) {
    case TF_ORIG:
        memcpy(out, x, sizeof(x));
        break;
    case TF_NOISE: {
        tr_rng r;
        tr_rng_init(&r, seed, TR_RNG_DATA, gidx);
        for (int p = 0; p < NPIX; p++) {
            double v = x[p] + NOISE_SIGMA * tr_rng_normal(&r);
            out[p] = (float)(v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v);
        }
        break;
    }
    case TF_BLUR:
        blur_image(out, x);
        break;
    case TF_ROT90: /* clockwise: the top row becomes the right column */
        for (int r = 0; r < IMG; r++)
            for (int c = 0; c < IMG; c++)
                out[r * IMG + c] = x[(IMG - 1 - c) * IMG + r];
        break;
    case TF_INVERT:
        for (int p = 0; p < NPIX; p++)
            out[p] = 1.0f - x[p];
        break;
    }
}

/* Fill one split of task t from images idx[0..n) of the given set. */
static void domain_split(tr_split_data *sd, int t, const int32_t *idx, int64_t n,
                         const uint8_t *images, const uint8_t *labels, uint64_t gidx_base,
                         uint64_t seed) {
    for (int64_t i = 0; i < n; i++) {
        int32_t j = idx[i];
        transform_image(sd->x + i * NPIX, images + (int64_t)j * NPIX, k_domains[t].tf, seed,
                        gidx_base + (uint64_t)j);
        sd->y[i] = k_domains[t].permuted ? k_label_perm[labels[j]] : labels[j];
    }
}

static tr_status domains_make(tr_dataset *ds, const fashion *fm, const tr_builder_opts *o,
                              int32_t *perm_train, int32_t *perm_test) {
    int64_t n_tr = llround(o->train_frac * DOM_CHUNK);
    tr_rng_permutation(perm_train, N_TRAIN_IMAGES, o->seed, TR_RNG_SPLIT, 0);
    tr_rng_permutation(perm_test, N_TEST_IMAGES, o->seed, TR_RNG_SPLIT, 1);
    ds->setting = TR_SETTING_MULTI_INPUT;
    ds->ndim = 3;
    ds->dims[0] = 1;
    ds->dims[1] = IMG;
    ds->dims[2] = IMG;
    ds->sample_size = NPIX;
    TR_CALL(tr_data_alloc_tasks(ds, DOM_TASKS));
    for (int t = 0; t < DOM_TASKS; t++) {
        tr_task_info *ti = &ds->tasks[t];
        snprintf(ti->name, sizeof(ti->name), "%s", k_domains[t].name);
        ti->kind = TR_TASK_CLASSIFICATION;
        ti->classes = N_CLASSES;
        const int32_t *chunk = perm_train + (int64_t)t * DOM_CHUNK;
        int64_t n[TR_SPLIT_COUNT] = {n_tr, DOM_VAL, DOM_TEST};
        for (int s = 0; s < TR_SPLIT_COUNT; s++)
            TR_CALL(tr_data_alloc_split(&ti->split[s], n[s], NPIX, ti->kind, 1));
        domain_split(&ti->split[TR_SPLIT_TRAIN], t, chunk, n_tr, fm->train_x, fm->train_y, 0,
                     o->seed);
        domain_split(&ti->split[TR_SPLIT_VAL], t, chunk + DOM_CHUNK - DOM_VAL, DOM_VAL, fm->train_x,
                     fm->train_y, 0, o->seed);
        domain_split(&ti->split[TR_SPLIT_TEST], t, perm_test + (int64_t)t * DOM_TEST, DOM_TEST,
                     fm->test_x, fm->test_y, N_TRAIN_IMAGES, o->seed);
    }
    return TR_OK;
}

static tr_status domains_extra(tr_data_file *file, const tr_dataset *ds, const void *ctx) {
    char perm[64];
    int len = 0;
    for (int c = 0; c < N_CLASSES; c++)
        len += snprintf(perm + len, sizeof(perm) - (size_t)len, c ? ",%d" : "%d", k_label_perm[c]);
    TR_CALL(tr_data_attr_str(file, "/", "label_perm", perm));
    for (int t = 0; t < ds->T; t++) {
        char path[96];
        snprintf(path, sizeof(path), "/tasks/%s", ds->tasks[t].name);
        TR_CALL(tr_data_attr_str(file, path, "family",
                                 k_domains[t].permuted ? "permuted" : "identity"));
        TR_CALL(tr_data_attr_str(file, path, "transform", k_domains[t].tf_name));
    }
    return TR_OK;
}

static tr_status label_perm_check(void) {
    int seen[N_CLASSES] = {0};
    for (int c = 0; c < N_CLASSES; c++) {
        TR_ASSERT(k_label_perm[c] >= 0 && k_label_perm[c] < N_CLASSES);
        TR_ASSERT(k_label_perm[c] != c); /* a derangement */
        TR_ASSERT(!seen[k_label_perm[c]]++);
    }
    return TR_OK;
}

tr_status tr_build_fashion_domains(const tr_builder_opts *o) {
    TR_CHECK(o->out && o->out[0], TR_ERR_USAGE, "data: missing --out FILE");
    TR_CHECK(o->train_frac > 0.0 && o->train_frac <= 0.9, TR_ERR_USAGE,
             "data: --train-frac %g out of range (0, 0.9]", o->train_frac);
    TR_CHECK(llround(o->train_frac * DOM_CHUNK) >= 1, TR_ERR_USAGE,
             "data: --train-frac %g leaves no training images", o->train_frac);
    TR_CALL(label_perm_check());
    char options[4096];
    snprintf(options, sizeof(options), "train_frac=%g fashion_dir=%s", o->train_frac,
             fashion_dir(o));

    fashion fm = {0};
    tr_dataset ds = {0};
    int32_t *perm_train = tr_calloc(N_TRAIN_IMAGES, sizeof(int32_t));
    int32_t *perm_test = tr_calloc(N_TEST_IMAGES, sizeof(int32_t));
    tr_status s = TR_OK;
    if (!perm_train || !perm_test)
        s = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
    if (s == TR_OK)
        s = fashion_load(&fm, fashion_dir(o));
    if (s == TR_OK)
        s = domains_make(&ds, &fm, o, perm_train, perm_test);
    if (s == TR_OK)
        s = tr_data_save_ex(&ds, o->out, "fashion-domains", o->seed, options, domains_extra, NULL);
    tr_free(perm_train);
    tr_free(perm_test);
    fashion_free(&fm);
    tr_dataset_free(&ds);
    TR_CALL(s);
    return TR_OK;
}

/* ---- multifashion ----------------------------------------------------------- */

#define MF_VAL_POOL 10000 /* the last 10000 of the permuted training images */

typedef struct {
    int T, canvas;
    int off[4][2]; /* (row, col) of item k's top-left corner */
    const char *names[4];
} mf_layout;

static const mf_layout k_mf2 = {2, 36, {{0, 0}, {8, 8}}, {"top_left", "bottom_right"}};
static const mf_layout k_mf4 = {4,
                                44,
                                {{0, 0}, {0, 16}, {16, 0}, {16, 16}},
                                {"top_left", "top_right", "bottom_left", "bottom_right"}};

/* Split s: n composites whose items are drawn uniformly from pool (pool_n). */
static void mf_split(tr_split_data *sd, const mf_layout *L, const int32_t *pool, int64_t pool_n,
                     const uint8_t *images, const uint8_t *labels, uint64_t seed, tr_split s) {
    int64_t ss = (int64_t)L->canvas * L->canvas;
    tr_rng r;
    tr_rng_init(&r, seed, TR_RNG_DATA, (uint64_t)s);
    for (int64_t i = 0; i < sd->n; i++) {
        float *x = sd->x + i * ss; /* (canvas, canvas), zeroed */
        for (int k = 0; k < L->T; k++) {
            int32_t j = pool[tr_rng_below(&r, (uint32_t)pool_n)];
            const uint8_t *img = images + (int64_t)j * NPIX;
            for (int rr = 0; rr < IMG; rr++)
                for (int cc = 0; cc < IMG; cc++) {
                    float v = (float)img[rr * IMG + cc] / 255.0f;
                    float *dst = x + (int64_t)(rr + L->off[k][0]) * L->canvas + cc + L->off[k][1];
                    if (v > *dst)
                        *dst = v;
                }
            sd->y[i * L->T + k] = labels[j];
        }
    }
}

static tr_status mf_make(tr_dataset *ds, const fashion *fm, const tr_builder_opts *o,
                         const mf_layout *L, const int64_t n[TR_SPLIT_COUNT], int32_t *perm,
                         int32_t *test_pool) {
    tr_rng_permutation(perm, N_TRAIN_IMAGES, o->seed, TR_RNG_SPLIT, 0);
    for (int32_t i = 0; i < N_TEST_IMAGES; i++)
        test_pool[i] = i;
    ds->setting = TR_SETTING_SHARED_INPUT;
    ds->ndim = 3;
    ds->dims[0] = 1;
    ds->dims[1] = L->canvas;
    ds->dims[2] = L->canvas;
    ds->sample_size = (int64_t)L->canvas * L->canvas;
    TR_CALL(tr_data_alloc_tasks(ds, L->T));
    for (int t = 0; t < L->T; t++) {
        snprintf(ds->tasks[t].name, sizeof(ds->tasks[t].name), "%s", L->names[t]);
        ds->tasks[t].kind = TR_TASK_CLASSIFICATION;
        ds->tasks[t].classes = N_CLASSES;
    }
    for (int s = 0; s < TR_SPLIT_COUNT; s++)
        TR_CALL(tr_data_alloc_split(&ds->shared[s], n[s], ds->sample_size, TR_TASK_CLASSIFICATION,
                                    L->T));
    const int64_t train_pool_n = N_TRAIN_IMAGES - MF_VAL_POOL;
    mf_split(&ds->shared[TR_SPLIT_TRAIN], L, perm, train_pool_n, fm->train_x, fm->train_y, o->seed,
             TR_SPLIT_TRAIN);
    mf_split(&ds->shared[TR_SPLIT_VAL], L, perm + train_pool_n, MF_VAL_POOL, fm->train_x,
             fm->train_y, o->seed, TR_SPLIT_VAL);
    mf_split(&ds->shared[TR_SPLIT_TEST], L, test_pool, N_TEST_IMAGES, fm->test_x, fm->test_y,
             o->seed, TR_SPLIT_TEST);
    return TR_OK;
}

static tr_status mf_extra(tr_data_file *file, const tr_dataset *ds, const void *ctx) {
    const mf_layout *L = ctx;
    TR_CALL(tr_data_attr_int(file, "/", "canvas", L->canvas));
    for (int t = 0; t < ds->T; t++) {
        char path[96];
        snprintf(path, sizeof(path), "/tasks/%s", ds->tasks[t].name);
        TR_CALL(tr_data_attr_int(file, path, "offset_row", L->off[t][0]));
        TR_CALL(tr_data_attr_int(file, path, "offset_col", L->off[t][1]));
    }
    return TR_OK;
}

tr_status tr_build_multifashion(const tr_builder_opts *o) {
    TR_CHECK(o->out && o->out[0], TR_ERR_USAGE, "data: missing --out FILE");
    int T = o->tasks ? o->tasks : 2;
    TR_CHECK(T == 2 || T == 4, TR_ERR_USAGE, "data: multifashion --tasks %d: must be 2 or 4",
             o->tasks);
    const mf_layout *L = T == 2 ? &k_mf2 : &k_mf4;
    int64_t n[TR_SPLIT_COUNT] = {o->n_train ? o->n_train : 20000, o->n_val ? o->n_val : 4000,
                                 o->n_test ? o->n_test : 10000};
    TR_CHECK(n[0] >= 1 && n[1] >= 0 && n[2] >= 0, TR_ERR_USAGE,
             "data: multifashion: sizes must be positive");
    char options[4096];
    snprintf(options, sizeof(options),
             "tasks=%d n_train=%lld n_val=%lld n_test=%lld fashion_dir=%s", T, (long long)n[0],
             (long long)n[1], (long long)n[2], fashion_dir(o));

    fashion fm = {0};
    tr_dataset ds = {0};
    int32_t *perm = tr_calloc(N_TRAIN_IMAGES, sizeof(int32_t));
    int32_t *test_pool = tr_calloc(N_TEST_IMAGES, sizeof(int32_t));
    tr_status s = TR_OK;
    if (!perm || !test_pool)
        s = tr_error_set(TR_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
    if (s == TR_OK)
        s = fashion_load(&fm, fashion_dir(o));
    if (s == TR_OK)
        s = mf_make(&ds, &fm, o, L, n, perm, test_pool);
    if (s == TR_OK)
        s = tr_data_save_ex(&ds, o->out, "multifashion", o->seed, options, mf_extra, L);
    tr_free(perm);
    tr_free(test_pool);
    fashion_free(&fm);
    tr_dataset_free(&ds);
    TR_CALL(s);
    return TR_OK;
}
