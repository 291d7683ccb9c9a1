"""The pipeline worker's rounds, so that a write through the server can wait for the jobs
it triggers (``settle``): the worker counts each round of ``run_pipelines`` as it begins
and ends, in ``<home>/work/worker-rounds`` (two numbers, replaced atomically); a round
that began after a commit was finished has run every pipeline that commit made stale."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Rounds"]


class Rounds:
    """The counters of one store's worker (same machine as the server that reads them)."""

    def __init__(self, home: Path, wake: Callable[[], None] | None = None) -> None:
        self.path = Path(home) / "work" / "worker-rounds"
        self.wake = wake  # starts the worker's next round now, instead of after its sleep

    def read(self) -> tuple[int, int]:
        """(rounds begun, rounds ended); (0, 0) before the first."""
        try:
            begun, ended = self.path.read_text().split()
            return int(begun), int(ended)
        except (OSError, ValueError):
            return 0, 0

    def _write(self, begun: int, ended: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(f"{begun} {ended}\n")
        os.replace(tmp, self.path)

    def begin(self) -> int:
        begun, ended = self.read()
        self._write(begun + 1, ended)
        return begun + 1

    def end(self, round_: int) -> None:
        begun, _ = self.read()
        self._write(max(begun, round_), round_)

    def settle(self, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Block until a round that begins after this call has ended; False on timeout
        (``timeout`` in seconds, None: forever)."""
        target = self.read()[0] + 1
        if self.wake is not None:
            self.wake()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.read()[1] < target:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True
