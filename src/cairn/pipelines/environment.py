"""What a job ran with: an environment fingerprint and the hash of its code.

The fingerprint lives here rather than in ``ml`` (DESIGN.md lists it under
ml) because pipelines sit below ml and every output commit needs it; ml will
import it from here.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import blake3

from cairn.pipelines.datums import canonical_hash
from cairn.pipelines.spec import Transform

__all__ = [
    "code_files",
    "environment_fingerprint",
    "interpreter_fingerprint",
    "missing_code",
    "transform_runtime",
]

# Suffixes of the scripts a transform's command names (``python3 train.py``): a word of
# ``cmd`` with one of them is a file that must exist for the transform to start.
_SCRIPT_SUFFIXES = frozenset(
    {".py", ".sh", ".bash", ".r", ".js", ".mjs", ".ts", ".rb", ".pl", ".jl", ".lua", ".php"}
)

_PYTHON = re.compile(r"python[0-9.]*")
_PROBE = (
    "import importlib.metadata as m, json, platform, sys; "
    "print(json.dumps({'python': platform.python_version(), 'executable': sys.executable, "
    "'packages': {(d.metadata['Name'] or '?').lower(): d.version for d in m.distributions()}}))"
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _accelerator() -> str:
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
            if out.returncode == 0 and names:
                return ", ".join(names)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "none"


@functools.lru_cache(maxsize=1)
def environment_fingerprint() -> dict[str, Any]:
    """The interpreter, installed packages, OS, CPU and accelerator of this machine.

    Returns a JSON-able dict with ``hash`` (BLAKE3 of the rest, canonical JSON),
    ``python``, ``implementation``, ``platform``, ``machine``, ``cpu``,
    ``cpu_count``, ``accelerator`` and ``packages`` (name -> version, sorted).
    """
    packages = {
        (d.metadata["Name"] or "?").lower(): d.version for d in importlib.metadata.distributions()
    }
    body = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        "accelerator": _accelerator(),
        "packages": dict(sorted(packages.items())),
    }
    return {"hash": canonical_hash(body), **body}


def code_files(transform: Transform, cwd: Path) -> dict[str, str]:
    """Files the transform's command and stdin name, as path -> BLAKE3 of the content.

    Any word of ``cmd``, ``stdin``, ``err_cmd`` or ``err_stdin`` that names an
    existing regular file (relative to ``cwd`` or absolute) counts, except
    executables found on PATH such as ``python3`` or ``bash`` themselves.
    """
    words: list[str] = []
    # Lines of stdin, and arguments with spaces (``bash -c "python3 x.py"``), are split the
    # way a shell would, so scripts named inside them are found too.
    for line in [*transform.cmd, *transform.err_cmd, *transform.stdin, *transform.err_stdin]:
        if line in transform.cmd + transform.err_cmd and not any(c.isspace() for c in line):
            words.append(line)
            continue
        try:
            words += shlex.split(line)
        except ValueError:
            words += line.split()
    found: dict[str, str] = {}
    for word in words:
        if not word or word.startswith("-") or "\x00" in word:
            continue
        path = Path(word) if os.path.isabs(word) else cwd / word
        try:
            if not path.is_file() or shutil.which(word) == str(path):
                continue
            if os.path.isabs(word) and path.is_relative_to(Path(sys.base_prefix)):
                continue
            found[word] = blake3.blake3(path.read_bytes()).hexdigest()
        except OSError:
            continue
    return dict(sorted(found.items()))


def missing_code(transform: Transform, cwd: Path) -> list[str]:
    """The words of ``transform.cmd`` that name code which does not exist, so the
    transform cannot start whatever its inputs: the program (a path relative to ``cwd``
    or absolute, else looked up on PATH) and the script files it is given (words ending
    in a script suffix, ``.py``, ``.sh``...). Empty for a container image, whose files
    are not here to check."""
    if transform.image or not transform.cmd:
        return []
    program, *args = transform.cmd
    missing = []
    if "/" in program:
        if not (Path(program) if os.path.isabs(program) else cwd / program).exists():
            missing.append(program)
    elif shutil.which(program) is None:
        missing.append(program)
    for word in args:
        if word.startswith("-") or any(c.isspace() for c in word) or "\x00" in word:
            continue
        if Path(word).suffix.lower() not in _SCRIPT_SUFFIXES:
            continue
        if not (Path(word) if os.path.isabs(word) else cwd / word).exists():
            missing.append(word)
    return missing


@functools.lru_cache(maxsize=16)
def interpreter_fingerprint(executable: str) -> dict[str, Any] | None:
    """Python version, ``sys.executable`` and packages (name -> version) of the interpreter
    at ``executable``, with ``hash`` over the rest; None if it cannot be run. Asked once per
    process and executable (about 0.3 s)."""
    try:
        out = subprocess.run([executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
        body = json.loads(out.stdout) if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    body["packages"] = dict(sorted(body.get("packages", {}).items()))
    return {"hash": canonical_hash(body), **body}


def transform_runtime(transform: Transform) -> dict[str, Any] | None:
    """The fingerprint of the Python interpreter a transform runs (``cmd[0]`` named
    ``python``, ``python3``, ``python3.11``… and found on PATH), which may differ from
    cairn's own; None for other commands."""
    if not transform.cmd or not _PYTHON.fullmatch(os.path.basename(transform.cmd[0])):
        return None
    found = shutil.which(transform.cmd[0])
    # Not resolved through links: a virtual environment's python is a link to the base
    # interpreter, and only through the link does it see the environment's packages.
    return interpreter_fingerprint(os.path.abspath(found)) if found else None
