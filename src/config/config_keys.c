/*
 * The configuration key table: every key with its type, default, range and
 * documentation; looking a key up and suggesting the closest one for a
 * misspelling. Defaults are text in the table, parsed by the same code as
 * user values (config_values.c). Not here: files, --set, cross-key checks and
 * writers (config.c).
 */
#include "config/config_keys.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CC(a, b) TR_CFG_LO | TR_CFG_HI, a, b
#define OC(a, b) TR_CFG_LO | TR_CFG_LO_OPEN | TR_CFG_HI, a, b
#define CO(a, b) TR_CFG_LO | TR_CFG_HI | TR_CFG_HI_OPEN, a, b
#define GE(a) TR_CFG_LO, a, 0
#define ANY 0, 0, 0

const char *const tr_cfg_type_names[] = {"int",        "int64",  "uint64",        "float",
                                         "bool",       "string", "enum",          "int list",
                                         "float list", "set",    "task selection"};

static const char *const k_model_names[] = {"stl",  "hps",          "mrn", "mran",
                                            "mmoe", "cross_stitch", NULL};
static const char *const k_trunk_names[] = {"lenet", "mlp", "none", NULL};
static const char *const k_head_init_names[] = {"shared", "independent", NULL};
static const char *const k_opt_names[] = {"sgd", "adamw", NULL};
static const char *const k_sched_names[] = {"const", "step", "cosine", "inv", NULL};
static const char *const k_progress_names[] = {"auto", "on", "off", NULL};
static const char *const k_data_load_names[] = {"memory", "stream", NULL};
static const char *const k_prior_step_names[] = {"prox", "gradient", NULL};
static const char *const k_numerics_names[] = {"floor", "official", NULL};
static const char *const k_prox_precision_names[] = {"float", "double", NULL};
static const char *const k_mrn_mean_names[] = {"none", "shared", NULL};
static const char *const k_task_scale_names[] = {"learned", "fixed", NULL};
static const char *const k_attention_names[] = {"dot", "general", "concat", "multihead", NULL};
static const char *const k_penalty_names[] = {"fro", "l1", NULL};
static const char *const k_weighting_names[] = {"equal", "uncertainty", "dwa",    "gradnorm",
                                                "mgda",  "pcgrad",      "cagrad", NULL};
static const char *const k_mgda_norm_names[] = {"none", "l2", "loss", "loss+", NULL};
/* sets: bit i of the field is names[i] (config.h's TR_MRN_LAYER_*, ...) */
static const char *const k_mrn_layer_names[] = {"fc7", "fc8", NULL};
static const char *const k_mrn_mode_names[] = {"feature", "class", "task", NULL};
static const char *const k_mran_module_names[] = {"tt", "ff", "tf", NULL};

/* Enum fields are accessed as int (same size, corresponding signedness). */
_Static_assert(sizeof(tr_model_kind) == sizeof(int) && sizeof(tr_data_load) == sizeof(int) &&
                   sizeof(tr_sched_kind) == sizeof(int) &&
                   sizeof(tr_mrn_prior_step) == sizeof(int) &&
                   sizeof(tr_mrn_numerics) == sizeof(int) &&
                   sizeof(tr_mrn_prox_precision) == sizeof(int) &&
                   sizeof(tr_mrn_mean) == sizeof(int) && sizeof(tr_mrn_task_scale) == sizeof(int) &&
                   sizeof(tr_weighting_kind) == sizeof(int) && sizeof(tr_mgda_norm) == sizeof(int),
               "enum fields must be int-sized");
_Static_assert(sizeof(unsigned) == sizeof(int), "set fields are accessed as unsigned");

#define FSIZE(f) sizeof(((tr_config *)0)->f)
#define K(sec, nm, ty, field, aux, def, range, names, doc)                                         \
    { sec, nm, ty, offsetof(tr_config, field), aux, def, range, names, doc }

