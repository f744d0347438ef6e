#!/usr/bin/env bash
# Cross-stitch networks end to end with the shipped configs on small data:
# fashion-domains (multi-input, 3 of its tasks, 2 ranks) and multifashion
# (shared input, 1 rank) train, beat chance, and write relations.h5 with one
# alpha (T x T) per trunk layer (conv1, conv2, fc6); `taskrel eval` of
# model.h5 reproduces the run's test metric; a checkpoint carries the alphas;
# `taskrel inspect` prints them and `taskrel plot relations` draws them; a bad
# xstitch.* value is exit 2 naming the key.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
command -v h5ls >/dev/null || { echo "h5ls (hdf5-tools) is needed"; exit 1; }
command -v gnuplot >/dev/null || { echo "gnuplot (gnuplot-nox) is needed"; exit 1; }
BIN=$TASKREL_BIN
C=$TASKREL_SOURCE_DIR/launch/configs
cd "$SCRATCH"
"$BIN" data fashion-domains --out fd.h5 --train-frac 0.05 >/dev/null 2>&1 || { echo "no data"; exit 1; }
"$BIN" data multifashion --tasks 2 --out mf.h5 --n-train 1024 --n-val 256 --n-test 256 \
    >/dev/null 2>&1 || { echo "no multifashion"; exit 1; }
common=(--set run.progress=off --set checkpoint.every_seconds=0 --set checkpoint.every_steps=8)

# check RUN T MIN_ACC: the final line is finite with mean test accuracy above
# MIN_ACC; relations.h5 holds xstitch.alpha.{conv1,conv2,fc6}, each T x T.
check() {
    python3 - "$@" <<'EOF'
import json, math, subprocess, sys
run, T, lo = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
final = json.loads(open(run + "/metrics.jsonl").read().splitlines()[-1])
assert final.get("final") is True and math.isfinite(final["test_mean"]), "bad final line"
if final["test_mean"] <= lo:
    sys.exit(f"test accuracy {final['test_mean']:.3f} <= {lo}")
out = subprocess.run(["h5ls", "-r", run + "/relations.h5"], capture_output=True, text=True).stdout
got = {l.split()[0][len("/relations/"):]: l.split("{")[1].split("}")[0].replace(" ", "")
       for l in out.splitlines() if l.startswith("/relations/") and "{" in l}
want = {f"xstitch.alpha.{n}": f"{T},{T}" for n in ("conv1", "conv2", "fc6")}
if got != want:
    sys.exit(f"relations.h5 has {got}, want {want}")
print(f"test accuracy {final['test_mean']:.3f}, relations {sorted(got)}")
EOF
}

# run_case NAME NP T MIN_ACC ARGS...: train, check, eval model.h5 on 1 rank
run_case() {
    local name=$1 np=$2 T=$3 lo=$4 msg out want got
    shift 4
    checks=$((checks + 1))
    if ! mpirun_np "$np" "$BIN" train "$@" "${common[@]}" --run-dir "$name" >"$name.out" 2>&1; then
        fail "$name: training failed: $(tail -3 "$name.out")"
        return 0
    fi
    if msg=$(check "$name" "$T" "$lo" 2>&1); then echo "ok: $name: $msg"; else fail "$name: $msg"; fi
    checks=$((checks + 1))
    out=$("$BIN" eval -c "$name/config.ini" --checkpoint "$name/model.h5" 2>&1) ||
        { fail "eval of $name: $(tail -2 <<<"$out")"; return 0; }
    want=$(python3 -c "import json,sys; print('%.4f' % json.loads(open(sys.argv[1]).read().splitlines()[-1])['test_mean'])" "$name/metrics.jsonl")
    got=$(awk '$1 == "mean" {print $NF}' <<<"$out")
    [[ "$got" == "$want" ]] && echo "ok: eval of $name: test mean $got" ||
        fail "eval of $name: test mean $got, training run $want"
}

# fashion-domains: 3 tasks, 1 epoch (0.22 observed; chance 0.1)
run_case fd 2 3 0.15 -c "$C/fashion-xstitch.ini" --set data.path=fd.h5 \
    --set data.tasks=orig,noise,blur --set train.epochs=1
# multifashion: 2 tasks, 2 epochs of 32 steps (0.22 observed; chance 0.1)
run_case mf 1 2 0.15 -c "$C/multifashion-xstitch.ini" --set data.path=mf.h5 --set train.epochs=2 \
    --set train.batch_size=32

# inspect prints the alphas of the run; a checkpoint carries them too
expect_exit 0 "xstitch\.alpha\.conv1" "$BIN" inspect fd
expect_exit 0 "Cross-stitch alpha after fc6" "$BIN" inspect fd
ckpt=$(ls fd/checkpoints/ckpt-*.h5 2>/dev/null | head -1)
if [[ -n $ckpt ]]; then
    expect_exit 0 "xstitch\.alpha\.conv2" "$BIN" inspect "$ckpt"
else
    check_fail "fd wrote no checkpoint"
fi
mkdir -p tmp
for run in fd mf; do
    checks=$((checks + 1))
    out=$(TMPDIR=$SCRATCH/tmp "$BIN" plot relations "$run" -o "$run.png" 2>&1) ||
        { fail "plot relations $run: $out"; continue; }
    if [[ $(head -c 8 "$run.png" | od -An -c | tr -d ' ') != '211PNG\r\n032\n' ]]; then
        fail "$run.png is not a PNG"
    else
        echo "ok: plot relations $run -> $(stat -c %s "$run.png") bytes"
    fi
done
expect_exit 0 "wrote" "$BIN" plot relations fd --name xstitch.alpha.fc6 -o one.png

# bad values: exit 2 naming the key
expect_exit 2 "xstitch.alpha_self" "$BIN" train -c "$C/fashion-xstitch.ini" --set data.path=fd.h5 \
    --set xstitch.alpha_self=1.5 --run-dir bad1
expect_exit 2 "xstitch.alpha_lr_mult" "$BIN" train -c "$C/fashion-xstitch.ini" \
    --set data.path=fd.h5 --set xstitch.alpha_lr_mult=-1 --run-dir bad2
finish
