#!/usr/bin/env bash
# data.load = stream: the inputs are read from the file as batches and
# evaluation chunks are built, and training gives the weights of
# data.load = memory bit for bit: on fashion-domains (lenet, multi-input) and
# synthetic-mmoe (shared input: HPS and MMoE), on 1 and 2 ranks, and on a
# chunked, compressed copy of the file (the HDF5 route). The data fingerprint
# is the same, so a checkpoint of either mode resumes in the other to the
# same final weights. A file truncated while a 2-rank run reads it ends the
# job with exit code 2 and a message naming it, on every rank, without a hang.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/ckpt_lib.bash"
BIN=$TASKREL_BIN
C=$TASKREL_SOURCE_DIR/launch/configs
cd "$SCRATCH"
"$BIN" data fashion-domains --out fd.h5 --train-frac 0.02 >/dev/null 2>&1 ||
    { echo "could not build fashion-domains"; exit 1; }
"$BIN" data synthetic-mmoe --out mm.h5 --tasks 3 --dim 24 --n-train 700 --n-val 130 \
    --n-test 90 >/dev/null 2>&1 || { echo "could not build synthetic-mmoe"; exit 1; }
# a copy with every input array in chunks of 7 images, gzip-compressed
xs=$(for t in orig noise blur invert_perm; do for s in train val test; do
    printf '/tasks/%s/%s/x,' $t $s; done; done)
h5repack -l "${xs%,}:CHUNK=7x1x28x28" -f GZIP=1 fd.h5 fd-gz.h5 ||
    { echo "h5repack could not write a chunked copy"; exit 1; }

FD=(-c "$C/fashion-hps.ini" --set data.path=fd.h5 --set data.tasks=orig,noise,blur,invert_perm
    --set model.lenet_fc=64 --set model.head_hidden=16 --set train.batch_size=16
    --set train.max_steps=30 --set train.eval_every=10 --set checkpoint.every_steps=10
    --set checkpoint.keep=0 --set checkpoint.every_seconds=0 --set run.progress=off)
MM=(--set data.path=mm.h5 --set train.batch_size=64 --set train.max_steps=25
    --set train.eval_every=10 --set run.progress=off --set checkpoint.every_seconds=0)

run() { # NAME NP ARGS...: a run in ./NAME, its output in NAME.log
    local name=$1 np=$2
    shift 2
    mpirun_np "$np" "$BIN" train "$@" --run-dir "$name" >"$name.log" 2>&1 ||
        check_fail "$name: exit $? ($(tail -2 "$name.log"))"
}

fingerprint() { h5dump -a /data_fingerprint "$1" | grep -o 'v2-[0-9a-f]*'; }

# NAME: memory and stream runs of NAME-memory and NAME-stream agree
compare() {
    expect_same "$1-memory/model.h5" "$1-stream/model.h5" "$1: stream = memory"
    checks=$((checks + 1))
    local a b
    a=$(fingerprint "$1-memory/model.h5") b=$(fingerprint "$1-stream/model.h5")
    [[ -n $a && $a == "$b" ]] || fail "$1: data fingerprints differ: '$a' '$b'"
}

for np in 1 2; do
    for mode in memory stream; do
        run "fd-np$np-$mode" "$np" "${FD[@]}" --set data.load=$mode
        run "mm-hps-np$np-$mode" "$np" -c "$C/synthetic-mmoe-hps.ini" "${MM[@]}" \
            --set data.load=$mode
    done
    compare "fd-np$np"
    compare "mm-hps-np$np"
done
for mode in memory stream; do
    run "mm-mmoe-np2-$mode" 2 -c "$C/synthetic-mmoe-mmoe.ini" "${MM[@]}" --set data.load=$mode
done
compare mm-mmoe-np2

# the HDF5 route: chunked, compressed inputs
run fd-gz-stream 2 "${FD[@]}" --set data.path=fd-gz.h5 --set data.load=stream
expect_same fd-np2-memory/model.h5 fd-gz-stream/model.h5 "chunked gzip file, streamed"

# a checkpoint of either mode resumes in the other
resumed() { # NAME: its log says it resumed
    checks=$((checks + 1))
    grep -q "resumed from" "$1.log" || fail "$1 did not resume ($(tail -2 "$1.log"))"
}
run resume-to-stream 2 "${FD[@]}" --set data.load=stream \
    --resume fd-np2-memory/checkpoints/ckpt-10.h5
resumed resume-to-stream
expect_same fd-np2-memory/model.h5 resume-to-stream/model.h5 "memory checkpoint resumed streaming"
run resume-to-memory 2 "${FD[@]}" --set data.load=memory \
    --resume fd-np2-stream/checkpoints/ckpt-20.h5
resumed resume-to-memory
expect_same fd-np2-memory/model.h5 resume-to-memory/model.h5 "stream checkpoint resumed in memory"

# truncated while in use: the rank holding blur and invert_perm fails its
# reads, the other does not; both end with exit 2
cp fd.h5 cut.h5
off=$(h5dump -p -H -d /tasks/blur/train/x cut.h5 | grep -o 'OFFSET [0-9]*' | grep -o '[0-9]*')
[[ -n $off ]] || { echo "no offset of /tasks/blur/train/x"; exit 1; }
mpirun_np 2 "$BIN" train "${FD[@]}" --set data.path=cut.h5 --set data.load=stream \
    --set train.max_steps=1000000 --set train.eval_every=0 --set checkpoint.every_steps=0 \
    --set train.log_every=1 --run-dir cut >cut.log 2>&1 &
pid=$!
for ((i = 0; i < 600; i++)); do
    grep -q '"step"' cut/metrics.jsonl 2>/dev/null && break
    sleep 0.1
done
truncate -s $((off + 4096)) cut.h5
rc=0
wait "$pid" || rc=$?
checks=$((checks + 1))
if [[ $rc -ne 2 ]] || ! grep -Eq 'cut.h5: /tasks/(blur|invert_perm)/[a-z]+/x: the file ends before the array does' cut.log; then
    fail "truncated file: exit $rc, want 2 and the file named ($(tail -3 cut.log))"
else
    echo "ok: a file truncated mid-run ends the job with exit 2 and names the file"
fi
finish