const tr_cfg_key tr_cfg_keys[] = {
    K("data", "path", TR_CFG_STRING, data_path, FSIZE(data_path), "", ANY, NULL,
      "dataset file (.h5) written by `taskrel data`; required"),
    K("data", "tasks", TR_CFG_TASKS, data_tasks, 0, "", ANY, NULL,
      "train on a subset of the dataset's tasks: empty for all, N for the first N, or task "
      "names separated by commas"),
    K("data", "load", TR_CFG_ENUM, data_load, 0, "memory", ANY, k_data_load_names,
      "memory (every input array read into memory at the start) or stream (inputs read from "
      "the file as each batch and evaluation chunk is built: far less memory, the same "
      "results; labels stay in memory)"),

    K("model", "kind", TR_CFG_ENUM, model_kind, 0, "hps", ANY, k_model_names,
      "stl (a network per task), hps (shared trunk, per-task heads), mrn (hps + tensor-normal "
      "priors), mran (relational attention), mmoe (mixture of experts), cross_stitch (a trunk "
      "column per task mixed by learned cross-stitch units)"),
    K("model", "trunk", TR_CFG_ENUM, trunk, 0, "lenet", ANY, k_trunk_names,
      "shared trunk: lenet (images), mlp (vectors) or none (model.kind = mmoe only: the "
      "experts read the input, as in the MMoE paper)"),
    K("model", "mlp_hidden", TR_CFG_INT_LIST, mlp_hidden, offsetof(tr_config, mlp_layers),
      "256,256", CC(1, 65536), NULL, "mlp trunk: widths of its fc-ReLU layers, comma separated"),
    K("model", "lenet_fc", TR_CFG_INT, lenet_fc, 0, "512", CC(1, 65536), NULL,
      "lenet trunk: width of fc6"),
    K("model", "head_hidden", TR_CFG_INT, head_hidden, 0, "256", CC(0, 65536), NULL,
      "width of each task's hidden layer fc7 (0: no fc7, fc8 reads the trunk); for mran "
      "and mmoe the width of the towers' hidden layers"),
    K("model", "tower_layers", TR_CFG_INT, tower_layers, 0, "2", CC(1, 2), NULL,
      "mran and mmoe: hidden fc-ReLU layers of each task's tower (the MMoE paper's towers "
      "have 1)"),
    K("model", "head_init", TR_CFG_ENUM, head_init, 0, "shared", ANY, k_head_init_names,
      "task-specific layers start from one draw copied to every task, or a draw per task"),
    K("model", "dropout", TR_CFG_FLOAT, dropout, 0, "0", CO(0, 1), NULL,
      "dropout rate after the trunk's last fc layer"),
    K("model", "batchnorm", TR_CFG_BOOL, batchnorm, 0, "false", ANY, NULL,
      "batch normalisation after each trunk conv/fc layer"),

    K("train", "epochs", TR_CFG_INT, epochs, 0, "10", CC(0, 1000000), NULL,
      "passes over the training data"),
    K("train", "max_steps", TR_CFG_INT64, max_steps, 0, "0", GE(0), NULL,
      "stop after this many steps (0: no cap)"),
    K("train", "batch_size", TR_CFG_INT, batch_size, 0, "128", CC(1, 1048576), NULL,
      "examples per task per step, summed over all ranks"),
    K("train", "seed", TR_CFG_UINT64, seed, 0, "1", ANY, NULL,
      "seed of every random stream (initialisation, shuffling, dropout)"),
    K("train", "eval_every", TR_CFG_INT, eval_every, 0, "0", GE(0), NULL,
      "steps between validations (0: after each epoch)"),
    K("train", "log_every", TR_CFG_INT, log_every, 0, "50", GE(1), NULL,
      "steps between plain log lines and training lines in metrics.jsonl"),
    K("train", "chance_steps", TR_CFG_INT, chance_steps, 0, "300", GE(0), NULL,
      "classification: warn if the training loss is still at chance level (mean ln C) "
      "after this many steps (0: never)"),
    K("train", "optimizer", TR_CFG_ENUM, opt.kind, 0, "sgd", ANY, k_opt_names,
      "sgd (momentum, PyTorch convention) or adamw (decoupled weight decay)"),
    K("train", "momentum", TR_CFG_FLOAT, opt.momentum, 0, "0.9", CO(0, 1), NULL, "SGD momentum"),
    K("train", "nesterov", TR_CFG_BOOL, opt.nesterov, 0, "false", ANY, NULL,
      "SGD: Nesterov momentum (needs momentum > 0)"),
    K("train", "weight_decay", TR_CFG_FLOAT, opt.weight_decay, 0, "5e-4", CC(0, 1), NULL,
      "weight decay of weights (not biases or batch-norm parameters)"),
    K("train", "beta1", TR_CFG_FLOAT, opt.beta1, 0, "0.9", CO(0, 1), NULL,
      "AdamW: first-moment decay"),
    K("train", "beta2", TR_CFG_FLOAT, opt.beta2, 0, "0.999", CO(0, 1), NULL,
      "AdamW: second-moment decay"),
    K("train", "eps", TR_CFG_FLOAT, opt.eps, 0, "1e-8", OC(0, 1), NULL, "AdamW: epsilon"),
    K("train", "lr_mult_trunk", TR_CFG_FLOAT, opt.lr_mult[TR_GROUP_TRUNK], 0, "1", CC(0, 1000),
      NULL, "learning-rate multiplier of the shared trunk (0 freezes it)"),
    K("train", "lr_mult_head", TR_CFG_FLOAT, opt.lr_mult[TR_GROUP_HEAD], 0, "1", CC(0, 1000), NULL,
      "learning-rate multiplier of the task-specific layers (0 freezes them)"),
    K("train", "lr", TR_CFG_FLOAT, sched.base_lr, 0, "0.01", OC(0, 10), NULL, "base learning rate"),
    K("train", "schedule", TR_CFG_ENUM, sched.kind, 0, "const", ANY, k_sched_names,
      "lr schedule: const; step (x gamma every step_size steps); cosine (to min_lr over the "
      "run); inv (x (1 + gamma step)^-power)"),
    K("train", "warmup_steps", TR_CFG_INT64, sched.warmup_steps, 0, "0", GE(0), NULL,
      "linear warm-up from 0 over this many steps (0: none)"),
    K("train", "step_size", TR_CFG_INT64, sched.step_size, 0, "1000", GE(1), NULL,
      "step schedule: steps between decays"),
    K("train", "gamma", TR_CFG_FLOAT, sched.gamma, 0, "0.1", OC(0, 1), NULL,
      "step: decay factor; inv: gamma"),
    K("train", "power", TR_CFG_FLOAT, sched.power, 0, "0.75", CC(0, 10), NULL, "inv: exponent"),
    K("train", "min_lr", TR_CFG_FLOAT, sched.min_lr, 0, "0", CC(0, 10), NULL,
      "cosine: final learning rate"),
    K("train", "task_weights", TR_CFG_FLOAT_LIST, task_weights, offsetof(tr_config, n_task_weights),
      "", GE(0), NULL, "loss weight of each task, comma separated, one per task (empty: all 1)"),
    K("train", "weighting", TR_CFG_ENUM, weighting, 0, "equal", ANY, k_weighting_names,
      "loss weighting or gradient surgery over the shared layers: equal (the weighted sum), "
      "uncertainty (Kendall et al.), dwa (dynamic weight average), gradnorm, mgda, pcgrad, "
      "cagrad; not with model.kind = stl (docs/algorithms.md)"),
    K("train", "dwa_temp", TR_CFG_FLOAT, dwa_temp, 0, "2", OC(0, 1e6), NULL,
      "weighting = dwa: softmax temperature over the ratios of the last two epoch-mean losses"),
    K("train", "gradnorm_alpha", TR_CFG_FLOAT, gradnorm_alpha, 0, "1.5", CC(0, 100), NULL,
      "weighting = gradnorm: strength of the force that pulls the tasks' training rates together"),
    K("train", "cagrad_c", TR_CFG_FLOAT, cagrad_c, 0, "0.5", CC(0, 100), NULL,
      "weighting = cagrad: radius c of the ball around the mean gradient (0: the mean gradient)"),
    K("train", "cagrad_rescale", TR_CFG_INT, cagrad_rescale, 0, "1", CC(0, 2), NULL,
      "weighting = cagrad: the update is divided by 1 (0), 1 + c^2 (1) or 1 + c (2)"),
    K("train", "mgda_norm", TR_CFG_ENUM, mgda_norm, 0, "none", ANY, k_mgda_norm_names,
      "weighting = mgda: each task gradient is divided by 1 (none), its norm (l2), its loss "
      "(loss) or both (loss+) before the min-norm solve"),
    K("train", "rep_grad", TR_CFG_BOOL, rep_grad, 0, "false", ANY, NULL,
      "weighting = mgda: the upper-bound variant (MGDA-UB) on the gradients of the shared "
      "features instead of the shared parameters"),
    K("train", "uw_init", TR_CFG_FLOAT, uw_init, 0, "-0.5", CC(-20, 20), NULL,
      "weighting = uncertainty: initial value of every task's log-variance parameter s_t"),

    K("relations", "grad_every", TR_CFG_INT, grad_every, 0, "-1", CC(-1, 1000000000), NULL,
      "steps between updates of grad.cos, the running mean cosine similarity of the task "
      "gradients of the shared layers (0: off; -1: every step for gradnorm, mgda, pcgrad and "
      "cagrad, which compute the task gradients anyway, off for the others)"),

    K("run", "dir", TR_CFG_STRING, run_dir, FSIZE(run_dir), "", ANY, NULL,
      "run directory (empty: a new `runs/<model>-<UTC date>-<n>`)"),
    K("run", "progress", TR_CFG_ENUM, progress, 0, "auto", ANY, k_progress_names,
      "progress line on stderr: auto (if stderr is a terminal), on, off"),

    K("dist", "task_shards", TR_CFG_INT, task_shards, 0, "0", CC(0, TR_MAX_TASKS), NULL,
      "task-parallel groups (0: the largest divisor of the rank count that is <= T)"),
    K("dist", "stall_timeout", TR_CFG_FLOAT, stall_timeout, 0, "0", CC(0, 1e9), NULL,
      "seconds a collective may wait for the other ranks; then it is a stall (a node or a "
      "link lost): every waiting rank reports the step, the collective and the ranks that did "
      "not answer, and exits with code 4. 0: blocking collectives, no watchdog. With a "
      "timeout the collectives run non-blocking, and MPI may reduce in another order, so at 3 "
      "or more ranks results can differ from a run without it in the last bits (runs with the "
      "same setting stay bitwise equal). launch/slurm/train.sbatch sets 300. Must exceed the "
      "longest time one rank can run ahead of the others (a checkpoint write, an evaluation)"),
    K("dist", "overlap", TR_CFG_BOOL, overlap, 0, "true", ANY, NULL,
      "start the all-reduce of each bucket of the shared (trunk) gradients during the backward "
      "pass, as soon as its layers are done (HPS and MRN; other methods start every bucket "
      "after the backward), and progress it between layers and between the examples of a "
      "convolution; false: every bucket starts after the backward. Either way each "
      "bucket is the same ring all-reduce, so results are bitwise equal "
      "(docs/scaling.md, \"Overlapping the all-reduce\")"),
    K("dist", "bucket_mb", TR_CFG_FLOAT, bucket_mb, 0, "1", OC(0, 1024), NULL,
      "size of a bucket of the shared-gradient all-reduce in MiB; buckets are cut from the "
      "last layer to the first (the order in which the backward finishes them). At 3 or more "
      "ranks another size sums some gradients in another order (last bits)"),

    K("mrn", "lambda", TR_CFG_FLOAT, mrn_lambda, 0, "30", CC(0, 1e9), NULL,
      "weight of the tensor-normal prior per training example (the batch objective gets "
      "lambda / mean training-set size)"),
    K("mrn", "layers", TR_CFG_SET, mrn_layers, 0, "fc7,fc8", ANY, k_mrn_layer_names,
      "task-specific layers that carry a prior: fc7, fc8 or both, comma separated"),
    K("mrn", "modes", TR_CFG_SET, mrn_modes, 0, "feature,class,task", ANY, k_mrn_mode_names,
      "covariances learned: any of feature, class, task (comma separated; the others stay I)"),
    K("mrn", "update_every", TR_CFG_INT, mrn_update_every, 0, "50", CC(1, 100000000), NULL,
      "steps between covariance updates (after the optimizer step)"),
    K("mrn", "flipflop_iters", TR_CFG_INT, mrn_flipflop_iters, 0, "1", CC(1, 100), NULL,
      "flip-flop cycles over the learned modes per update"),
    K("mrn", "eps", TR_CFG_FLOAT, mrn_eps, 0, "1e-6", CC(0, 1), NULL,
      "added to each covariance's diagonal (floor numerics)"),
    K("mrn", "eig_floor", TR_CFG_FLOAT, mrn_eig_floor, 0, "0.1", OC(0, 1), NULL,
      "covariance eigenvalues below eig_floor x their mean are raised to it before inverting"),
    K("mrn", "prior_step", TR_CFG_ENUM, mrn_prior_step, 0, "prox", ANY, k_prior_step_names,
      "prox (exact implicit step after the optimizer, stable) or gradient (the paper's)"),
    K("mrn", "prox_every", TR_CFG_INT, mrn_prox_every, 0, "1", CC(1, 100000), NULL,
      "prox: apply the proximal step every N steps with the summed step size (1: exact, every "
      "step; N > 1 trades exactness for N times less prior work)"),
    K("mrn", "numerics", TR_CFG_ENUM, mrn_numerics, 0, "floor", ANY, k_numerics_names,
      "floor (scaled ML updates, eigenvalue floor, trace normalisation) or official (the "
      "published code's rules: task mode only, unscaled, eps 1e-5, 0.1 threshold, trace cap 3000)"),
    K("mrn", "prox_precision", TR_CFG_ENUM, mrn_prox_precision, 0, "float", ANY,
      k_prox_precision_names,
      "prox: float (rotations by the eigenvectors in single precision, about 2x faster; equal to "
      "double within float rounding of the weights) or double"),
    K("mrn", "mean", TR_CFG_ENUM, mrn_mean, 0, "shared", ANY, k_mrn_mean_names,
      "none (the prior is on the task weights W_t) or shared (on the deviations W_t - mean over "
      "tasks: the covariances are estimated from the centred weights, the proximal step shrinks "
      "the deviations only, and task_corr / task_cov describe the deviations)"),
    K("mrn", "task_scale", TR_CFG_ENUM, mrn_task_scale, 0, "fixed", ANY, k_task_scale_names,
      "learned (the task covariance carries the scale of the weights, so the prior grows as they "
      "shrink) or fixed (the task covariance is normalised to trace T after each update, like the "
      "feature and class covariances to D1 and D2: mrn.lambda alone sets the prior's strength)"),
    K("mrn", "shrink", TR_CFG_FLOAT, mrn_shrink, 0, "1", CC(0, 1), NULL,
      "shrinkage s of the feature and class covariances toward (trace / dimension) x I before "
      "the eigenvalue floor: (1 - s) S + s tr(S)/D I; 1 makes those modes the identity. The task "
      "covariance is not shrunk"),

    K("linalg", "scalapack_min_dim", TR_CFG_INT, scalapack_min_dim, 0, "256", GE(1), NULL,
      "covariances larger than this are eigendecomposed by ScaLAPACK over all ranks; smaller "
      "ones by LAPACK on every rank"),
    K("checkpoint", "every_steps", TR_CFG_INT64, ckpt_every_steps, 0, "0", GE(0), NULL,
      "write a checkpoint every this many steps (0: off)"),
    K("checkpoint", "every_seconds", TR_CFG_FLOAT, ckpt_every_seconds, 0, "600", CC(0, 1e9), NULL,
      "write a checkpoint when this many seconds of rank 0's clock have passed since the last "
      "one (0: off)"),
    K("checkpoint", "keep", TR_CFG_INT, ckpt_keep, 0, "3", CC(0, 1000000), NULL,
      "newest checkpoints kept; older ones are deleted (0: keep all)"),
    K("checkpoint", "dir", TR_CFG_STRING, ckpt_dir, FSIZE(ckpt_dir), "", ANY, NULL,
      "checkpoint directory (empty: `<run dir>/checkpoints`); `--resume auto` looks here"),
    K("mran", "attention", TR_CFG_ENUM, mran_attention, 0, "dot", ANY, k_attention_names,
      "relation score of the attention modules: dot, general (bilinear), concat (additive) or "
      "multihead (self-attention)"),
    K("mran", "modules", TR_CFG_SET, mran_modules, 0, "tt,ff,tf", ANY, k_mran_module_names,
      "attention modules to run, comma separated subset of tt (task-task), ff "
      "(feature-feature), tf (task-feature alignment); empty for none"),
    K("mran", "embed_dim", TR_CFG_INT, mran_embed_dim, 0, "8", CC(1, 1024), NULL,
      "embedding width m of every token"),
    K("mran", "concat_hidden", TR_CFG_INT, mran_concat_hidden, 0, "16", CC(1, 1024), NULL,
      "concat attention: hidden width q of v^T tanh(W [e_i; e_j])"),
    K("mran", "heads", TR_CFG_INT, mran_heads, 0, "2", CC(1, 64), NULL,
      "multihead attention: number of heads (must divide mran.embed_dim)"),
    K("mran", "alpha_momentum", TR_CFG_FLOAT, mran_alpha_momentum, 0, "0.1", OC(0, 1), NULL,
      "weight of the current batch in the moving averages of the alignment weights and the "
      "feature attention used at test time"),
    K("mran", "relation_penalty", TR_CFG_ENUM, mran_penalty, 0, "fro", ANY, k_penalty_names,
      "norm of the relation-matrix penalty: fro (squared Frobenius) or l1"),
    K("mran", "relation_weight", TR_CFG_FLOAT, mran_relation_weight, 0, "1e-4", CC(0, 100), NULL,
      "weight gamma2 of the relation-matrix penalty (0: none)"),

    K("mmoe", "experts", TR_CFG_INT, mmoe_experts, 0, "4", CC(1, 256), NULL,
      "number of experts E shared by all tasks"),
    K("mmoe", "expert_hidden", TR_CFG_INT, mmoe_expert_hidden, 0, "32", CC(1, 65536), NULL,
      "output width of each expert (fc-ReLU on the trunk features, or on the input "
      "with model.trunk = none)"),

    K("xstitch", "alpha_self", TR_CFG_FLOAT, xstitch_alpha_self, 0, "0.9", CC(0, 1), NULL,
      "initial weight alpha_tt of a column's own activations in every cross-stitch unit; the "
      "other columns share the rest, alpha_ts = (1 - alpha_self) / (T - 1)"),
    K("xstitch", "alpha_lr_mult", TR_CFG_FLOAT, xstitch_alpha_lr_mult, 0, "1", CC(0, 1e6), NULL,
      "learning rate of the cross-stitch weights alpha relative to the trunk's (they live on "
      "a different scale from the layer weights; 0 freezes them)"),
};
#define N_KEYS (sizeof(tr_cfg_keys) / sizeof(tr_cfg_keys[0]))
const int tr_cfg_nkeys = (int)N_KEYS;
_Static_assert(N_KEYS <= TR_CFG_MAX_KEYS, "raise TR_CFG_MAX_KEYS");

