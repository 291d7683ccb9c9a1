"""What every case of the suite shares: running a command and measuring it, store sizes,
the scratch environments of cairn and DVC, and a description of the machine.

Measuring: each measured command is a fresh child process; its wall time is taken around
``wait4`` and its CPU time (user + system) and peak RSS come from the ``rusage`` that
``wait4`` returns. On Linux that rusage covers the child and every descendant it waited
for, and ``ru_maxrss`` is the largest single process of that tree (a pipeline's datum
processes included), in KiB. Nothing here needs a package beyond the standard library,
so the smoke test can run the cairn side in the development environment.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MIB = 1 << 20
KIB = 1 << 10

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass(frozen=True)
class Measure:
    """One measured command: wall and CPU seconds, peak RSS in bytes, its standard output."""

    wall_s: float
    cpu_s: float
    peak_rss: int
    stdout: str

    def row(self) -> dict:
        """The numbers, without the output, for the JSON."""
        d = asdict(self)
        del d["stdout"]
        return d


class CommandFailed(RuntimeError):
    """A measured or setup command exited non-zero; the message holds its output."""


def tool(name: str) -> str | None:
    """The console script ``name`` beside this interpreter, else on PATH, else None."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], stdin: bytes | None = None) -> Measure:
    """Run ``cmd`` as a fresh child and measure it (see the module doc).

    Output goes to temporary files, not pipes, so a chatty command cannot block. Raises
    CommandFailed on a non-zero exit.
    """
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=so,
            stderr=se,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        )
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        so.seek(0)
        se.seek(0)
        out = so.read().decode(errors="replace")
        err = se.read().decode(errors="replace")
    if proc.returncode != 0:
        raise CommandFailed(
            f"{' '.join(cmd)} exited {proc.returncode} in {cwd}\n"
            f"stdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}"
        )
    return Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * KIB, out)


def tree_bytes(folder: Path) -> dict:
    """Apparent bytes (sum of file sizes), allocated bytes and file count under ``folder``."""
    apparent = disk = files = 0
    for dirpath, _dirs, names in os.walk(folder):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            apparent += st.st_size
            disk += st.st_blocks * 512
            files += 1
    return {"apparent": apparent, "disk": disk, "files": files}


def growth(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


def drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- environments ---------------------------------------------------------------------------
def base_env(scratch: Path) -> dict[str, str]:
    """The environment of every command: this one without CAIRN_* and GIT_* variables, and
    with every per-user folder DVC or git could write to pointed into ``scratch``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "GIT_", "DVC_"))}
    xdg = scratch / "xdg"
    for sub in ("config", "cache", "data", "state"):
        (xdg / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(scratch / "dvc-site-cache"),
        DVC_GLOBAL_CONFIG_DIR=str(xdg / "config" / "dvc"),
        DVC_SYSTEM_CONFIG_DIR=str(xdg / "config" / "dvc-system"),
        XDG_CONFIG_HOME=str(xdg / "config"),
        XDG_CACHE_HOME=str(xdg / "cache"),
        XDG_DATA_HOME=str(xdg / "data"),
        XDG_STATE_HOME=str(xdg / "state"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(xdg / "gitconfig"),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@dataclass(frozen=True)
class Tools:
    """The two programs under test and the environment they run in."""

    cairn: str
    dvc: str | None
    env: dict[str, str]

    def cairn_env(self, home: Path, **extra: str) -> dict[str, str]:
        """cairn with its embedded store at ``home``."""
        return {**self.env, "CAIRN_HOME": str(home), **extra}


def cairn_store(tools: Tools, home: Path, repo: str) -> dict[str, str]:
    """A fresh embedded store at ``home`` holding an empty repo; returns its environment."""
    drop(home)
    env = tools.cairn_env(home)
    run([tools.cairn, "create", "repo", repo], cwd=home.parent, env=env)
    return env


def dvc_repo(tools: Tools, repo: Path) -> Path:
    """A fresh git repository with ``dvc init`` at ``repo``, its cache inside it and
    analytics off in its own config; returns the cache folder."""
    assert tools.dvc is not None
    drop(repo)
    repo.mkdir(parents=True)
    env = tools.env
    cache = repo / ".dvc" / "cache"
    run(["git", "init", "-q"], cwd=repo, env=env)
    run([tools.dvc, "init", "-q"], cwd=repo, env=env)
    run([tools.dvc, "config", "--local", "core.analytics", "false"], cwd=repo, env=env)
    run([tools.dvc, "config", "--local", "cache.dir", str(cache)], cwd=repo, env=env)
    run(
        [tools.dvc, "config", "--local", "core.site_cache_dir", env["DVC_SITE_CACHE_DIR"]],
        cwd=repo,
        env=env,
    )
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", "dvc init"], cwd=repo, env=env)
    return cache


# -- the machine ----------------------------------------------------------------------------
def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _meminfo_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * KIB
    except OSError:
        pass
    return 0


def _disk(path: Path) -> str:
    """File system type and size of the folder ``path``, and its device's rotational flag."""
    fs = _sh(["findmnt", "-n", "-o", "FSTYPE", "-T", str(path)])
    usage = shutil.disk_usage(path)
    source = _sh(["findmnt", "-n", "-o", "SOURCE", "-T", str(path)])
    rotational = "unknown"
    dev = Path(source).name if source.startswith("/dev/") else ""
    if dev:
        for name in (dev, dev.rstrip("0123456789")):
            f = Path(f"/sys/block/{name}/queue/rotational")
            if f.exists():
                flag = f.read_text().strip()
                rotational = f"rotational={flag} per the kernel"
                break
    return f"{fs} on {source or 'unknown'} ({rotational}), {usage.total / (1 << 30):.0f} GiB"


def machine(tools: Tools, scratch: Path) -> dict:
    """CPU, cores, RAM, disk, Python, versions of cairn and DVC, the cairn commit and a
    digest of its source (the working tree may differ from HEAD), load average."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # The cairn that runs may be installed from another checkout than this one.
    python = Path(tools.cairn).parent / "python"
    found = _sh(
        [
            str(python if python.exists() else sys.executable),
            "-c",
            "import cairn; print(cairn.__file__)",
        ]
    )
    package = Path(found).parent if found != "unknown" else ROOT / "src" / "cairn"
    root = package.parent.parent
    src = hashlib.sha256()
    for p in sorted(package.rglob("*.py")):
        src.update(p.relative_to(package).as_posix().encode() + b"\0" + p.read_bytes())
    try:
        from importlib.metadata import version

        cairn_version = version("cairn")
    except Exception:  # noqa: BLE001 - only reported
        cairn_version = "unknown"
    dirty = _sh(["git", "-C", str(root), "status", "--porcelain", "--", "src"])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_bytes": _meminfo_total(),
        "disk": _disk(scratch),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cairn_version": cairn_version,
        "cairn_source": str(package),
        "cairn_commit": _sh(["git", "-C", str(root), "rev-parse", "HEAD"]),
        "cairn_src_dirty": bool(dirty and dirty != "unknown"),
        "cairn_src_sha256": src.hexdigest()[:16],
        "dvc_version": (_sh([tools.dvc, "--version"]).splitlines()[-1] if tools.dvc else "not run"),
        "git_version": _sh(["git", "--version"]),
        "sandbox": "bwrap" if shutil.which("bwrap") else "none (datums run on the host)",
    }
