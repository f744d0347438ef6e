#!/usr/bin/env bash
# launch/experiment.sh — run a grid of methods x overrides x seeds, resumably, and
# report it: results.csv, report.md and report.png in the experiment directory.
#
# Usage: launch/experiment.sh --out DIR --method 'NAME=CONFIG [KEY=VALUE ...]' ... [options]
#   --out DIR           experiment directory: runs/<label>/seed-<s>/ (one run directory
#                       each), plan.tsv, results.csv, report.md, report.png
#   --method SPEC       a method: NAME=CONFIG then overrides KEY=VALUE. A value
#                       V1|V2|... expands into one method per value (the cross product
#                       over such keys), labelled NAME/key=V1,... Repeatable.
#   --seeds LIST        train.seed values, e.g. 1,2,3 or 1-5 (default 1,2,3)
#   --set KEY=VALUE     an override for every run (data.path, train.epochs, ...)
#   --stl NAME          the single-task baseline for delta_p (default: the method stl)
#   --hps NAME          paired differences are taken against it (default: the method hps)
#   --truth DATA.h5     score learned relations against the data's true task covariance
#   --ranks N           ranks per run (default 1)
#   --jobs N            runs at a time on this machine (default: cores / ranks)
#   --slurm             submit the unfinished runs as one SLURM job array and a
#                       collect job that waits for it, instead of running them here
#   --sbatch-args ARGS  extra sbatch arguments, e.g. "-p batch -t 1:00:00"
#   --collect-only      only collect the finished runs into the report
#   --dry-run           print the plan and which runs would be started
#   --taskrel PATH      the taskrel binary (default: build/taskrel of this checkout)
#   -h, --help          this text
#
# Finished runs (metrics.jsonl has its final line) are never run again; an
# unfinished one continues from its newest checkpoint (--resume auto). Each run
# uses one BLAS thread per rank. Nothing is chosen on test numbers: the report
# marks the best label by mean validation metric. docs/results.md shows examples.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}
die() {
    echo "experiment: $*" >&2
    exit 2
}

# this invocation, quoted for a shell (command.sh, and the report)
invocation=""
for arg in "$0" "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then
        invocation+="$arg "
    else
        invocation+="'${arg//\'/\'\\\'\'}' "
    fi
done
out="" seeds="1,2,3" stl="" hps="" truth="" ranks=1 jobs="" slurm=0 sbatch_args=""
collect_only=0 dry=0 taskrel="$ROOT/build/taskrel"
methods=() sets=()
while (($#)); do
    case "$1" in
    --out) out=${2:?--out needs a directory}; shift ;;
    --method) methods+=("${2:?--method needs NAME=CONFIG}"); shift ;;
    --seeds) seeds=${2:?--seeds needs a list}; shift ;;
    --set) sets+=("${2:?--set needs KEY=VALUE}"); shift ;;
    --stl) stl=${2:?}; shift ;;
    --hps) hps=${2:?}; shift ;;
    --truth) truth=${2:?}; shift ;;
    --ranks) ranks=${2:?}; shift ;;
    --jobs) jobs=${2:?}; shift ;;
    --slurm) slurm=1 ;;
    --sbatch-args) sbatch_args=${2:?}; shift ;;
    --collect-only) collect_only=1 ;;
    --dry-run) dry=1 ;;
    --taskrel) taskrel=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done
