/*
 * Training and evaluation drivers: the only place that strings model, data,
 * communication and I/O together.
 *
 * tr_train_run is collective over `world`: every rank calls it with the same
 * config and every rank returns the same status (errors are agreed on with an
 * all-reduce before anyone leaves). Rank 0 writes the run directory:
 *   config.ini     the resolved configuration
 *   metrics.jsonl  one JSON object per validation, and a final one with test results
 *   model.h5       the weights selected on validation (parallel HDF5, global shapes)
 *   checkpoints/   resumable checkpoints (taskrel/checkpoint.h, docs/checkpoints.md)
 *   run.id         the run's id, made at its first start and kept across resumes
 *
 * Signals: while tr_train_run runs, SIGUSR1 and SIGTERM only set a flag. The
 * flag rides in the per-step fused all-reduce (MAX); every rank finishes the
 * step, all write a checkpoint together and return TR_STOPPED (exit code 3).
 * The previous handlers are restored on return.
 */
#ifndef TASKREL_TRAIN_H
#define TASKREL_TRAIN_H

#include <mpi.h>

#include "taskrel/config.h"
#include "taskrel/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *run_dir; /* overrides cfg->run_dir if non-NULL */
    int quiet;           /* no progress line or table (tests) */
    int record_losses;   /* keep the per-step mean training loss of each task */
    const char *resume;  /* "auto" (newest valid checkpoint, if any), "none" (NULL), or a path */
    /* Start afresh in a run directory that holds a run: remove its outputs
     * and checkpoints first (only with resume "none"). Without it such a
     * directory is TR_ERR_USAGE and nothing in it is changed. */
    int overwrite;
    const char *command_line; /* recorded as provenance (may be NULL) */
    /* Testing: act as if a stop signal reached the last rank during the step
     * that completes this many steps (0: never). */
    int64_t stop_after_steps;
} tr_train_opts;

typedef struct {
    int T;
    int64_t steps;                   /* steps completed (the last step's index + 1) */
    int64_t first_step;              /* the step this run started at (> 0 after a resume) */
    int64_t best_step;               /* step of the selected (best validation) model */
    double val_metric[TR_MAX_TASKS]; /* accuracy (classification) or MSE (regression) */
    double test_metric[TR_MAX_TASKS];
    double val_mean, test_mean;
    double train_seconds, samples_per_s;
    double *losses;      /* (steps, T) per-step mean training loss if record_losses (rows from
                            first_step on are this run's; earlier rows are 0) */
    int64_t checkpoints; /* checkpoints this run wrote */
    int64_t ckpt_io_collective;        /* checkpoint transfers HDF5 reported as collective */
    int64_t ckpt_io_independent;       /* ... and as independent (should stay 0) */
    char checkpoint[TR_PATH_LEN];      /* the last checkpoint written ("" if none) */
    tr_coll_stats comm[TR_COLL_COUNT]; /* this rank's collective counters (training steps) */
    char run_dir[TR_PATH_LEN];
    int classification; /* 1 if every task's metric is accuracy */
    int mixed;          /* classification next to regression: the means are mean losses */
    unsigned char task_regression[TR_MAX_TASKS]; /* 1: the task's metric is MSE (else accuracy) */
} tr_train_result;

void tr_train_result_free(tr_train_result *r);

tr_status tr_train_run(const tr_config *cfg, MPI_Comm world, const tr_train_opts *opts,
                       tr_train_result *res);

/* Evaluate saved weights (model.h5 of a run, or a checkpoint) on the val and
 * test splits of cfg's dataset and print the per-task table. Collective. */
tr_status tr_eval_run(const tr_config *cfg, MPI_Comm world, const char *weights_path,
                      tr_train_result *res);
/* tr_eval_run that also writes every val and test prediction to the HDF5
 * file `predictions` (NULL: none; layout: tr_predictions_write in
 * taskrel/dataset.h). The data file may hold only some splits. */
tr_status tr_eval_run_ex(const tr_config *cfg, MPI_Comm world, const char *weights_path,
                         const char *predictions, tr_train_result *res);

#ifdef __cplusplus
}
#endif
#endif
