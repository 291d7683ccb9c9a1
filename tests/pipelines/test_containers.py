"""Tests of cairn.pipelines.containers: a datum runs in its transform's image when a
container runtime holds it, with Pachyderm's /pfs layout; elsewhere on the host, saying so.

The image is built offline from Debian's busybox-static (``podman import`` of a tarball).
Where podman is missing or cannot start a container, the in-image test is skipped."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cairn.data import DataStore, Ref
from cairn.pipelines import Pipelines, PipelineSpec, containers
from cairn.pipelines.containers import container_runtime

from .conftest import Recorder

EDGES = b'echo "$CAIRN_PFS $PACH_DATUM_ID" > /pfs/out/seen; cat /pfs/in/a.txt >> /pfs/out/seen\n'


@pytest.fixture
def fresh_runtime() -> Iterator[None]:
    container_runtime.cache_clear()
    yield
    container_runtime.cache_clear()


@pytest.fixture
def busybox_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_runtime: None
) -> Iterator[str]:
    """A local podman image holding busybox and /edges.sh; removed afterwards."""
    podman, busybox = shutil.which("podman"), shutil.which("busybox")
    if podman is None or busybox is None:
        pytest.skip("podman or busybox-static is not installed")
    # This machine's own runtime settings, as its admin would write them in containers.conf:
    # runc over cgroupfs (crun refuses hybrid cgroups) and the host's ulimits.
    conf = tmp_path / "containers.conf"
    runtime = 'runtime = "runc"\n' if shutil.which("runc") else ""
    engine = f'[engine]\ncgroup_manager = "cgroupfs"\n{runtime}'
    conf.write_text(f"[containers]\ndefault_ulimits = []\n{engine}")
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for tool in ("sh", "cat", "echo"):
        (root / "bin" / tool).symlink_to("busybox")
    (root / "edges.sh").write_bytes(EDGES)
    with tarfile.open(tmp_path / "image.tar", "w") as tar:
        tar.add(root, arcname=".")
    name = f"localhost/cairn-test-{uuid.uuid4().hex[:12]}"
    run = lambda *a: subprocess.run([podman, *a], capture_output=True, timeout=120)  # noqa: E731
    if run("import", str(tmp_path / "image.tar"), name).returncode != 0:
        pytest.skip("podman cannot import an image here")
    try:
        probe = run("run", "--rm", "--network", "none", name, "/bin/sh", "-c", "true")
        if probe.returncode != 0:
            pytest.skip(f"podman cannot start a container here: {probe.stderr.decode()[-200:]}")
        yield name
    finally:
        run("rmi", "-f", name)


def test_a_datum_runs_in_its_image_with_pfs_mounted(
    pipelines: Pipelines,
    spec_dir: Path,
    make_spec: Callable[..., PipelineSpec],
    put: Callable[..., object],
    data: DataStore,
    busybox_image: str,
    recorder: Recorder,
) -> None:
    put("in", {"a.txt": b"from the input\n"})
    # /edges.sh exists only in the image, as code baked into a Pachyderm image
    spec = make_spec(
        "edges", "in", ["/bin/sh", "/edges.sh"], glob="/", transform={"image": busybox_image}
    )
    pipelines.create_pipeline(spec, spec_dir)

    [job] = pipelines.propagate(recorder)

    assert job.state == "success", job.reason
    [datum] = pipelines.list_datums("edges", job.id)
    seen = b"".join(data.read_file(Ref("edges", path="seen")))
    assert seen == f"/pfs {datum.id}\nfrom the input\n".encode()
    assert not [n for n in recorder.args("note") if "image" in n[1]]


def test_without_a_runtime_the_image_is_recorded_and_the_job_says_so(
    pipelines: Pipelines,
    spec_dir: Path,
    make_spec: Callable[..., PipelineSpec],
    put: Callable[..., object],
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    fresh_runtime: None,
) -> None:
    monkeypatch.setattr(containers, "RUNTIMES", ("cairn-test-no-such-runtime",))
    put("in", {"a.txt": b"a"})
    pipelines.create_pipeline(make_spec("p", "in", transform={"image": "nowhere:1"}), spec_dir)

    [job] = pipelines.propagate(recorder)

    assert job.state == "success", job.reason
    assert any("no container runtime" in message for _, message in recorder.args("note"))