[[ -n $out ]] || die "--out DIR is required"
mkdir -p "$out"
out=$(cd "$out" && pwd)
[[ $taskrel == /* ]] || taskrel="$PWD/$taskrel"
[[ -z $truth || $truth == /* ]] || truth="$PWD/$truth"
[[ $ranks =~ ^[1-9][0-9]*$ ]] || die "--ranks must be a positive integer"
if [[ -z $jobs ]]; then
    cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    jobs=$((cores / ranks))
    ((jobs >= 1)) || jobs=1
fi

collect() {
    local args=(--out "$out" --taskrel "$taskrel")
    [[ -n $stl ]] && args+=(--stl "$stl")
    [[ -n $hps ]] && args+=(--hps "$hps")
    [[ -n $truth ]] && args+=(--truth "$truth")
    python3 "$ROOT/launch/experiment_collect.py" "${args[@]}"
}

if ((collect_only)); then
    # the settings of the run that made the plan, unless given again
    if [[ -f $out/settings.env ]]; then
        # shellcheck disable=SC1091
        source "$out/settings.env"
        stl=${stl:-$saved_stl} hps=${hps:-$saved_hps} truth=${truth:-$saved_truth}
        [[ -x $taskrel ]] || taskrel=$saved_taskrel
    fi
    collect
    exit $?
fi
((${#methods[@]})) || die "no --method given"
[[ -x $taskrel ]] || die "taskrel binary not found: $taskrel (build it: launch/setup.sh)"

# seeds: 1,2,3 or 1-5 or a mix
seed_list=()
IFS=, read -r -a parts <<<"$seeds"
for p in "${parts[@]}"; do
    if [[ $p =~ ^([0-9]+)-([0-9]+)$ ]]; then
        for ((s = BASH_REMATCH[1]; s <= BASH_REMATCH[2]; s++)); do seed_list+=("$s"); done
    elif [[ $p =~ ^[0-9]+$ ]]; then
        seed_list+=("$p")
    else
        die "--seeds: '$p' is not a number or a range"
    fi
done

# Expand the method specs into labels: NAME=CONFIG k=v k=a|b -> one label per combination.
labels=() label_cfg=() label_sets=()
expand() { # name config fixed-overrides(string, \x1f-separated) remaining-args...
    local name=$1 cfg=$2 fixed=$3 suffix=$4
    shift 4
    if (($# == 0)); then
        labels+=("$name${suffix:+/$suffix}")
        label_cfg+=("$cfg")
        label_sets+=("$fixed")
        return
    fi
    local kv=$1
    shift
    [[ $kv == *=* ]] || die "--method $name: '$kv' is not KEY=VALUE"
    local key=${kv%%=*} val=${kv#*=}
    if [[ $val == *"|"* ]]; then
        local v
        IFS='|' read -r -a alts <<<"$val"
        for v in "${alts[@]}"; do
            expand "$name" "$cfg" "$fixed${fixed:+$'\x1f'}$key=$v" \
                "$suffix${suffix:+,}${key##*.}=$v" "$@"
        done
    else
        expand "$name" "$cfg" "$fixed${fixed:+$'\x1f'}$key=$val" "$suffix" "$@"
    fi
}
for spec in "${methods[@]}"; do
    read -r -a words <<<"$spec"
    head=${words[0]}
    [[ $head == *=* ]] || die "--method '$spec': expected NAME=CONFIG first"
    name=${head%%=*} cfg=${head#*=}
    [[ $name =~ ^[A-Za-z0-9_.+-]+$ ]] || die "--method '$spec': NAME may use letters, digits, _ . + -"
    [[ -f $cfg ]] || die "--method $name: config $cfg not found"
    cfg=$(cd "$(dirname "$cfg")" && pwd)/$(basename "$cfg")
    expand "$name" "$cfg" "" "" "${words[@]:1}"
done

declare -A seen=()
for l in "${labels[@]}"; do
    [[ -z ${seen[$l]:-} ]] || die "two methods have the label '$l': give them different names"
    seen[$l]=1
done

# The plan (one line per run) and a script per run.
plan="$out/plan.tsv"
printf 'label\tseed\trun_dir\tconfig\toverrides\n' >"$plan"
pending=()
for i in "${!labels[@]}"; do
    label=${labels[$i]}
    for s in "${seed_list[@]}"; do
        rdir="$out/runs/$label/seed-$s"
        ov=()
        for kv in "${sets[@]}"; do ov+=("$kv"); done
        if [[ -n ${label_sets[$i]} ]]; then
            IFS=$'\x1f' read -r -a extra <<<"${label_sets[$i]}"
            ov+=("${extra[@]}")
        fi
        ov+=("train.seed=$s")
        printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$s" "runs/$label/seed-$s" "${label_cfg[$i]}" \
            "${ov[*]}" >>"$plan"
        if [[ -f $rdir/metrics.jsonl ]] && grep -q '"final":true' "$rdir/metrics.jsonl"; then
            continue
        fi
        mkdir -p "$rdir"
        {
            echo "#!/usr/bin/env bash"
            echo "# $label, seed $s (written by launch/experiment.sh)"
            echo "export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1"
            printf 'cmd=(%q train -c %q' "$taskrel" "${label_cfg[$i]}"
            for kv in "${ov[@]}"; do printf ' --set %q' "$kv"; done
            printf ' --run-dir %q --resume auto)\n' "$rdir"
            echo "if [[ -n \${SLURM_JOB_ID:-} ]] && (( $ranks > 1 )); then"
            echo "    srun --mpi=pmix -n $ranks \"\${cmd[@]}\""
            echo "elif (( $ranks > 1 )); then"
            printf '    %q -np %s "${cmd[@]}"\n' "$ROOT/launch/local.sh" "$ranks"
            echo "else"
            echo "    \"\${cmd[@]}\""
            echo "fi"
        } >"$rdir/run.sh"
        pending+=("$rdir")
    done
done
total=$(($(wc -l <"$plan") - 1))
echo "experiment: ${#labels[@]} label(s) x ${#seed_list[@]} seed(s) = $total run(s);" \
    "${#pending[@]} to run, $((total - ${#pending[@]})) finished already"
{
    printf 'saved_stl=%q\nsaved_hps=%q\nsaved_truth=%q\nsaved_taskrel=%q\n' \
        "$stl" "$hps" "$truth" "$taskrel"
} >"$out/settings.env"
echo "${invocation% }" >"$out/command.sh"
if ((dry)); then
    column -t -s $'\t' "$plan" 2>/dev/null || cat "$plan"
    for r in "${pending[@]}"; do echo "would run: ${r#"$out"/}"; done
    exit 0
fi

if ((slurm)); then
    ((${#pending[@]})) || { collect; exit $?; }
    command -v sbatch >/dev/null || die "--slurm: sbatch not found"
    mkdir -p "$out/slurm"
    printf '%s/run.sh\n' "${pending[@]}" >"$out/slurm/runs.txt"
    cat >"$out/slurm/array.sbatch" <<EOF
#!/usr/bin/env bash
#SBATCH --job-name=taskrel-exp
#SBATCH --array=0-$((${#pending[@]} - 1))
#SBATCH --ntasks=$ranks
#SBATCH --cpus-per-task=1
#SBATCH --output=$out/slurm/%A_%a.out
mapfile -t runs < "$out/slurm/runs.txt"
run=\${runs[\$SLURM_ARRAY_TASK_ID]}
bash "\$run" > "\$(dirname "\$run")/train.log" 2>&1
EOF
    read -r -a extra_sb <<<"$sbatch_args"
    jid=$(sbatch --parsable "${extra_sb[@]}" "$out/slurm/array.sbatch")
    jid=${jid%%;*}
    cjid=$(sbatch --parsable "${extra_sb[@]}" --dependency="afterany:$jid" --ntasks=1 \
        --job-name=taskrel-exp-collect --output="$out/slurm/collect.out" \
        --wrap "$(printf '%q ' "$ROOT/launch/experiment.sh" --out "$out" --collect-only)")
    echo "experiment: submitted job array $jid (${#pending[@]} runs) and collect job ${cjid%%;*};" \
        "the report appears in $out/report.md when they finish"
    exit 0
fi

if ((${#pending[@]})); then
    echo "experiment: running ${#pending[@]} run(s), $jobs at a time ($ranks rank(s) each)"
    t0=$(date +%s)
    printf '%s\n' "${pending[@]}" |
        xargs -P "$jobs" -I{} bash -c 'bash "$1/run.sh" > "$1/train.log" 2>&1 ||
            echo "experiment: run failed (exit $?): $1 (see $1/train.log)" >&2' _ {}
    echo "experiment: runs done in $(($(date +%s) - t0)) s"
fi
collect
