#!/usr/bin/env bash
# cairn sweep: a hyperparameter sweep as a pipeline with a `cross` over a params repo,
# on scikit-learn's bundled handwritten digits; every combination records a run, and
# `cairn compare run` picks the best.
#
#   bash examples/sweep/run.sh [WORK_DIR]
#
# Everything lands in WORK_DIR (default: ./sweep-out, emptied first): the embedded store
# in WORK_DIR/.cairn and the learning curves in WORK_DIR/val_accuracy.png.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mkdir -p "${1:-sweep-out}" && cd "${1:-sweep-out}" && pwd)
rm -rf "$work/.cairn"
export CAIRN_HOME="$work/.cairn"
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

step "1. the data: scikit-learn's digits as one CSV in repo digits"
python3 "$here/make_data.py" "$work/digits.csv"
cairn create repo digits -d "scikit-learn's 8x8 handwritten digits"
cairn put file digits@master:/digits.csv -f "$work/digits.csv"

step "2. the grid: one JSON file per combination in repo params"
cairn create repo params -d "one hyperparameter combination per file"
args=(); for f in "$here"/params/*.json; do args+=(-f "$f"); done
cairn put file params@master:/ "${args[@]}" -m "a 2 x 2 grid of alpha and eta0"
cairn list file params@master

step "3. the sweep: a cross of params (/*) and digits (/), one datum and one run per file"
cairn create pipeline -f "$here/pipeline.yaml"
cairn list run -p sweep

step "4. compare the runs; the best by held-out accuracy"
cairn compare run -p sweep --best test_accuracy
best=$(cairn compare run -p sweep --best test_accuracy --raw | json 'd["best"]')
cairn inspect run "$best"

step "5. the learning curves"
cairn plot metric val_accuracy -p sweep -o "$work/val_accuracy.png"

step "6. one more combination: only its datum runs"
cairn put file params@master:/alpha0.001-eta0.01.json -f - <<<'{"alpha": 0.001, "eta0": 0.01, "epochs": 12}'
job=$(cairn list job -p sweep --raw | json 'd[0]["id"]')
echo "sweep: the last job processed $(cairn inspect job "sweep@$job" --raw | json 'd["processed"]') datum(s), skipped $(cairn inspect job "sweep@$job" --raw | json 'd["skipped"]')"
echo "runs: $(cairn list run -p sweep --raw | json 'len(d)')"
best=$(cairn compare run -p sweep --best test_accuracy --raw | json 'd["best"]')
name=$(cairn inspect run "$best" --raw | json 'd["name"]')
echo "best run of all: $name ($best); its model: sweep@master:/$name/model.skops"
