#!/usr/bin/env bash
# launch/test.sh — install dependencies, build, and run the whole CTest suite.
#
# Usage: launch/test.sh [--sanitize] [CTEST_ARGS...]   e.g. launch/test.sh -R '^unit\.'
#   --sanitize   build a second tree (build-sanitize/, TASKREL_SANITIZE=ON:
#                AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer)
#                and run the unit tests, the fuzz corpus replays and the MPI
#                tests on 1 and 2 ranks there (not the e2e tests, and not 3-4
#                ranks: those add time, not coverage the sanitizers need).
#                Leaks inside Open MPI and HDF5 are suppressed
#                (tests/sanitize/lsan.supp); anything of ours fails the test.
# Environment:
#   TASKREL_BUILD_DIR   build directory (build), as for launch/setup.sh
#   TASKREL_CMAKE_ARGS  extra cmake configure arguments, as for launch/setup.sh
#   TASKREL_TEST_JOBS   parallel ctest jobs (number of cores)
#   TASKREL_SANITIZE_BUILD_DIR  build directory of --sanitize (build-sanitize)
#
# Exits with ctest's exit code; the last lines are ctest's own summary
# ("100% tests passed, 0 tests failed out of N" or the list of failures).
# A suite with no tests at all is an error. The bench (tests/bench) is not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

sanitize=0
if [[ ${1:-} == --sanitize ]]; then
    sanitize=1
    shift
    export TASKREL_BUILD_DIR=${TASKREL_SANITIZE_BUILD_DIR:-build-sanitize}
    # -O1: the sanitizers' reports stay readable and the build is quicker
    export TASKREL_CMAKE_ARGS="-DTASKREL_SANITIZE=ON -DCMAKE_C_FLAGS_RELEASE=-O1 ${TASKREL_CMAKE_ARGS:-}"
fi

"$ROOT/launch/setup.sh"

BUILD_DIR=${TASKREL_BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"

jobs=${TASKREL_TEST_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)} # nproc obeys OMP_*

# One BLAS thread per rank: reproducible results, no oversubscribed cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# MPI tests run up to 4 ranks on however many cores the machine has.
export OMPI_MCA_rmaps_base_oversubscribe=1
# Containers often forbid the cross-memory-attach syscalls Open MPI's shared
# memory transport uses for large messages; plain copies always work.
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

selection=()
if ((sanitize)); then
    selection=(-R '^(unit|fuzz)\.|^mpi\..*\.np[12]$')
fi

echo "test: running ctest in ${BUILD_DIR#"$ROOT"/}/ with $jobs jobs"
exec ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error \
    -j"$jobs" --timeout 900 "${selection[@]}" "$@"
