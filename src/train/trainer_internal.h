/*
 * State shared by the training loop (trainer.c), evaluation (evaluate.c) and
 * reporting (report.c). Private to src/train.
 */
#ifndef TASKREL_TRAINER_INTERNAL_H
#define TASKREL_TRAINER_INTERNAL_H

#include "taskrel/checkpoint.h"
#include "taskrel/config.h"
#include "taskrel/data.h"
#include "taskrel/dist.h"
#include "taskrel/model.h"
#include "taskrel/mrn.h"
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
    TR_PHASE_MRN, /* prior steps and covariance updates (their collectives included) */
    TR_PHASE_COUNT
} tr_phase;

/* The training loss's recent level (loss_watch.c): warns once when a
 * classification run is still at chance level after train.chance_steps, and
 * once when the loss climbs away from its best under an adaptive optimizer. */
typedef struct {
    double ema, best; /* smoothed mean task loss; its lowest value */
    int64_t seen;     /* steps observed by this process */
    int warned_chance, warned_rise;
} tr_loss_watch;

typedef struct {
    const tr_config *cfg;
    tr_train_opts opts;
    int eval_only; /* tr_eval_run: no run directory, no training */
    tr_grid grid;
    tr_dataset ds;
    tr_model model;
    tr_optimizer opt;
    int T, t0, tn;
    int B; /* global batch: per task (multi-input) or total (shared) */
    int64_t steps_per_epoch, total_steps;
    int64_t step; /* the step being taken (dropout keys) */
    float task_weight[TR_MAX_TASKS];
    /* batch assembly */
    int32_t *perm; /* (tn, max n) multi-input or (n) shared-input */
    int64_t perm_stride;
    int64_t perm_epoch;
    float *x;         /* (max_rows, in_size) */
    int64_t *ids;     /* (max_rows) */
    int32_t *y;       /* (max_head_rows) */
    float *yf;        /* (max_head_rows) */
    float *dfeat;     /* (max_rows, feat_dim) */
    float *feat_all;  /* shared-input: (replica rows, feat_dim) gathered features */
    float *dfeat_all; /* shared-input: (replica rows, feat_dim) */
    int seg_off[TR_MAX_TASKS], seg_n[TR_MAX_TASKS]; /* per local task rows */
    int rows;                                       /* trunk rows this step */
    int rep_lo, rep_n;                  /* shared-input: replica part of the global batch */
    int my_lo, my_n;                    /* shared-input: this rank's sub-slice */
    int *gather_counts, *gather_displs; /* shared-input, in floats, per replica_comm rank */
    int32_t *yall; /* MRAN: (max_rows, T) every task's label of this rank's trunk rows */
    float *yfall;  /* MRAN: (max_rows, T) every task's target of this rank's trunk rows */
    int max_rows, max_head_rows, eval_chunk;
    /* statistics */
    double *scalars; /* fused buffer: 3T sums + 2 flags */
    double phase[TR_PHASE_COUNT];
    double train_seconds;
    int64_t samples;
    /* model selection */
    float *best_params, *best_buffers;
    double best_score;
    int64_t best_step;
    int classification;
    tr_task_stats window[TR_MAX_TASKS]; /* training stats since the last validation */
    tr_loss_watch loss_watch;           /* chance-level and divergence warnings (loss_watch.c) */
    /* checkpoints (checkpointing.c) */
    int64_t start_step; /* first step of this run (> 0 after a resume) */
    char ckpt_dir[TR_PATH_LEN];
    double last_ckpt_time; /* rank 0's clock at the last checkpoint (or the start) */
    tr_ckpt_io ckpt_io;    /* summed over this run's checkpoint writes and loads */
    int64_t ckpt_written;
    char ckpt_last[TR_PATH_LEN];
    /* Replicated state saved and restored with every checkpoint (MRN
     * covariances, precisions, eigenvectors; the MRAN alpha matrix): register
     * each array once after the model is built, with
     *     TR_CALL(tr_trainer_add_extra(tr, "/mrn/fc8/sigma3", sigma3, 2, (int64_t[]){d, d}));
     * The data must be identical on every rank; rank 0 writes it, every rank
     * reads it back in place on resume. */
    tr_extra_state extra[TR_MAX_EXTRA];
    int n_extra;
    /* Relation matrices written to /relations of each checkpoint (empty until
     * MRN/MRAN fill it; the same list on every rank). */
    tr_relations relations;
    /* output */
    char run_dir[TR_PATH_LEN];
    FILE *metrics; /* rank 0 */
    int progress_tty;
    struct tr_timeline *timeline; /* per-rank phase events -> timeline.json */
    /* MRN (model.kind = mrn) */
    int has_mrn;
    tr_mrn mrn;
    double t_start;
} tr_trainer;

