"""Running many datums in one process: ``transform.datum_batching`` (Pachyderm's field).

Each worker of a job starts the transform once and hands it datums one after another, so
20,000 datums cost a few process starts instead of 20,000. A datum's layout, outputs,
lineage, skipping and records are those of a datum run in its own process
(``cairn.pipelines.executor``); only the process is shared.

Wire protocol (any language can speak it; a Python SDK is ``cairn.sdk``)
    ``$CAIRN_DATUM_CHANNEL`` names a folder holding two FIFOs. The transform writes one
    line to ``request`` and reads one line from ``reply``, each time opening the FIFO,
    moving the one line and closing it again::

        next            the datum in progress is done (the first time: ready for one)
        fail <reason>   the datum in progress failed (the reason is the rest of the line)

    Every request gets exactly one reply line: the next datum's id (64 hex digits), or
    ``end`` when no datum is left, after which the transform should exit 0. Before an id
    is sent, the datum's inputs are laid out at ``$CAIRN_PFS/<input name>/<path>`` with an
    empty ``$CAIRN_PFS/out``, exactly as for a datum in its own process; at the following
    request ``out`` is stored as that datum's output and the layout is emptied. In shell::

        while echo next > "$CAIRN_DATUM_CHANNEL/request" &&
              read -r id < "$CAIRN_DATUM_CHANNEL/reply" && [ "$id" != end ]; do
            cp "$CAIRN_PFS"/in/* "$CAIRN_PFS/out/"
        done

    The environment is the job's (``CAIRN_PFS``, ``PACH_JOB_ID``, the spec's ``env``);
    the per-datum variables of a datum in its own process (``PACH_DATUM_ID``,
    ``$<input name>``) are not set, since the process outlives its datums.

Life of a datum
    queued ─► in progress ─► success        ``next`` (or a clean exit) and ``out`` is valid
                          └► failed attempt ``fail``, a non-zero exit, death, a timeout, or
                                            an invalid ``out``
    A failed attempt is retried, up to ``datum_tries`` attempts, in the worker's next (fresh)
    process; after the last one ``err_cmd`` may recover it (run in a process of its own, as
    for a per-process datum), else it fails. ``datum_timeout`` bounds each datum, from the
    reply that hands it out to the request that finishes it.

Life of a process
    * A clean exit (0, or a code in ``accept_return_code``) finishes the datum in progress;
      datums still queued go to a fresh process. A process that exits, or does not ask
      within ``datum_timeout``, before taking any datum counts against ``datum_tries``;
      ``datum_tries`` such processes in a row fail every datum left with the last log.
    * A process is killed (its whole process group) when a datum times out, when it sends
      an unknown request, and after it exits, so nothing it started outlives it.
    * The datum limits (``resource_limits``, see ``cairn.pipelines.sandbox``) bound the
      process for its whole life: CPU seconds add up across the datums it takes.

Logs: the process's standard output and error go to one file; each datum's log is the
slice written while it was in progress (output before the first request goes to the first
datum). ``cairn.sdk`` flushes Python's ``sys.stdout``/``sys.stderr`` before each request so
that the slices are exact.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cairn.data import DataStore, InvalidPath
from cairn.pipelines.datums import Datum
from cairn.pipelines.errors import LimitExceeded
from cairn.pipelines.executor import (
    DatumResult,
    RunContext,
    collect,
    exit_reason,
    materialize,
    missing_program,
    run_err_cmd,
    spawn,
    stdin_file,
    transform_env,
)
from cairn.pipelines.sandbox import grant, sandbox_uid, wrap_batch_command

__all__ = ["CHANNEL_ENV", "DatumQueue", "run_batch"]

CHANNEL_ENV = "CAIRN_DATUM_CHANNEL"
_LOG_LIMIT = 4 << 20
_END = "end"


class DatumQueue:
    """Datums (with their hashes) not yet handed to a worker; shared by a job's workers."""

    def __init__(self, items: Iterable[tuple[Datum, str]]) -> None:
        self._items = deque(items)
        self._lock = threading.Lock()

    def pop(self) -> tuple[Datum, str] | None:
        with self._lock:
            return self._items.popleft() if self._items else None

    def drain(self) -> list[tuple[Datum, str]]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._items)


