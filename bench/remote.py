"""Remote versus embedded (issue 11): the same puts and gets through ``cairn server`` on
loopback and through the embedded store, in the same run.

Cases (each remote figure divided by the embedded one measured just before or after it;
rounds alternate which goes first, medians are reported):

- put 20,000 files of 1-20 KiB (bench/suite_data.SmallFiles), first time, into a fresh
  repo; get them all back into an empty folder;
- put 4 files of 256 MiB of random bytes, first time; get them back;
- 4 MiB overwritten in the middle of one 256 MiB file, put again: the chunk bytes the
  client sent (the server lacks only those; counted on the wire, request bodies of the
  chunk route).

Both sides run in this process through the Python API (``files.upload`` /
``files.download``, what ``cairn put file -r`` / ``get file -r`` call), so start-up
costs are the same on both; the server is a ``cairn.server.team.runner.serve_team``
subprocess on a free loopback port with its pipeline worker, over its own store on the
same disk. Targets: remote throughput >= 0.7 of embedded; the edit sends <= 8 MiB.

Usage: ``python bench/remote.py [--scale 1.0] [--repeat 3] [--out bench/REMOTE_RESULTS.md]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_data import SmallFiles, overwrite_middle, write_random  # noqa: E402
from suite_lib import MIB, tree_bytes  # noqa: E402

from cairn.api.remote.client import RemoteClient  # noqa: E402
from cairn.client import Client  # noqa: E402

BENCH = Path(__file__).resolve().parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``serve_team`` over ``home`` in a child process, until ``stop``."""

    def __init__(self, home: Path) -> None:
        self.port = _port()
        code = (
            "import sys; from pathlib import Path; "
            "from cairn.server.team.runner import serve_team; "
            f"serve_team(Path({str(home)!r}), port={self.port})"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code])
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _sync() -> None:
    os.sync()


class Counted:
    """Counts the bytes of chunk-upload request bodies a RemoteClient sends."""

    def __init__(self, client: RemoteClient) -> None:
        self.sent = 0
        transport = client.transport
        original = transport.request

        def request(verb: str, path: str, **kwargs: object) -> object:
            if path == "/api/v1/chunks":
                self.sent += len(kwargs.get("content", b""))  # type: ignore[arg-type]
            return original(verb, path, **kwargs)

        transport.request = request  # type: ignore[method-assign]


def case(name: str, data: Path, repo: str, work: Path, repeat: int) -> dict:
    """Put ``data`` (a folder) into a fresh store each round, both ways, then get it back."""
    rounds: dict[str, list[float]] = {"put_e": [], "put_r": [], "get_e": [], "get_r": []}
    size = tree_bytes(data)["apparent"]
    files = tree_bytes(data)["files"]
    for r in range(repeat):
        order = ["e", "r"] if r % 2 == 0 else ["r", "e"]
        for side in order:
            home = work / f"{name}-{side}-{r}"
            out = work / f"{name}-{side}-{r}-out"
            if side == "e":
                client: object = Client(home, auto_run=False)
                server = None
            else:
                server = Server(home)
                client = RemoteClient(server.url, auto_run=False)
            try:
                client.repos.create(repo)  # type: ignore[attr-defined]
                put = _timed(
                    lambda c=client: (
                        c.files.upload(f"{repo}@master:/", [str(data)], recursive=True),  # type: ignore[attr-defined]
                        _sync(),
                    )
                )
                get = _timed(
                    lambda c=client, o=out: (
                        c.files.download(f"{repo}@master:/", o),  # type: ignore[attr-defined]
                        _sync(),
                    )
                )
                assert tree_bytes(out)["apparent"] == size, "the get did not bring every byte"
                rounds[f"put_{side}"].append(put)
                rounds[f"get_{side}"].append(get)
            finally:
                if server is not None:
                    client.close()  # type: ignore[attr-defined]
                    server.stop()
                else:
                    client.data.catalog.dispose()  # type: ignore[attr-defined]
                shutil.rmtree(home, ignore_errors=True)
                shutil.rmtree(out, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rounds.items()}
    return {"bytes": size, "files": files, "rounds": rounds, "median": med}


