"""Drift benchmark (issue 5): cairn's drift computation against Evidently's DataDriftPreset.

    python bench/drift.py [--rows N] [--repeat R] [--seed S] [--out DIR]
                          [--evidently-python PATH | --no-evidently] [--evidently-budget SEC]

Data: a reference and a current frame of ``--rows`` rows (default 1,000,000) and 20
features made from fixed seeds: 16 numeric (normal, log-normal, uniform, exponential and
Poisson counts, which have ties) and 4 categorical (strings, object dtype, as they come out
of a JSON prediction log). The current frame shifts five of them (a mean shift, a scale
change, a log-normal shape change, a Poisson rate change and a category mix change); the
others are fresh draws of the reference's distribution.

Each side runs in a fresh child process that makes the same data (checked by a SHA-256 of
every column) and times only the computation: ``cairn.monitoring.compute_drift`` (every
statistic of the report: KS, Wasserstein/std, PSI, chi-square, Jensen-Shannon, summaries;
not the HTML plots, timed apart once), and Evidently's ``Report([DataDriftPreset()]).run``
including ``Dataset.from_pandas``. Times are medians of ``--repeat`` runs; peak RSS is the
child's ``ru_maxrss``, with the RSS after making the data beside it.

Evidently lives in its own virtualenv (it needs pandas < 3 and cairn's environment has
pandas 3): ``--evidently-python`` names its interpreter (default: ``bench/.venv-drift``
or ``/tmp/driftvenv``, made by ``make bench-drift``). It runs first at 10,000 and 100,000
rows; the full size runs only when the time extrapolated from 100,000 rows fits in
``--evidently-budget`` seconds (default 900), otherwise the largest size it ran is
compared. cairn runs at every size Evidently ran, so each size has a ratio.

Writes ``bench/results/drift.json`` and ``bench/DRIFT_RESULTS.md`` (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
N_NUMERIC = 16
N_CATEGORICAL = 4
SHIFTED = ["n00_normal", "n01_lognormal", "n02_uniform", "n04_poisson", "c0"]
TARGET_ROWS = 1_000_000
TARGET_SECONDS = 3.0


def make_frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): the same generator for both sides of the benchmark."""
    return _frame(rows, np.random.default_rng([seed, 0]), False), _frame(
        rows, np.random.default_rng([seed, 1]), True
    )


