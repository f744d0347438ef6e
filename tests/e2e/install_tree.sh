#!/usr/bin/env bash
# The install tree works on its own: `cmake --install` into a temporary prefix,
# then a separate CMake project (find_package(taskrel)) and a plain pkg-config
# compile both link the installed library and train with it; the installed CLI
# and launch/local.sh run from the prefix, away from the source tree.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
: "${TASKREL_BUILD_DIR:?TASKREL_BUILD_DIR must point to the build tree}"
CMAKE=${TASKREL_CMAKE:-cmake}
PREFIX=$SCRATCH/prefix
CONSUMER=$TASKREL_SOURCE_DIR/tests/install
cd "$SCRATCH" # nothing below may depend on the source tree being the cwd

if "$CMAKE" --install "$TASKREL_BUILD_DIR" --prefix "$PREFIX" >"$SCRATCH/install.log" 2>&1; then
    pass "cmake --install into $PREFIX"
else
    check_fail "cmake --install"; tail -5 "$SCRATCH/install.log" >&2; finish; exit 1
fi
libdir=$(dirname "$(find "$PREFIX" -name taskrel.pc | head -1)")/..
for f in bin/taskrel include/taskrel/core.h include/taskrel/version.h \
    share/taskrel/launch/local.sh share/taskrel/launch/slurm/train.sbatch \
    share/taskrel/configs/synthetic-tn-hps.ini; do
    if [[ -e $PREFIX/$f ]]; then pass "installed $f"; else check_fail "not installed: $f"; fi
done
if compgen -G "$libdir/libtaskrel.*" >/dev/null; then pass "installed libtaskrel"; else check_fail "no libtaskrel in $libdir"; fi
if [[ -f $libdir/cmake/taskrel/taskrelConfig.cmake ]]; then pass "installed the CMake package"; else check_fail "no taskrelConfig.cmake"; fi
CFG=$PREFIX/share/taskrel/configs/synthetic-tn-hps.ini

# 1. find_package(taskrel) from another project
mkdir -p "$SCRATCH/w1" "$SCRATCH/w2"
if "$CMAKE" -S "$CONSUMER" -B "$SCRATCH/cm" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release \
    >"$SCRATCH/cm.log" 2>&1 && "$CMAKE" --build "$SCRATCH/cm" >>"$SCRATCH/cm.log" 2>&1; then
    pass "find_package(taskrel) project configures and builds"
    expect_exit 0 "taskrel [0-9.]+: 3 tasks, [1-9][0-9]* steps, test mean mse [0-9]" \
        "$SCRATCH/cm/consumer" "$CFG" "$SCRATCH/w1"
else
    check_fail "find_package(taskrel) project"; tail -20 "$SCRATCH/cm.log" >&2
fi

# 2. pkg-config (relocatable: the prefix comes from the .pc file's place)
export PKG_CONFIG_PATH=$libdir/pkgconfig
incdir=$(pkg-config --variable=includedir taskrel || true)
if flags=$(pkg-config --cflags --libs taskrel) && [[ -f $incdir/taskrel/core.h ]] &&
    [[ $(cd "$incdir/.." && pwd) == "$(cd "$PREFIX" && pwd)" ]]; then
    pass "pkg-config: includedir $incdir is the prefix's"
else
    check_fail "pkg-config taskrel: includedir '$incdir', flags '${flags:-}'"
fi
# shellcheck disable=SC2086
if cc -std=c11 -o "$SCRATCH/pc-consumer" "$CONSUMER/consumer.c" $flags 2>"$SCRATCH/pc.log"; then
    pass "pkg-config compile and link"
    expect_exit 0 "taskrel [0-9.]+: 3 tasks, [1-9][0-9]* steps, test mean mse [0-9]" \
        "$SCRATCH/pc-consumer" "$CFG" "$SCRATCH/w2"
else
    check_fail "pkg-config compile"; tail -20 "$SCRATCH/pc.log" >&2
fi

# 3. the installed CLI and launch script, with the source tree out of reach
expect_exit 0 "^taskrel [0-9]+\.[0-9]+\.[0-9]+" "$PREFIX/bin/taskrel" --version
"$PREFIX/bin/taskrel" data synthetic-tn --out "$SCRATCH/tn.h5" --tasks 2 --n-train 64 \
    --n-val 16 --n-test 16 >/dev/null 2>&1 || check_fail "installed taskrel data"
expect_exit 0 "test" env -u TASKREL_BUILD_DIR PATH="/usr/bin:/bin" \
    "$PREFIX/share/taskrel/launch/local.sh" -np 2 taskrel train -c "$CFG" \
    --set data.path="$SCRATCH/tn.h5" --set train.epochs=1 --run-dir "$SCRATCH/run-local"
finish
