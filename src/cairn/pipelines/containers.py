"""Running a datum in the container image its transform names (``transform.image``).

Where a container runtime (``podman``, else ``docker``) on ``PATH`` answers ``info`` and
already holds the image (cairn never pulls: ``podman pull IMAGE`` or ``podman load``
first), each datum runs as ``RUNTIME run --rm -i IMAGE CMD...`` with Pachyderm's layout:
every input folder bound read-only at ``/pfs/<input>``, ``out`` bound writable at
``/pfs/out``, ``CAIRN_PFS=/pfs``, the job's variables passed by name; the image's own
``PATH``, working directory and user apply, so code baked into the image
(``cmd: ["python3", "/edges.py"]``) runs. It gets no network (``--network none``), no
capabilities (``--cap-drop all``) and ``no-new-privileges``. Elsewhere the command runs on
the host or in the sandbox as before, and the job says why (``why_not``).

Not applied in a container: the per-datum rlimits of ``cairn.pipelines.sandbox`` (they
would bound the runtime's client, not the container) and ``datum_batching``. The
machine's runtime configuration (``containers.conf``: OCI runtime, cgroup manager,
default ulimits) is the machine's; a runtime that starts no container fails the datum
with its own error in the datum's log.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable

from cairn.pipelines.sandbox import Layout

__all__ = ["RUNTIMES", "container_runtime", "has_image", "why_not", "wrap_container"]

RUNTIMES = ("podman", "docker")
# Variables that describe the host, not the image: the image's own apply.
_HOST_ONLY = frozenset({"PATH", "HOME", "LANG"})


@functools.lru_cache(maxsize=1)
def container_runtime() -> str | None:
    """The path of the first of ``RUNTIMES`` on PATH whose ``info`` succeeds (docker's
    client without a daemon does not), checked once per process; None without one."""
    for name in RUNTIMES:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            probe = subprocess.run([path, "info"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return path
    return None


def has_image(runtime: str, image: str) -> bool:
    """Whether ``runtime`` holds ``image`` locally (``image inspect`` succeeds)."""
    try:
        found = subprocess.run(
            [runtime, "image", "inspect", image], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0


def why_not(image: str) -> str | None:
    """None when datums of a transform naming ``image`` run in it, else why not (a job
    note)."""
    runtime = container_runtime()
    if runtime is None:
        return f"image {image} recorded; no container runtime, so the command runs on the host"
    if not has_image(runtime, image):
        return (
            f"image {image} is not in {runtime}'s images (cairn does not pull), "
            "so the command runs on the host"
        )
    return None


def wrap_container(
    runtime: str, image: str, cmd: list[str], layout: Layout, env_names: Iterable[str]
) -> list[str]:
    """The argv running ``cmd`` in ``image`` over ``layout`` (see the module doc); the
    variables ``env_names`` are passed by name from the runtime client's environment."""
    argv = [runtime, "run", "--rm", "-i", "--network", "none", "--cap-drop", "all"]
    argv += ["--security-opt", "no-new-privileges"]
    for name in layout.inputs:
        argv += ["-v", f"{layout.pfs / name}:/pfs/{name}:ro"]
    argv += ["-v", f"{layout.out}:/pfs/out"]
    for name in sorted(set(env_names) - _HOST_ONLY):
        argv += ["-e", name]
    return [*argv, image, *cmd]
