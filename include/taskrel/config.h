/*
 * Run configuration: an INI file (inih) plus `--set section.key=value`
 * overrides. Every key lives in one table (src/config/config_keys.c) with its type,
 * default, range and one-line documentation; docs/config.md is generated from
 * the same table (`taskrel config --markdown`) and a test keeps them in sync.
 * An unknown section or key, or a value that does not parse or is out of
 * range, raises TR_ERR_CONFIG with a message naming `section.key` (and the
 * file and line for file values).
 */
#ifndef TASKREL_CONFIG_H
#define TASKREL_CONFIG_H

#include "taskrel/attention.h" /* tr_attn_kind (mran.attention) */
#include "taskrel/core.h"
#include "taskrel/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TR_PATH_LEN 1024
#define TR_MAX_MLP_LAYERS 8
#define TR_MAX_TASKS 1024

typedef enum {
    TR_MODEL_STL = 0,
    TR_MODEL_HPS,
    TR_MODEL_MRN,
    TR_MODEL_MRAN,
    TR_MODEL_MMOE,
    TR_MODEL_XSTITCH
} tr_model_kind;
typedef enum { TR_TRUNK_LENET = 0, TR_TRUNK_MLP, TR_TRUNK_NONE } tr_trunk_kind;
typedef enum { TR_HEAD_INIT_SHARED = 0, TR_HEAD_INIT_INDEPENDENT } tr_head_init;
typedef enum { TR_PROGRESS_AUTO = 0, TR_PROGRESS_ON, TR_PROGRESS_OFF } tr_progress_mode;
/* data.load: the inputs held in memory, or read from the file when a batch is built. */
typedef enum { TR_DATA_LOAD_MEMORY = 0, TR_DATA_LOAD_STREAM } tr_data_load;
typedef enum { TR_MRN_PROX = 0, TR_MRN_GRADIENT } tr_mrn_prior_step;
typedef enum { TR_MRN_FLOOR = 0, TR_MRN_OFFICIAL } tr_mrn_numerics;
typedef enum { TR_MRN_PROX_FLOAT = 0, TR_MRN_PROX_DOUBLE } tr_mrn_prox_precision;
typedef enum { TR_MRN_MEAN_NONE = 0, TR_MRN_MEAN_SHARED } tr_mrn_mean;
typedef enum { TR_MRN_TASK_SCALE_LEARNED = 0, TR_MRN_TASK_SCALE_FIXED } tr_mrn_task_scale;
/* train.weighting: how the task losses and their trunk gradients are combined
 * (docs/algorithms.md, "Loss weighting and gradient surgery"). */
typedef enum {
    TR_WEIGHT_EQUAL = 0, /* the sum of the (train.task_weights-weighted) losses */
    TR_WEIGHT_UNCERTAINTY,
    TR_WEIGHT_DWA,
    TR_WEIGHT_GRADNORM,
    TR_WEIGHT_MGDA,
    TR_WEIGHT_PCGRAD,
    TR_WEIGHT_CAGRAD
} tr_weighting_kind;
typedef enum { TR_MGDA_NONE = 0, TR_MGDA_L2, TR_MGDA_LOSS, TR_MGDA_LOSS_PLUS } tr_mgda_norm;

/* mrn.layers: the task-specific layers that carry a prior. */
enum { TR_MRN_LAYER_FC7 = 1u << 0, TR_MRN_LAYER_FC8 = 1u << 1 };
/* mrn.modes: bit 1u << k for mode k of tr_mrn_mode (feature 0, class 1, task 2). */
enum { TR_MRN_MODES_FEATURE = 1u << 0, TR_MRN_MODES_CLASS = 1u << 1, TR_MRN_MODES_TASK = 1u << 2 };
/* mran.modules: the attention modules that run. */
enum { TR_MRAN_MODULE_TT = 1u << 0, TR_MRAN_MODULE_FF = 1u << 1, TR_MRAN_MODULE_TF = 1u << 2 };

#define TR_TASK_NAME_LEN 64 /* a task name, terminator included */
#define TR_MAX_SELECT 128   /* names data.tasks can list */

/* data.tasks, parsed: all tasks (first = 0, n_names = 0), the first `first`
 * tasks, or the tasks named, in that order (resolved against the dataset
 * once it is loaded). */
typedef struct {
    int first;
    int n_names;
    char names[TR_MAX_SELECT][TR_TASK_NAME_LEN];
} tr_task_select;

