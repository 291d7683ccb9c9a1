"""The serving benchmark still runs: bench/serve.py at a tiny scale (one round, about a
second of load per payload, one worker), so it cannot rot as cairn's CLI changes.

Nothing here looks at speed. The cairn side always runs; the MLflow side runs when the
``mlflow`` command and its scoring server are installed beside this interpreter (the dev
extra's mlflow-skinny serves models), and is skipped otherwise.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def _run(tmp_path: Path, servers: str) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "serve.py"),
            "--servers",
            servers,
            "--rounds",
            "1",
            "--warmup",
            "0.3",
            "--duration",
            "1",
            "--connections",
            "2",
            "--workers",
            "1",
            "--batch-rows",
            "7",
            "--workdir",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((tmp_path / "out" / "results" / "serve.json").read_text())


def _check_server(res: dict, name: str) -> None:
    entry = res["rounds"][0]["servers"][name]
    assert entry["exit_code"] is not None
    for payload in ("single", "batch"):
        got = entry[payload]
        assert got["requests"] > 0
        assert got["errors"] == 0
        assert got["statuses"] == {"200": got["requests"]}
        assert got["latency_ms"]["p50"] <= got["latency_ms"]["p99"] <= got["latency_ms"]["max"]
        assert got["server_cpu_s"] > 0


def test_serve_bench_cairn_side(tmp_path):
    res = _run(tmp_path, "cairn")
    assert res["model"]["rows"] == {"single": 1, "batch": 7}
    _check_server(res, "cairn")
    log = res["rounds"][0]["servers"]["cairn"]["predlog_final"]["counters"]
    answered = sum(res["rounds"][0]["servers"]["cairn"][p]["requests"] for p in ("single", "batch"))
    assert log["committed"] == log["submitted"] >= answered
    assert log["dropped"] == 0
    md = (tmp_path / "out" / "SERVE_RESULTS.md").read_text()
    assert "| payload | server | req/s (median)" in md
    assert "not judged (no MLflow run)" in md


def test_serve_bench_mlflow_side(tmp_path):
    spec = importlib.util.find_spec("mlflow")
    serving = spec is not None and any(
        (Path(p) / "pyfunc" / "scoring_server").is_dir()
        for p in spec.submodule_search_locations or []
    )
    if not serving or not (Path(sys.executable).parent / "mlflow").exists():
        pytest.skip("mlflow is not installed beside this Python (pip install -e '.[bench]')")
    res = _run(tmp_path, "mlflow")
    _check_server(res, "mlflow")


def _fake_round(i: int, rps: dict, p99: dict, dropped: int) -> dict:
    servers = {}
    for name in rps:
        runs = {
            p: {
                "rps": rps[name],
                "requests": int(rps[name] * 10),
                "errors": 0,
                "window_s": 10.0,
                "generator_cpu_s": 2.0,
                "server_cpu_ms_per_request": 1.0,
                "latency_ms": {"p50": p99[name] / 3, "p99": p99[name]},
            }
            for p in ("single", "batch")
        }
        servers[name] = runs
    servers["cairn"]["predlog_final"] = {
        "counters": {"submitted": 10.0, "committed": 10.0 - dropped, "dropped": dropped},
        "drain_s": 0.5,
    }
    return {"round": i, "order": list(rps), "servers": servers}


@pytest.mark.parametrize(
    ("cairn_rps", "cairn_p99", "dropped", "met"),
    [
        (250.0, 9.0, 0, True),
        (190.0, 9.0, 0, False),
        (250.0, 11.0, 0, False),
        (250.0, 9.0, 1, False),
    ],
)
def test_serve_report_judges_the_target(cairn_rps, cairn_p99, dropped, met):
    sys.path.insert(0, str(BENCH))
    try:
        import serve_report
    finally:
        sys.path.remove(str(BENCH))
    res = {
        "model": {"rows": {"single": 1, "batch": 100}},
        "rounds": [
            _fake_round(
                i,
                {"cairn": cairn_rps, "mlflow": 100.0},
                {"cairn": cairn_p99, "mlflow": 10.0},
                dropped,
            )
            for i in range(3)
        ],
    }
    table = serve_report.summarize(res)
    ratios = table["payloads"]["single"]["ratios"]["cairn"]
    assert ratios["rps"] == pytest.approx(cairn_rps / 100.0)
    assert ratios["p99"] == pytest.approx(cairn_p99 / 10.0)
    assert table["target_met"] is met
