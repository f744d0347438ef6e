/*
 * The trainer's state, private to src/train. The trainer owns one of each
 * part below; each part has its own init and free in the file named beside it:
 *
 *   tr_batch          batch.c        rows of a step, their buffers, the permutations
 *   tr_selection      selection.c    the model selected on validation, stats window
 *   tr_trainer_ckpt   checkpointing.c  where checkpoints go, what rides in them
 *   tr_reporting      report.c       run directory, metrics.jsonl, timeline, clocks
 *
 * The method of model.kind is reached only through tr_model.method
 * (taskrel/method.h): nothing here names a method.
 */
#ifndef TASKREL_TRAINER_INTERNAL_H
#define TASKREL_TRAINER_INTERNAL_H

#include "taskrel/checkpoint.h"
#include "taskrel/config.h"
#include "taskrel/dataset.h"
#include "taskrel/comm.h"
#include "taskrel/method.h"
#include "taskrel/model.h"
#include "taskrel/optim.h"
#include "taskrel/relations.h"
#include "taskrel/train.h"

/* Phases timed per step (seconds accumulated on this rank). */
typedef enum {
    TR_PHASE_DATA = 0,
    TR_PHASE_FORWARD,
    TR_PHASE_BACKWARD,
    TR_PHASE_COMM,
    TR_PHASE_OPTIMIZER,
    TR_PHASE_EVAL,
    TR_PHASE_METHOD, /* a method's own work after the reduce or the optimizer (MRN's
                        prior steps and covariance updates, their collectives included) */
    TR_PHASE_COUNT
} tr_phase;

/* ---- per-task statistics (stats.c) ------------------------------------------------ */

/* The doubles of one task's tr_task_stats when packed (all-reduces, checkpoints). */
typedef enum {
    TR_STAT_LOSS = 0, /* loss_sum */
    TR_STAT_ABS,      /* abs_sum */
    TR_STAT_CORRECT,  /* correct */
    TR_STAT_COUNT,    /* count */
    TR_STAT_FIELDS
} tr_stat_field;

/* The fused per-step all-reduce: T * TR_STAT_FIELDS packed task statistics
 * (summed), then these flags at offset T * TR_STAT_FIELDS (combined with MAX). */
typedef enum {
    TR_FUSED_NONFINITE = 0, /* 1: some rank saw a non-finite loss or gradient */
    TR_FUSED_ACTION,        /* the agreed action of this step (trainer.c) */
    TR_FUSED_FLAGS
} tr_fused_flag;

/* buf (n, TR_STAT_FIELDS) <-> st (n). */
void tr_stats_pack(double *buf, const tr_task_stats *st, int n);
void tr_stats_unpack(tr_task_stats *st, const double *buf, int n);

/* ---- the rows of a step (batch.c) ------------------------------------------------- */

typedef struct {
    int T, t0, tn;
    int B; /* global batch: per task (multi-input) or total (shared-input) */
    int64_t steps_per_epoch;
    int shared_input;
    int task_trunks; /* the method's layout: a trunk per task */
    int exchanged;   /* shared-input with a shared trunk: features all-gathered */
    int32_t *perm;   /* (tn, max n) multi-input or (n) shared-input */
    int64_t perm_stride;
    int64_t perm_epoch;
    float *x;         /* (max_rows, in_size) */
    float *xeval;     /* (eval_chunk, in_size) compact or streamed inputs for evaluation, or NULL */
    int64_t *ids;     /* (max_rows) */
    int32_t *y;       /* (max_head_rows) */
    float *yf;        /* (max_head_rows) */
    int32_t *yall;    /* shared-input: (max_rows, T) every task's label of the trunk rows */
    float *yfall;     /* shared-input: (max_rows, T) every task's target */
    float *dfeat;     /* (max_rows, feat_dim) gradient of this rank's features */
    float *feat_all;  /* exchanged: (replica rows, feat_dim) gathered features */
    float *dfeat_all; /* exchanged: (replica rows, feat_dim) */
    int seg_off[TR_MAX_TASKS], seg_n[TR_MAX_TASKS]; /* per local task: head rows */
    int rep_lo, rep_n;                  /* shared-input: replica part of the global batch */
    int my_lo, my_n;                    /* shared-input: this rank's sub-slice */
    int *gather_counts, *gather_displs; /* exchanged, in floats, per replica_comm rank */
    int max_rows, max_head_rows, eval_chunk;
    int64_t max_n;          /* largest training split of a task */
    tr_trunk_batch trunk;   /* the trunk rows of this step */
    const float *head_feat; /* the features the heads read this step (step.c) */
} tr_batch;

