"""Running one datum: materialize its inputs, run the transform, collect ``out``.

Per attempt (up to ``datum_tries``): a fresh ``out`` folder, the command with
``transform.stdin`` lines on its standard input, killed after
``datum_timeout``. Success is exit code 0 or one listed in
``accept_return_code``. After the last failed attempt ``err_cmd`` (with
``err_stdin``) may run; if it exits 0 the datum is *recovered*: the job
succeeds, but the datum contributes no output (as in Pachyderm).

Limits (``cairn.pipelines.sandbox.Limits``, from ``resource_limits``) are named on the
first line of each datum's log. A datum killed by ``SIGXCPU`` or ``SIGXFSZ``, or whose
``out`` holds more than the output limit, fails with that limit as its reason; a failed
allocation, fork or write inside a limit shows in the log as the program reports it, and
the reason adds the limit the message points to.

Outputs: every regular file under ``out``. A symlink is followed when it
points inside the datum's ``<pfs>`` folder (Pachyderm's idiom of linking an
input into the output) and refused otherwise, so a datum cannot publish
arbitrary host files.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cairn.data import DataStore, InvalidPath
from cairn.data.paths import normalize
from cairn.pipelines.containers import wrap_container
from cairn.pipelines.datums import Datum
from cairn.pipelines.errors import LimitExceeded
from cairn.pipelines.sandbox import (
    DEFAULT_LIMITS,
    Layout,
    Limits,
    grant,
    sandbox_uid,
    wrap_command,
)
from cairn.pipelines.spec import ResourceSpec, Transform
from cairn.storage import Content

__all__ = [
    "DatumResult",
    "RunContext",
    "collect",
    "datum_env",
    "limits_for",
    "materialize",
    "missing_program",
    "run_datum",
    "run_err_cmd",
    "spawn",
    "stdin_file",
    "transform_env",
    "workers_for",
]

_LOG_LIMIT = 4 << 20


@dataclass(frozen=True)
class RunContext:
    """What every datum of one job shares."""

    pipeline: str
    job: str
    transform: Transform
    tries: int
    timeout: float | None
    cwd: Path
    work_dir: Path
    sandbox: bool
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    private: tuple[Path, ...] = ()  # host paths kept out of the sandbox (the store)
    shared: tuple[Path, ...] = ()  # folders inside those that a spec folder may be (code)
    # the container runtime that runs each datum in transform.image (cairn.pipelines.containers)
    container: str | None = None

    def layout(self, pfs: Path, inputs: tuple[str, ...] = ()) -> Layout:
        return Layout(pfs, inputs, self.cwd, self.private, self.shared)


def limits_for(spec: ResourceSpec | None, timeout: float | None) -> Limits:
    """The limits of a datum of a pipeline with ``resource_limits`` ``spec``: ``memory``
    bounds address space, ``disk`` both the output and each private tmpfs, ``processes``
    the tasks, and ``cpu`` cores times ``datum_timeout`` the CPU seconds (with no timeout,
    cores cannot be enforced by rlimits and the default CPU time holds). Unset: defaults."""
    if spec is None:
        return DEFAULT_LIMITS
    d = DEFAULT_LIMITS
    disk = None if spec.disk is None else int(spec.disk)
    cpu = d.cpu_seconds
    if spec.cpu and timeout:
        cpu = max(1, math.ceil(spec.cpu * timeout))
    return Limits(
        processes=spec.processes or d.processes,
        memory=int(spec.memory) if spec.memory else d.memory,
        cpu_seconds=cpu,
        output_bytes=disk or d.output_bytes,
        scratch_bytes=disk or d.scratch_bytes,
    )


def workers_for(wanted: int, requests: ResourceSpec | None, cores: int, memory: int) -> int:
    """How many of ``wanted`` workers fit this machine (``cores``, ``memory`` bytes) when
    each asks ``requests`` (``resource_requests``), as Pachyderm's scheduler places no more
    workers on a node than its requests fit; at least 1. Unset requests fit any number."""
    fit = wanted
    if requests is not None and requests.cpu:
        fit = min(fit, int(cores // requests.cpu))
    if requests is not None and requests.memory:
        fit = min(fit, int(memory // requests.memory))
    return max(1, fit)


# What a program prints when a limit stops it, and the limit that is then the likely cause.
_SYMPTOMS = (
    (b"MemoryError", "memory"),
    (b"Cannot allocate memory", "memory"),
    (b"std::bad_alloc", "memory"),
    (b"Resource temporarily unavailable", "processes"),
    (b"retry: No child processes", "processes"),
    (b"No space left on device", "scratch"),
    (b"File size limit exceeded", "output"),
)
_SIGNALS = {signal.SIGXCPU: "its CPU time limit", signal.SIGXFSZ: "its output limit (file size)"}


def exit_reason(code: int | None, log: bytes | bytearray, limits: Limits) -> str:
    """Why a command that exited with ``code`` failed: a limit's signal (directly, or as
    the shell's 128+N) names the limit; otherwise the exit code, plus the limit the log's
    own error message points to, if any."""
    if code is not None:
        for sig, what in _SIGNALS.items():
            if code in (-sig, 128 + sig):
                return f"killed by {sig.name}: over {what}"
    reason = f"exit code {code}"
    tail = bytes(log[-65536:])
    hits = sorted({name for marker, name in _SYMPTOMS if marker in tail})
    if hits:
        reason += f" (its log reports hitting a limit: {', '.join(hits)}; {limits.describe()})"
    return reason


@dataclass
class DatumResult:
    """Outcome of one datum: ``state`` is success, failed or recovered; ``node`` and
    ``environment`` say where a cluster executor ran it (see DatumInfo)."""

    datum: Datum
    hash: str
    state: str
    attempts: int
    exit_code: int | None
    duration: float
    log: bytes
    outputs: dict[str, Content]
    error: str = ""
    node: str = ""
    environment: str = ""

    @property
    def bytes_out(self) -> int:
        return sum(c.size for c in self.outputs.values())


def materialize(data: DataStore, datum: Datum, pfs: Path) -> tuple[str, ...]:
    """Write the datum's input files read-only at ``pfs/<input>/<path>``; returns the input
    names in first-seen order (each gets a folder, even when empty)."""
    names: list[str] = []
    for f in datum.files:
        if f.input not in names:
            names.append(f.input)
        target = pfs / f.input / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            continue
        with open(target, "wb") as out:
            for piece in data.chunks.read(f.entry.content):
                out.write(piece)
        target.chmod(0o444)
    for name in names:
        (pfs / name).mkdir(exist_ok=True)
    return tuple(names)


def missing_program(cmd: list[str], path: str, cwd: Path) -> str:
    """Why the host cannot start ``cmd`` ("" when it can): checked before ``prlimit``
    wraps it, so that a missing program fails as before rather than as prlimit's exit."""
    program = cmd[0] if cmd else ""
    if "/" in program:
        target = cwd / program
        ok = target.is_file() and os.access(target, os.X_OK)
    else:
        ok = bool(program) and shutil.which(program, path=path) is not None
    return "" if ok else f"cannot start {program!r}: no such executable program"


