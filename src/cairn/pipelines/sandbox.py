"""Where a datum's command runs: a bubblewrap sandbox when there is one, else the host.

Layout seen by the command (Pachyderm's): inputs at ``<pfs>/<input name>/<path
in repo>``, output folder ``<pfs>/out``; ``$CAIRN_PFS`` always holds ``<pfs>``.

* Sandbox (``bwrap`` on PATH, user namespaces allowed): ``<pfs>`` is ``/pfs``,
  inputs are bound read-only, the host's file system is bound read-only
  (``/tmp`` is a fresh tmpfs; folders the command needs from the host's
  ``/tmp``, such as a virtual environment, are bound back read-only), there is
  no network, and the process sees its own PID namespace. Code written for
  Pachyderm runs unchanged.
* Host (no bwrap, or ``CAIRN_SANDBOX=none``): ``<pfs>`` is a temporary
  folder; the job notes this once. Code must read ``$CAIRN_PFS``.

A batch process (``transform.datum_batching``) outlives its datums, so its
inputs cannot be bound one by one: the whole ``<pfs>`` folder is bound
read-only at ``/pfs`` (the executor fills and empties it on the host between
datums, and the process sees each datum's folders appear), ``out`` is bound
writable over ``/pfs/out``, and the datum channel's folder at
``/run/cairn/datums``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHANNEL_IN_SANDBOX",
    "Layout",
    "sandbox_available",
    "wrap_batch_command",
    "wrap_command",
]

_SKIP_ROOT = {"proc", "dev", "sys", "tmp", "run", "pfs"}
CHANNEL_IN_SANDBOX = "/run/cairn/datums"


@dataclass(frozen=True)
class Layout:
    """Host folders of one datum run: ``pfs`` holds one folder per input and ``out``."""

    pfs: Path
    inputs: tuple[str, ...]
    cwd: Path

    @property
    def out(self) -> Path:
        return self.pfs / "out"


@functools.lru_cache(maxsize=1)
def sandbox_available() -> bool:
    """Whether bubblewrap can start a sandbox here (checked once per process)."""
    if os.environ.get("CAIRN_SANDBOX", "").lower() in ("none", "off", "0"):
        return False
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-net", "--", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _tmp_binds(paths: list[Path]) -> list[str]:
    """Folders under the host's /tmp that the command needs, bound back read-only."""
    args: list[str] = []
    seen: set[Path] = set()
    for p in paths:
        try:
            p = p.resolve()
        except OSError:
            continue
        if p.parts[:2] == ("/", "tmp") and len(p.parts) > 2 and p.exists():
            if not any(parent in seen for parent in [p, *p.parents]):
                seen.add(p)
                args += ["--ro-bind", str(p), str(p)]
    return args


def _base_args(layout: Layout) -> list[str]:
    args = ["bwrap"]
    for entry in sorted(Path("/").iterdir()):
        if entry.name in _SKIP_ROOT:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.is_dir():
            args += ["--ro-bind", str(entry), str(entry)]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", "/pfs"]
    needed = [Path(sys.prefix), Path(sys.base_prefix), layout.cwd]
    needed += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    # Python's import path and cairn's own folder: an editable install of cairn checked
    # out under /tmp keeps its sources outside the environment (cairn.sdk in transforms).
    needed += [Path(p) for p in sys.path if p]
    needed.append(Path(__file__).resolve().parents[2])
    return args + _tmp_binds(needed)


def _tail_args(layout: Layout) -> list[str]:
    args = ["--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"]
    return args + ["--chdir", str(layout.cwd), "--"]


def wrap_command(cmd: list[str], layout: Layout, *, sandbox: bool) -> tuple[list[str], str]:
    """The argv to run and the ``<pfs>`` path the command sees."""
    if not sandbox:
        return cmd, str(layout.pfs)
    args = _base_args(layout)
    for name in layout.inputs:
        args += ["--ro-bind", str(layout.pfs / name), f"/pfs/{name}"]
    args += ["--bind", str(layout.out), "/pfs/out"]
    return args + _tail_args(layout) + cmd, "/pfs"


def wrap_batch_command(
    cmd: list[str], layout: Layout, channel: Path, *, sandbox: bool
) -> tuple[list[str], str, str]:
    """The argv of a batch process, the ``<pfs>`` path it sees and the channel folder it
    sees. ``layout.inputs`` is ignored: inputs come and go under ``layout.pfs``."""
    if not sandbox:
        return cmd, str(layout.pfs), str(channel)
    args = _base_args(layout)
    args += ["--ro-bind", str(layout.pfs), "/pfs", "--bind", str(layout.out), "/pfs/out"]
    args += ["--bind", str(channel), CHANNEL_IN_SANDBOX]
    return args + _tail_args(layout) + cmd, "/pfs", CHANNEL_IN_SANDBOX
