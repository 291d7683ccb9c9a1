#!/usr/bin/env bash
# cairn loop demo: drift monitoring that closes the loop by itself, on the Wisconsin
# breast-cancer table that ships with scikit-learn. Version 1 is trained on one clinic's
# patients and served; a monitoring rule watches its traffic from `cairn run`. Traffic like
# the training data: no drift, the loop stays idle. Traffic from a referral centre (80%
# malignant): drift; the window goes into the training repo, the pipeline retrains,
# version 2 is canaried and promoted, and its lineage reaches that window. Then screening
# traffic whose labels arrive inverted (a labelling bug): version 3, replayed on the logged
# traffic before its canary, disagrees with production and is rolled back without taking a
# live request. Last, the audit: one request explained back to its training data, v1 and v2
# diffed, the clinic's traffic replayed against v3.
#
#   bash examples/loop/run.sh [WORK_DIR]
#
# Everything lands in WORK_DIR (default: ./quickstart-loop-out, emptied first): the store
# in WORK_DIR/.cairn, the data slices as CSV, the logs of `cairn serve` and `cairn run`
# (serve.log, run.log) and the drift report drift.html.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mkdir -p "${1:-quickstart-loop-out}" && cd "${1:-quickstart-loop-out}" && pwd)
rm -rf "$work/.cairn"
export CAIRN_HOME="$work/.cairn"
started=$(date +%s)
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s  (%d s)\n' "$bold" "$*" "$plain" $(($(date +%s) - started)); }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
send() { python3 "$here/send.py" "$url" "$@"; }

# poll_monitor SECONDS CONDITION: poll `cairn inspect monitor --raw` until CONDITION (Python
# over s, the loop's state, and last, its last finished cycle) holds; status 1 after SECONDS.
# A `monitor.failed` event or a dead background process ends the demo.
poll_monitor() {
  local deadline=$(($(date +%s) + $1))
  while :; do
    cairn inspect monitor cancer-drift --raw >"$work/monitor.json"
    local status=0
    python3 - "$work/monitor.json" "$2" <<'PY' || status=$?
import json, sys
d = json.load(open(sys.argv[1]))
s, failed = d["state"], [e for e in d["events"] if e["kind"] == "monitor.failed"]
last = s["info"].get("last_cycle") or {}
if failed:
    print(f"the loop failed: {failed[-1]['info']}")
    sys.exit(1)
sys.exit(0 if eval(sys.argv[2]) else 2)
PY
    [ $status -eq 0 ] && return 0
    [ $status -eq 2 ] || exit 1
    for pid in $server $runner; do
      kill -0 "$pid" 2>/dev/null || { tail -n 40 "$work/serve.log" "$work/run.log"; exit 1; }
    done
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}
# wait_monitor SECONDS WHAT CONDITION: poll_monitor, or end the demo saying what it waited for.
wait_monitor() {
  poll_monitor "$1" "$3" && return 0
  echo "timed out after $1 s waiting for $2"
  tail -n 40 "$work/run.log"
  exit 1
}
# canary ROWS.csv NAME [--flip-labels]: rounds of 40 requests until the canary is decided.
canary() {
  local round
  for round in $(seq 1 20); do
    send "$1" "$2-$round" --count 40 "${@:3}"
    poll_monitor 5 "s['step'] != 'canary'" && return 0
  done
  echo "the canary was not decided after 20 rounds"
  exit 1
}

# The table's 569 rows (212 malignant, 357 benign), shuffled once per class (seed 0) and
# cut into disjoint slices: a clinic's patients with the table's own class mix (training
# data of version 1, a holdout, and live traffic like them), a referral centre's (80%
# malignant) and a screening programme's (benign only).
python3 - "$work" <<'PY'
import sys
import pandas as pd
from sklearn.datasets import load_breast_cancer
work = sys.argv[1]
frame = load_breast_cancer(as_frame=True).frame
malignant = frame[frame.target == 0].sample(frac=1.0, random_state=0)
benign = frame[frame.target == 1].sample(frac=1.0, random_state=0)
slices = [("holdout", 30, 50), ("clinic", 60, 100), ("clinic-traffic", 19, 31),
          ("referral", 40, 10), ("referral-canary", 32, 8),
          ("screening", 0, 50), ("screening-canary", 0, 40)]
m = b = 0
for name, n_malignant, n_benign in slices:
    part = pd.concat([malignant.iloc[m:m + n_malignant], benign.iloc[b:b + n_benign]])
    part.sample(frac=1.0, random_state=1).to_csv(f"{work}/{name}.csv", index=False)
    m, b = m + n_malignant, b + n_benign