def _frame(rows: int, rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    cols: dict[str, object] = {}
    kinds = ["normal", "lognormal", "uniform", "exponential", "poisson"]
    for i in range(N_NUMERIC):
        kind = kinds[i % len(kinds)]
        name = f"n{i:02d}_{kind}"
        shift = shifted and name in SHIFTED
        if kind == "normal":
            cols[name] = rng.normal(0.25 if shift else 0.0, 1.0, rows)
        elif kind == "lognormal":
            cols[name] = rng.lognormal(0.0, 0.75 if shift else 0.5, rows)
        elif kind == "uniform":
            # scale change around the same centre
            half = 1.5 if shift else 1.0
            cols[name] = rng.uniform(5.0 - half, 5.0 + half, rows)
        elif kind == "exponential":
            cols[name] = rng.exponential(2.0, rows)
        else:
            cols[name] = rng.poisson(22.0 if shift else 20.0, rows).astype(np.int64)
    for j in range(N_CATEGORICAL):
        k = 5 + 5 * j
        weights = np.linspace(2.0, 1.0, k)
        if shifted and f"c{j}" in SHIFTED:
            weights = weights[::-1]
        values = np.array([f"c{j}_value_{v}" for v in range(k)], dtype=object)
        cols[f"c{j}"] = values[rng.choice(k, rows, p=weights / weights.sum())]
    return pd.DataFrame(cols)


def _digest(frames: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    h = hashlib.sha256()
    for frame in frames:
        for name in frame.columns:
            col = frame[name]
            h.update(name.encode() + b"\0")
            if not pd.api.types.is_numeric_dtype(col.dtype):
                h.update("\0".join(col.tolist()).encode())
            else:
                h.update(col.to_numpy().tobytes())
    return h.hexdigest()[:16]


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def side_cairn(rows: int, repeat: int, seed: int, html: bool) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from cairn.monitoring import compute_drift

    frames = make_frames(rows, seed)
    data_rss = _rss()
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = compute_drift(*frames)
        times.append(time.perf_counter() - t0)
    assert result is not None
    out = {
        "rows": rows,
        "digest": _digest(frames),
        "seconds": times,
        "median_s": statistics.median(times),
        "data_rss_bytes": data_rss,
        "peak_rss_bytes": _rss(),
        "method": result.method,
        "drifted": result.drifted_features,
        "share_drifted": result.share_drifted,
        "cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime,
        "string_dtype": str(frames[0]["c0"].dtype),
    }
    if html:
        from cairn.monitoring.report import render_html

        t0 = time.perf_counter()
        page = render_html(result, *frames)
        out["html_s"] = time.perf_counter() - t0
        out["html_bytes"] = len(page.encode())
    return out


def side_evidently(rows: int, repeat: int, seed: int) -> dict:
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref, cur = make_frames(rows, seed)
    data_rss = _rss()
    definition = DataDefinition(
        numerical_columns=[c for c in ref.columns if c.startswith("n")],
        categorical_columns=[c for c in ref.columns if c.startswith("c")],
    )
    times, snapshot = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(cur, data_definition=definition),
            reference_data=Dataset.from_pandas(ref, data_definition=definition),
        )
        times.append(time.perf_counter() - t0)
    assert snapshot is not None
    drifted, share = [], None
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            value = metric["value"]
            method = config.get("method", "")
            p_value_test = "p_value" in method.lower() or "test" in method.lower()
            hit = value < config["threshold"] if p_value_test else value >= config["threshold"]
            if hit:
                drifted.append(config["column"])
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
    return {
        "rows": rows,
        "digest": _digest((ref, cur)),
        "seconds": times,
        "median_s": statistics.median(times),
        "data_rss_bytes": data_rss,
        "peak_rss_bytes": _rss(),
        "drifted": drifted,
        "share_drifted": share,
        "version": evidently.__version__,
        "string_dtype": str(ref["c0"].dtype),
        "pandas": pd.__version__,
    }


def _child(python: str, side: str, rows: int, repeat: int, seed: int, html: bool = False) -> dict:
    cmd = [python, __file__, "--side", side, "--rows", str(rows), "--repeat", str(repeat)]
    cmd += ["--seed", str(seed)] + (["--html"] if html else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{side} at {rows} rows failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024

    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "unknown"

    import scipy

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_bytes": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "cairn_commit": sh(["git", "rev-parse", "HEAD"]),
        "cairn_src_dirty": bool(sh(["git", "status", "--porcelain", "--", "src/cairn/monitoring"])),
    }


def _default_evidently_python() -> str | None:
    for candidate in (
        ROOT / "bench" / ".venv-drift" / "bin" / "python",
        Path("/tmp/driftvenv/bin/python"),
    ):
        if candidate.exists():
            return str(candidate)
    return None


def run(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()
    evidently_python = (
        None if args.no_evidently else (args.evidently_python or _default_evidently_python())
    )
    sizes: list[dict] = []
    ev_sizes: list[int] = []
    notes: list[str] = []
    if evidently_python:
        for rows in (10_000, 100_000):
            if rows >= args.rows:
                break
            ev = _child(evidently_python, "evidently", rows, 1, args.seed)
            sizes.append({"rows": rows, "evidently": ev})
            ev_sizes.append(rows)
            print(f"evidently {rows:>9,} rows: {ev['median_s']:8.2f} s", flush=True)
        last = sizes[-1]["evidently"] if sizes else None
        estimate = last["median_s"] * args.rows / last["rows"] if last else 0.0
        if estimate <= args.evidently_budget:
            reps = args.repeat if estimate * args.repeat <= args.evidently_budget else 1
            ev = _child(evidently_python, "evidently", args.rows, reps, args.seed)
            sizes.append({"rows": args.rows, "evidently": ev})
            print(f"evidently {args.rows:>9,} rows: {ev['median_s']:8.2f} s", flush=True)
        else:
            notes.append(
                f"Evidently was not run at {args.rows:,} rows: {estimate:.0f} s extrapolated "
                f"from {last['rows']:,} rows exceeds the {args.evidently_budget:.0f} s budget"
            )
            sizes.append({"rows": args.rows})
    else:
        notes.append("Evidently was not run (--no-evidently or no interpreter found)")
        sizes.append({"rows": args.rows})
    for entry in sizes:
        rows = entry["rows"]
        full = rows == args.rows
        entry["cairn"] = _child(
            sys.executable, "cairn", rows, args.repeat if full else 3, args.seed, html=full
        )
        c = entry["cairn"]
        line = f"cairn     {rows:>9,} rows: {c['median_s']:8.3f} s"
        if "evidently" in entry:
            if entry["evidently"]["digest"] != c["digest"]:
                raise RuntimeError(f"the two sides made different data at {rows} rows")
            entry["ratio"] = entry["evidently"]["median_s"] / c["median_s"]
            line += f"  (Evidently / cairn = {entry['ratio']:.1f}x)"
        print(line, flush=True)
    full = sizes[-1]["cairn"]
    return {
        "machine": _machine(),
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "rows": args.rows,
        "features": {"numeric": N_NUMERIC, "categorical": N_CATEGORICAL, "shifted": SHIFTED},
        "repeat": args.repeat,
        "seed": args.seed,
        "evidently_python": evidently_python,
        "sizes": sizes,
        "target": {
            "rows": TARGET_ROWS,
            "seconds": TARGET_SECONDS,
            "measured_s": full["median_s"] if args.rows == TARGET_ROWS else None,
            "met": (full["median_s"] <= TARGET_SECONDS) if args.rows == TARGET_ROWS else None,
        },
        "notes": notes,
    }


def _runs(n: int) -> str:
    return f"{n} run" + ("s" if n != 1 else "")


def render(res: dict) -> str:
    m = res["machine"]
    mib = 1024 * 1024
    lines = [
        "# Drift benchmark: cairn vs Evidently's DataDriftPreset",
        "",
        "Made by `python bench/drift.py` (see `bench/README.md`); raw numbers in "
        "`bench/results/drift.json`.",
        "",
        f"Data: reference and current of {res['rows']:,} rows x "
        f"{res['features']['numeric'] + res['features']['categorical']} features "
        f"({res['features']['numeric']} numeric, {res['features']['categorical']} categorical "
        f"strings), shifted: {', '.join(res['features']['shifted'])}; seed {res['seed']}.",
        "",
        "| rows | cairn median (s) | cairn peak RSS (MiB, data alone) | Evidently median (s) "
        "| Evidently peak RSS (MiB, data alone) | Evidently / cairn |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in res["sizes"]:
        c, e = s["cairn"], s.get("evidently")
        lines.append(
            f"| {s['rows']:,} | {c['median_s']:.3f} ({_runs(len(c['seconds']))}) | "
            f"{c['peak_rss_bytes'] / mib:,.0f} ({c['data_rss_bytes'] / mib:,.0f}) | "
            + (
                f"{e['median_s']:.2f} ({_runs(len(e['seconds']))}) | "
                f"{e['peak_rss_bytes'] / mib:,.0f} ({e['data_rss_bytes'] / mib:,.0f}) | "
                f"{s['ratio']:.1f}x |"
                if e
                else "not run | - | - |"
            )
        )
    t = res["target"]
    full = res["sizes"][-1]["cairn"]
    lines += [
        "",
        f"Target (issue 5): a drift report over {t['rows']:,} rows x 20 features in <= "
        f"{t['seconds']:.0f} s on 2 cores: "
        + (
            f"**{'met' if t['met'] else 'not met'}** ({t['measured_s']:.2f} s median)."
            if t["met"] is not None
            else "not measured at this size."
        ),
        "",
        f"cairn's decision method at {full['rows']:,} rows: {full['method']} (Evidently's "
        "default rule: more than 1000 reference rows use Wasserstein/std and Jensen-Shannon "
        f"at 0.1); drifting features: {', '.join(full['drifted']) or 'none'}.",
    ]
    if res["sizes"][-1].get("evidently"):
        drifted = res["sizes"][-1]["evidently"]["drifted"]
        lines.append(f"Evidently's drifting features: {', '.join(drifted) or 'none'}.")
    if "html_s" in full:
        lines.append(
            f"The HTML report with its 20 plots (not in the times above): {full['html_s']:.1f} s, "
            f"{full['html_bytes'] / 1024:,.0f} KiB."
        )
    ev = next((s["evidently"] for s in res["sizes"] if s.get("evidently")), None)
    dirty = " (monitoring modified)" if m["cairn_src_dirty"] else ""

    def load(values: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in values)

    lines += [
        "",
        "Machine: "
        f"{m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / 2**30:.0f} GiB RAM; Python "
        f"{m['python']}, NumPy {m['numpy']}, pandas {m['pandas']}, SciPy {m['scipy']}"
        + (f"; Evidently {ev['version']} (pandas {ev['pandas']}, own virtualenv)" if ev else "")
        + f"; cairn {m['cairn_commit'][:10]}{dirty}; string columns: {full['string_dtype']}.",
        f"Load average (1, 5, 15 min) at the start: {load(res['load_start'])}; "
        f"at the end: {load(res['load_end'])}. Other work shared the "
        "machine when the load was above 2: wall times are then pessimistic.",
    ]
    for note in res["notes"]:
        lines += ["", f"Note: {note}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--evidently-python", default=None)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--evidently-budget", type=float, default=900.0)
    parser.add_argument("--side", choices=["cairn", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--html", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "cairn":
        print(json.dumps(side_cairn(args.rows, args.repeat, args.seed, args.html)))
        return 0
    if args.side == "evidently":
        print(json.dumps(side_evidently(args.rows, args.repeat, args.seed)))
        return 0
    res = run(args)
    out = args.out or ROOT / "bench"
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "results" / "drift.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / ("DRIFT_RESULTS.md")).write_text(render(res))
    print(render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
