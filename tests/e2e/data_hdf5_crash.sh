#!/usr/bin/env bash
# A dataset file damaged so that the HDF5 library itself crashes reading it
# (a fuzzer's find: an attribute message that makes HDF5 1.10 read past its
# buffer; `taskrel train` segfaulted on it) ends `taskrel train` with a
# message naming the file and exit code 2 on every rank: no crash, no hang.
# Rank 0 reads the file's structure in a child process before any rank loads
# it, and the verdict goes to every rank.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$SCRATCH"
BIN=$TASKREL_BIN
BAD=$TASKREL_SOURCE_DIR/tests/fuzz/corpus/dataset/hdf5-attr-overread-segv
[[ -s $BAD ]] || { echo "FAIL: $BAD is missing"; exit 1; }
CFG=$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini
ok=(-c "$CFG" --set train.epochs=1 --set run.progress=off)
MSG="data: .*hdf5-attr-overread-segv: damaged HDF5 file: the HDF5 library crashed reading it"

# rank_rc DIR CMD...: run CMD, then write its exit code to DIR/rc.<rank>
cat >rank_rc.sh <<'SH'
dir=$1
shift
"$@"
rc=$?
echo "$rc" >"$dir/rc.${OMPI_COMM_WORLD_RANK:-0}"
exit "$rc"
SH

every_rank_exits_2() { # DIR NP
    local r rc
    for ((r = 0; r < $2; r++)); do
        rc=$(cat "$1/rc.$r" 2>/dev/null || echo none)
        if [[ $rc == 2 ]]; then pass "$1: rank $r exited 2"; else check_fail "$1: rank $r exited $rc"; fi
    done
}

for np in 1 2; do
    mkdir -p "train$np"
    expect_exit 2 "$MSG" mpirun_np "$np" bash rank_rc.sh "train$np" \
        "$BIN" train "${ok[@]}" --set data.path="$BAD" --run-dir "run$np"
    every_rank_exits_2 "train$np" "$np"
done

# eval takes the same path. The library's over-read crashes only when it runs
# past the end of the heap: in eval's larger heap it reads garbage instead and
# the run ends on a later error (here the weights do not fit the data's
# tasks). Either way: exit 2 on every rank, no crash.
"$BIN" data synthetic-tn --out tn.h5 --tasks 2 --n-train 16 --n-val 8 --n-test 8 --dim 4 \
    >/dev/null 2>&1 || { echo "could not build test data"; exit 1; }
expect_exit 0 "" "$BIN" train "${ok[@]}" --set data.path=tn.h5 --run-dir good
mkdir -p eval2
expect_exit 2 "error: " mpirun_np 2 bash rank_rc.sh eval2 "$BIN" eval good --set data.path="$BAD"
every_rank_exits_2 eval2 2

# a sound file still trains after the check
expect_exit 0 "" mpirun_np 2 "$BIN" train "${ok[@]}" --set data.path=tn.h5 --run-dir good2
finish
