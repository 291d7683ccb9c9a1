#!/usr/bin/env python3
"""cairn serve vs mlflow models serve (issue 4): throughput and p50 / p99 latency of the
same scikit-learn model, under the same load generator, in the same run, on this machine.

Each round starts every server in turn (the order alternates between rounds), checks that
it returns the model's own predictions, then drives it with ``serve_load.py`` (closed
loop, C keep-alive connections, a warm-up and then a timed window) once per payload (one
row, a batch of rows), and stops it. Only one server runs at a time. See bench/README.md.

Usage: ``python bench/serve.py [--rounds R] [--duration S] [--connections C]
[--workers N] [--servers cairn,cairn-nolog,mlflow] [--no-mlflow] [--profile]``. A full
run (the defaults, every server) writes ``bench/SERVE_RESULTS.md`` and
``bench/results/serve.json``; any other run writes to ``bench/results/partial/`` unless
``--out`` says where.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_profile  # noqa: E402
from serve_report import markdown, summarize  # noqa: E402
from serve_setup import (  # noqa: E402
    MODEL,
    Server,
    ServerFailed,
    check_predictions,
    make_model,
    predlog_stats,
    register_in_cairn,
    wait_predlog_drained,
)
from suite_lib import BENCH, Tools, base_env, drop, machine, tool  # noqa: E402

SERVERS = ("cairn", "cairn-nolog", "mlflow")
LOAD = Path(__file__).resolve().parent / "serve_load.py"
DEFAULTS = {
    "rounds": 5,
    "duration": 15.0,
    "warmup": 3.0,
    "connections": 16,
    "workers": 2,
    "batch_rows": 100,
}
PACKAGES = (
    "cairn",
    "mlflow",
    "mlflow-skinny",
    "uvicorn",
    "fastapi",
    "starlette",
    "uvloop",
    "httptools",
    "pandas",
    "numpy",
    "scikit-learn",
    "skops",
    "orjson",
    "pydantic",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=DEFAULTS["rounds"], help="medians of these")
    ap.add_argument("--duration", type=float, default=DEFAULTS["duration"], help="timed s")
    ap.add_argument("--warmup", type=float, default=DEFAULTS["warmup"], help="untimed s")
    ap.add_argument("--connections", type=int, default=DEFAULTS["connections"])
    ap.add_argument("--workers", type=int, default=DEFAULTS["workers"], help="server workers")
    ap.add_argument("--batch-rows", type=int, default=DEFAULTS["batch_rows"])
    ap.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="which to run: cairn (prediction log on), cairn-nolog (--no-log), mlflow",
    )
    ap.add_argument("--no-mlflow", action="store_true", help="run the cairn side only")
    ap.add_argument("--workdir", type=Path, default=None, help="where the scratch folder goes")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--out", type=Path, default=None, help="folder for the results")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing rounds, sample each server with py-spy under one load per "
        "payload and write where the time goes (PROFILE.md in --out)",
    )
    ap.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="SERVE_JSON",
        help="only write SERVE_RESULTS.md again from a serve.json (no run)",
    )
    args = ap.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.no_mlflow and "mlflow" in args.servers:
        args.servers.remove("mlflow")
    unknown = set(args.servers) - set(SERVERS)
    if unknown or not args.servers:
        ap.error(f"unknown servers {sorted(unknown)}; choose from {','.join(SERVERS)}")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def servers(args, tools: Tools, model, scratch: Path, mlflow: str | None) -> dict:
    """name -> a function making a fresh Server (a new port each time)."""
    env = tools.cairn_env(scratch / "home")
    make = {}

    def cairn(no_log: bool):
        def new() -> Server:
            port = free_port()
            cmd = [tools.cairn, "serve", f"{MODEL}@champion", "--port", str(port)]
            cmd += ["--workers", str(args.workers)] + (["--no-log"] if no_log else [])
            name = "cairn-nolog" if no_log else "cairn"
            return Server(name, cmd, env, port, scratch / "logs" / f"{name}.log")

        return new

    if "cairn" in args.servers:
        make["cairn"] = cairn(False)
    if "cairn-nolog" in args.servers:
        make["cairn-nolog"] = cairn(True)
    if "mlflow" in args.servers:
        # mlflow runs `uvicorn` from PATH, as in an activated venv: the one beside mlflow.
        path = os.pathsep.join([str(Path(mlflow).parent), tools.env.get("PATH", "")])
        menv = {**tools.env, "PATH": path, "MLFLOW_TRACKING_URI": (scratch / "mlruns").as_uri()}

        def new_mlflow() -> Server:
            port = free_port()
            cmd = [mlflow, "models", "serve", "-m", str(model.mlflow_dir)]
            cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
            cmd += ["-w", str(args.workers)]
            return Server("mlflow", cmd, menv, port, scratch / "logs" / "mlflow.log")

        make["mlflow"] = new_mlflow
    return make


def load(server: Server, body: Path, args) -> dict:
    """One run of the load generator against ``server``, with the server's CPU time."""
    cmd = [sys.executable, str(LOAD), "--port", str(server.port), "--body", str(body)]
    cmd += ["--connections", str(args.connections), "--warmup", str(args.warmup)]
    cmd += ["--duration", str(args.duration)]
    cpu0 = server.cpu_s()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.warmup + 600)
    cpu1 = server.cpu_s()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-3000:]}")
    res = json.loads(proc.stdout)
    res["server_cpu_s"] = cpu1 - cpu0
    done = res["requests"] + res["warmup_requests"]
    res["server_cpu_ms_per_request"] = 1000 * (cpu1 - cpu0) / done if done else None
    res["loadavg_1m"] = os.getloadavg()[0]
    return res


