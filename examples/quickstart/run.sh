#!/usr/bin/env bash
# cairn quickstart: real photographs (the ones scikit-image ships) through a two-step
# pipeline over versioned data, then more photographs, processed incrementally.
#
#   bash examples/quickstart/run.sh [WORK_DIR]
#
# Everything lands in WORK_DIR (default: ./quickstart-out, emptied first): the embedded
# store in WORK_DIR/.cairn and the montage in WORK_DIR/montage.png.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mkdir -p "${1:-quickstart-out}" && cd "${1:-quickstart-out}" && pwd)
rm -rf "$work/.cairn"
export CAIRN_HOME="$work/.cairn"
started=$(date +%s)
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

data=$(python3 -c 'import os, skimage; print(os.path.join(os.path.dirname(skimage.__file__), "data"))')
photos=()
for f in "$data"/*.png "$data"/*.jpg; do photos+=("$f"); done
half=$(((${#photos[@]} + 1) / 2))
first=("${photos[@]:0:$half}")
rest=("${photos[@]:$half}")

step "1. a repo of ${#first[@]} photographs in one commit"
cairn create repo images -d "photographs shipped with scikit-image"
args=(); for f in "${first[@]}"; do args+=(-f "$f"); done
cairn put file images@master:/ "${args[@]}" -m "first ${#first[@]} photographs"
cairn list file images@master | head -n 6
echo "..."

step "2. two pipelines: edges (Python, one datum per photograph) and montage (bash)"
cairn create pipeline -f "$here/pipelines.yaml"
cairn list pipeline

step "3. ${#rest[@]} more photographs arrive in a second commit"
args=(); for f in "${rest[@]}"; do args+=(-f "$f"); done
cairn put file images@master:/ "${args[@]}" -m "the other ${#rest[@]} photographs"

step "4. the second edges job processed only the new photographs"
job=$(cairn list job -p edges --raw | json 'd[0]["id"]')
cairn inspect job "edges@$job"
processed=$(cairn inspect job "edges@$job" --raw | json 'd["processed"]')
skipped=$(cairn inspect job "edges@$job" --raw | json 'd["skipped"]')
echo "edges: processed $processed new photographs, skipped $skipped already done"
cairn diff file edges@master | head -n 8

step "5. where did an edge map come from?"
cairn lineage edges@master:/astronaut.png
cairn lineage "montage@$job"

step "6. the montage"
cairn get file montage@master:/montage.pgm -o "$work/montage.pgm"
python3 -c "from PIL import Image; Image.open('$work/montage.pgm').save('$work/montage.png')"
cairn get file montage@master:/montage.txt | head -n 3
echo "..."

step "summary"
cat <<SUMMARY
  repo images:      $(cairn list commit images --raw | json 'len(d)') commits, $(cairn list file images@master --raw | json 'len(d)') photographs
  pipeline edges:   $(cairn list job -p edges --raw | json 'len(d)') jobs; the last processed $processed and skipped $skipped
  pipeline montage: $(cairn list job -p montage --raw | json 'len(d)') jobs, output montage@master:/montage.pgm
  montage picture:  $work/montage.png
  store:            $CAIRN_HOME ($(du -sh "$CAIRN_HOME" | cut -f1))
  took:             $(($(date +%s) - started)) s
  try:              CAIRN_HOME=$CAIRN_HOME cairn list job
SUMMARY
