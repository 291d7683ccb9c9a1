"""The S3 gateway against moto's S3 server, through the AWS CLI (issue 12, section 2).

Usage: ``python bench/s3_gateway.py [--files 20000] [--big-mib 1024] [--rounds 1]``

Each server runs in its own process on loopback, started fresh for the run: moto
(``python -m moto.server``, in-memory) with bucket ``bench``, and ``cairn s3-gateway`` over
a new embedded store in a temporary folder with repo ``bench``. The same ``aws`` commands
(PyPI ``awscli``, each a process) run against each, alternating sides per round:

- ``aws s3 sync`` of ``--files`` files of 1-4 KiB (random bytes) to ``s3://bench/master/small/``
- ``aws s3 cp`` of one file of ``--big-mib`` MiB up to ``s3://bench/master/big.bin`` (the
  CLI's multipart upload, 8 MiB parts), then down to a local file.

Wall time per command, medians over rounds; raw numbers in ``bench/results/s3_gateway.json``.
The gateway commits once per object (a sync of N files is N commits), moto keeps bytes in
memory: the bench says what versioning costs against a plain in-memory S3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError as exc:
            if getattr(exc, "code", None) is not None:  # an HTTP answer: it is up
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start") from exc
            time.sleep(0.1)


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CAIRN_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        CAIRN_HOME=str(work / "home"),
        CAIRN_CONFIG_DIR=str(work / "config"),
    )
    return env


def _aws(url: str, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", url, *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cairn-bench-s3-"))
    env = _env(work)
    small = work / "small"
    small.mkdir()
    rng = __import__("random").Random(12)
    total_small = 0
    for i in range(args.files):
        data = rng.randbytes(rng.randint(1024, 4096))
        total_small += len(data)
        (small / f"{i // 1000:03d}" / f"{i:06d}.bin").parent.mkdir(exist_ok=True)
        (small / f"{i // 1000:03d}" / f"{i:06d}.bin").write_bytes(data)
    big = work / "big.bin"
    with open(big, "wb") as out:
        block = os.urandom(1 << 20)
        for _ in range(args.big_mib):
            out.write(block)

    cairn_port, moto_port = _port(), _port()
    subprocess.run(
        [sys.executable, "-c", "from cairn.cli import main; main()", "create", "repo", "bench"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    servers = {
        "cairn": subprocess.Popen(
            [sys.executable, "-c", "from cairn.cli import main; main()", "s3-gateway"]
            + ["--port", str(cairn_port)],
            env=env,
            stdout=subprocess.DEVNULL,
        ),
        "moto": subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    }
    urls = {"cairn": f"http://127.0.0.1:{cairn_port}", "moto": f"http://127.0.0.1:{moto_port}"}
    rounds: dict[str, dict[str, list[float]]] = {s: {} for s in urls}
    try:
        for side, url in urls.items():
            _wait(url + "/", servers[side])
        _aws(urls["moto"], env, "s3", "mb", "s3://bench")
        load = os.getloadavg()[0]
        for r in range(args.rounds):
            order = list(urls) if r % 2 == 0 else list(urls)[::-1]
            for side in order:
                url, times = urls[side], rounds[side]
                prefix = f"s3://bench/master/r{r}"
                times.setdefault("sync", []).append(
                    _aws(url, env, "s3", "sync", str(small), f"{prefix}/small/")
                )
                times.setdefault("cp up", []).append(
                    _aws(url, env, "s3", "cp", str(big), f"{prefix}/big.bin")
                )
                down = work / f"down-{side}.bin"
                times.setdefault("cp down", []).append(
                    _aws(url, env, "s3", "cp", f"{prefix}/big.bin", str(down))
                )
                assert down.stat().st_size == big.stat().st_size
                down.unlink()
                print(side, {k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)

    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "commit": commit,
        "load_at_start": load,
        "files": args.files,
        "small_bytes": total_small,
        "big_mib": args.big_mib,
        "rounds": rounds,
        "medians": {s: {k: statistics.median(v) for k, v in t.items()} for s, t in rounds.items()},
    }
    out = ROOT / "bench" / "results" / "s3_gateway.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["medians"], indent=2))


if __name__ == "__main__":
    main()