@contextmanager
def stdin_file(lines: Iterable[str]) -> Iterator[IO[bytes]]:
    """A temporary file holding ``lines``, one per line, to be read from its start: a
    command's standard input (a file, not a pipe; see ``_run``)."""
    with tempfile.TemporaryFile() as f:
        f.write("".join(line + "\n" for line in lines).encode())
        f.seek(0)
        yield f


def spawn(
    argv: list[str], stdin: IO[bytes], stdout: IO[bytes], env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes] | str:
    """Start ``argv`` in a session (process group) of its own, its standard error joined to
    ``stdout``. Returns the process, or why it could not start (``cannot start …``)."""
    try:
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        return f"cannot start {argv[0]!r}: {exc}"


def _run(
    argv: list[str],
    stdin: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float | None,
    log: bytearray,
) -> tuple[int | None, str]:
    """Run one process group; append its output to ``log``. Returns (exit code, error).

    Standard input and output go through temporary files, not pipes, so a process that
    outlives the command (a daemon it started) cannot hold the datum open past its
    timeout; whatever is left of the process group is killed when the command ends.
    """
    with stdin_file(stdin) as inp, tempfile.TemporaryFile() as out:
        proc = spawn(argv, inp, out, env, cwd)
        if isinstance(proc, str):
            log += f"{proc}\n".encode()
            return None, proc
        code: int | None
        error = ""
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code, error = None, f"timed out after {timeout}s"
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        size = out.seek(0, os.SEEK_END)
        out.seek(max(0, size - _LOG_LIMIT))
        log += out.read()
    if error:
        log += f"\n[cairn] killed after datum_timeout {timeout}s\n".encode()
    return code, error


