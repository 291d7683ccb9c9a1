#!/usr/bin/env python3
"""cairn vs DVC, the benchmark suite of issue 3: small files (A), large files (B), a
pipeline over one-file datums (P), metadata at a million files (M), and peak memory.

Both tools run through their command lines, in the same run, on the same data, which
the suite makes from fixed seeds in a scratch folder. DVC's repositories, cache, site
cache and configuration all live in that scratch folder (``XDG_*``, ``DVC_*`` and
``GIT_CONFIG_*`` point there), so nothing outside it is touched. See bench/README.md.

Usage: ``python bench/suite.py [--scale F] [--repeat R] [--only A,B,P,M] [--no-dvc]``.
A full run (scale 1, DVC, every case) writes ``bench/RESULTS.md`` and
``bench/results/suite.json``; any other run writes to ``bench/results/partial/`` unless
``--out`` says where.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite_files  # noqa: E402
import suite_metadata  # noqa: E402
import suite_pipeline  # noqa: E402
from suite_lib import BENCH, Tools, base_env, drop, machine, tool  # noqa: E402
from suite_report import markdown, summarize  # noqa: E402

CASES = ("A", "B", "P", "M")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the file counts and sizes (1 = the issue's sizes)",
    )
    ap.add_argument("--repeat", type=int, default=5, help="rounds per timed case; medians")
    ap.add_argument(
        "--p-repeat",
        type=int,
        default=None,
        help="rounds for case P (default: --repeat); P is the slowest case",
    )
    ap.add_argument("--only", default=",".join(CASES), help="cases to run, e.g. A,B")
    ap.add_argument("--no-dvc", action="store_true", help="run the cairn side only")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument(
        "--m-budget",
        type=float,
        default=1800.0,
        help="skip an M size whose build would take longer (seconds, projected)",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="where the scratch folder goes")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument(
        "--out", type=Path, default=None, help="folder for RESULTS.md and results/suite.json"
    )
    ap.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="SUITE_JSON",
        help="only write RESULTS.md again from a suite.json (no run)",
    )
    args = ap.parse_args(argv)
    args.only = [c.strip().upper() for c in args.only.split(",") if c.strip()]
    unknown = set(args.only) - set(CASES)
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}; choose from {','.join(CASES)}")
    if args.p_repeat is None:
        args.p_repeat = args.repeat
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.report:
        res = json.loads(args.report.read_text())
        out = args.out or args.report.resolve().parent.parent
        (out / "RESULTS.md").write_text(markdown(res, summarize(res)))
        print(f"wrote {out / 'RESULTS.md'}")
        return res
    cairn = tool("cairn")
    if cairn is None:
        sys.exit("cairn not found: pip install -e '.[bench]' (see bench/README.md)")
    dvc = None
    if not args.no_dvc:
        dvc = tool("dvc")
        if dvc is None:
            sys.exit("dvc not found: pip install -e '.[bench]', or pass --no-dvc")
    full = args.scale == 1 and dvc is not None and set(args.only) == set(CASES)
    out = args.out or (BENCH if full else BENCH / "results" / "partial")

    scratch = Path(tempfile.mkdtemp(prefix="cairn-bench-", dir=args.workdir))
    tools = Tools(cairn=cairn, dvc=dvc, env=base_env(scratch))
    work = scratch / "work"
    work.mkdir()
    started = time.perf_counter()
    load_start = os.getloadavg()
    print(
        f"scratch {scratch}; scale {args.scale}; repeat {args.repeat}; cases "
        f"{','.join(args.only)}; DVC {'off' if dvc is None else dvc}",
        flush=True,
    )
    res: dict = {
        "benchmark": "suite",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "options": {
            "scale": args.scale,
            "repeat": args.repeat,
            "p_repeat": args.p_repeat,
            "only": args.only,
            "seed": args.seed,
            "dvc": dvc is not None,
        },
        "machine": machine(tools, scratch),
        "loadavg_start": list(load_start),
        "cases": {},
        "notes": [],
    }
    try:
        common = {"scale": args.scale, "seed": args.seed}
        if "A" in args.only:
            res["cases"]["A"] = suite_files.case_a(tools, work, repeat=args.repeat, **common)
        if "B" in args.only:
            res["cases"]["B"] = suite_files.case_b(tools, work, repeat=args.repeat, **common)
        if "P" in args.only:
            res["cases"]["P"] = suite_pipeline.case_p(tools, work, repeat=args.p_repeat, **common)
        if "M" in args.only:
            res["cases"]["M"] = suite_metadata.case_m(
                tools, work, scale=args.scale, repeat=args.repeat, budget_s=args.m_budget
            )
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            drop(scratch)
    res["loadavg_end"] = list(os.getloadavg())
    res["total_wall_s"] = time.perf_counter() - started
    _notes(res)
    table = summarize(res)
    md = markdown(res, table)
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "RESULTS.md").write_text(md)
    (out / "results" / "suite.json").write_text(json.dumps(res, indent=2) + "\n")
    print()
    print(md)
    print(f"wrote {out / 'RESULTS.md'} and {out / 'results' / 'suite.json'}")
    return res


def _notes(res: dict) -> None:
    p = res["cases"].get("P")
    if p:
        res["notes"].append(
            f"P: cairn runs with parallelism_spec.constant = {p['parallelism']} (the machine's "
            f"cores); each file costs {p['hash_rounds']} SHA-256 rounds (calibrated to ~1 ms "
            "of CPU at the start of the run), the same for both tools."
        )
        batch = [x for r in p["rounds"] for x in [r["cairn"].get("batch")] if x]
        if batch and "unsupported" in batch[0]:
            res["notes"].append(
                "P: datum batching is not in this cairn yet; the suite's batch-mode code "
                "(transform.datum_batching + cairn.sdk.datums()) is in place and runs when it "
                "lands. Only process-per-datum was measured."
            )


if __name__ == "__main__":
    main()
