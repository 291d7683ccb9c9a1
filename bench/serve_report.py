"""bench/serve.py's summary and markdown: medians over rounds per server and payload, the
cairn/MLflow ratios, and issue 4's target (>= 2x MLflow's throughput at equal or lower
p99), judged on ``cairn serve`` with its prediction log on, as a user runs it."""

from __future__ import annotations

import statistics

TARGET_RPS_RATIO = 2.0
LABELS = {
    "cairn": "`cairn serve` (prediction log on, the default)",
    "cairn-nolog": "`cairn serve --no-log`",
    "mlflow": "`mlflow models serve`",
}


def _median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(res: dict) -> dict:
    """``{payload: {server: medians}}``, ratios against MLflow, and the target per payload."""
    rows: dict[str, dict[str, dict]] = {}
    for rnd in res["rounds"]:
        for server, entry in rnd["servers"].items():
            for payload in res["model"]["rows"]:
                if payload not in entry:
                    continue
                rows.setdefault(payload, {}).setdefault(server, {"runs": []})["runs"].append(
                    entry[payload]
                )
    table: dict = {"payloads": {}}
    for payload, by_server in rows.items():
        med: dict[str, dict] = {}
        for server, d in by_server.items():
            runs = d["runs"]
            med[server] = {
                "rounds": len(runs),
                "rps": _median([r["rps"] for r in runs]),
                "rps_min": min(r["rps"] for r in runs),
                "rps_max": max(r["rps"] for r in runs),
                "p50_ms": _median([r["latency_ms"]["p50"] for r in runs]),
                "p99_ms": _median([r["latency_ms"]["p99"] for r in runs]),
                "errors": sum(r["errors"] for r in runs),
                "requests": sum(r["requests"] for r in runs),
                "server_cpu_ms_per_request": _median(
                    [r["server_cpu_ms_per_request"] for r in runs]
                ),
                "generator_cpu_share": _median(
                    [r["generator_cpu_s"] / r["window_s"] for r in runs]
                ),
            }
        ratios = {}
        if "mlflow" in med:
            ml = med["mlflow"]
            for server in med:
                if server == "mlflow":
                    continue
                rps = med[server]["rps"] / ml["rps"] if ml["rps"] else None
                p99 = med[server]["p99_ms"] / ml["p99_ms"] if ml["p99_ms"] else None
                ratios[server] = {
                    "rps": rps,
                    "p99": p99,
                    "met": rps is not None
                    and p99 is not None
                    and rps >= TARGET_RPS_RATIO
                    and p99 <= 1.0
                    and med[server]["errors"] == 0,
                }
        table["payloads"][payload] = {"servers": med, "ratios": ratios}
    finals = [
        rnd["servers"]["cairn"]["predlog_final"]
        for rnd in res["rounds"]
        if "predlog_final" in rnd["servers"].get("cairn", {})
    ]
    table["predlog"] = None
    if finals:
        total = {
            state: sum(f["counters"].get(state, 0) for f in finals)
            for state in ("submitted", "committed", "dropped", "queued")
        }
        table["predlog"] = total | {"drain_s_max": max(f["drain_s"] for f in finals)}
    judged = [
        t["ratios"]["cairn"]["met"] for t in table["payloads"].values() if "cairn" in t["ratios"]
    ]
    lost = table["predlog"] is not None and (
        table["predlog"]["dropped"] > 0 or table["predlog"]["queued"] > 0
    )
    table["target_met"] = (all(judged) and not lost) if judged else None
    return table