typedef struct {
    /* [data] */
    char data_path[TR_PATH_LEN]; /* data.path: dataset .h5 (required) */
    tr_task_select data_tasks;   /* data.tasks: "" all, "N" the first N, or "a,b,c" names ("") */
    tr_data_load data_load;      /* data.load = memory|stream (memory) */

    /* [model] */
    tr_model_kind model_kind;          /* model.kind = stl|hps|mrn|mran|mmoe|cross_stitch (hps) */
    tr_trunk_kind trunk;               /* model.trunk = lenet|mlp (lenet) */
    int mlp_hidden[TR_MAX_MLP_LAYERS]; /* model.mlp_hidden = "256,128" (256,256) */
    int mlp_layers;                    /* number of entries in mlp_hidden */
    int lenet_fc;                      /* model.lenet_fc: width of fc6 (512) */
    int head_hidden;                   /* model.head_hidden: width of fc7 (256; 0 = no fc7) */
    int tower_layers;                  /* model.tower_layers: MRAN/MMoE tower depth (2) */
    tr_head_init head_init;            /* model.head_init = shared|independent (shared) */
    float dropout;                     /* model.dropout: dropout after trunk's last fc (0.0) */
    int batchnorm;                     /* model.batchnorm: BN after each trunk conv/fc (false) */

    /* [train] */
    int epochs;        /* train.epochs (10) */
    int64_t max_steps; /* train.max_steps: stop after this many steps (0 = no cap) */
    int batch_size;    /* train.batch_size: global per-task batch (128) */
    uint64_t seed;     /* train.seed (1) */
    int eval_every;    /* train.eval_every: steps between validations (0 = each epoch) */
    int log_every;     /* train.log_every: steps between plain log lines (50) */
    int chance_steps;  /* train.chance_steps: warn if still at chance after (300; 0 off) */
    tr_opt_config opt; /* train.optimizer = sgd|adamw (sgd), train.momentum (0.9),
                          train.nesterov (false), train.weight_decay (5e-4),
                          train.beta1 (0.9), train.beta2 (0.999), train.eps (1e-8),
                          train.lr_mult_trunk (1), train.lr_mult_head (1) */
    tr_schedule sched; /* train.lr (0.01), train.schedule = const|step|cosine|inv (const),
                          train.warmup_steps (0), train.step_size (1000),
                          train.gamma (0.1 step, 1e-3 inv), train.power (0.75),
                          train.min_lr (0); total_steps is set by the trainer */
    float task_weights[TR_MAX_TASKS]; /* train.task_weights: "1,1,..." (empty: all 1) */
    int n_task_weights;               /* entries in task_weights (0: all 1) */
    tr_weighting_kind weighting;      /* train.weighting (equal) */
    float dwa_temp;                   /* train.dwa_temp: DWA's softmax temperature (2) */
    float gradnorm_alpha;             /* train.gradnorm_alpha: restoring force (1.5) */
    float cagrad_c;                   /* train.cagrad_c: CAGrad's c (0.5) */
    int cagrad_rescale;               /* train.cagrad_rescale: 0, 1 or 2 (1) */
    tr_mgda_norm mgda_norm;           /* train.mgda_norm = none|l2|loss|loss+ (none) */
    int rep_grad;                     /* train.rep_grad: MGDA-UB on the features (false) */
    float uw_init;                    /* train.uw_init: uncertainty's initial s_t (-0.5) */
    int grad_every;                   /* relations.grad_every (-1: auto) */

    /* [run] */
    char run_dir[TR_PATH_LEN]; /* run.dir: run directory ("" = a new runs/<model>-<date>-<n>) */
    tr_progress_mode progress; /* run.progress = auto|on|off (auto: on if stderr is a tty) */

    /* [dist] */
    int task_shards;     /* dist.task_shards (0 = largest divisor of P that is <= T) */
    float stall_timeout; /* dist.stall_timeout: seconds before a collective is a stall (0 = off) */
    int overlap;         /* dist.overlap: trunk buckets start during the backward (true) */
    float bucket_mb;     /* dist.bucket_mb: trunk all-reduce bucket size in MiB (1) */

    /* [mrn] (model.kind = mrn) */
    float mrn_lambda;                 /* mrn.lambda: prior weight per training example (1) */
    unsigned mrn_layers;              /* mrn.layers: TR_MRN_LAYER_* bits ("fc7,fc8") */
    unsigned mrn_modes;               /* mrn.modes: TR_MRN_MODES_* bits ("feature,class,task") */
    int mrn_update_every;             /* mrn.update_every: steps between covariance updates (50) */
    int mrn_flipflop_iters;           /* mrn.flipflop_iters (1) */
    float mrn_eps;                    /* mrn.eps: ε added to covariance diagonals (1e-6) */
    float mrn_eig_floor;              /* mrn.eig_floor (0.1) */
    tr_mrn_prior_step mrn_prior_step; /* mrn.prior_step = prox|gradient (prox) */
    int mrn_prox_every;               /* mrn.prox_every: steps per (amortised) prox step (1) */
    tr_mrn_numerics mrn_numerics;     /* mrn.numerics = floor|official (floor) */
    tr_mrn_prox_precision mrn_prox_precision; /* mrn.prox_precision = float|double (float) */
    tr_mrn_mean mrn_mean;                     /* mrn.mean = none|shared (none) */
    tr_mrn_task_scale mrn_task_scale;         /* mrn.task_scale = learned|fixed (learned) */
    float mrn_shrink; /* mrn.shrink: feature/class shrinkage in [0, 1] (0) */

    /* [linalg] */
    int scalapack_min_dim; /* linalg.scalapack_min_dim (256) */
    /* [checkpoint] (docs/checkpoints.md) */
    int64_t ckpt_every_steps;   /* checkpoint.every_steps (0 = off) */
    float ckpt_every_seconds;   /* checkpoint.every_seconds, on rank 0's clock (0 = off) */
    int ckpt_keep;              /* checkpoint.keep: newest checkpoints kept (0 = all) */
    char ckpt_dir[TR_PATH_LEN]; /* checkpoint.dir ("" = <run dir>/checkpoints) */

    /* [mran] (model.kind = mran; see docs/algorithms.md) */
    int mran_attention;         /* mran.attention = dot|general|concat|multihead (tr_attn_kind) */
    unsigned mran_modules;      /* mran.modules: TR_MRAN_MODULE_* bits ("tt,ff,tf") */
    int mran_embed_dim;         /* mran.embed_dim: token embedding m (8) */
    int mran_concat_hidden;     /* mran.concat_hidden: q of concat attention (16) */
    int mran_heads;             /* mran.heads: multihead heads, divides embed_dim (2) */
    float mran_alpha_momentum;  /* mran.alpha_momentum: EMA weight of a new batch (0.1) */
    int mran_penalty;           /* mran.relation_penalty = fro|l1 (fro) */
    float mran_relation_weight; /* mran.relation_weight: gamma2 (1e-4) */

    /* [mmoe] (model.kind = mmoe) */
    int mmoe_experts;       /* mmoe.experts: E (4) */
    int mmoe_expert_hidden; /* mmoe.expert_hidden: width of each expert (32) */

    /* [xstitch] (model.kind = cross_stitch) */
    float xstitch_alpha_self;    /* xstitch.alpha_self: initial alpha_tt (0.9) */
    float xstitch_alpha_lr_mult; /* xstitch.alpha_lr_mult: alpha's learning-rate factor */
} tr_config;