PY

step "1. data: a clinic's 160 patients train version 1; 80 more are a trusted holdout"
cairn create repo training -d "breast-cancer rows the classifier trains on"
cairn put file training@master:/clinic.csv -f "$work/clinic.csv" -m "the clinic's patients"
cairn create repo holdout -d "labelled rows no model trains on"
cairn put file holdout@master:/holdout.csv -f "$work/holdout.csv" -m "holdout"
cairn create repo labels -d "request_id,label: the truth of served requests, as it arrives"

step "2. pipeline train; version 1 of model cancer becomes champion"
cairn create pipeline -f "$here/pipelines.yaml"
cairn register model cancer train@master:/model.skops -d "trained on the clinic's patients"
cairn set alias cancer champion 1

step "3. serve cancer@champion; start the loop (cairn run) with a retraining rule"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
cairn serve cancer@champion --port "$port" --admin >"$work/serve.log" 2>&1 &
server=$!
cairn run --interval 1 >"$work/run.log" 2>&1 &
runner=$!
trap 'kill $server $runner 2>/dev/null || true; wait $server $runner 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "$url/ping" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.5
done
echo "serving at $url; cairn run ticking (log: $work/run.log)"
cairn create monitor -f "$here/rule.yaml"

step "4. traffic like the training data: no drift, the loop stays idle"
line=$(send "$work/clinic-traffic.csv" clinic)
echo "$line"
clinic_done=$(python3 -c 'import time; print(time.time())')
wait_monitor 60 "a check of that traffic" \
  "s['info'].get('last_check', {}).get('log_commit') == '${line##* }' and 'rows' in s['info']['last_check']"
cairn monitor cancer@champion --last 50 --drift-share 0.3 >"$work/no-drift.txt"
head -n 3 "$work/no-drift.txt"; tail -n 1 "$work/no-drift.txt"
cairn inspect monitor cancer-drift | grep -E '^(Step|Cycle|Last check)'

step "5. a referral centre's traffic (80% malignant): drift -> retrain -> challenger -> canary"
send "$work/referral.csv" referral
cairn monitor cancer@champion --last 50 --drift-share 0.3 --html "$work/drift.html" >"$work/drift.txt"
head -n 14 "$work/drift.txt"; echo "..."; tail -n 1 "$work/drift.txt"
wait_monitor 120 "the challenger's canary" "s['step'] == 'canary'"
cairn list event --subject cancer-drift --kind monitor. | tail -n 5

step "6. the canary: 25% of the referral traffic goes to version 2 until it answered 10"
canary "$work/referral-canary.csv" referral-canary
wait_monitor 60 "the promotion" "s['step'] == 'idle' and last.get('outcome') == 'promoted'"
cairn list event --subject cancer-drift --kind monitor. | tail -n 2
cairn inspect model cancer@champion | grep -E '^(Version|Aliases|Description)'

step "7. where did the new champion come from? the production window that triggered it"
cairn lineage model cancer@champion

step "8. screening traffic (benign only) whose labels arrive inverted: a worse model, refused by replay"
send "$work/screening.csv" screening --flip-labels
wait_monitor 180 "the rollback" "s['step'] == 'idle' and last.get('outcome') == 'rolled_back'"
cairn list event --subject cancer-drift --kind monitor. | tail -n 6
cairn inspect model cancer/3 | grep -E '^(Version|Aliases|Description)'
cairn inspect deployment cancer

step "9. audit: one request back to its bytes; v1 vs v2; the clinic's traffic replayed on v3"
cairn explain prediction clinic-0001
cairn diff model cancer/1 cancer/2
cairn replay cancer --model cancer/3 --until "$clinic_done" --html "$work/replay.html"

step "summary"
events=$(cairn list event --subject cancer-drift --kind monitor. --raw)
cat <<SUMMARY
  model:    cancer, versions $(cairn list model --raw | json '[m["latest"] for m in d if m["name"]=="cancer"][0]'), champion $(cairn inspect model cancer@champion --raw | json 'd["version"]')
  cycles:   $(echo "$events" | json '"; ".join("%s: v%s %s" % (e["info"]["cycle"], e["info"]["version"], e["kind"][8:]) for e in d if e["kind"] in ("monitor.promoted", "monitor.rolled_back"))')
  runs:     $(cairn list run --raw | json 'len(d)') training runs
  report:   $work/drift.html
  took:     $(($(date +%s) - started)) s
  try:      CAIRN_HOME=$CAIRN_HOME cairn inspect monitor cancer-drift
SUMMARY