def _f(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def markdown(res: dict, table: dict) -> str:
    m = res["machine"]
    o = res["options"]
    v = res["versions"]
    dirty = ", working tree differs from HEAD" if m["cairn_src_dirty"] else ""
    met = {True: "**yes**", False: "**no**", None: "not judged (no MLflow run)"}
    lines = [
        "# cairn serve vs mlflow models serve (issue 4)",
        "",
        "Made by `make bench-serve` (`python bench/serve.py`); see `bench/README.md` for how "
        "it measures. Raw numbers, every round: `bench/results/serve.json`.",
        "",
        f"**Target** (>= {TARGET_RPS_RATIO:g}x MLflow's throughput at equal or lower p99, "
        f"no errors, with the prediction log on, for every payload): {met[table['target_met']]}",
        "",
        f"- Date: {res['date']}; total run {res['total_wall_s'] / 60:.1f} min; {o['rounds']} "
        f"rounds, each server {o['warmup']:g} s warm-up + {o['duration']:g} s timed per "
        f"payload; {o['connections']} concurrent keep-alive connections (closed loop); "
        f"{o['workers']} server workers for each server",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / (1 << 30):.1f} GiB RAM; "
        f"{m['platform']}; Python {m['python']}. The load generator runs on the same cores "
        "as the server (its CPU share is in the table).",
        f"- cairn {m['cairn_version']} at commit {m['cairn_commit'][:12]} (source sha256 "
        f"{m['cairn_src_sha256']}{dirty}); MLflow {v['mlflow']}; uvicorn {v['uvicorn']}, "
        f"FastAPI {v['fastapi']}, Starlette {v['starlette']}, uvloop {v['uvloop']}, httptools "
        f"{v['httptools']}, pandas {v['pandas']}, numpy {v['numpy']}, scikit-learn "
        f"{v['scikit-learn']}, skops {v['skops']}",
        f"- Load average (1, 5, 15 min) at the start: "
        f"{', '.join(f'{x:.2f}' for x in res['loadavg_start'])}; at the end: "
        f"{', '.join(f'{x:.2f}' for x in res['loadavg_end'])}"
        + (
            f" (above the {m['cores']} cores: other work shared the machine, so absolute "
            "numbers are lower and noisier than on an idle one; both servers ran under the "
            "same conditions, alternating, and the ratios are of medians)"
            if max(res["loadavg_start"][0], res["loadavg_end"][0]) > (m["cores"] or 1)
            else ""
        ),
        f"- Model: {res['model']['estimator']} on {res['model']['data']}; payloads: MLflow "
        "`dataframe_split` JSON, "
        + ", ".join(
            f"{k} = {n} row{'s' if n > 1 else ''} ({res['model']['request_bytes'][k]} bytes)"
            for k, n in res["model"]["rows"].items()
        )
        + "; both servers' predictions were checked against the model's before each timing.",
        "",
        "| payload | server | req/s (median) | req/s (min-max) | p50 ms | p99 ms | errors | "
        "server CPU ms/req | generator CPU | req/s vs MLflow | p99 vs MLflow | target met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for payload, t in table["payloads"].items():
        for server, s in t["servers"].items():
            r = t["ratios"].get(server)
            lines.append(
                f"| {payload} | {LABELS.get(server, server)} | {_f(s['rps'], ',.0f')} | "
                f"{s['rps_min']:,.0f}-{s['rps_max']:,.0f} | {_f(s['p50_ms'], '.2f')} | "
                f"{_f(s['p99_ms'], '.2f')} | {s['errors']} | "
                f"{_f(s['server_cpu_ms_per_request'], '.2f')} | "
                f"{_f(s['generator_cpu_share'] * 100, '.0f')}% | "
                f"{_f(r and r['rps'], '.2f')}{'x' if r else ''} | "
                f"{_f(r and r['p99'], '.2f')}{'x' if r else ''} | "
                f"{('yes' if r['met'] else 'no') if r and server == 'cairn' else '-'} |"
            )
    stacks = {}
    for rnd in res["rounds"][:1]:
        for server, e in rnd["servers"].items():
            stacks[server] = e.get("stack", [])
    lines += [
        "",
        "Medians over rounds of each round's numbers; p50 / p99 are nearest-rank percentiles "
        "of every request of a timed window. Errors: non-200 answers or dropped connections. "
        "Server CPU: user + system seconds of the server's process tree (from `/proc`) over "
        "the warm-up and the window, per request. Generator CPU: the load generator's CPU "
        "seconds per second of window (100% = one core).",
        "",
        "Server processes (first round):",
        "",
    ]
    for server, procs in stacks.items():
        lines.append(f"- {LABELS.get(server, server)}:")
        lines += [f"  - `{p}`" for p in procs]
    log = table.get("predlog")
    if log:
        lines += [
            "",
            f"Prediction log of `cairn serve` (log on), all rounds: {log['submitted']:,.0f} "
            f"records submitted, {log['committed']:,.0f} committed, {log['dropped']:,.0f} "
            f"dropped, {log['queued']:,.0f} still queued; after each load stopped the log had "
            f"committed everything within {log['drain_s_max']:.1f} s (read from the server's "
            "`/metrics`). A dropped or unflushed record would fail the target.",
        ]
    for note in res.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"