def one_round(i: int, order: list[str], make: dict, model, args) -> dict:
    out: dict = {"round": i, "order": order, "servers": {}}
    for name in order:
        server = make[name]()
        entry: dict = {"loadavg_1m_before": os.getloadavg()[0]}
        try:
            server.start()
            entry["ready_s"] = server.ready_s
            entry["stack"] = server.stack
            check_predictions(server, model)
            for payload, body in model.payloads.items():
                entry[payload] = r = load(server, body, args)
                if name == "cairn":
                    r["predlog"] = predlog_stats(server)
                print(
                    f"round {i} {name:12s} {payload:6s} {r['rps']:8.1f} req/s  p50 "
                    f"{r['latency_ms']['p50']:7.2f} ms  p99 {r['latency_ms']['p99']:7.2f} ms  "
                    f"errors {r['errors']}",
                    flush=True,
                )
            if name == "cairn":
                entry["predlog_final"] = wait_predlog_drained(server)
        except (ServerFailed, RuntimeError) as e:
            server.stop()
            raise SystemExit(f"{name}: {e}\n--- server log ---\n{server.tail()}") from e
        entry["exit_code"] = server.stop()
        out["servers"][name] = entry
    return out


def profile(make: dict, model, args, out: Path, res: dict) -> None:
    """Each server once: py-spy over every payload's load; PROFILE.md in ``out``."""
    py_spy = tool("py-spy")
    if py_spy is None:
        sys.exit("py-spy not found: pip install -e '.[bench]'")
    m = res["machine"]
    parts = [
        "# Where the time goes: py-spy under bench/serve.py's load",
        "",
        f"Made by `python bench/serve.py --profile` ({args.warmup:g} s warm-up, "
        f"{args.duration:g} s sampled per payload, {args.connections} connections, "
        f"{args.workers} workers) on {res['date']}, cairn at {m['cairn_commit'][:12]}"
        f"{' (working tree differs)' if m['cairn_src_dirty'] else ''}, MLflow "
        f"{res['versions']['mlflow']}, {m['cores']} cores, load average "
        f"{os.getloadavg()[0]:.2f} at the start. Shares are of py-spy's samples (250/s) of "
        "every busy thread of the server's processes; a function's inclusive share counts "
        "the samples with it anywhere on the stack, its self share those with it on top.",
        "",
    ]
    for name, new in make.items():
        server = new()
        try:
            server.start()
            check_predictions(server, model)
            for payload, body in model.payloads.items():
                raw = out / "profile" / f"{name}-{payload}.txt"
                spy = serve_profile.record(server.proc.pid, args.duration, raw, py_spy)
                r = load(server, body, args)
                _, err = spy.communicate(timeout=120)
                if not raw.exists():
                    sys.exit(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}")
                title = (
                    f"{name}, {payload} ({r['rps']:.0f} req/s, p99 "
                    f"{r['latency_ms']['p99']:.1f} ms while sampled)"
                )
                parts.append(serve_profile.text(serve_profile.summarize(raw), title))
                print(f"profiled {name} {payload}: {raw}", flush=True)
        finally:
            server.stop()
    (out / "PROFILE.md").write_text("\n".join(parts))
    print(f"wrote {out / 'PROFILE.md'}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.report:
        res = json.loads(args.report.read_text())
        out = args.out or args.report.resolve().parent.parent
        (out / "SERVE_RESULTS.md").write_text(markdown(res, summarize(res)))
        print(f"wrote {out / 'SERVE_RESULTS.md'}")
        return res
    cairn = tool("cairn")
    if cairn is None:
        sys.exit("cairn not found: pip install -e '.[bench]' (see bench/README.md)")
    mlflow = None
    if "mlflow" in args.servers:
        mlflow = tool("mlflow")
        if mlflow is None:
            sys.exit("mlflow not found: pip install -e '.[bench]', or pass --no-mlflow")
    defaults = all(getattr(args, k) == v for k, v in DEFAULTS.items())
    full = defaults and set(args.servers) == set(SERVERS) and not args.profile
    out = args.out or (BENCH if full else BENCH / "results" / "partial")

    scratch = Path(tempfile.mkdtemp(prefix="cairn-bench-serve-", dir=args.workdir))
    tools = Tools(cairn=cairn, dvc=None, env=base_env(scratch))
    started = time.perf_counter()
    res: dict = {
        "benchmark": "serve",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "options": {k: getattr(args, k) for k in DEFAULTS} | {"servers": args.servers},
        "machine": {
            k: v
            for k, v in machine(tools, scratch).items()
            if k not in ("dvc_version", "git_version", "sandbox")
        },
        "versions": versions(),
        "loadavg_start": list(os.getloadavg()),
        "rounds": [],
    }
    print(f"scratch {scratch}; {json.dumps(res['options'])}", flush=True)
    try:
        model = make_model(
            scratch / "model", batch_rows=args.batch_rows, with_mlflow=mlflow is not None
        )
        (scratch / "home").mkdir()
        if any(s.startswith("cairn") for s in args.servers):
            register_in_cairn(cairn, tools.cairn_env(scratch / "home"), model, scratch)
        res["model"] = {
            "estimator": "Pipeline(StandardScaler, LogisticRegression(max_iter=1000))",
            "data": "sklearn.datasets.load_breast_cancer(as_frame=True): 569 rows x 30 floats",
            "rows": model.rows,
            "request_bytes": {k: p.stat().st_size for k, p in model.payloads.items()},
            "sklearn": model.sklearn_version,
        }
        make = servers(args, tools, model, scratch, mlflow)
        if args.profile:
            profile(make, model, args, args.out or BENCH / "results" / "partial", res)
            return res
        names = list(make)
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]
            res["rounds"].append(one_round(i, order, make, model, args))
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            drop(scratch)
    res["loadavg_end"] = list(os.getloadavg())
    res["total_wall_s"] = time.perf_counter() - started
    table = summarize(res)
    md = markdown(res, table)
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "SERVE_RESULTS.md").write_text(md)
    (out / "results" / "serve.json").write_text(json.dumps(res, indent=2) + "\n")
    print()
    print(md)
    print(f"wrote {out / 'SERVE_RESULTS.md'} and {out / 'results' / 'serve.json'}")
    return res


if __name__ == "__main__":
    main()
