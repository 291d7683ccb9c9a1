"""The web console's pages in headless Chromium: time to first render of the DAG, of a
folder of 10,000 files and of a job of 20,000 datums (the issue's target: each under 1 s).

    python bench/console.py [--files 10000] [--datums 20000] [--repeat 5] [--out FILE]

Builds a throw-away embedded store (a repo with a folder of ``--files`` files, and a
pipeline with ``datum_batching`` over ``--datums`` one-file datums that writes nothing),
serves ``cairn console`` over it in this process (uvicorn, as the command does), and loads
each page ``--repeat`` times in Debian's chromium through Playwright. Per page it reports
the median of: the server's answer (responseEnd), first contentful paint, and the load
event, all in ms from the start of the navigation, and the bytes of HTML sent. Writes a
Markdown table to ``--out`` (default bench/CONSOLE_RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TRANSFORM = """\
from cairn.sdk import datums

for _datum in datums():
    pass
"""
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def build(home: Path, files: int, datums: int) -> tuple[object, str]:
    from cairn.client import Client

    client = Client(home, auto_run=True)
    client.repos.create("wide", "a folder of many files")
    t0 = time.perf_counter()
    client.files.put("wide@master:/folder/", {f"f{i:05d}.txt": b"x" for i in range(files)})
    print(f"put {files} files in {time.perf_counter() - t0:.1f} s", flush=True)
    client.repos.create("many", "one file per datum")
    t0 = time.perf_counter()
    client.files.put("many@master:/", {f"d{i:05d}.txt": str(i).encode() for i in range(datums)})
    print(f"put {datums} files in {time.perf_counter() - t0:.1f} s", flush=True)
    spec_dir = home.parent / "spec"
    spec_dir.mkdir()
    (spec_dir / "noop.py").write_text(TRANSFORM)
    t0 = time.perf_counter()
    client.pipelines.create(
        {
            "pipeline": {"name": "noop"},
            "transform": {"cmd": [sys.executable, "noop.py"], "datum_batching": True},
            "input": {"pfs": {"repo": "many", "glob": "/*"}},
        },
        spec_dir=spec_dir,
    )
    job = client.jobs.list("noop")[0]
    print(f"job of {job.total} datums ({job.state}) in {time.perf_counter() - t0:.1f} s")
    return client, job.id


def serve(client: object) -> tuple[str, object]:
    import uvicorn

    from cairn.console.app import create_console_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_console_app(client), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {response: nav.responseEnd, fcp: paint ? paint.startTime : null,
          load: nav.loadEventEnd, bytes: nav.transferSize};
}"""


def measure(base: str, pages: dict[str, str], repeat: int) -> list[tuple[str, dict[str, float]]]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, path in pages.items():
            samples = []
            for _ in range(repeat + 1):  # the first load warms the server's caches: dropped
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.goto(base + path, wait_until="load")
                page.wait_for_timeout(50)  # the paint entry lands after load
                samples.append(page.evaluate(TIMING))
                context.close()
            samples = samples[1:]
            row = {
                k: statistics.median(s[k] for s in samples if s[k] is not None)
                for k in ("response", "fcp", "load", "bytes")
            }
            rows.append((name, row))
            print(f"{name}: {row}", flush=True)
        browser.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--datums", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("CONSOLE_RESULTS.md"))
    args = parser.parse_args()
    os.environ.setdefault("CAIRN_SANDBOX", "none")
    with tempfile.TemporaryDirectory() as tmp:
        client, job = build(Path(tmp) / "home", args.files, args.datums)
        base, server = serve(client)
        pages = {
            "DAG (/)": "/",
            f"folder of {args.files:,} files": "/repos/wide/at/master/folder/",
            f"job of {args.datums:,} datums": f"/jobs/noop/{job}",
        }
        rows = measure(base, pages, args.repeat)
        server.should_exit = True
    lines = [
        "# The web console in headless Chromium (bench/console.py)",
        "",
        f"Median of {args.repeat} loads after one warm-up, ms from the start of the navigation;",
        f"Debian's chromium {_chromium_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}. Target: under 1,000 ms each. The pages",
        "are server-rendered: the server's answer is most of the time; one page of 50 rows",
        "is sent whatever the folder's or the job's size.",
        "",
        "| page | server answered | first contentful paint | load event | HTML bytes |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['response']:.0f} | {r['fcp']:.0f} | {r['load']:.0f} | "
            f"{r['bytes']:,.0f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())


def _chromium_version() -> str:
    import subprocess

    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.split()[1]  # "Chromium 150.0.7871.100 built on Debian ..."
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


if __name__ == "__main__":
    main()