/* Defaults for every key. */
void tr_config_default(tr_config *c);
/* Load an INI file on top of the current values. */
tr_status tr_config_load_file(tr_config *c, const char *path);
/* Apply one "section.key=value" override. */
tr_status tr_config_set(tr_config *c, const char *assignment);
/* Cross-key checks after all values are in (e.g. data.path given, mrn.layers
 * not empty for model.kind = mrn): everything that can be checked without the
 * data, so that a bad value stops a run before the data is loaded. */
tr_status tr_config_validate(const tr_config *c);
/* train.weighting's name, and whether it needs the per-task gradients of the
 * shared parameters (gradnorm, mgda, pcgrad, cagrad). */
const char *tr_weighting_kind_str(tr_weighting_kind w);
int tr_weighting_uses_task_grads(tr_weighting_kind w);
/* Write the resolved config as INI (every key, current values). */
tr_status tr_config_write(const tr_config *c, FILE *f);
/* The same text, malloc'd into *text (free() it). */
tr_status tr_config_text(const tr_config *c, char **text);
/* Write the key table as markdown (docs/config.md). */
void tr_config_write_markdown(FILE *f);
/* Per-task loss weights from train.task_weights into w[0..T): all 1 if the key
 * is empty; TR_ERR_CONFIG if it does not have exactly T entries. */
tr_status tr_config_task_weights(const tr_config *c, int T, float *w);

/* 1 if texts a and b of key section.key give the same value (e.g. mrn.layers
 * "fc8, fc7" and "fc7,fc8"); texts that do not parse compare as strings. */
int tr_config_same_value(const char *section, const char *key, const char *a, const char *b);

/* The value under which a file written before section.key existed was written,
 * when that differs from the key's current default (MRN's bounded-prior keys:
 * older runs had the unbounded prior); NULL otherwise. */
const char *tr_config_legacy_value(const tr_config *c, const char *section, const char *key);

const char *tr_model_kind_str(tr_model_kind k);

#ifdef __cplusplus
}
#endif
#endif
