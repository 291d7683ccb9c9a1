"""The Ray executor (cairn.pipelines.ray_executor) on a real three-node Ray cluster on this
machine (ray.cluster_utils.Cluster: one head and two nodes, one CPU each, each with a custom
resource naming it), one per module, with the store on moto's S3 and the catalog on
PostgreSQL as tests/conftest.py starts them. The unit tests at the top need no cluster."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import S3_TEST_ENV, missing_backend

from cairn import Client
from cairn.data import FileEntry, Ref
from cairn.pipelines.datums import Datum, DatumFile
from cairn.pipelines.errors import ExecutorError
from cairn.pipelines.ray_executor import (
    DEFAULT_SETS_PER_WORKER,
    RayExecutor,
    datum_sets,
    foreign_nodes,
    open_executor,
    task_resources,
)
from cairn.pipelines.spec import DatumSetSpec, PipelineSpec, load_specs
from cairn.storage import Content

COPY = 'cp -r "$CAIRN_PFS"/in/. "$CAIRN_PFS/out/"'
QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"


# -- no cluster ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("local", None),
        ("", None),
        ("ray", "auto"),
        ("ray://10.0.0.5:10001", "ray://10.0.0.5:10001"),
    ],
)
def test_open_executor_reads_the_url(url: str, address: str | None) -> None:
    executor = open_executor(url)
    assert (executor.address if executor else None) == address


@pytest.mark.parametrize("url", ["dask://x:1", "ray://", "ray://host", "ray://h:1/x", "lokal"])
def test_open_executor_refuses_other_urls(url: str) -> None:
    with pytest.raises(ExecutorError):
        open_executor(url)


def _datum(name: str, size: int) -> Datum:
    entry = FileEntry(Content("0" * 64, size, ()))
    return Datum(
        (("in", "r", "master", "/" + name),), (DatumFile("in", "r", "master", "c", name, entry),)
    )


def _items(sizes: list[int]) -> list[tuple[Datum, str]]:
    return [(_datum(f"f{i}", s), f"h{i}") for i, s in enumerate(sizes)]


def test_datum_sets_close_at_number_or_size_and_default_per_worker() -> None:
    items = _items([10] * 10)
    assert [len(s) for s in datum_sets(items, DatumSetSpec(number=4), 3)] == [4, 4, 2]
    assert [len(s) for s in datum_sets(items, DatumSetSpec(size_bytes=25), 3)] == [3, 3, 3, 1]
    both = DatumSetSpec(number=2, size_bytes=25)
    assert [len(s) for s in datum_sets(items, both, 3)] == [2] * 5
    assert [len(s) for s in datum_sets(items, DatumSetSpec(per_worker=1), 2)] == [5, 5]
    many = _items([1] * 100)
    assert len(datum_sets(many, None, 2)) == 2 * DEFAULT_SETS_PER_WORKER
    assert [x for s in datum_sets(many, None, 2) for x in s] == many  # all, in order
    assert datum_sets([], None, 2) == []


def _spec(**fields: Any) -> PipelineSpec:
    body = {"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]}}
    body["input"] = {"pfs": {"repo": "in", "glob": "/*"}}
    return load_specs(yaml.safe_dump({**body, **fields}))[0]


def test_task_resources_come_from_requests_then_limits() -> None:
    assert task_resources(_spec()) == {"num_cpus": 1.0}
    spec = _spec(
        resource_requests={"cpu": "500m", "memory": "1Gi"},
        resource_limits={"cpu": 2, "gpu": {"type": "nvidia.com/gpu", "number": 1}},
    )
    assert task_resources(spec) == {"num_cpus": 0.5, "memory": 1 << 30, "num_gpus": 1}


def test_datum_set_spec_is_accepted() -> None:
    spec = _spec(datum_set_spec={"number": 5, "size_bytes": 0, "per_worker": 2})
    assert spec.datum_set_spec == DatumSetSpec(number=5, size_bytes=0, per_worker=2)


def test_foreign_nodes_are_the_live_nodes_of_other_machines() -> None:
    here = {"Alive": True, "NodeManagerAddress": "10.0.0.1", "NodeManagerHostname": "a"}
    other = {"Alive": True, "NodeManagerAddress": "10.0.0.2", "NodeManagerHostname": "b"}
    dead = {**other, "Alive": False}
    assert foreign_nodes([here, here], "10.0.0.1", "a") == []
    assert foreign_nodes([here, other, dead], "10.0.0.1", "a") == ["b (10.0.0.2)"]


# -- on a cluster -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Head (node_a) plus node_b and node_c, one CPU each; RAY_ADDRESS names it, so the
    executor URL ``ray`` finds it. Node deaths are noticed within about 2 s."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        missing_backend("Ray tests need ray: pip install -e '.[dev]'")
    # The nodes' workers start transforms with their own PATH: the venv's python3 (with
    # scikit-image for the quickstart's edges.py) first.
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "CAIRN_SANDBOX": "none",
        # Every node needs the object store's credentials: the moto server's dummy ones.
        **S3_TEST_ENV,
    }
    saved = {k: os.environ.get(k) for k in (*env, "RAY_ADDRESS")}
    os.environ.update(env)
    common = dict(num_cpus=1, object_store_memory=80 << 20)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        client_port = probe.getsockname()[1]
    cluster = Cluster(
        initialize_head=True,
        head_node_args=dict(
            common,
            resources={"node_a": 1},
            include_dashboard=False,
            ray_client_server_port=client_port,
            _system_config={"health_check_period_ms": 500, "health_check_failure_threshold": 3},
        ),
    )
    for name in ("node_b", "node_c"):
        cluster.add_node(**common, resources={name: 1})
    os.environ["RAY_ADDRESS"] = cluster.address
    cluster.client_url = f"ray://127.0.0.1:{client_port}"
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _home(tmp_path: Path, name: str, body: str) -> Path:
    home = tmp_path / name
    home.mkdir()
    (home / "config.toml").write_text(body)
    return home


@pytest.fixture
def shared_store(
    tmp_path: Path, make_s3_url: Callable[[], str], make_postgres_url: Callable[[], str]
) -> Callable[[str], Client]:
    """``open(executor)``: a client over a fresh S3 + PostgreSQL store with that executor."""
    opened: list[Client] = []

    def open_store(executor: str) -> Client:
        body = f'[store]\nobjects = "{make_s3_url()}"\ncatalog = "{make_postgres_url()}"\n'
        body += f'executor = "{executor}"\n'
        client = Client.open(_home(tmp_path, f"s{len(opened)}", body), auto_run=False)
        opened.append(client)
        return client

    yield open_store
    for client in opened:
        client.data.catalog.dispose()


def _photos(count: int) -> list[tuple[str, bytes]]:
    skimage = pytest.importorskip("skimage")
    folder = Path(skimage.__file__).parent / "data"
    names = ["camera.png", "coins.png", "horse.png", "moon.png", "page.png", "text.png"]
    return [(f"/{n}", (folder / n).read_bytes()) for n in names[:count]]


def _edges_spec(tmp_path: Path) -> Path:
    """The quickstart's ``edges`` pipeline, unchanged but for a fixed salt, so that two
    stores give equal datum hashes and their lineage can be compared."""
    folder = tmp_path / "quickstart"
    folder.mkdir(exist_ok=True)
    shutil.copy(QUICKSTART / "edges.py", folder / "edges.py")
    edges = next(yaml.safe_load_all((QUICKSTART / "pipelines.yaml").read_text()))
    edges["salt"] = "fixed"
    (folder / "edges.yaml").write_text(yaml.safe_dump(edges))
    folder.chmod(0o755)
    return folder / "edges.yaml"


def _run(client: Client, spec_file: Path, files: list[tuple[str, bytes]]) -> Any:
    client.repos.create("images")
    client.put_files("images", "master", [(p, io.BytesIO(b)) for p, b in files])
    client.pipelines.create(spec_file)
    jobs = client.run_pipelines()
    assert [j.state for j in jobs] == ["success"], [j.reason for j in jobs]
    return jobs[0]


def _outputs(client: Client, repo: str) -> dict[str, tuple[str, str]]:
    """Output path -> (content hash, hash of the datum that wrote it): outputs and lineage."""
    return {p: (e.hash, e.datum) for p, e in client.data.walk_files(Ref(repo, "master"))}


def _datums(client: Client, ref: str) -> dict[str, Any]:
    return {d.hash: d for d in client.jobs.datums(ref)}


@pytest.mark.slow
def test_edges_runs_across_nodes_with_the_local_executors_outputs_and_lineage(
    cluster: Any, host_only: None, tmp_path: Path, shared_store: Callable[[str], Client]
) -> None:
    spec = _edges_spec(tmp_path)
    photos = _photos(4)
    local = Client.open(tmp_path / "local", auto_run=False)
    local_job = _run(local, spec, photos)

    on_ray = shared_store("ray")
    job = _run(on_ray, spec, photos)

    assert _outputs(on_ray, "edges") == _outputs(local, "edges")
    records = _datums(on_ray, f"edges@{job.id}")
    local_records = _datums(local, f"edges@{local_job.id}")
    assert set(records) == set(local_records)
    for h, d in records.items():
        assert [i["path"] for i in d.inputs] == [i["path"] for i in local_records[h].inputs]
        assert local_records[h].node == ""
    import ray

    live = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    nodes = {d.node for d in records.values()}
    assert nodes <= live and len(nodes) >= 2
    fingerprint = {d.environment for d in records.values()}
    assert len(fingerprint) == 1 and on_ray.data.chunks.objects.exists(
        f"env/{next(iter(fingerprint))[:2]}/{next(iter(fingerprint))}"
    )


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                out.append(child)
                stack.append(child)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
def test_a_node_killed_mid_job_loses_only_its_datums_which_run_elsewhere(
    cluster: Any, host_only: None, tmp_path: Path, shared_store: Callable[[str], Client]
) -> None:
    from ray._private import ray_constants

    victim = cluster.add_node(num_cpus=1, object_store_memory=80 << 20, resources={"node_d": 1})
    raylet = victim.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    marker = "cairn-kill-test-datum"
    folder = tmp_path / "specs"
    folder.mkdir()
    folder.chmod(0o755)
    body = {
        "pipeline": {"name": "slow"},
        "transform": {
            "cmd": [
                "bash",
                "-c",
                f'sleep 1 # {marker}\ncp -r "$CAIRN_PFS"/in/. "$CAIRN_PFS/out/"',
            ]
        },
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
        "datum_set_spec": {"number": 1},
        "salt": "fixed",
    }
    (folder / "slow.yaml").write_text(yaml.safe_dump(body))
    files = [(f"/f{i}.txt", f"datum {i}\n".encode()) for i in range(6)]

    killed: list[int] = []

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            family = _descendants(raylet)
            if any(marker in _cmdline(p) for p in family):
                for pid in [raylet, *family]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass
                return
            time.sleep(0.05)

    client = shared_store("ray")
    client.repos.create("in")
    client.put_files("in", "master", [(p, io.BytesIO(b)) for p, b in files])
    client.pipelines.create(folder / "slow.yaml")
    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    jobs = client.run_pipelines()
    killer.join()

    assert killed, "the victim node never ran a datum"
    assert [j.state for j in jobs] == ["success"], [j.reason for j in jobs]
    victim_id = victim.node_id
    records = client.jobs.datums(f"slow@{jobs[0].id}")
    assert all(d.state == "success" and d.node and d.node != victim_id for d in records)
    local = Client.open(tmp_path / "local", auto_run=False)
    local.repos.create("in")
    local.put_files("in", "master", [(p, io.BytesIO(b)) for p, b in files])
    local.pipelines.create(folder / "slow.yaml")
    assert [j.state for j in local.run_pipelines()] == ["success"]
    assert _outputs(client, "slow") == _outputs(local, "slow")
    cluster.remove_node(victim, allow_graceful=False)


@pytest.mark.slow
def test_a_node_that_cannot_start_the_transform_fails_its_datums_with_that_reason(
    cluster: Any,
    host_only: None,
    tmp_path: Path,
    shared_store: Callable[[str], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The program is on the coordinator's PATH only, as a package installed on the machine
    # that runs the job but not on the nodes.
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "only-here").write_text("#!/bin/sh\nexit 0\n")
    (tools / "only-here").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    folder = tmp_path / "specs"
    folder.mkdir()
    folder.chmod(0o755)
    body = {
        "pipeline": {"name": "broken"},
        "transform": {"cmd": ["only-here"]},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
        "datum_tries": 1,
    }
    (folder / "broken.yaml").write_text(yaml.safe_dump(body))
    client = shared_store("ray")
    client.repos.create("in")
    client.put_files("in", "master", [("/a", io.BytesIO(b"a"))])
    client.pipelines.create(folder / "broken.yaml")
    [job] = client.run_pipelines()
    assert job.state == "failure"
    assert "cannot start 'only-here': no such executable program" in job.reason
    assert "Traceback" not in job.reason
    [datum] = client.jobs.datums(f"broken@{job.id}")
    assert datum.state == "failed" and datum.node


@pytest.mark.slow
def test_an_embedded_store_runs_on_a_cluster_of_this_machine_only(
    cluster: Any, host_only: None, tmp_path: Path
) -> None:
    home = _home(tmp_path, "embedded", '[store]\nexecutor = "ray"\n')
    client = Client.open(home, auto_run=False)
    files = [(f"/f{i}", b"x" * i) for i in range(3)]
    client.repos.create("in")
    client.put_files("in", "master", [(p, io.BytesIO(b)) for p, b in files])
    folder = tmp_path / "specs"
    folder.mkdir()
    folder.chmod(0o755)
    body = {
        "pipeline": {"name": "copy"},
        "transform": {"cmd": ["bash", "-c", 'cp -r "$CAIRN_PFS"/in/. "$CAIRN_PFS/out/"']},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
    }
    (folder / "copy.yaml").write_text(yaml.safe_dump(body))
    client.pipelines.create(folder / "copy.yaml")
    [job] = client.run_pipelines()
    assert job.state == "success", job.reason  # every node is this machine
    assert sorted(_outputs(client, "copy")) == [p.lstrip("/") for p, _ in files]


def test_a_memory_store_is_refused_by_a_cluster(cluster: Any, host_only: None) -> None:
    from cairn.catalog import open_catalog
    from cairn.data import DataStore
    from cairn.storage import ChunkStore, MemoryObjectStore

    catalog = open_catalog("sqlite://")
    data = DataStore(catalog, ChunkStore(MemoryObjectStore()))
    with pytest.raises(ExecutorError):
        RayExecutor("auto").check(data, _spec())


COORDINATOR = """
import sys
from cairn import Client
Client.open(sys.argv[1], auto_run=False).run_pipelines()
"""


@pytest.mark.slow
def test_a_killed_coordinator_commits_nothing_and_its_rerun_skips_stored_datums(
    cluster: Any,
    host_only: None,
    tmp_path: Path,
    shared_store: Callable[[str], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The killed coordinator is a process of its own reaching the cluster by its Ray
    Client URL (``ray://``): this process is a driver of the cluster already."""
    count = tmp_path / "executions"
    count.touch()
    count.chmod(0o666)
    folder = tmp_path / "specs"
    folder.mkdir()
    folder.chmod(0o755)
    body = {
        "pipeline": {"name": "slow"},
        "transform": {
            "cmd": ["bash", "-c", f'sleep 0.3; echo "$PACH_DATUM_ID" >> {count}; {COPY}']
        },
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
        "datum_set_spec": {"number": 1},
    }
    (folder / "slow.yaml").write_text(yaml.safe_dump(body))
    files = [(f"/f{i:02d}", f"datum {i}\n".encode()) for i in range(8)]
    client = shared_store(cluster.client_url)
    client.repos.create("in")
    client.put_files("in", "master", [(p, io.BytesIO(b)) for p, b in files])
    client.pipelines.create(folder / "slow.yaml")
    home = tmp_path / "s0"
    coordinator = subprocess.Popen([sys.executable, "-c", COORDINATOR, str(home)])
    objects = client.data.chunks.objects
    stored: list[str] = []
    # generous: the loop ends as soon as two sets are stored; a loaded machine starts the
    # coordinator's Ray client slowly
    deadline = time.monotonic() + 240
    while len(stored) < 2 and time.monotonic() < deadline:
        stored = [k for k in objects.list("logs/slow/") if "/sets/" in k]
        time.sleep(0.05)
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait()
    assert len(stored) >= 2, "no datum finished before the deadline"
    assert client.data.list_commits("slow") == []  # no partial output commit
    kept = {body["hash"] for key in stored for body in yaml.safe_load(objects.get(key))}

    monkeypatch.setenv("CAIRN_EXECUTOR", "ray")  # over config.toml's: this process's driver
    rerun = Client.open(home, auto_run=False)
    try:
        [job] = rerun.run_pipelines()
    finally:
        rerun.data.catalog.dispose()

    assert job.state == "success", job.reason
    assert sorted(_outputs(client, "slow")) == sorted(p.lstrip("/") for p, _ in files)
    records = client.jobs.datums(f"slow@{job.id}")
    assert all(d.state == "success" for d in records)
    runs = count.read_text().split()
    for d in records:
        if d.hash in kept:
            assert runs.count(d.id) == 1, "a stored datum ran again"
    assert not [k for k in objects.list("logs/slow/") if "/sets/" in k]
