#!/usr/bin/env bash
# A run that trains without learning warns (and still finishes): AdamW at a
# diverging learning rate warns that the loss climbs and that it has not left
# chance level after train.chance_steps; the same run at a sane rate warns of
# neither. And a run whose OpenBLAS fell back to kernels without AVX2 on a CPU
# that has AVX2 says so and names the OPENBLAS_CORETYPE to set; with the AVX2
# kernels it does not; the run's provenance records the kernel set.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
cd "$SCRATCH"
BIN=$TASKREL_BIN
"$BIN" data synthetic-tn --classification --out tn.h5 --tasks 4 --dim 16 --n-train 400 \
    --n-val 50 --n-test 50 >/dev/null 2>&1 || { echo "could not build test data"; exit 1; }
args=(-c "$TASKREL_SOURCE_DIR/launch/configs/synthetic-tn-hps.ini" --set data.path=tn.h5
    --set train.optimizer=adamw --set train.epochs=10 --set train.batch_size=32
    --set train.chance_steps=100 --set run.progress=off --set train.log_every=100000)
expect_exit 0 "warning: training loss climbs.*lower train.lr" \
    "$BIN" train "${args[@]}" --set train.lr=3 --run-dir diverging
expect_exit 0 "has not gone below chance level \(mean ln C = 1.386\) after 100 steps" \
    "$BIN" train "${args[@]}" --set train.lr=3 --run-dir diverging2
checks=$((checks + 1))
out=$("$BIN" train "${args[@]}" --set train.lr=1e-3 --run-dir sane 2>&1) || fail "sane run failed"
if grep -qE "chance level|loss climbs" <<<"$out"; then
    fail "a run that learns warned: $(grep -E 'chance|climbs' <<<"$out")"
else
    pass "a run that learns does not warn"
fi

blas_of() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["provenance"]["blas"] or "")' "$1/metrics.jsonl"; }
short=(--set train.max_steps=2 --set train.optimizer=sgd)
if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
    echo "SKIP: the OpenBLAS kernel warning (this CPU has no AVX2/FMA)"
elif ! OPENBLAS_CORETYPE=Haswell "$BIN" train "${args[@]}" "${short[@]}" --run-dir k_haswell >k_haswell.log 2>&1; then
    fail "a 2-step run failed: $(tail -2 k_haswell.log)"
elif [[ $(blas_of k_haswell) != OpenBLAS* ]]; then
    echo "SKIP: the OpenBLAS kernel warning (BLAS: '$(blas_of k_haswell)')"
else
    checks=$((checks + 1))
    if grep -q "OpenBLAS runs its" k_haswell.log; then
        fail "the AVX2 kernels warned: $(grep 'OpenBLAS runs' k_haswell.log)"
    elif [[ $(blas_of k_haswell) != *Haswell* ]]; then
        fail "provenance blas does not name the Haswell kernels: $(blas_of k_haswell)"
    else
        pass "AVX2 kernels: no warning; provenance blas '$(blas_of k_haswell)'"
    fi
    expect_exit 0 "warning: OpenBLAS runs its Prescott kernels, although this CPU has AVX2.*set OPENBLAS_CORETYPE=(Haswell|SkylakeX)" \
        env OPENBLAS_CORETYPE=Prescott "$BIN" train "${args[@]}" "${short[@]}" --run-dir k_prescott
    checks=$((checks + 1))
    [[ $(blas_of k_prescott) == *Prescott* ]] && pass "provenance blas names the Prescott kernels" ||
        fail "provenance blas: $(blas_of k_prescott)"
fi
finish
