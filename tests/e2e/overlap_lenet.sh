#!/usr/bin/env bash
# dist.overlap on a convolutional trunk (lenet + batch norm + dropout,
# fashion-domains): with the overlap the convolutions' backward runs one
# example at a time with the gradient buckets progressed in between; the
# trained parameters must be bitwise those of the run without overlap, at 2,
# 3 and 4 ranks (replicated and task-sharded grids), also under the stall
# watchdog, and the timeline must show buckets in flight during the backward
# (trunk_allreduce_inflight) only with the overlap.
source "$(dirname "$0")/lib.bash"
BIN=$TASKREL_BIN
"$BIN" data fashion-domains --out "$SCRATCH/fd.h5" --train-frac 0.02 >/dev/null 2>&1 ||
    { echo "could not build fashion-domains"; exit 1; }

run() { # NAME NP SETTINGS...: a short run in $SCRATCH/NAME
    local name=$1 np=$2
    shift 2
    mpirun_np "$np" "$BIN" train -c "$TASKREL_SOURCE_DIR/launch/configs/fashion-hps.ini" \
        --set data.path="$SCRATCH/fd.h5" --set data.tasks=orig,noise,blur,invert_perm \
        --set model.lenet_fc=64 --set model.head_hidden=16 --set model.batchnorm=true \
        --set model.dropout=0.2 --set train.batch_size=16 --set train.max_steps=6 \
        --set train.eval_every=6 --set run.progress=off --set dist.bucket_mb=0.01 \
        --run-dir "$SCRATCH/$name" "$@" >"$SCRATCH/$name.log" 2>&1
}

params() { h5dump -g /params "$SCRATCH/$1/model.h5" | tail -n +2; }
inflight() { grep -c '"trunk_allreduce_inflight"' "$SCRATCH/$1/timeline.json" || true; }

for case in "2 0 0" "3 0 0" "4 1 0" "4 0 30"; do
    read -r np shards stall <<<"$case"
    tag="P$np-S$shards-wd$stall"
    ok=1
    for ov in false true; do
        run "$tag-$ov" "$np" --set dist.overlap=$ov --set dist.task_shards="$shards" \
            --set dist.stall_timeout="$stall" || { check_fail "$tag overlap=$ov: exit $? ($(tail -2 "$SCRATCH/$tag-$ov.log"))"; ok=0; }
    done
    ((ok)) || continue
    a=$(params "$tag-false") b=$(params "$tag-true")
    if [[ $a == *DATA* && $a == "$b" ]]; then
        pass "$tag: parameters bitwise equal with and without overlap"
    else
        check_fail "$tag: parameters differ with and without overlap"
    fi
    n_on=$(inflight "$tag-true") n_off=$(inflight "$tag-false")
    if ((n_on >= 6 * np && n_off == 0)); then
        pass "$tag: buckets in flight during the backward in $n_on rank-steps (0 without overlap)"
    else
        check_fail "$tag: trunk_allreduce_inflight events $n_on with overlap, $n_off without"
    fi
done
finish