/* setup.c */
tr_status tr_trainer_init(tr_trainer *tr, const tr_config *cfg, MPI_Comm world,
                          const tr_train_opts *opts);
void tr_trainer_free(tr_trainer *tr);
/* Training examples of task t (shared-input: of every task). */
int64_t tr_task_n(const tr_trainer *tr, int t, tr_split s);
/* Rows [lo, lo+n) of part `index` of a contiguous split of `total` into `parts`. */
void tr_part_range(int total, int parts, int index, int *lo, int *n);

/* evaluate.c: per-task stats on a split, summed over world. Collective. */
tr_status tr_trainer_evaluate(tr_trainer *tr, tr_split split, tr_task_stats *stats);
/* Metric of a task from its stats: accuracy or MSE. */
double tr_task_metric(const tr_trainer *tr, const tr_task_stats *st);
/* Mean metric over tasks; *better_is_higher set for the selection rule. */
double tr_mean_metric(const tr_trainer *tr, const tr_task_stats *stats);

/* report.c (rank 0 only unless noted) */
tr_status tr_report_open(tr_trainer *tr);
/* After each step, with the step's mean task loss (agreed over ranks): may log
 * a warning on rank 0. No collectives; the run goes on either way. */
void tr_loss_watch_step(tr_trainer *tr, int64_t step, double mean_loss);
void tr_report_close(tr_trainer *tr);
void tr_report_progress(tr_trainer *tr, int64_t step, double loss, int force_line);
/* The learned task correlations (tr->relations) as text tables. */
void tr_report_relations(const tr_trainer *tr, FILE *out);
void tr_report_eval(tr_trainer *tr, int64_t step, const tr_task_stats *train_stats,
                    const tr_task_stats *val, double lr);
void tr_report_final(tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test);
void tr_report_table(const tr_trainer *tr, const tr_task_stats *val, const tr_task_stats *test,
                     double seconds);

/* checkpointing.c (collective over world unless noted) */
/* Register a replicated float64 array (see tr_trainer.extra). Local. */
tr_status tr_trainer_add_extra(tr_trainer *tr, const char *name, double *data, int ndim,
                               const int64_t *dims);
/* Make the checkpoint directory; remove stale *.tmp files left by a killed job. */
tr_status tr_ckpt_prepare(tr_trainer *tr);
/* --resume auto|none|PATH: find the newest checkpoint that validates, load it,
 * set start_step and the optimizer, selection and reporting state. */
tr_status tr_ckpt_resume(tr_trainer *tr, const char *resume);
/* Write a checkpoint of the state after `steps` completed steps. */
tr_status tr_ckpt_write(tr_trainer *tr, int64_t steps);
/* rank 0: drop metrics.jsonl lines of steps after `step` (a resumed run
 * appends from there). */
void tr_ckpt_trim_metrics(const tr_trainer *tr, int64_t step);

/* signals.c: SIGUSR1/SIGTERM set a flag (nothing else happens in the handler). */
void tr_signals_install(void);
void tr_signals_restore(void);
int tr_signals_pending(void); /* the signal number seen, 0 if none */

/* step_rel.c: MRAN / MMoE (taskrel/relational.h) */
tr_status tr_rel_trainer_setup(tr_trainer *tr);
/* One shared-input training step of MRAN or MMoE. Collective. */
tr_status tr_step_relational(tr_trainer *tr, tr_task_stats *st);

/* Apply data.tasks to a loaded dataset (keeps the selected tasks in order). */
tr_status tr_dataset_select_tasks(tr_dataset *ds, const char *spec);

#endif