def collect(data: DataStore, layout: Layout, limit: int | None = None) -> dict[str, Content]:
    """Store every file under ``layout.out`` and return output path -> content, following
    symlinks into ``layout.pfs`` only. Raises InvalidPath (``out`` replaced, a link out of
    ``<pfs>``), LimitExceeded (more than ``limit`` bytes in all) or OSError."""
    outputs: dict[str, Content] = {}
    total = 0

    def store(path: Path) -> Content:
        nonlocal total
        total += path.stat().st_size
        if limit is not None and total > limit:
            raise LimitExceeded(f"the datum's outputs exceed its output limit of {limit} bytes")
        with open(path, "rb") as f:
            return data.chunks.write(f)

    root = layout.out
    if root.is_symlink() or not root.is_dir():
        raise InvalidPath("the datum replaced /pfs/out itself; write files inside it")
    pfs_real = layout.pfs.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            real = path
            if path.is_symlink():
                target = os.readlink(path)
                if target.startswith("/pfs/"):  # written inside the sandbox
                    target = str(layout.pfs / target[len("/pfs/") :])
                real = (path.parent / target).resolve()
                if not real.is_relative_to(pfs_real):
                    raise InvalidPath(f"output /{rel} links outside /pfs (to {target})")
            if real.is_dir():
                for sub in sorted(real.rglob("*")):
                    if sub.is_file():
                        key = normalize(f"{rel}/{sub.relative_to(real).as_posix()}")
                        outputs[key] = store(sub)
                continue
            if not real.is_file():
                continue
            outputs[normalize(rel, allow_root=False)] = store(real)
    return outputs


