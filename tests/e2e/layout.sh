#!/usr/bin/env bash
# e2e.layout — the source tree keeps its shape (docs/guide.md, "Where the code lives"):
#   1. folders form layers, and no file includes from a folder above its own:
#        core < nn < comm < linalg < config < io < data < models < train < cli
#      (a public header include/taskrel/X.h belongs to the folder that implements it);
#   2. <hdf5.h> is included only under src/io;
#   3. src/train never names a method (methods are rows of the table in src/models);
#   4. no source cites a document that is not in the repository.
# Static checks over the source text: no build needed, a second or less.
set -euo pipefail
ROOT=${TASKREL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$ROOT"

LAYERS=(core nn comm linalg config io data models train cli)
declare -A RANK
for i in "${!LAYERS[@]}"; do RANK[${LAYERS[$i]}]=$i; done

# Public header -> the folder that implements it.
declare -A HEADER=(
    [core]=core [params]=core [json]=core
    [nn]=nn [optim]=nn [attention]=nn
    [comm]=comm [timeline]=comm
    [mrn_math]=linalg [scalapack]=linalg
    [config]=config
    [dataset]=io [checkpoint]=io [weights]=io [relations]=io [h5summary]=io
    [data]=data [import]=data
    [model]=models [method]=models [mrn]=models
    [train]=train
    [version]=core
)

fail=0
problem() {
    echo "layout: $*" >&2
    fail=1
}

# Every public header is placed in a layer.
for h in include/taskrel/*.h; do
    b=$(basename "$h" .h)
    [[ -n ${HEADER[$b]:-} ]] || problem "$h: not assigned to a folder (add it to HEADER in tests/e2e/layout.sh)"
done
# Every source folder is a layer.
for d in src/*/; do
    d=${d%/}
    d=${d#src/}
    [[ -n ${RANK[$d]:-} ]] || problem "src/$d: a folder outside the layers (${LAYERS[*]})"
done

# 1. include direction
checked=0
while IFS= read -r f; do
    own=${f#src/}
    own=${own%%/*}
    [[ -n ${RANK[$own]:-} ]] || continue
    while IFS= read -r inc; do
        case $inc in
        taskrel/*.h)
            b=${inc#taskrel/}
            b=${b%.h}
            dep=${HEADER[$b]:-}
            ;;
        */*) dep=${inc%%/*} ;;
        *) continue ;; # same-folder private header
        esac
        [[ -n $dep && -n ${RANK[$dep]:-} ]] || continue
        checked=$((checked + 1))
        if ((RANK[$dep] > RANK[$own])); then
            problem "$f includes \"$inc\" ($dep is above $own)"
        fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done < <(find src -name '*.[ch]' | sort)
# Public headers follow the same rule among themselves.
for h in include/taskrel/*.h; do
    own=${HEADER[$(basename "$h" .h)]:-}
    [[ -n $own ]] || continue
    while IFS= read -r inc; do
        b=${inc#taskrel/}
        b=${b%.h}
        dep=${HEADER[$b]:-}
        [[ -n $dep ]] || continue
        checked=$((checked + 1))
        ((RANK[$dep] <= RANK[$own])) || problem "$h includes \"$inc\" ($dep is above $own)"
    done < <(sed -n 's/^#include "\(taskrel\/[^"]*\)".*/\1/p' "$h")
done
((checked > 50)) || problem "only $checked includes checked: is the tree there?"

# 2. HDF5 stays in src/io
while IFS= read -r f; do
    problem "$f includes <hdf5.h> (only src/io may)"
done < <(grep -rl '^#include <hdf5.h>' src include | grep -v '^src/io/' || true)

# 3. the trainer never names a method
if grep -nE 'TR_MODEL_(STL|HPS|MRN|MRAN|MMOE)|has_mrn|->rel\b|trunk_per_task|tr_(mrn|mran|mmoe|rel)_[a-z]' src/train/*.[ch]; then
    problem "src/train names a method (above); go through the method table (taskrel/method.h)"
fi

# 4. no citations of documents outside the repository
if grep -rnE 'ALGORITHMS\.md|DESIGN\.md|PITFALLS\.md|STYLE\.md' src include tests --include='*.[ch]'; then
    problem "a source cites a document that is not in the repository"
fi

if ((fail)); then
    exit 1
fi
echo "layout: $checked includes follow ${LAYERS[*]}; hdf5.h only in src/io; src/train names no method"
