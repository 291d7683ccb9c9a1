"""Where a server's time goes under bench/serve.py's load: py-spy samples every process of
the server (``py-spy record --subprocesses --format raw``, the collapsed-stack format of
https://github.com/brendangregg/FlameGraph) while the load generator runs, and the
samples are summed per function: *inclusive* (the share of samples with the function
anywhere on the stack) and *self* (the share with it on top).

Used by ``python bench/serve.py --profile SERVER``; needs py-spy (the bench extra) and
the right to trace the server's processes (root, or ``kernel.yama.ptrace_scope`` 0).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

PLUMBING = (
    "threading.py:",
    "futures/thread.py:",
    "multiprocessing/",
    "asyncio/",
    "uvicorn/",
    "supervisors/",
    "<string>:",
    ": ",
    # the ASGI chain every request passes through
    "http/httptools_impl.py:RequestResponseCycle.run_asgi",
    "middleware/",
    "telemetry/_asgi.py:",
    "fastapi/applications.py:",
    "fastapi/_body_limit.py:",
    "fastapi/routing.py:APIRouter.app",
    "starlette/applications.py:",
    "starlette/_exception_handler.py:",
    "starlette/routing.py:",
)


def record(pid: int, seconds: float, out: Path, py_spy: str) -> subprocess.Popen:
    """Start py-spy on ``pid`` and its children for ``seconds``, writing ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "250"]
    cmd += ["--duration", str(max(1, round(seconds))), "--format", "raw", "--output", str(out)]
    cmd += ["--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frame(f: str) -> str:
    """``func (path/to/module.py:line)`` -> ``module.py:func``, the line dropped."""
    name, _, where = f.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else where
    return f"{short}:{name}"


def summarize(raw: Path, top: int = 30) -> dict:
    """Inclusive and self shares of the ``top`` functions in collapsed stacks ``raw``
    (py-spy leaves idle threads out unless ``--idle``: a worker waiting in its event
    loop's poll is not sampled)."""
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        top_frame = frames[-1]
        total += n
        for f in set(frames):
            inclusive[f] += n
        self_[top_frame] += n
    busy = total or 1
    # The trunk every request shares (process start, threads, event loop, the ASGI
    # middleware chain) says nothing about where a request's time goes: frames within 3%
    # of the widest, and those of the process and thread plumbing, are left out of the
    # inclusive list.
    own = [(f, n) for f, n in inclusive.most_common() if not f.startswith(PLUMBING)]
    widest = max((n for _, n in own), default=0)
    branches = [(f, n) for f, n in own if n < widest * 0.97 or n < busy / 2]
    return {
        "samples": total,
        "inclusive": [(f, n / busy) for f, n in branches[:top]],
        "self": [(f, n / busy) for f, n in self_.most_common(top)],
    }


def text(summary: dict, title: str) -> str:
    lines = [
        f"## {title}",
        "",
        f"{summary['samples']} samples of busy threads, every process of the server",
        "",
        "| inclusive | function |",
        "|---:|---|",
    ]
    lines += [f"| {share:.1%} | `{f}` |" for f, share in summary["inclusive"]]
    lines += ["", "| self | function |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{f}` |" for f, share in summary["self"]]
    return "\n".join(lines) + "\n"