@dataclass
class _Progress:
    """One datum across its attempts."""

    datum: Datum
    hash: str
    attempts: int = 0
    started: float = 0.0
    exit_code: int | None = None
    error: str = ""
    log: bytearray = field(default_factory=bytearray)


class _Channel:
    """The FIFOs of one process. cairn opens both read-write, so that its own opens never
    wait for the transform and it never sees end-of-file when the transform closes its end
    after a message. New FIFOs per process: a reply a dead process left unread is gone."""

    def __init__(self, folder: Path, uid: int | None) -> None:
        for name in ("request", "reply"):
            (folder / name).unlink(missing_ok=True)
            os.mkfifo(folder / name, 0o600)
            if uid is not None:
                grant(folder / name, uid)
        self.request = os.open(folder / "request", os.O_RDWR | os.O_NONBLOCK)
        self.reply = os.open(folder / "reply", os.O_RDWR)
        self._pending = b""

    def line(self) -> str | None:
        """One complete request line, if one has arrived."""
        while b"\n" not in self._pending:
            try:
                chunk = os.read(self.request, 4096)
            except BlockingIOError:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace").strip()

    def send(self, text: str) -> None:
        # One short line into an empty pipe: the write is atomic and does not block.
        os.write(self.reply, text.encode() + b"\n")

    def close(self) -> None:
        os.close(self.request)
        os.close(self.reply)


def _empty(folder: Path) -> None:
    """Remove everything inside ``folder`` (which stays), including read-only folders."""

    def unlock(func: Callable[[str], object], path: str, _exc: object) -> None:
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        func(path)

    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, onerror=unlock)
            else:
                os.unlink(entry.path)


