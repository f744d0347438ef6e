#!/usr/bin/env bash
# compare_builds.sh OLD_BIN NEW_BIN [RANKS...]
#
# Runs the same short trainings with two taskrel binaries and checks that
# everything a user sees is bitwise identical: the per-step losses and every
# validation record of metrics.jsonl (timing fields ignored), relations.h5,
# model.h5 and every checkpoint (h5diff -r: datasets and attributes, exact,
# except a checkpoint's train_seconds and the provenance attributes
# command_line, run_id (they name the run directory), git_revision and blas (the
# BLAS kernel set, an attribute older builds do not write).
#
# Cases: model kinds stl, hps, mrn on multi-input (synthetic-tn) and
# shared-input (synthetic-mmoe) data; mran (each attention type, and a run
# without T-F) and mmoe on shared-input data; each at P = RANKS (default
# 1 2 3 4), with checkpoint.every_steps set; and the lenet trunk (its
# convolutions: HPS, STL with batch norm, cross-stitch) on fashion-domains
# images. Not part of ctest (about 5-8 minutes on 2 cores). Exit 0 if every
# case is identical.
#
# Env: KEEP=1 keeps the scratch directory; CASES="hps-multi mmoe" runs a subset;
# IGNORE_ATTRS="train_seconds command_line run_id git_revision blas config" also
# skips the stored config text (when only its comments, key order or new keys
# changed; compare it separately);
# ALLOW_NEW='/(mran|mmoe)(/|$)' lets the new build's files have extra objects
# whose path matches (state added on purpose), all others must match exactly.
set -u
OLD=$(realpath "$1")
NEW=$(realpath "$2")
shift 2
RANKS=${*:-1 2 3 4}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/compare_builds.XXXXXX")
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf "$SCRATCH"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

mpirun_np() {
    local np=$1
    shift
    if [[ $np -eq 1 ]]; then
        timeout 300 "$@"
        return
    fi
    local extra=()
    [[ $(id -u) -eq 0 ]] && extra+=(--allow-run-as-root)
    timeout 300 mpirun -np "$np" --oversubscribe --bind-to none "${extra[@]}" \
        --mca btl_vader_single_copy_mechanism none -x OPENBLAS_NUM_THREADS=1 "$@"
}

MULTI=$SCRATCH/multi.h5
SHARED=$SCRATCH/shared.h5
"$OLD" data synthetic-tn --out "$MULTI" --tasks 4 --n-train 60 --n-val 20 --n-test 20 \
    --classification >/dev/null || { echo "cannot build synthetic-tn"; exit 1; }
"$OLD" data synthetic-mmoe --out "$SHARED" --tasks 4 --n-train 120 --n-val 40 --n-test 40 \
    --dim 12 >/dev/null || { echo "cannot build synthetic-mmoe"; exit 1; }
# images for the lenet trunk (its convolutions): fashion-domains, 1 % train
IMAGES=$SCRATCH/images.h5
"$OLD" data fashion-domains --out "$IMAGES" --train-frac 0.01 >/dev/null 2>&1 ||
    { echo "cannot build fashion-domains"; exit 1; }

common=(--set run.progress=off --set model.trunk=mlp --set model.mlp_hidden=16,12
    --set model.head_hidden=8 --set train.batch_size=16 --set train.epochs=100
    --set train.max_steps=18 --set train.eval_every=5 --set checkpoint.every_steps=6
    --set checkpoint.every_seconds=0 --set checkpoint.keep=0 --set train.seed=3)
mrn=(--set mrn.update_every=4 --set mrn.prox_every=3 --set mrn.lambda=20)

# name data args...
cases=(
    "stl-multi|$MULTI|--set model.kind=stl --set model.dropout=0.2"
    "hps-multi|$MULTI|--set model.kind=hps --set model.dropout=0.2"
    "mrn-multi|$MULTI|--set model.kind=mrn ${mrn[*]}"
    "mrn-grad-multi|$MULTI|--set model.kind=mrn --set mrn.prior_step=gradient --set mrn.update_every=5"
    "stl-shared|$SHARED|--set model.kind=stl --set model.batchnorm=true --set train.optimizer=adamw --set train.lr=0.003"
    "hps-shared|$SHARED|--set model.kind=hps --set model.batchnorm=true --set train.optimizer=adamw --set train.lr=0.003"
    "mrn-shared|$SHARED|--set model.kind=mrn ${mrn[*]} --set train.lr=0.003"
    "mran-dot|$SHARED|--set model.kind=mran --set model.batchnorm=true --set train.optimizer=adamw --set train.lr=0.003"
    "mran-general|$SHARED|--set model.kind=mran --set mran.attention=general --set train.lr=0.003"
    "mran-concat|$SHARED|--set model.kind=mran --set mran.attention=concat --set train.lr=0.003"
    "mran-multihead|$SHARED|--set model.kind=mran --set mran.attention=multihead --set mran.modules=tt,ff --set train.lr=0.003"
    "hps-lenet|$IMAGES|--set model.kind=hps --set model.trunk=lenet --set data.tasks=4 --set model.lenet_fc=32 --set model.head_hidden=16"
    "stl-lenet-bn|$IMAGES|--set model.kind=stl --set model.trunk=lenet --set data.tasks=2 --set model.batchnorm=true --set model.lenet_fc=16"
    "xstitch-lenet|$IMAGES|--set model.kind=cross_stitch --set model.trunk=lenet --set data.tasks=2 --set model.lenet_fc=16"
    "mmoe|$SHARED|--set model.kind=mmoe --set mmoe.experts=3 --set mmoe.expert_hidden=6 --set train.optimizer=adamw --set train.lr=0.003"
)

