# Helpers for the e2e tests (sourced). Expects TASKREL_BIN and
# TASKREL_SOURCE_DIR (set by CTest); makes a scratch directory removed on exit.
set -euo pipefail
: "${TASKREL_BIN:?TASKREL_BIN must point to the taskrel executable}"
: "${TASKREL_SOURCE_DIR:?TASKREL_SOURCE_DIR must point to the source tree}"
SCRATCH=$(mktemp -d /tmp/taskrel-e2e.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
export OPENBLAS_NUM_THREADS=1
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# pass MSG / check_fail MSG: the outcome of a check made by hand.
pass() {
    checks=$((checks + 1))
    echo "ok: $*"
}

check_fail() {
    checks=$((checks + 1))
    fail "$@"
}

# mpirun_np NP CMD...: mpirun with the options every test needs; killed after
# MPIRUN_TIMEOUT seconds (300).
mpirun_np() {
    local np=$1
    shift
    local extra=()
    [[ $(id -u) -eq 0 ]] && extra+=(--allow-run-as-root)
    timeout "${MPIRUN_TIMEOUT:-300}" mpirun -np "$np" --oversubscribe --bind-to none "${extra[@]}" \
        --mca btl_vader_single_copy_mechanism none -x OPENBLAS_NUM_THREADS=1 "$@"
}

# expect_exit CODE PATTERN CMD...: run CMD, check its exit code and that its
# stderr+stdout contain PATTERN (grep -E).
expect_exit() {
    local want=$1 pattern=$2
    shift 2
    checks=$((checks + 1))
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if [[ $rc -ne $want ]]; then
        fail "exit $rc (want $want): $*"
        echo "$out" | tail -5 >&2
        return 0
    fi
    if ! grep -Eq -- "$pattern" <<<"$out"; then
        fail "output lacks /$pattern/: $*"
        echo "$out" | tail -5 >&2
    fi
}

# need_numpy_python: PY = a python3 with NumPy, or fail the test.
need_numpy_python() {
    PY=
    local p
    for p in /usr/bin/python3 python3; do
        if "$p" -c 'import numpy' 2>/dev/null; then PY=$p; return 0; fi
    done
    echo "FAIL: no python3 with numpy (launch/setup.sh installs python3-numpy)"
    exit 1
}

# h5data FILE PATH: the values of one HDF5 dataset, one per line
h5data() {
    h5dump -m %.9g -d "$2" -y -w 0 "$1" | sed -n '/DATA {/,/}/p' | tr -s ' ,' '\n' | grep -E '^-?[0-9]'
}

finish() {
    echo "$((checks - failures)) passed, $failures failed"
    [[ $failures -eq 0 ]]
}