const tr_cfg_section tr_cfg_sections[] = {
    {"data", "The dataset."},
    {"model", "Network architecture."},
    {"train", "Optimisation: length, batch, optimizer, learning-rate schedule, task weights."},
    {"relations", "Relation matrices computed during training (relations.h5)."},
    {"run", "Run directory and console output."},
    {"dist", "Distribution over MPI ranks."},
    {"mrn", "Multilinear relationship networks (model.kind = mrn): tensor-normal priors."},
    {"linalg", "Dense linear algebra."},
    {"checkpoint", "Resumable checkpoints (docs/checkpoints.md): when to write them and how many "
                   "to keep."},
    {"mran", "MRAN: relational attention modules (model.kind = mran)."},
    {"mmoe", "MMoE: multi-gate mixture of experts (model.kind = mmoe)."},
    {"xstitch", "Cross-stitch networks (model.kind = cross_stitch): the units mixing the task "
                "columns."},
};
const int tr_cfg_nsections = (int)(sizeof(tr_cfg_sections) / sizeof(tr_cfg_sections[0]));

/* train.gamma's default depends on the schedule: 0.1 (step), 1e-3 (inv). */
const char *const tr_cfg_gamma_inv_default = "1e-3";

/* ---- lookup and suggestions ------------------------------------------- */