/* Sizes and permutations (before the model: it is built for max_rows). */
tr_status tr_batch_plan(tr_batch *b, const tr_dataset *ds, const tr_grid *g, int batch_size,
                        tr_trunk_layout layout);
/* Row buffers, once the feature width is known. */
tr_status tr_batch_alloc(tr_batch *b, const tr_dataset *ds, const tr_grid *g, int feat_dim);
void tr_batch_free(tr_batch *b);
/* Assemble this rank's rows of global step `step` (epoch = step / steps_per_epoch).
 * Fails only on a streamed read (data.load = stream; local: the caller agrees). */
tr_status tr_batch_assemble(tr_batch *b, const tr_dataset *ds, const tr_grid *g, uint64_t seed,
                            int64_t step);
/* Training examples of task t (shared-input: of every task). */
int64_t tr_task_n(const tr_dataset *ds, int t, tr_split s);

/* ---- model selection (selection.c) ------------------------------------------------ */

typedef struct {
    float *best_params, *best_buffers; /* the arenas of the selected model */
    double best_score;                 /* NaN before the first validation */
    int64_t best_step;
    int classification;                 /* every task is classification: select on mean accuracy */
    int mixed;                          /* classification next to regression: select on mean loss */
    const tr_task_kind *kinds;          /* (T) the model's task kinds */
    tr_task_stats window[TR_MAX_TASKS]; /* training stats since the last validation */
} tr_selection;

tr_status tr_selection_init(tr_selection *s, const tr_model *m);
void tr_selection_free(tr_selection *s);
/* Keep the model if `score` beats the best so far. */
void tr_selection_consider(tr_selection *s, const tr_model *m, int64_t step, double score);
/* Copy the selected model into m. */
void tr_selection_restore(const tr_selection *s, tr_model *m);
/* Metric of task t from its stats: accuracy (classification) or MSE
 * (regression); NaN without examples. */
double tr_task_metric(const tr_selection *s, int t, const tr_task_stats *st);
/* The selection score over T tasks: the mean metric, or with mixed kinds the
 * mean loss (cross-entropy or squared error per task; lower is better). */
double tr_mean_metric(const tr_selection *s, const tr_task_stats *stats, int T);

/* ---- checkpoints of the run (checkpointing.c) ------------------------------------- */

typedef struct {
    int64_t start_step; /* first step of this run (> 0 after a resume) */
    char dir[TR_PATH_LEN];
    double last_time; /* rank 0's clock at the last checkpoint (or the start) */
    tr_ckpt_io io;    /* summed over this run's checkpoint writes and loads */
    int64_t written;
    char last[TR_PATH_LEN];
    /* Replicated state saved and restored with every checkpoint: what the
     * method names (tr_method_each_state). The data must be identical on every
     * rank; rank 0 writes it, every rank reads it back in place on resume. */
    tr_extra_state extra[TR_MAX_EXTRA];
    int n_extra;
    double window[TR_MAX_TASKS * TR_STAT_FIELDS]; /* the selection window, packed */
    tr_provenance prov; /* this run's id and data fingerprint (the same on every rank) */
    int64_t *own;       /* rank 0: steps of this run's checkpoints in dir (rotation) */
    int n_own;
} tr_trainer_ckpt;

