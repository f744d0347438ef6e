#!/usr/bin/env bash
# launch/setup.sh — install taskrel's Debian dependencies (idempotent) and build it.
#
# Usage: launch/setup.sh [--deps-only | --no-build] [--no-deps] [-h]
#   --deps-only   install missing packages, then stop (no configure, no build)
#   --no-build    install missing packages and configure, but do not compile
#   --no-deps     skip the package check (e.g. no root and everything is there)
# Environment:
#   TASKREL_BUILD_DIR   build directory, relative to the repo root or absolute (build)
#   TASKREL_CMAKE_ARGS  extra arguments for the cmake configure step (word-split)
#
# Only packages that dpkg-query does not report as installed are installed, so
# a second run does nothing but configure and build. Works from any directory.
# The SLURM packages are here for the launcher tests (tests/e2e/slurm_*.sh start
# a throw-away one-node cluster; the Debian services stay disabled under
# policy-rc.d). python3-torch and python3-h5py are for the PyTorch cross-check (tests/reference).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PACKAGES=(
    build-essential cmake pkg-config
    libopenmpi-dev openmpi-bin
    libopenblas-dev liblapacke-dev
    libscalapack-openmpi-dev
    libhdf5-openmpi-dev hdf5-tools
    libcmocka-dev libinih-dev zlib1g-dev
    gnuplot-nox dataset-fashion-mnist
    python3 # the e2e tests read metrics.jsonl with it
    python3-h5py # unit.h5_hostile reads attributes written by h5py; tests/reference too
    python3-numpy # tests/e2e/data_import.sh writes .npz files with it
    python3-torch # the PyTorch cross-check (tests/reference)
    munge slurmctld slurmd slurm-client # the SLURM e2e tests (local test clusters)
    iproute2 util-linux # ip, tc, unshare, nsenter: the emulated multi-node cluster (tests/e2e/cluster.bash)
)

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

do_deps=1
do_configure=1
do_build=1
while (($#)); do
    case "$1" in
    --deps-only) do_configure=0 do_build=0 ;;
    --no-build) do_build=0 ;;
    --no-deps) do_deps=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "setup: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done

# Run a command as root: directly if we are root, else through sudo if present.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# apt-get with a wait on the dpkg lock and a few retries for flaky mirrors.
apt_retry() {
    local attempt
    for attempt in 1 2 3; do
        if as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 "$@"; then
            return 0
        fi
        echo "setup: apt-get $1 failed (attempt $attempt/3)" >&2
        sleep $((attempt * 5))
    done
    return 1
}

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

install_deps() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        is_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        echo "setup: all ${#PACKAGES[@]} packages already installed"
        return 0
    fi
    echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
    apt_retry update -q
    apt_retry install -y -q --no-install-recommends "${missing[@]}"
    for p in "${missing[@]}"; do
        if ! is_installed "$p"; then
            echo "setup: package $p is still not installed" >&2
            return 1
        fi
    done
}

if ((do_deps)); then
    install_deps
fi
((do_configure)) || exit 0

BUILD_DIR=${TASKREL_BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
extra_args=()
if [[ -n ${TASKREL_CMAKE_ARGS:-} ]]; then
    read -r -a extra_args <<<"$TASKREL_CMAKE_ARGS"
fi

echo "setup: configuring in ${BUILD_DIR#"$ROOT"/}/"
# Always configure (cheap when nothing changed); TASKREL_CMAKE_ARGS come last so
# they can override the build type.
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${extra_args[@]}"
((do_build)) || exit 0

jobs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) # nproc obeys OMP_*
echo "setup: building in ${BUILD_DIR#"$ROOT"/}/ with $jobs jobs"
cmake --build "$BUILD_DIR" -j"$jobs"
echo "setup: done"