const tr_cfg_key *tr_cfg_find(const char *section, const char *name) {
    for (int i = 0; i < tr_cfg_nkeys; i++)
        if (strcmp(tr_cfg_keys[i].section, section) == 0 && strcmp(tr_cfg_keys[i].name, name) == 0)
            return &tr_cfg_keys[i];
    return NULL;
}

static int section_known(const char *section) {
    for (int i = 0; i < tr_cfg_nsections; i++)
        if (strcmp(tr_cfg_sections[i].name, section) == 0)
            return 1;
    return 0;
}

/* Case-insensitive Levenshtein distance (strings cut at 63 characters). */
static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b), row[64], prev[64];
    la = la > 63 ? 63 : la;
    lb = lb > 63 ? 63 : lb;
    for (int j = 0; j <= lb; j++)
        prev[j] = j;
    for (int i = 1; i <= la; i++) {
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int sub = prev[j - 1] +
                      (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int del = prev[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, row, sizeof(int) * (size_t)(lb + 1));
    }
    return prev[lb];
}

/* " (did you mean X?)" for an unknown section.name, or "" if nothing is close. */
static void suggest(const char *section, const char *name, char *buf, size_t n) {
    char full[160], cand[160];
    int best = INT_MAX;
    const tr_cfg_key *same_name = NULL;
    snprintf(full, sizeof(full), "%s.%s", section, name);
    buf[0] = '\0';
    for (int i = 0; i < tr_cfg_nkeys; i++) {
        const tr_cfg_key *k = &tr_cfg_keys[i];
        if (strcmp(k->name, name) == 0 && !same_name)
            same_name = k;
        snprintf(cand, sizeof(cand), "%s.%s", k->section, k->name);
        int d = edit_distance(full, cand);
        int limit = (int)strlen(full) / 4 > 2 ? (int)strlen(full) / 4 : 2;
        if (d <= limit && d < best) {
            best = d;
            snprintf(buf, n, " (did you mean %s?)", cand);
        }
    }
    if (same_name && best > 1)
        snprintf(buf, n, " (did you mean %s.%s?)", same_name->section, same_name->name);
}

/* Message for an unknown section or key (err gets it all; returns 1). */
void tr_cfg_unknown(const char *section, const char *name, char *err, size_t errn) {
    char hint[200];
    suggest(section, name, hint, sizeof(hint));
    if (section[0] == '\0')
        snprintf(err, errn, "key '%s' is outside any [section]%s", name, hint);
    else if (!section_known(section)) {
        int best = INT_MAX;
        char shint[80] = "";
        for (int i = 0; i < tr_cfg_nsections; i++) {
            int d = edit_distance(section, tr_cfg_sections[i].name);
            if (d <= 2 && d < best) {
                best = d;
                snprintf(shint, sizeof(shint), " (did you mean [%s]?)", tr_cfg_sections[i].name);
            }
        }
        snprintf(err, errn, "unknown section [%s]%s", section, shint[0] ? shint : hint);
    } else
        snprintf(err, errn, "unknown key %s.%s%s", section, name, hint);
}

const char *tr_model_kind_str(tr_model_kind k) {
    int n = (int)(sizeof(k_model_names) / sizeof(k_model_names[0])) - 1;
    return (int)k >= 0 && (int)k < n ? k_model_names[k] : "unknown";
}