/* ---- what rank 0 shows and writes (report.c) ---------------------------------------- */

typedef struct {
    char run_dir[TR_PATH_LEN];
    FILE *metrics; /* rank 0 */
    int progress_tty;
    struct tr_timeline *timeline; /* per-rank phase events -> timeline.json */
    double phase[TR_PHASE_COUNT];
    double train_seconds;
    int64_t samples;
    double t_start;
} tr_reporting;

/* The training loss's recent level (loss_watch.c): warns once when a
 * classification run is still at chance level after train.chance_steps, and
 * once when the loss climbs away from its best under an adaptive optimizer. */
typedef struct {
    double ema, best; /* smoothed mean task loss; its lowest value */
    int64_t seen;     /* steps observed by this process */
    int warned_chance, warned_rise;
} tr_loss_watch;

/* ---- loss weighting and gradient surgery (weighting.c) ------------------------------ */

/* The state of train.weighting. Everything here is identical on every rank
 * except the buffers; the arrays under "checkpointed" ride in checkpoints. */
struct tr_weighting_method; /* weighting_methods.h */

typedef struct {
    tr_weighting_kind kind;
    const struct tr_weighting_method *m; /* its row */
    int T;
    int every;                 /* grad.cos every N steps (0: off) */
    double hw[TR_MAX_TASKS];   /* this step's loss weights: heads and trunk */
    double coef[TR_MAX_TASKS]; /* the last combination of the task gradients */
    int per_task;              /* this step takes per-task gradients (step.c) */
    int combined;              /* this step's shared gradient is already summed over world */
    int stepped;               /* this step produced a gradient for the parameters below */
    int gn_active;             /* gradnorm: past the first epoch, the weights are learned */
    int by_rows; /* multi-input, independent rows: task t's backward runs on its own rows
                    only, and not at all where this rank has none */
    /* learned weighting parameters (uncertainty: s_t; gradnorm: logits z_t),
     * replicated, updated by an optimizer of the run's kind */
    int has_params;
    tr_params params;
    tr_optimizer opt;
    double pending[TR_MAX_TASKS]; /* gradnorm: dL_grad/dz of this step */
    /* checkpointed (float64, replicated) */
    double *saved;      /* (3, T): parameters, first and second moments (before_save) */
    double *losses;     /* (4, T): current epoch's sum of step losses, last epoch's mean,
                           the epoch's before, the first epoch's mean */
    double counters[4]; /* steps in the current epoch, epochs closed, optimizer steps,
                           grad.cos samples */
    double *cos_sum;    /* (T, T) sum of the sampled cosines */
    /* buffers */
    size_t off, len;      /* the shared parameters' arena range */
    int *counts, *displs; /* (P) each rank's slice of the shared range, floats */
    int *tcounts;         /* (P) T * counts */
    float *send;          /* (T len) per-task gradients, grouped by destination rank */
    float *mine;          /* (T, counts[rank]) this rank's slice, summed over world */
    float *comb;          /* (counts[rank]) the combined slice */
    double *sums;         /* Gram (T*T) or feature sums (T*fd), then 2T loss sums */
    float *rep;           /* rep_grad: (T, max_rows, feat_dim) feature gradients */
} tr_weighting;

/* ---- the shared-gradient all-reduce, overlapped with the backward (overlap.c) ------- */

typedef struct {
    tr_buckets b;  /* the shared arena range, cut from the last layer to the first */
    int *ready_op; /* (b.n) the trunk op after whose backward bucket i is final (-1: only
                      after the whole backward) */
    int early;     /* buckets may start during the backward (dist.overlap, plain trunk) */
    int open;      /* this step's round has begun */
    int last_op;   /* the last `done` the model's hook gave this step (it never grows
                      within a step: a second trunk pass would be a bug) */
} tr_overlap;

/* ---- the trainer -------------------------------------------------------------------- */

