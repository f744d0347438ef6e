#!/usr/bin/env bash
# A rank killed with SIGKILL mid-run: the job ends within 30 s with a non-zero
# code (no rank waits forever in a collective), and resuming from
# checkpoints/latest finishes with the same final weights as a run that was
# never interrupted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/ckpt_lib.bash"
command -v h5diff >/dev/null || { echo "h5diff (hdf5-tools) is needed"; exit 1; }
cd "$SCRATCH"
ARGS=(--set checkpoint.every_steps=40 --set checkpoint.keep=3)

train 2 "${ARGS[@]}" --run-dir straight >straight.log 2>&1 || { cat straight.log; exit 1; }

train_bg killed.log 2 "${ARGS[@]}" --run-dir killed
wait_for killed/checkpoints/ckpt-80.h5 120 || fail "no checkpoint to resume from"
victim=$(pgrep -P "$BG_PID" | tail -1)
t0=$(date +%s.%N)
kill -KILL "$victim"
rc=0
# the guard: give up (and fail) after 60 s rather than hang the suite
timeout 60 tail --pid="$BG_PID" -f /dev/null || true
kill -0 "$BG_PID" 2>/dev/null && { fail "job still running 60 s after the kill"; kill -KILL "$BG_PID"; }
wait "$BG_PID" || rc=$?
secs=$(echo "$(date +%s.%N) - $t0" | bc)
checks=$((checks + 1))
if [[ $rc -eq 0 ]] || (($(echo "$secs > 30" | bc))); then
    fail "after SIGKILL of rank pid $victim: exit $rc after ${secs} s (want non-zero within 30 s)"
else
    printf 'ok: SIGKILL of one rank ended the job in %.1f s with exit %d\n' "$secs" "$rc"
fi
latest=$(readlink killed/checkpoints/latest)
echo "resuming from checkpoints/latest -> $latest"
cp "killed/checkpoints/$latest" at-kill.h5 # the resumed run rotates it out (keep = 3)
expect_exit 0 "resumed from killed/checkpoints/latest at step" \
    train 2 "${ARGS[@]}" --run-dir killed --resume killed/checkpoints/latest
expect_same straight/model.h5 killed/model.h5 "model.h5 after resuming from $latest"
# and on another number of ranks (resharding): the same run finishes
expect_exit 0 "resumed from" train 1 "${ARGS[@]}" --run-dir killed-1rank \
    --resume at-kill.h5
finish
