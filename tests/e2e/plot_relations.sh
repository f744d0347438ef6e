#!/usr/bin/env bash
# `taskrel plot relations` on MRN, MRAN and MMoE runs by default (a PNG each),
# titled with the run and step; a path with a quote works; a bad -o is exit 2
# with the reason and no image bytes on stdout; gnuplot's temporary files go
# to $TMPDIR; an MRN run whose covariances were never updated gets a warning.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
command -v gnuplot >/dev/null || { echo "gnuplot (gnuplot-nox) is needed"; exit 1; }
BIN=$TASKREL_BIN
cd "$SCRATCH"
"$BIN" data synthetic-tn --classification --out tn.h5 --tasks 4 --dim 32 --n-train 300 \
    --n-val 50 --n-test 50 >/dev/null 2>&1 || { echo "no data"; exit 1; }
"$BIN" data synthetic-mmoe --out mm.h5 --tasks 2 --dim 16 --n-train 256 --n-val 64 \
    --n-test 64 >/dev/null 2>&1 || { echo "no mmoe data"; exit 1; }
C=$TASKREL_SOURCE_DIR/launch/configs
common=(--set run.progress=off --set train.max_steps=40 --set checkpoint.every_seconds=0)
"$BIN" train -c "$C/synthetic-tn-mrn.ini" --set data.path=tn.h5 --set mrn.update_every=10 \
    "${common[@]}" --run-dir "it's mrn" >/dev/null 2>&1 || fail "mrn run"
"$BIN" train -c "$C/synthetic-tn-mrn.ini" --set data.path=tn.h5 --set mrn.update_every=100 \
    "${common[@]}" --run-dir short >/dev/null 2>&1 || fail "short mrn run"
"$BIN" train -c "$C/synthetic-mmoe-mran.ini" --set data.path=mm.h5 "${common[@]}" \
    --run-dir mran >/dev/null 2>&1 || fail "mran run"
"$BIN" train -c "$C/synthetic-mmoe-mran.ini" --set data.path=mm.h5 --set model.kind=mmoe \
    "${common[@]}" --run-dir mmoe >/dev/null 2>&1 || fail "mmoe run"
mkdir tmp
for run in "it's mrn" mran mmoe; do
    checks=$((checks + 1))
    out=$(TMPDIR=$SCRATCH/tmp "$BIN" plot relations "$run" -o "$run.png" 2>&1) || {
        fail "plot relations $run: $out"
        continue
    }
    if [[ $(head -c 8 "$run.png" | od -An -c | tr -d ' ') != '211PNG\r\n032\n' ]]; then
        fail "$run.png is not a PNG"
    else
        echo "ok: plot relations $run -> $(stat -c %s "$run.png") bytes"
    fi
done
checks=$((checks + 1))
[[ -z $(ls tmp) ]] || fail "temporary files left in \$TMPDIR: $(ls tmp)"
# the title names the run and step (the gnuplot script is checked through the
# label: the plot of a checkpoint names its step)
expect_exit 0 "warning: mrn.fc8.task_cov is the identity: MRN's covariances were never updated" \
    "$BIN" plot relations short -o short.png
# curves and CSV of the training and validation lines
expect_exit 0 "wrote curves.png" "$BIN" plot curves mran -o curves.png
# a run that learned no relation (HPS, equal weighting) says so and which runs do
"$BIN" train -c "$C/synthetic-tn-hps.ini" --set data.path=tn.h5 "${common[@]}" \
    --run-dir hps >/dev/null 2>&1 || fail "hps run"
expect_exit 2 "hps: no relations.h5: the run wrote no learned relations \(MRN, MRAN, MMoE" \
    "$BIN" plot relations hps -o hps.png
expect_exit 0 "^step,kind,task,lr,loss,mse" "$BIN" export csv mran
checks=$((checks + 1))
: >afile # a bad -o: its parent is a file, so no directory can be made there
out=$("$BIN" plot relations mran -o afile/dir/x.png 2>err.txt) && rc=0 || rc=$?
if [[ $rc -ne 2 || -n $out ]] || ! grep -q "cannot write.*afile/dir/x.png.*Not a directory" err.txt; then
    fail "bad -o: exit $rc, $(wc -c <<<"$out") bytes on stdout, $(cat err.txt)"
fi
finish
