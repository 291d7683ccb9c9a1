"""Where a datum's command runs: a bubblewrap sandbox when there is one, else the host.

Layout seen by the command (Pachyderm's): inputs at ``<pfs>/<input name>/<path
in repo>``, output folder ``<pfs>/out``; ``$CAIRN_PFS`` always holds ``<pfs>``.

Sandbox (``bwrap`` on PATH and able to start one) — what it guarantees:

* **No capability, no root.** When cairn runs as root, bwrap sets up the mounts and
  then the command runs through ``setpriv`` as an unprivileged host uid of its own
  (``SANDBOX_UID_BASE`` + a slot, one uid per concurrent datum), with no supplementary
  groups, an empty capability bounding set and ``no_new_privs`` (so set-uid programs
  such as ``sudo`` gain nothing). As another user, the command keeps that user's uid
  inside a user namespace (``--unshare-user``) that may not create further user
  namespaces. Either way ``--cap-drop ALL``: no remount, no ``/proc/sys`` writes, no
  mounts that reach the host.
* **Own namespaces**: uts, ipc, pid (its own ``/proc``), net (no network) and, where
  the kernel allows, cgroup; ``--new-session``; ``--die-with-parent``.
* **Only what the command needs is bound**, read-only: ``/usr``, ``/bin``, ``/sbin``,
  ``/lib*`` (symlinks as on the host), ``/etc`` with its secrets masked (``shadow``,
  ``gshadow``, ssh host keys, ``/etc/ssl/private``...), the installations of the
  interpreters it can run (every ``PATH`` folder; for one holding a ``python``, its
  prefix and a virtual environment's base), cairn's own import path (transforms import
  ``cairn.sdk``), the spec's folder as the working directory, the datum's inputs and
  (writable) its ``out``. A cairn store (``.cairn`` in the spec's folder, the store's
  objects, catalog and work folders wherever they fall inside a bound folder) is masked
  by an empty folder. Home folders themselves, the host's ``/tmp``, ``/run``, ``/var``
  and ``/root`` are never bound; ``/tmp`` and ``/dev/shm`` are private tmpfs.
* **Limits per datum** (:class:`Limits`) as rlimits set by ``prlimit`` just before the
  command: processes (``RLIMIT_NPROC``), memory (``RLIMIT_AS``), CPU seconds
  (``RLIMIT_CPU``), bytes per written file (``RLIMIT_FSIZE``, the output limit; the
  executor also checks the total of ``out``), and the size of each private tmpfs (the
  scratch limit). rlimits, not cgroups: memory bounds address space, not resident
  memory, and ``RLIMIT_NPROC`` counts the tasks (threads too) of the datum's uid.

What it does not guarantee: there is no seccomp filter (every system call of the shared
kernel is reachable, so a kernel bug is an escape), no cgroup accounting (a process may
exhaust page cache or disk bandwidth), and the files bound read-only are readable by the
command as far as their modes allow.

Host (no bwrap, or ``CAIRN_SANDBOX=none``): ``<pfs>`` is a temporary folder, the
command runs unconfined as cairn's own user with the same rlimits, and every job says so
first. Code must read ``$CAIRN_PFS``.

A batch process (``transform.datum_batching``) outlives its datums, so its
inputs cannot be bound one by one: the whole ``<pfs>`` folder is bound
read-only at ``/pfs`` (the executor fills and empties it on the host between
datums, and the process sees each datum's folders appear), ``out`` is bound
writable over ``/pfs/out``, and the datum channel's folder at
``/run/cairn/datums``.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cairn.storage.settings import read_settings

__all__ = [
    "CHANNEL_IN_SANDBOX",
    "DEFAULT_LIMITS",
    "SANDBOX_UID_BASE",
    "Layout",
    "Limits",
    "grant",
    "others_can_enter",
    "sandbox_available",
    "sandbox_uid",
    "wrap_batch_command",
    "wrap_command",
]

CHANNEL_IN_SANDBOX = "/run/cairn/datums"
# Unused by distributions and by systemd's dynamic and container ranges (systemd's
# "UIDs and GIDs" document leaves 1879048192-2147483647 free).
SANDBOX_UID_BASE = 1_900_000_000
_SLOTS = 4096
_SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_NEVER = {"/", "/tmp", "/proc", "/sys", "/dev", "/run", "/var", "/root", "/home", "/etc"}
_ETC_SECRETS = (
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "security/opasswd",
    "ssl/private",
    "sudoers",
    "sudoers.d",
)


def _memory_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 << 30


@dataclass(frozen=True)
class Limits:
    """Per-datum limits; None means unlimited. Units: ``memory``, ``output_bytes`` and
    ``scratch_bytes`` in bytes, ``cpu_seconds`` in seconds of CPU time."""

    processes: int | None = 256
    memory: int | None = None
    cpu_seconds: int | None = 24 * 3600
    output_bytes: int | None = 16 << 30
    scratch_bytes: int | None = 1 << 30

    def describe(self) -> str:
        def size(n: int | None) -> str:
            return "unlimited" if n is None else f"{n / (1 << 20):.0f} MiB"

        return (
            f"processes {self.processes or 'unlimited'}, memory {size(self.memory)}, "
            f"cpu {self.cpu_seconds or 'unlimited'} s, output {size(self.output_bytes)}, "
            f"scratch {size(self.scratch_bytes)} per tmpfs"
        )


# Memory defaults to the machine's RAM: address space beyond it can only be swap.
DEFAULT_LIMITS = Limits(memory=_memory_total())


@dataclass(frozen=True)
class Layout:
    """Host folders of one datum run: ``pfs`` holds one folder per input and ``out``.

    ``private`` are host paths (a cairn store, its work folder) that must stay out of the
    sandbox even when they lie inside a bound folder such as ``cwd``; ``shared`` are
    folders inside them that ``cwd`` may be (the code bundles ``cairn server`` unpacks
    into its store folder): such a ``cwd`` is bound alone, never what is around it."""

    pfs: Path
    inputs: tuple[str, ...]
    cwd: Path
    private: tuple[Path, ...] = ()
    shared: tuple[Path, ...] = ()

    @property
    def out(self) -> Path:
        return self.pfs / "out"


def _as_root() -> bool:
    return os.geteuid() == 0


_free = set(range(_SLOTS))
_free_lock = threading.Lock()
_fallback = itertools.count()


@contextmanager
def sandbox_uid() -> Iterator[int]:
    """The host uid (also used as gid) one datum's command runs as, held for the block.

    As root: ``SANDBOX_UID_BASE`` plus a slot free in this process, offset by the process
    id so that two cairn processes rarely share one; so ``RLIMIT_NPROC`` counts one
    datum's processes. Otherwise the caller's own uid (the user namespace keeps count)."""
    if not _as_root():
        yield os.getuid()
        return
    with _free_lock:
        slot = min(_free) if _free else next(_fallback) % _SLOTS
        _free.discard(slot)
    try:
        yield SANDBOX_UID_BASE + (os.getpid() * 64 + slot) % (1 << 24)
    finally:
        with _free_lock:
            _free.add(slot)


def grant(path: Path, uid: int) -> None:
    """Let ``uid`` write ``path`` (a datum's ``out`` or a channel FIFO); a no-op unless root."""
    if _as_root():
        os.chown(path, uid, uid)


def others_can_enter(folder: Path) -> bool:
    """Whether a uid other than the owner may list and enter ``folder`` (mode o+rx)."""
    try:
        return os.stat(folder).st_mode & 0o005 == 0o005
    except OSError:
        return False


def _probe_argv() -> list[str]:
    return [*_system_args(), *_namespace_args(), "--", *_drop(SANDBOX_UID_BASE), "true"]


@functools.lru_cache(maxsize=1)
def sandbox_available() -> bool:
    """Whether bubblewrap can start this module's sandbox here (checked once per process);
    as root it also needs ``setpriv`` (util-linux)."""
    if not read_settings().sandbox:
        return False
    if shutil.which("bwrap") is None or (_as_root() and shutil.which("setpriv") is None):
        return False
    try:
        probe = subprocess.run(_probe_argv(), capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _system_args() -> list[str]:
    args = ["bwrap"]
    for name in _SYSTEM:
        entry = Path("/") / name
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.is_dir():
            args += ["--ro-bind", str(entry), str(entry)]
    args += ["--ro-bind", "/etc", "/etc"]
    for name in _ETC_SECRETS:
        args += _mask(Path("/etc") / name)
    for key in sorted(Path("/etc/ssh").glob("ssh_host_*key")):
        args += _mask(key)
    return args + ["--proc", "/proc", "--dev", "/dev"]


def _namespace_args() -> list[str]:
    args = ["--unshare-uts", "--unshare-ipc", "--unshare-pid", "--unshare-net"]
    args += ["--unshare-cgroup-try", "--new-session", "--die-with-parent", "--cap-drop", "ALL"]
    if _as_root():
        # Kept only for setpriv, which gives them up when it changes uid.
        return (
            args
            + ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            + [
                "--cap-add",
                "CAP_SETPCAP",
            ]
        )
    return args + ["--unshare-user", "--disable-userns"]


def _drop(uid: int) -> list[str]:
    if not _as_root():
        return []
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ]


def _mask(path: Path) -> list[str]:
    """Hide ``path`` (if it exists) behind an empty folder or an empty file."""
    if path.is_symlink() or not path.exists():
        return []
    if path.is_dir():
        return ["--perms", "0555", "--tmpfs", str(path)]
    return ["--ro-bind", "/dev/null", str(path)]


def _is_home(folder: Path) -> bool:
    """A home folder itself (``/root``, ``/home``, ``/home/<user>``, ``$HOME``)."""
    return folder in (Path("/root"), Path("/home"), Path.home()) or folder.parent == Path("/home")


def _prefix_of(folder: Path) -> list[Path]:
    """Folders an interpreter in ``folder`` needs: the folder, or for ``<prefix>/bin`` (or
    ``shims``) holding a ``python``, ``<prefix>`` and a virtual environment's base."""
    if folder.name not in ("bin", "shims") or not any(folder.glob("python*")):
        return [folder]
    found = [folder.parent]
    cfg = folder.parent / "pyvenv.cfg"
    try:
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                found.append(Path(value.strip()).parent)
    except OSError:
        pass
    return found


def _runtime_folders(cmd: list[str], path_env: str) -> list[Path]:
    """Host folders the command may run programs or import modules from."""
    import cairn

    wanted = [Path(sys.prefix), Path(sys.base_prefix), Path(cairn.__file__).parents[1]]
    wanted += [Path(p) for p in sys.path if p and os.path.isdir(p)]
    for entry in path_env.split(os.pathsep):
        if entry and os.path.isabs(entry) and os.path.isdir(entry):
            wanted += _prefix_of(Path(entry))
    if cmd and os.path.isabs(cmd[0]):
        wanted += _prefix_of(Path(cmd[0]).parent)
    return wanted


def _bindable(
    folders: Iterable[Path], private: tuple[Path, ...], shared: tuple[Path, ...] = ()
) -> list[Path]:
    """Resolved, existing folders, without system folders, home folders themselves, the
    host's /tmp itself, folders inside a private path (but inside a shared folder of one),
    or folders already covered."""
    chosen: list[Path] = []
    for folder in folders:
        try:
            real = folder.resolve(strict=True)
        except OSError:
            continue
        if not real.is_dir() or str(real) in _NEVER or _is_home(real):
            continue
        if real.parts[1:2] and real.parts[1] in (*_SYSTEM, "etc", "proc", "sys", "dev"):
            continue
        inside_shared = any(real.is_relative_to(s) and real != s for s in shared)
        if any(real.is_relative_to(p) for p in private) and not inside_shared:
            continue
        chosen.append(real)
    chosen.sort(key=lambda p: len(p.parts))
    kept: list[Path] = []
    for p in chosen:
        if not any(p.is_relative_to(k) for k in kept):
            kept.append(p)
    return kept


def _limit_args(limits: Limits) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return []
    args = [prlimit]
    for flag, value in (
        ("--nproc", limits.processes),
        ("--as", limits.memory),
        ("--cpu", limits.cpu_seconds),
        ("--fsize", limits.output_bytes),
    ):
        if value is not None:
            args.append(f"{flag}={value}")
    return args + ["--"] if len(args) > 1 else []


def _tmpfs(target: str, limits: Limits) -> list[str]:
    size = ["--size", str(limits.scratch_bytes)] if limits.scratch_bytes else []
    return [*size, "--perms", "1777", "--tmpfs", target]


def _base_args(layout: Layout, cmd: list[str], env_path: str, limits: Limits) -> list[str]:
    args = _system_args() + _tmpfs("/tmp", limits) + _tmpfs("/dev/shm", limits)
    private = tuple(_resolved([*layout.private, layout.cwd / ".cairn"]))
    folders = _bindable([*_runtime_folders(cmd, env_path)], private)
    shared = tuple(_resolved(layout.shared))
    folders += _bindable([layout.cwd], private, shared)
    made: set[Path] = set()
    for folder in folders:
        # bwrap makes a bind's missing parents with the host folder's mode (e.g. /root's
        # 0700), which the unprivileged uid could not cross.
        for parent in reversed(folder.parents[:-1]):
            if parent not in made and parent != Path("/tmp"):
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(folder), str(folder)]
    for p in private:
        if any(p.is_relative_to(f) for f in folders):
            args += _mask(p)
    return args + ["--dir", "/pfs"]