def edit_case(big: Path, work: Path) -> dict:
    """Bytes sent for a 4 MiB edit in the middle of one 256 MiB file, put again."""
    home = work / "edit"
    server = Server(home)
    try:
        with RemoteClient(server.url, auto_run=False) as client:
            client.repos.create("video")
            target = sorted(big.iterdir())[0]
            client.files.upload(f"video@master:/{target.name}", [str(target)])
            counter = Counted(client)
            old = overwrite_middle(target, random.Random(7).randbytes(4 * MIB))
            try:
                client.files.upload(f"video@master:/{target.name}", [str(target)])
            finally:
                overwrite_middle(target, old)
            size = target.stat().st_size
            return {"file_bytes": size, "edit_bytes": 4 * MIB, "sent": counter.sent}
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load": os.getloadavg(),
        "python": sys.version.split()[0],
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def report(results: dict, out: Path) -> None:
    m = results["machine"]
    lines = [
        "# Remote versus embedded (issue 11)",
        "",
        "Made by `python bench/remote.py` (see its module doc). Raw numbers: "
        "`bench/results/remote.json`.",
        "",
        f"- Date: {m['date']}; machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}; "
        f"cairn at commit {m['commit']}; load average at the start {m['load'][0]:.2f}",
        f"- Scale {results['scale']}, {results['repeat']} rounds per case, medians; "
        "both sides through the Python API in one process, the server on loopback.",
        "",
        "| case | embedded | remote | remote throughput / embedded | target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    small_files = results["small"]["files"]
    big_mib = results["big"]["bytes"] / 4 / MIB
    for key, label in (
        ("small", f"{small_files:,} files of 1-20 KiB"),
        ("big", f"4 files of {big_mib:.0f} MiB"),
    ):
        c = results[key]
        mib = c["bytes"] / MIB
        for op in ("put", "get"):
            e, r = c["median"][f"{op}_e"], c["median"][f"{op}_r"]
            ratio = e / r
            lines.append(
                f"| {op} {label} ({mib:.0f} MiB) | {e:.2f} s ({mib / e:.0f} MiB/s) | "
                f"{r:.2f} s ({mib / r:.0f} MiB/s) | {ratio:.2f} | >= 0.7 | "
                f"{'yes' if ratio >= 0.7 else '**no**'} |"
            )
    e = results["edit"]
    sent = e["sent"] / MIB
    lines.append(
        f"| 4 MiB edited in a {e['file_bytes'] / MIB:.0f} MiB file, put again: chunk bytes "
        f"sent | - | {sent:.2f} MiB | - | <= 8 MiB | {'yes' if sent <= 8 else '**no**'} |"
    )
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "REMOTE_RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "remote.json")
    args = parser.parse_args()
    os.environ.setdefault("CAIRN_SANDBOX", "none")
    results: dict = {"scale": args.scale, "repeat": args.repeat, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="cairn-bench-remote-") as tmp:
        work = Path(tmp)
        small = work / "small"
        SmallFiles(20240601).write(small, max(100, int(20_000 * args.scale)))
        results["small"] = case("small", small, "files", work, args.repeat)
        print(json.dumps(results["small"]["median"]), flush=True)
        shutil.rmtree(small)
        big = work / "big"
        big.mkdir()
        rng = random.Random(20240602)
        for i in range(4):
            write_random(big / f"v{i}.bin", max(MIB, int(256 * MIB * args.scale)), rng)
        results["big"] = case("big", big, "video", work, args.repeat)
        print(json.dumps(results["big"]["median"]), flush=True)
        results["edit"] = edit_case(big, work)
        print(json.dumps(results["edit"]), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    report(results, args.out)
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