typedef struct {
    const tr_config *cfg;
    tr_train_opts opts;
    int eval_only;     /* tr_eval_run: no run directory, no training */
    double *pred_rows; /* evaluation fills the predictions of the split (eval --predictions) */
    int pred_created;  /* rank 0 created the predictions file (removed if eval fails) */
    tr_grid grid;
    tr_dataset ds;
    tr_model model;
    tr_optimizer opt;
    int T, t0, tn;
    int64_t total_steps;
    int64_t step; /* the step being taken (dropout keys, timeline) */
    float task_weight[TR_MAX_TASKS];
    double *scalars; /* the fused all-reduce (tr_fused_flag) */
    /* Relation matrices written to /relations of each checkpoint and to
     * relations.h5 (filled by the method; the same list on every rank). */
    tr_relations relations;
    tr_batch batch;
    tr_selection sel;
    tr_trainer_ckpt ckpt;
    tr_reporting rep;
    tr_loss_watch loss_watch;
    tr_weighting wt;
    tr_overlap ov;
} tr_trainer;

/* overlap.c: the buckets (after the model; free is a no-op on a zeroed struct).
 * Around the shared backward of a step, arm (begin the round and
 * let the model's trunk backward start buckets) and disarm; then reduce:
 * start what has not started, wait for every bucket (timeline
 * "trunk_allreduce": the exposed wait). Collective over world. */
tr_status tr_overlap_init(tr_trainer *tr);
void tr_overlap_free(tr_overlap *o);
tr_status tr_overlap_arm(tr_trainer *tr);
void tr_overlap_disarm(tr_trainer *tr);
tr_status tr_overlap_reduce(tr_trainer *tr);

/* setup.c */
tr_status tr_trainer_init(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                          const tr_train_opts *opts);
void tr_trainer_free(tr_trainer *tr);

/* step.c: one training step up to the optimizer. Collective. */
tr_status tr_step_forward(tr_trainer *tr, tr_task_stats *st);
tr_status tr_step_backward(tr_trainer *tr, const tr_task_stats *st);
/* The feature gradient of task `task`'s head alone into batch.dfeat (its head
 * gradients added; zero rows where this rank holds no row of the task), and
 * the shared stage's backward from batch.dfeat. Collective over replica_comm. */
tr_status tr_step_task_dfeat(tr_trainer *tr, int task);
tr_status tr_step_shared_backward(tr_trainer *tr);
/* The shared stage's backward of trunk rows [row0, row0 + n) alone (the
 * method's shared_backward_rows). Local. */
tr_status tr_step_shared_backward_rows(tr_trainer *tr, int row0, int n);
tr_status tr_step_reduce_gradients(tr_trainer *tr);

/* weighting.c. Init after the model and the batch; free is a no-op on a
 * zeroed struct. */
tr_status tr_weighting_init(tr_trainer *tr);
void tr_weighting_free(tr_weighting *w);
/* The loss weights and the kind of backward of global step `step`. Local. */
void tr_weighting_begin_step(tr_trainer *tr, int64_t step);
/* The loss-gradient scale of task t's head: train.task_weights[t] * w_t / B. */
float tr_weighting_head_scale(const tr_trainer *tr, int t);
/* Per-task backward and the combined shared gradient on every rank
 * (st: this rank's loss statistics of the step). Collective over world. */
tr_status tr_weighting_backward(tr_trainer *tr, const tr_task_stats *st);
/* After the step's losses are agreed (all: global statistics of every task):
 * epoch means, the weighting parameters' gradients and their optimizer step. */
void tr_weighting_after_losses(tr_trainer *tr, const tr_task_stats *all, float lr);
/* Checkpoint state (tr_state_fn), and its replicated form before a save and
 * after a load. */
tr_status tr_weighting_each_state(tr_trainer *tr, tr_state_fn fn, void *ctx);
void tr_weighting_before_save(tr_trainer *tr);
void tr_weighting_after_load(tr_trainer *tr);
/* `,"weighting":{...}` for a metrics.jsonl validation record (not for equal):
 * the last step's loss weights, trunk coefficients and learned parameters. */
