"""Spouts and services: pipelines whose transform is one long-lived process, not jobs.

Pachyderm runs these as pods that never finish; cairn runs them as host processes for as
long as a runner runs (``cairn run``, or the worker of ``cairn server``), one per pipeline,
supervised by :class:`Daemons` (its ``sync`` runs once per round of the runner).

Spout (``spout: {}``, no input): the process writes its output repo itself, as a Pachyderm
2 spout does with ``pachctl put file`` or the SDK: ``cairn put file NAME@master:/x -f -``
or ``cairn.Client()`` reach the runner's store (``CAIRN_HOME`` is set, ``CAIRN_URL`` is
not) and ``cairn`` is on its ``PATH``. Each put is a commit of the output repo (a repo of
type ``spout``, the one pipeline output that takes puts), and the pipelines downstream run
on it in the runner's next round (``CAIRN_AUTO_RUN`` is off in the process). Variables:
``PPS_PIPELINE_NAME``, ``CAIRN_OUTPUT_REPO``, ``CAIRN_OUTPUT_BRANCH`` (the spec's
``output_branch``), ``CAIRN_HOME``.

Service (``service: {internal_port, external_port}``, with an input): the process sees its
whole input as one datum (every datum the globs cut, together) at ``$CAIRN_PFS/<input>``,
with the per-input variables of a job, and listens on ``internal_port``; cairn forwards
``127.0.0.1:external_port`` to it (when the two differ; otherwise the process's own port
is the one exposed). A new head of any input restarts it over the new data. ``type``,
``ip`` and ``annotations`` are recorded only: there is no Kubernetes Service.

State machine of one pipeline's process::

    (absent) ──start──► running ──dies──► backoff ──delay over──► running
                           │                 │
        paused, deleted,   └──► stopped ◄────┘  (also: spec or input changed → restart now)
        runner stops

One process per pipeline among all the runners of a store: a runner starts one only
while it holds the catalog lock ``daemon.<pipeline>`` (``Catalog.lock(wait=False)``), and
releases it when it stops the process; another runner takes over in its next round.

A process that dies is started again after 0.5 s, 1 s, 2 s ... up to ``MAX_BACKOFF``
seconds; one that ran ``HEALTHY_AFTER`` seconds starts over at 0.5 s. Stopping sends
SIGTERM to its process group, then SIGKILL after ``STOP_GRACE`` seconds; the processes
also get SIGTERM if the runner dies (``PR_SET_PDEATHSIG``). Output (stdout and stderr)
goes to ``<work>/daemons/<pipeline>.log``.

Differences from Pachyderm, on purpose: the processes run on the host as the runner's
user, not in the datum sandbox (a spout must reach the store, which the sandbox hides; a
service must be reachable); ``transform.secrets``, ``image`` and resource limits are not
applied to them; the Pachyderm 1.x spout convention of a named pipe at ``/pfs/out`` is not
offered.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cairn.data import DataStore, NotFound, Ref
from cairn.pipelines.datums import build_datums
from cairn.pipelines.executor import materialize
from cairn.pipelines.models import PipelineInfo
from cairn.pipelines.rows import load_pipelines

__all__ = ["HEALTHY_AFTER", "MAX_BACKOFF", "STOP_GRACE", "Daemons"]

MAX_BACKOFF = 30.0
HEALTHY_AFTER = 30.0
STOP_GRACE = 5.0
_PR_SET_PDEATHSIG = 1


def _die_with_runner() -> None:
    # Runs in the child between fork and exec: a runner killed outright (SIGKILL) leaves
    # no process behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Forward(socketserver.ThreadingTCPServer):
    """``127.0.0.1:external`` → ``127.0.0.1:internal``, one pair of pump threads a connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, external: int, internal: int) -> None:
        self.internal = internal
        super().__init__(("127.0.0.1", external), _Pump)