def _resolved(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        try:
            yield p.resolve(strict=True)
        except OSError:
            continue


def _tail_args(layout: Layout, uid: int) -> list[str]:
    return [*_namespace_args(), "--chdir", str(layout.cwd), "--", *_drop(uid)]


def wrap_command(
    cmd: list[str],
    layout: Layout,
    *,
    sandbox: bool,
    limits: Limits = DEFAULT_LIMITS,
    uid: int | None = None,
    env_path: str = "",
) -> tuple[list[str], str]:
    """The argv to run and the ``<pfs>`` path the command sees. ``uid`` is the host uid
    to run as (from :func:`sandbox_uid`, root only); ``env_path`` the command's PATH,
    whose folders are bound. Limits apply in both modes (when ``prlimit`` is found)."""
    if not sandbox:
        return _limit_args(limits) + cmd, str(layout.pfs)
    args = _base_args(layout, cmd, env_path, limits)
    for name in layout.inputs:
        args += ["--ro-bind", str(layout.pfs / name), f"/pfs/{name}"]
    args += ["--bind", str(layout.out), "/pfs/out"]
    tail = _tail_args(layout, SANDBOX_UID_BASE if uid is None else uid)
    return args + tail + _limit_args(limits) + cmd, "/pfs"


def wrap_batch_command(
    cmd: list[str],
    layout: Layout,
    channel: Path,
    *,
    sandbox: bool,
    limits: Limits = DEFAULT_LIMITS,
    uid: int | None = None,
    env_path: str = "",
) -> tuple[list[str], str, str]:
    """The argv of a batch process, the ``<pfs>`` path it sees and the channel folder it
    sees. ``layout.inputs`` is ignored: inputs come and go under ``layout.pfs``. Limits
    apply to the whole process, across its datums."""
    if not sandbox:
        return _limit_args(limits) + cmd, str(layout.pfs), str(channel)
    args = _base_args(layout, cmd, env_path, limits)
    args += ["--ro-bind", str(layout.pfs), "/pfs", "--bind", str(layout.out), "/pfs/out"]
    for parent in ("/run", "/run/cairn"):
        args += ["--perms", "0755", "--dir", parent]
    args += ["--bind", str(channel), CHANNEL_IN_SANDBOX]
    tail = _tail_args(layout, SANDBOX_UID_BASE if uid is None else uid)
    return args + tail + _limit_args(limits) + cmd, "/pfs", CHANNEL_IN_SANDBOX