void tr_weighting_write_json(const tr_trainer *tr, FILE *f);
/* grad.cos into tr->relations (when sampled). */
tr_status tr_weighting_relations(tr_trainer *tr);

/* evaluate.c: per-task stats on a split, summed over world. Collective. */
tr_status tr_trainer_evaluate(tr_trainer *tr, tr_split split, tr_task_stats *stats);

/* report.c (rank 0 only unless noted) */
/* The run directory (agreed over world) and this rank's timeline. Collective. */
tr_status tr_reporting_init(tr_trainer *tr);
void tr_reporting_free(tr_reporting *rep);
/* Accumulate a phase's time on this rank and record it on the timeline. Local. */
void tr_trainer_phase(tr_trainer *tr, tr_phase ph, const char *name, double t0, double t1);
/* config.ini and metrics.jsonl in the run directory. */
tr_status tr_report_open(tr_trainer *tr);
void tr_report_progress(tr_trainer *tr, int64_t step, double loss, int force_line);
/* The learned task correlations (tr->relations) as text tables. */
void tr_report_relations(const tr_trainer *tr, FILE *out);
/* Every train.log_every steps: step, per-task loss, lr, samples/s in metrics.jsonl. */
void tr_report_train_line(tr_trainer *tr, int64_t step, double lr, const tr_task_stats *step_stats);
void tr_report_eval(tr_trainer *tr, int64_t step, const tr_task_stats *train_stats,
                    const tr_task_stats *val, double lr);
void tr_report_final(tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test);
void tr_report_table(const tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test,
                     double seconds);

/* checkpointing.c (collective over world unless noted) */
/* Register the method's checkpoint state (tr_method_each_state). Local. */
tr_status tr_trainer_ckpt_register(tr_trainer *tr);
/* Claim the run directory (a run's files there need --resume or --overwrite),
 * make the checkpoint directory, remove stale *.tmp files left by a killed job,
 * fingerprint the dataset. */
tr_status tr_trainer_ckpt_prepare(tr_trainer *tr);
/* rank 0: refuse (TR_ERR_CONFIG) a checkpoint written under another value of a
 * hard key, warn for any other changed key (checkpoint_config.c) */
tr_status tr_trainer_ckpt_check_config(const tr_trainer *tr, const char *path);
/* --resume auto|none|PATH: find the newest checkpoint that validates, load it,
 * set start_step and the optimizer, selection and reporting state. */
tr_status tr_trainer_resume(tr_trainer *tr, const char *resume);
/* Write a checkpoint of the state after `steps` completed steps. */
tr_status tr_trainer_ckpt_write(tr_trainer *tr, int64_t steps);

/* rundir.c (rank 0; local file system) */
/* 1 if the run directory or the checkpoint directory holds a run's files
 * (what: the first one found). Other files do not count. */
int tr_rundir_holds_run(const char *run_dir, const char *ckpt_dir, char *what, size_t n);
/* --overwrite: remove a run's outputs and checkpoints (nothing else). */
tr_status tr_rundir_clear(const char *run_dir, const char *ckpt_dir);
/* <run_dir>/run.id: 1 and the id if present. */
int tr_rundir_read_id(const char *run_dir, char *id, size_t n);
tr_status tr_rundir_write_id(const char *run_dir, const char *id);
/* A new run id: UTC time and 48 random bits. */
void tr_run_id_new(char *id, size_t n);

/* signals.c: SIGUSR1/SIGTERM set a flag (nothing else happens in the handler). */
void tr_signals_install(void);
void tr_signals_restore(void);
int tr_signals_pending(void); /* the signal number seen, 0 if none */

/* loss_watch.c: after each step, with the step's mean task loss (agreed over
 * ranks): may log a warning on rank 0. No collectives; the run goes on. */
void tr_loss_watch_step(tr_trainer *tr, int64_t step, double mean_loss);
#endif