# metrics.jsonl without timing: drop keys whose values are clocks or rates.
strip_metrics() {
    python3 - "$1" <<'EOF'
import json, sys
TIMING = {"train_samples_per_s", "train_seconds", "elapsed_s", "phases_s", "comm",
          "seconds", "update_seconds", "checkpoint_seconds", "ckpt_seconds", "provenance"}
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in TIMING and "second" not in k
                and not k.endswith("_s")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
for line in open(sys.argv[1]):
    print(json.dumps(strip(json.loads(line)), sort_keys=True))
EOF
}

# Every dataset and attribute exactly (h5diff -r), except the timing
# attribute train_seconds of a checkpoint.
same_h5() {
    local a=$1 b=$2 what=$3 out
    if [[ ! -e $a && ! -e $b ]]; then return 0; fi
    if [[ ! -e $a || ! -e $b ]]; then echo "    $what: present in one build only"; return 1; fi
    # the same objects (ALLOW_NEW: a regex of paths only the new build may add)
    local only
    only=$(diff <(h5ls -r "$a" | awk '{print $1}' | sort) <(h5ls -r "$b" | awk '{print $1}' | sort) |
        grep '^[<>]' | grep -Ev "^> ${ALLOW_NEW:-^\$}" | head -5)
    if [[ -n $only ]]; then
        echo "    $what: objects in one build only:"
        sed 's/^/      /' <<<"$only"
        return 1
    fi
    out=$(h5diff -r "$a" "$b" 2>&1)
    if ! python3 -c '
import os, re, sys
IGNORED = os.environ.get("IGNORE_ATTRS", "train_seconds command_line run_id git_revision blas").split()
head, bad = "", []
for line in sys.stdin:
    if re.match(r"(attribute|dataset|group|datatype): ", line):
        head = line.strip()
    elif re.match(r"[1-9][0-9]* differences? found", line) or "not comparable" in line.lower():
        if not any("<%s of" % a in head for a in IGNORED):
            bad.append(head + ": " + line.strip())
print("\n".join(bad[:8]))
sys.exit(1 if bad else 0)' <<<"$out" >"$SCRATCH/h5diff.txt"; then
        echo "    $what differs:"
        sed 's/^/      /' "$SCRATCH/h5diff.txt"
        return 1
    fi
    return 0
}

fails=0
total=0
want=" ${CASES:-} "
for c in "${cases[@]}"; do
    IFS='|' read -r name data args <<<"$c"
    [[ -n ${CASES:-} && $want != *" $name "* ]] && continue
    for P in $RANKS; do
        total=$((total + 1))
        ok=1
        for which in old new; do
            bin=$OLD
            [[ $which == new ]] && bin=$NEW
            dir=$SCRATCH/$name-P$P-$which
            # shellcheck disable=SC2086
            if ! mpirun_np "$P" "$bin" train --set data.path="$data" "${common[@]}" $args \
                --run-dir "$dir" >"$dir.out" 2>"$dir.err"; then
                echo "  $name P=$P: $which build failed:"
                tail -3 "$dir.err" | sed 's/^/      /'
                ok=0
            fi
        done
        a=$SCRATCH/$name-P$P-old
        b=$SCRATCH/$name-P$P-new
        if [[ $ok == 1 ]]; then
            if ! diff <(strip_metrics "$a/metrics.jsonl") <(strip_metrics "$b/metrics.jsonl") \
                >"$SCRATCH/$name-P$P.mdiff"; then
                echo "    metrics.jsonl differs:"
                head -6 "$SCRATCH/$name-P$P.mdiff" | cut -c1-200 | sed 's/^/      /'
                ok=0
            fi
            same_h5 "$a/model.h5" "$b/model.h5" model.h5 || ok=0
            same_h5 "$a/relations.h5" "$b/relations.h5" relations.h5 || ok=0
            for ck in "$a"/checkpoints/ckpt-*.h5; do
                same_h5 "$ck" "$b/checkpoints/$(basename "$ck")" "checkpoints/$(basename "$ck")" || ok=0
            done
            na=$(ls "$a/checkpoints" | grep -c '\.h5$')
            nb=$(ls "$b/checkpoints" | grep -c '\.h5$')
            [[ $na == "$nb" && $na -gt 0 ]] || { echo "    checkpoints: $na vs $nb"; ok=0; }
        fi
        if [[ $ok == 1 ]]; then
            printf 'same   %-16s P=%d\n' "$name" "$P"
        else
            printf 'DIFFER %-16s P=%d\n' "$name" "$P"
            fails=$((fails + 1))
        fi
    done
done
echo "compare_builds: $((total - fails))/$total cases bitwise identical ($OLD vs $NEW)"
[[ $fails -eq 0 ]]
