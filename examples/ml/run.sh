#!/usr/bin/env bash
# cairn ML quickstart: the breast-cancer table that ships with scikit-learn goes through
# data -> training pipeline (a run with params and metrics) -> model registry -> serving
# (MLflow's /invocations and Open Inference Protocol V2) -> a 10% canary of a second
# version -> rollback -> the lineage of the champion.
#
#   bash examples/ml/run.sh [WORK_DIR]
#
# Everything lands in WORK_DIR (default: ./quickstart-ml-out, emptied first): the store in
# WORK_DIR/.cairn, the metric plot in WORK_DIR/val_accuracy.png, the server's log in
# WORK_DIR/serve.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mkdir -p "${1:-quickstart-ml-out}" && cd "${1:-quickstart-ml-out}" && pwd)
rm -rf "$work/.cairn"
export CAIRN_HOME="$work/.cairn"
started=$(date +%s)
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
query() { python3 "$here/query.py" "$url" "$@"; }

# The Wisconsin breast-cancer table (569 rows, 30 features, shipped inside scikit-learn),
# shuffled once: 60% arrive first, the rest later; 50 rows serve as requests.
python3 - "$work" <<'PY'
import sys
from sklearn.datasets import load_breast_cancer
work = sys.argv[1]
frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
cut = int(len(frame) * 0.6)
frame.iloc[:cut].to_csv(f"{work}/part-1.csv", index=False)
frame.iloc[cut:].to_csv(f"{work}/part-2.csv", index=False)
frame.iloc[:50].to_csv(f"{work}/requests.csv", index=False)
PY

step "1. repo training: the first 60% of the breast-cancer table"
cairn create repo training -d "Wisconsin breast-cancer table (scikit-learn), in batches"
cairn put file training@master:/part-1.csv -f "$work/part-1.csv" -m "first batch"

step "2. pipeline train: fits a model and records a run"
cairn create pipeline -f "$here/pipelines.yaml"
cairn list run
run1=$(cairn list run --raw | json 'd[0]["id"]')
cairn inspect run "$run1"

step "3. the model registry: version 1 becomes champion"
cairn register model cancer train@master:/model.skops -d "logistic regression, first batch"
cairn set alias cancer champion 1
cairn inspect model cancer@champion

step "4. serve cancer@champion; query it with both protocols"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
cairn serve cancer@champion --port "$port" --admin >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "$url/ping" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.5
done
echo "serving at $url"
query mlflow "$work/requests.csv"
query v2 "$work/requests.csv" cancer

step "5. the rest of the table arrives: the pipeline retrains; version 2 is the challenger"
cairn put file training@master:/part-2.csv -f "$work/part-2.csv" -m "second batch"
run2=$(cairn list run --raw | json 'd[0]["id"]')
cairn compare run "$run1" "$run2"
cairn plot metric val_accuracy "$run1" "$run2" -o "$work/val_accuracy.png"
cairn register model cancer train@master:/model.skops -d "logistic regression, both batches"
cairn set alias cancer challenger 2

step "6. a 10% canary of the challenger, without restarting the server"
cairn set traffic cancer --canary challenger=10
sleep 2
query traffic "$work/requests.csv" 300

step "7. roll the canary back: every request goes to the champion again"
cairn rollback deployment cancer
sleep 2
query traffic "$work/requests.csv" 100
cairn inspect deployment cancer

step "8. where did the champion come from?"
cairn lineage model cancer@champion

step "9. every prediction is data: the prediction log, committed to repo predictions"
query flush
cairn list commit predictions | head -n 4
logged=$(cairn glob file "predictions@master:/cancer/**" --raw | json 'len(d)')

step "summary"
cat <<SUMMARY
  runs:        $(cairn list run --raw | json 'len(d)') (train jobs $(cairn list job -p train --raw | json 'len(d)'))
  model:       cancer, versions $(cairn list model --raw | json '[m["latest"] for m in d if m["name"]=="cancer"][0]'), champion 1, challenger 2
  predictions: $logged log files in predictions@master
  plot:        $work/val_accuracy.png
  took:        $(($(date +%s) - started)) s
  try:         CAIRN_HOME=$CAIRN_HOME cairn lineage model cancer@champion --raw
SUMMARY