class _Pump(socketserver.BaseRequestHandler):
    server: _Forward

    def handle(self) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.server.internal), timeout=10)
        except OSError:
            return  # not listening yet: the client sees the connection closed
        upstream.settimeout(None)
        back = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
        back.start()
        _copy(self.request, upstream)
        back.join()
        upstream.close()


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@dataclass
class _Running:
    """One pipeline's supervised process and what it was started for."""

    key: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    folder: Path | None = None
    forward: _Forward | None = None
    log: IO[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    # holds the catalog lock ``daemon.<pipeline>`` while this runner owns the process
    claim: contextlib.ExitStack | None = None


class Daemons:
    """The long-lived processes of the spout and service pipelines of one store.

    ``pipelines`` is a :class:`cairn.pipelines.service.Pipelines`; ``env`` is added to
    every process's environment (the client passes ``CAIRN_HOME``). Not thread-safe: one
    runner thread calls :meth:`sync` and :meth:`stop`."""

    def __init__(self, pipelines: Any, env: dict[str, str] | None = None) -> None:
        self.pipelines = pipelines
        self.data: DataStore = pipelines.data
        self.env = dict(env or {})
        self._running: dict[str, _Running] = {}

    @property
    def folder(self) -> Path:
        return Path(self.pipelines.work_dir) / "daemons"

    def pids(self) -> dict[str, int]:
        """Pipeline name → process id of each process alive now."""
        return {
            name: r.process.pid
            for name, r in self._running.items()
            if r.process is not None and r.process.poll() is None
        }

    def sync(self, now: float | None = None) -> None:
        """Bring the processes in line with the pipelines: start what should run, restart
        what died (after its backoff) or whose spec or input changed, stop the rest.
        A service whose input has no finished head yet waits without a process."""
        now = time.monotonic() if now is None else now
        good, _broken = load_pipelines(self.pipelines.catalog)
        wanted = {p.name: p for p in good if p.spec.long_lived and p.state == "running"}
        for name in [n for n in self._running if n not in wanted]:
            self._stop(name)
        for name, info in wanted.items():
            key = self._key(info)
            current = self._running.get(name)
            if current is not None and current.key != key:
                self._stop(name)
                current = None
            if key == "":
                continue  # a service waiting for its input
            if current is None:
                claim = self._claim(name)
                if claim is None:
                    continue  # another runner of this store runs it
                current = self._running[name] = _Running(key, claim=claim)
                self._try_start(info, current, now)
                continue
            process = current.process
            if process is not None and process.poll() is None:
                continue
            if process is not None:  # it died since the last round
                current.process = None
                self._back_off(current, now, healthy=now - current.started >= HEALTHY_AFTER)
            if now >= current.next_start:
                self._try_start(info, current, now)

    def _claim(self, name: str) -> contextlib.ExitStack | None:
        """The held lock ``daemon.<name>``, or None when another runner holds it."""
        stack = contextlib.ExitStack()
        if stack.enter_context(self.pipelines.catalog.lock(f"daemon.{name}", wait=False)):
            return stack
        stack.close()
        return None

    def _try_start(self, info: PipelineInfo, running: _Running, now: float) -> None:
        # A process that cannot start (a missing program, a port taken) is retried with
        # the same backoff as one that died, its error in its log: the runner goes on.
        try:
            self._start(info, running, now)
        except OSError as exc:
            if running.log is not None:
                running.log.write(f"[cairn] cannot start: {exc}\n".encode())
                running.log.flush()
            running.process, running.started = None, now
            self._back_off(running, now, healthy=False)

    @staticmethod
    def _back_off(running: _Running, now: float, *, healthy: bool) -> None:
        running.failures = 1 if healthy else running.failures + 1
        running.next_start = now + min(MAX_BACKOFF, 0.5 * 2 ** (running.failures - 1))

    def stop(self) -> None:
        """Stop every process (SIGTERM to its group, SIGKILL after ``STOP_GRACE`` s)."""
        for name in list(self._running):
            self._stop(name)

    # -- one process -------------------------------------------------------------------
    def _key(self, info: PipelineInfo) -> str:
        """What the process was started for: the spec version, and for a service the
        heads of its inputs ("" while one is missing or open)."""
        if info.spec.spout is not None:
            return f"v{info.version}"
        heads = self._heads(info)
        if heads is None:
            return ""
        return json.dumps([info.version, sorted((k[0], k[1], c.id) for k, c in heads.items())])

    def _heads(self, info: PipelineInfo) -> dict[tuple[str, str], Any] | None:
        heads = {}
        for pfs in info.spec.pfs_inputs():
            try:
                commit = self.data.resolve(Ref(pfs.repo, pfs.branch))
            except NotFound:
                return None
            if commit.state != "finished":
                return None
            heads[(pfs.repo, pfs.branch)] = commit
        return heads

    def _start(self, info: PipelineInfo, running: _Running, now: float) -> None:
        spec = info.spec
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **{k: os.environ[k] for k in ("PYTHONPATH", "TZ") if k in os.environ},
            **spec.transform.env,
            **self.env,
            # the runner's next round runs what the writes trigger, not the writer
            "CAIRN_AUTO_RUN": "false",
            "PPS_PIPELINE_NAME": info.name,
            "CAIRN_OUTPUT_REPO": info.name,
            "CAIRN_OUTPUT_BRANCH": spec.output_branch,
        }
        service = spec.service or (spec.spout.service if spec.spout else None)
        if spec.service is not None and running.folder is None:
            running.folder = self._materialize(info)
        if running.folder is not None:
            pfs = running.folder / "pfs"
            env["CAIRN_PFS"] = str(pfs)
            for leaf in spec.pfs_inputs():
                env[leaf.input_name] = str(pfs / leaf.input_name)
        if running.log is None:
            running.log = open(self.folder / f"{info.name}.log", "ab")  # noqa: SIM115
        running.log.write(f"[cairn] starting {info.name} at {time.ctime()}\n".encode())
        running.log.flush()
        process = subprocess.Popen(
            list(spec.transform.cmd),
            stdin=subprocess.PIPE if spec.transform.stdin else subprocess.DEVNULL,
            stdout=running.log,
            stderr=subprocess.STDOUT,
            cwd=info.spec_dir,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_runner,  # noqa: PLW1509 - only prctl, before exec
        )
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.write("".join(f"{line}\n" for line in spec.transform.stdin).encode())
                process.stdin.close()
        running.process, running.started = process, now
        running.restarts.append(now)
        if service is not None and running.forward is None:
            if service.external_port != service.internal_port:
                running.forward = _Forward(service.external_port, service.internal_port)
                threading.Thread(target=running.forward.serve_forever, daemon=True).start()

    def _materialize(self, info: PipelineInfo) -> Path:
        """The whole input, every datum's files together, in a fresh folder."""
        assert info.spec.input is not None  # a service has one (spec validation)
        heads = self._heads(info) or {}
        folder = self.folder / info.name
        shutil.rmtree(folder, ignore_errors=True)
        pfs = folder / "pfs"
        pfs.mkdir(parents=True)
        for datum in build_datums(self.data, info.spec.input, heads):
            materialize(self.data, datum, pfs)
        for leaf in info.spec.pfs_inputs():
            (pfs / leaf.input_name).mkdir(exist_ok=True)
        return folder

    def _stop(self, name: str) -> None:
        running = self._running.pop(name, None)
        if running is None:
            return
        process = running.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process is not None:
            # what the process left in its group (a shell's children) goes with it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if running.forward is not None:
            running.forward.shutdown()
            running.forward.server_close()
        if running.log is not None:
            running.log.close()
        if running.folder is not None:
            shutil.rmtree(running.folder, ignore_errors=True)
        if running.claim is not None:
            running.claim.close()
