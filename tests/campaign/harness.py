"""The campaign's tools: ``cairn`` commands in processes that a test can SIGKILL at a
seeded random moment, and the checks run after each kill.

Commands run as forks of a forkserver that has imported the CLI and the library once
(``multiprocessing``'s forkserver with a preload), so a trial costs the command's work,
not a second of interpreter start-up; the child runs ``cairn.cli.main`` with the
command's argv, as the console script does.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.data import CommitState, DataStore, parse_ref
from cairn.data.fsck import check_store

FORKER = Path(__file__).with_name("forker.py")


@dataclass
class Outcome:
    killed: bool
    exitcode: int | None
    output: str
    seconds: float


class Runner:
    """Runs ``cairn ARGV`` over one store (``home``) from ``cwd``, maybe killed, one
    command at a time, through a fork server (``forker.py``) started on first use."""

    def __init__(self, home: Path, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.home, self.cwd = home, cwd
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CAIRN_URL", "CAIRN_TOKEN", "CAIRN_CONTEXT", "CAIRN_HOME")
        }
        self.env.update(CAIRN_HOME=str(home), CAIRN_CONFIG_DIR=str(cwd / "config"))
        self.env.update(env or {})
        self._server: subprocess.Popen[str] | None = None
        self._n = 0

    def _forker(self) -> subprocess.Popen[str]:
        if self._server is None:
            self._server = subprocess.Popen(
                [sys.executable, str(FORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=self.env,
                cwd=self.cwd,
            )
        return self._server

    def close(self) -> None:
        if self._server is not None:
            assert self._server.stdin is not None
            self._server.stdin.close()
            self._server.wait(30)
            self._server = None

    def _line(self, server: subprocess.Popen[str], timeout: float) -> str:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        return server.stdout.readline().strip()

    def run(
        self,
        *argv: str,
        kill_after: float | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        call: str | None = None,
    ) -> Outcome:
        """Run the command (or ``call``, ``module:function`` given ``argv``); with
        ``kill_after`` seconds, SIGKILL it then if still running.
        Raises AssertionError when it runs past ``timeout`` (stuck)."""
        server = self._forker()
        assert server.stdin is not None
        self._n += 1
        out = self.cwd / f"out-{self._n}.txt"
        request = {"argv": list(argv), "env": {**self.env, **(env or {})}, "cwd": str(self.cwd)}
        if call is not None:
            request["call"] = call
        t0 = time.monotonic()
        server.stdin.write(json.dumps({**request, "out": str(out)}) + "\n")
        server.stdin.flush()
        pid = int(self._line(server, 30).split()[1])
        killed = False
        try:
            if kill_after is not None:
                try:
                    status = self._line(server, kill_after)
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                    status = self._line(server, 30)
            else:
                status = self._line(server, timeout)
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            self._line(server, 30)
            stuck = f"cairn {' '.join(argv)} did not end in {timeout}s (stuck)"
            raise AssertionError(stuck) from None
        code = int(status.split()[1])
        text = out.read_text(errors="replace") if out.exists() else ""
        out.unlink(missing_ok=True)
        return Outcome(killed and code == -signal.SIGKILL, code, text, time.monotonic() - t0)

    def ok(self, *argv: str, **kwargs: Any) -> str:
        done = self.run(*argv, **kwargs)
        assert done.exitcode == 0, (argv, done.exitcode, done.output)
        assert "Traceback" not in done.output, done.output
        return done.output


@dataclass
class Tally:
    """What a crash scenario counts: trials run, of which killed mid-way, and of the
    checks after each, how many found lost, corrupt or stuck work."""

    name: str
    trials: int = 0
    killed: int = 0
    lost: int = 0
    corrupt: int = 0
    stuck: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.name}: {self.trials} trials, {self.killed} killed mid-way, "
            f"{self.lost} lost, {self.corrupt} corrupt, {self.stuck} stuck"
        )


def kill_delays(seed: int, n: int, span: float) -> list[float]:
    """``n`` seeded moments in ``[0, span)`` seconds."""
    rng = random.Random(seed)
    return [rng.uniform(0.0, span) for _ in range(n)]


def commit_files(data: DataStore, repo: str, commit: str) -> dict[str, bytes]:
    """Every file of ``repo@commit``, as {path: bytes}, read back through fresh reads."""
    return {
        path: data.chunks.read_bytes(entry.content)
        for path, entry in data.walk_files(parse_ref(f"{repo}@{commit}"))
    }


def commit_digests(data: DataStore, repo: str, commit: str) -> dict[str, str]:
    """{path: BLAKE3 of the content} of ``repo@commit`` as its tree records them; with a
    clean fsck (which hashes every file's bytes against these), equal digests mean the
    commit reads back byte for byte."""
    return {path: entry.hash for path, entry in data.walk_files(parse_ref(f"{repo}@{commit}"))}


def fsck_problems(data: DataStore) -> list[str]:
    report = check_store(data)
    return [] if report.ok else [str(p.to_json()) for p in report.problems]


def finished_commits(data: DataStore, repo: str) -> dict[str, str | None]:
    """{commit id: state} of the repo's commits, all branches."""
    return {c.id: c.state for c in data.list_commits(repo)}


def is_open(state: Any) -> bool:
    return state == CommitState.OPEN