class _Worker:
    """One worker: a scratch folder, and one process after another until no datum is left."""

    def __init__(
        self,
        data: DataStore,
        ctx: RunContext,
        queue: DatumQueue,
        emit: Callable[[DatumResult], None],
        scratch: Path,
    ) -> None:
        self.data, self.ctx, self.queue, self.emit = data, ctx, queue, emit
        self.layout = ctx.layout(scratch / "pfs")
        self.uid: int | None = None
        self.channel_dir = scratch / "channel"
        self.scratch = scratch
        self.accept = {0, *ctx.transform.accept_return_code}
        self.layout.out.mkdir(parents=True)
        self.channel_dir.mkdir()

    def run(self) -> None:
        retry: deque[_Progress] = deque()
        strikes = 0
        number = 0
        while retry or self.queue:
            number += 1
            retry_next: deque[_Progress] = deque()
            asked, why, log = self._process(number, retry, retry_next)
            retry = retry_next + retry  # what this process did not take is still owed
            strikes = 0 if asked else strikes + 1
            if strikes >= self.ctx.tries:
                self._give_up(retry, f"{why} ({strikes} processes in a row)", log)
                return

    def _give_up(self, retry: deque[_Progress], why: str, log: bytes) -> None:
        left = list(retry) + [_Progress(d, h) for d, h in self.queue.drain()]
        for p in left:
            p.log += log + f"[cairn] {why}\n".encode()
            p.error = why
            self._final_failure(p)

    def _pop(self, fresh: deque[_Progress]) -> _Progress | None:
        if fresh:
            return fresh.popleft()
        item = self.queue.pop()
        return None if item is None else _Progress(*item)

    def _clear(self) -> None:
        """Empty ``out`` and every input folder after a datum. The folders themselves stay
        for the next datum: removing a folder costs a file system far more than emptying
        it (milliseconds on ext4 mounted with ``discard``), and most datums of a pipeline
        have the same inputs."""
        out = self.layout.out
        with os.scandir(self.layout.pfs) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    _empty(Path(entry.path))
                else:  # e.g. out replaced by a file or link on the host; refused by collect
                    os.unlink(entry.path)
        if not out.is_dir():
            out.mkdir()
            if self.uid is not None:
                grant(out, self.uid)

    def _lay_out(self, datum: Datum) -> None:
        """The datum's inputs, and no folder of an input it does not have."""
        names = {f.input for f in datum.files}
        with os.scandir(self.layout.pfs) as entries:
            for entry in entries:
                if entry.name != "out" and entry.name not in names:
                    shutil.rmtree(entry.path)
        materialize(self.data, datum, self.layout.pfs)

    def _process(
        self, number: int, fresh: deque[_Progress], retry: deque[_Progress]
    ) -> tuple[bool, str, bytes]:
        """Run one process over datums until it exits or is killed. Datums from ``fresh``
        come first; failed attempts go to ``retry``. Returns (it asked for a datum, why
        not, the process log when it did not)."""
        with sandbox_uid() as uid:
            self.uid = uid if self.ctx.sandbox else None
            try:
                return self._run_process(number, fresh, retry)
            finally:
                self.uid = None

    def _run_process(
        self, number: int, fresh: deque[_Progress], retry: deque[_Progress]
    ) -> tuple[bool, str, bytes]:
        ctx = self.ctx
        if self.uid is not None:
            grant(self.layout.out, self.uid)
        channel = _Channel(self.channel_dir, self.uid)
        log_path = self.scratch / f"process-{number}.log"
        env = transform_env(ctx, "/pfs" if ctx.sandbox else str(self.layout.pfs))
        argv, pfs_seen, channel_seen = wrap_batch_command(
            list(ctx.transform.cmd),
            self.layout,
            self.channel_dir,
            sandbox=ctx.sandbox,
            limits=ctx.limits,
            uid=self.uid,
            env_path=env["PATH"],
        )
        env[CHANNEL_ENV] = channel_seen
        current: _Progress | None = None
        asked = took = ended = False
        mark = 0
        proc: subprocess.Popen[bytes] | None = None
        pidfd = -1
        with (
            stdin_file(ctx.transform.stdin) as inp,
            open(log_path, "ab") as out,
            open(log_path, "rb") as log,
        ):

            def since(start: int) -> bytes:
                size = os.fstat(log.fileno()).st_size
                return os.pread(
                    log.fileno(), min(size - start, _LOG_LIMIT), max(start, size - _LOG_LIMIT)
                )

            try:
                missing = (
                    ""
                    if ctx.sandbox
                    else missing_program(list(ctx.transform.cmd), env["PATH"], ctx.cwd)
                )
                if missing:
                    return False, missing, f"[cairn] {missing}\n".encode()
                started = spawn(argv, inp, out, env, ctx.cwd)
                if isinstance(started, str):
                    return False, started, f"[cairn] {started}\n".encode()
                proc = started
                pidfd = os.pidfd_open(proc.pid)
                deadline = None if ctx.timeout is None else time.monotonic() + ctx.timeout
                while True:
                    event, line = self._wait(channel, pidfd, deadline)
                    if event == "request":
                        verb, _, reason = line.partition(" ")
                        if verb not in ("next", "fail"):
                            why = f"the transform sent {line!r}; expected 'next' or 'fail <reason>'"
                            if current is not None:
                                self._failed(current, why, since(mark), None, retry)
                                return True, "", b""
                            return asked, why, since(0) + f"[cairn] {why}\n".encode()
                        asked = True
                        if current is not None:
                            text = since(mark)
                            if verb == "next":
                                self._succeeded(current, text, retry)
                            else:
                                why = reason.strip() or "the transform reported the datum failed"
                                self._failed(current, why, text, None, retry)
                            current = None
                        self._clear()
                        nxt = None if ended else self._pop(fresh)
                        if nxt is None:
                            ended = True
                            channel.send(_END)
                            continue
                        mark = 0 if not took else os.fstat(log.fileno()).st_size
                        nxt.attempts += 1
                        nxt.started = nxt.started or time.monotonic()
                        if nxt.attempts == 1:
                            nxt.log += f"[cairn] limits: {ctx.limits.describe()}\n".encode()
                        nxt.log += f"[cairn] attempt {nxt.attempts} of {ctx.tries}\n".encode()
                        self._lay_out(nxt.datum)
                        channel.send(nxt.datum.id)
                        current, took = nxt, True
                        if ctx.timeout is not None:
                            deadline = time.monotonic() + ctx.timeout
                    elif event == "exit":
                        code = proc.wait()
                        if current is not None:
                            text = since(mark)
                            if code in self.accept:
                                self._succeeded(current, text, retry)
                            else:
                                why = exit_reason(code, text, ctx.limits)
                                self._failed(current, why, text, code, retry)
                        if not asked:
                            why = f"the transform exited with code {code} before asking for a datum"
                            return False, why, since(0) + f"[cairn] {why}\n".encode()
                        return True, "", b""
                    else:  # timeout
                        why = f"timed out after {ctx.timeout}s"
                        note = f"\n[cairn] killed after datum_timeout {ctx.timeout}s\n".encode()
                        if current is not None:
                            self._kill(proc)
                            self._failed(current, why, since(mark) + note, None, retry)
                            return True, "", b""
                        if not asked:
                            why = (
                                "the transform did not ask for a datum within datum_timeout "
                                f"{ctx.timeout}s"
                            )
                            return False, why, since(0) + note
                        return True, "", b""  # it did not exit after "end"
            finally:
                if proc is not None:
                    self._kill(proc)
                if pidfd >= 0:
                    os.close(pidfd)
                channel.close()
                log_path.unlink(missing_ok=True)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    @staticmethod
    def _wait(channel: _Channel, pidfd: int, deadline: float | None) -> tuple[str, str]:
        """The next event: ("request", line), ("exit", "") or ("timeout", "")."""
        poller = select.poll()
        poller.register(channel.request, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            line = channel.line()
            if line is not None:
                return "request", line
            wait_ms = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout", ""
                wait_ms = int(left * 1000) + 1
            events = poller.poll(wait_ms)
            if any(fd == pidfd for fd, _ in events):
                line = channel.line()  # a last request written just before it exited
                return ("request", line) if line is not None else ("exit", "")

    def _succeeded(self, p: _Progress, text: bytes, retry: deque[_Progress]) -> None:
        p.log += text
        try:
            outputs = collect(self.data, self.layout, self.ctx.limits.output_bytes)
        except (InvalidPath, LimitExceeded, OSError) as exc:
            self._failed(p, str(exc), b"", None, retry)
            return
        self.emit(
            DatumResult(
                p.datum,
                p.hash,
                "success",
                p.attempts,
                0,
                time.monotonic() - p.started,
                bytes(p.log),
                outputs,
            )
        )

    def _failed(
        self, p: _Progress, error: str, text: bytes, code: int | None, retry: deque[_Progress]
    ) -> None:
        p.log += text + f"[cairn] {error}\n".encode()
        p.error, p.exit_code = error, code
        if p.attempts < self.ctx.tries:
            retry.append(p)
        else:
            self._final_failure(p)

    def _final_failure(self, p: _Progress) -> None:
        recovered = bool(self.ctx.transform.err_cmd) and run_err_cmd(
            self.data, self.ctx, p.datum, p.log
        )
        self.emit(
            DatumResult(
                p.datum,
                p.hash,
                "recovered" if recovered else "failed",
                p.attempts,
                p.exit_code,
                time.monotonic() - p.started if p.started else 0.0,
                bytes(p.log),
                {},
                p.error,
            )
        )


def run_batch(
    data: DataStore, ctx: RunContext, queue: DatumQueue, emit: Callable[[DatumResult], None]
) -> None:
    """One worker of a batching job: take datums from ``queue`` until it is empty, running
    them in as few processes as the transform allows, and ``emit`` each datum's result
    (success, failed or recovered) as it is known. Raises only for cairn's own failures
    (e.g. OSError in its scratch folder), never for the transform's."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{ctx.pipeline}-batch-", dir=ctx.work_dir))
    try:
        _Worker(data, ctx, queue, emit, scratch).run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