def transform_env(ctx: RunContext, pfs_seen: str) -> dict[str, str]:
    """The environment every command of the job gets: a few host variables, the context's
    and the spec's variables, then ``CAIRN_PFS`` and Pachyderm's job variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Home folders are not in the sandbox; its /tmp is private and writable.
        "HOME": "/tmp" if ctx.sandbox else os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        **ctx.env,
        **ctx.transform.env,
        "CAIRN_PFS": pfs_seen,
        "PACH_JOB_ID": ctx.job,
        "PACH_OUTPUT_COMMIT_ID": ctx.job,
    }


def datum_env(datum: Datum, pfs_seen: str) -> dict[str, str]:
    """The variables Pachyderm sets for one datum: ``PACH_DATUM_ID``; per input ``<input>``
    (the path of its matched file or folder under ``pfs_seen``), ``<input>_COMMIT`` (the
    input commit's id), and inside a join or group ``PACH_DATUM_<input>_JOIN_ON`` /
    ``PACH_DATUM_<input>_GROUP_BY`` (the datum's key for that input)."""
    env = {"PACH_DATUM_ID": datum.id}
    for name, _repo, _branch, root in datum.roots:
        env[name] = f"{pfs_seen}/{name}{root if root != '/' else ''}"
    for f in datum.files:
        env.setdefault(f"{f.input}_COMMIT", f.commit)
    for name, kind, key in datum.keys:
        env[f"PACH_DATUM_{name}_{kind}"] = key
    return env


def _attempt(
    ctx: RunContext,
    datum: Datum,
    layout: Layout,
    cmd: list[str],
    stdin: list[str],
    log: bytearray,
) -> tuple[int | None, str]:
    """One run of ``cmd`` over a fresh ``out``, with the datum's own variables set."""
    shutil.rmtree(layout.out, ignore_errors=True)
    layout.out.mkdir()
    with sandbox_uid() as uid:
        if ctx.sandbox and ctx.container is None:
            grant(layout.out, uid)
        pfs_seen = "/pfs" if ctx.sandbox or ctx.container else str(layout.pfs)
        env = transform_env(ctx, pfs_seen)
        if ctx.container is not None and ctx.transform.image:
            env.update(datum_env(datum, pfs_seen))
            argv = wrap_container(ctx.container, ctx.transform.image, cmd, layout, env)
            # the runtime's client reads its own settings (CONTAINERS_CONF, DOCKER_HOST...)
            # from the environment; only the names above enter the container
            env = {**os.environ, **env}
        else:
            missing = "" if ctx.sandbox else missing_program(cmd, env["PATH"], ctx.cwd)
            if missing:
                log += f"{missing}\n".encode()
                return None, missing
            argv, pfs_seen = wrap_command(
                cmd, layout, sandbox=ctx.sandbox, limits=ctx.limits, uid=uid, env_path=env["PATH"]
            )
            env.update(datum_env(datum, pfs_seen))
        code, error = _run(argv, stdin, env, ctx.cwd, ctx.timeout, log)
    return code, error or ("" if code == 0 else exit_reason(code, log, ctx.limits))


def run_err_cmd(data: DataStore, ctx: RunContext, datum: Datum, log: bytearray) -> bool:
    """Run ``err_cmd`` once for ``datum`` in its own scratch folder, as after a datum's last
    failed attempt; True when it exits 0 (the datum is recovered). Appends to ``log``."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{ctx.pipeline}-{datum.id[:12]}-", dir=ctx.work_dir))
    try:
        pfs = scratch / "pfs"
        pfs.mkdir()
        layout = ctx.layout(pfs, materialize(data, datum, pfs))
        log += b"[cairn] running err_cmd\n"
        cmd, stdin = list(ctx.transform.err_cmd), list(ctx.transform.err_stdin)
        code, _ = _attempt(ctx, datum, layout, cmd, stdin, log)
        return code == 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_datum(data: DataStore, ctx: RunContext, datum: Datum, datum_hash: str) -> DatumResult:
    """Run ``datum`` to completion (with retries and err_cmd); never raises for the
    command's failures, only returns them."""
    started = time.monotonic()
    log = bytearray()
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{ctx.pipeline}-{datum.id[:12]}-", dir=ctx.work_dir))
    exit_code: int | None = None
    error = ""
    try:
        pfs = scratch / "pfs"
        pfs.mkdir()
        layout = ctx.layout(pfs, materialize(data, datum, pfs))
        accept = {0, *ctx.transform.accept_return_code}
        log += f"[cairn] limits: {ctx.limits.describe()}\n".encode()

        def attempt(cmd: list[str], stdin: list[str]) -> tuple[int | None, str]:
            return _attempt(ctx, datum, layout, cmd, stdin, log)

        attempts = 0
        for attempts in range(1, ctx.tries + 1):
            log += f"[cairn] attempt {attempts} of {ctx.tries}\n".encode()
            exit_code, error = attempt(list(ctx.transform.cmd), list(ctx.transform.stdin))
            if exit_code in accept:
                try:
                    outputs = collect(data, layout, ctx.limits.output_bytes)
                except (InvalidPath, LimitExceeded, OSError) as exc:
                    error = str(exc)
                    log += f"[cairn] {exc}\n".encode()
                    continue
                return DatumResult(
                    datum,
                    datum_hash,
                    "success",
                    attempts,
                    exit_code,
                    time.monotonic() - started,
                    bytes(log),
                    outputs,
                )
        if ctx.transform.err_cmd:
            log += b"[cairn] running err_cmd\n"
            code, _ = attempt(list(ctx.transform.err_cmd), list(ctx.transform.err_stdin))
            if code == 0:
                return DatumResult(
                    datum,
                    datum_hash,
                    "recovered",
                    attempts,
                    exit_code,
                    time.monotonic() - started,
                    bytes(log),
                    {},
                    error,
                )
        return DatumResult(
            datum,
            datum_hash,
            "failed",
            attempts,
            exit_code,
            time.monotonic() - started,
            bytes(log),
            {},
            error,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
