"""Running a job's datums on a Ray cluster: ``CAIRN_EXECUTOR=ray`` or ``ray://HOST:PORT``.

The spec does not change; the executor URL does (cairn.storage.config: ``CAIRN_EXECUTOR``,
``executor`` in config.toml's ``[store]``, ``cairn server --executor``):

* ``local`` (the default): datums run in this process's pool (cairn.pipelines.jobs);
* ``ray``: the cluster ``ray.init(address="auto")`` finds (``RAY_ADDRESS``, else the one
  ``ray start`` left on this machine);
* ``ray://HOST:PORT``: a cluster's Ray Client server (``ray start --head`` serves it on
  port 10001).

How a job runs
    The job's coordinator (the process running JobRunner) plans as for the local executor,
    cuts the datums to process into datum sets (``datum_set_spec``, :func:`datum_sets`) and
    submits one Ray task per set, at most ``parallelism_spec.constant`` at a time (default:
    as many as the cluster's CPUs hold). A task runs on whichever node has the resources
    the spec requests (:func:`task_resources`); there it opens the job's object store and
    catalog by URL, runs each datum of its set with ``run_datum`` (or ``run_batch`` for
    ``datum_batching``) exactly as the local executor does, flushes its chunks, and returns
    each datum's result: state, log, error and output tree (path -> chunk ids, never bytes).
    Input and output bytes move between the node and the object store only. The
    coordinator records, merges and commits as for local datums (cairn.pipelines.output),
    with the same skipping, ``datum_tries``, ``err_cmd``, timeouts and lineage.

Faults
    * A node lost mid-task (its raylet or worker killed): Ray runs the task again on a live
      node, up to ``datum_tries`` times (``max_retries``); the set's datums start over there,
      and their outputs are stored again (the same chunks, so nothing is duplicated).
    * Ray retries system failures only; a transform's failures are ``datum_tries`` attempts
      inside the task, as locally, and a datum that exhausts them comes back ``failed``.
    * A task that still fails (retries exhausted, a node that cannot import cairn or set up
      its runtime environment) fails its datums with one line naming the cause, never
      Ray's traceback.
    * The coordinator killed: no output commit is written (it is written last). Each node
      stores its set's successful results (output trees, not bytes) under
      ``logs/<pipeline>/<job>/sets/``; the rerun of the killed job (which keeps its id)
      takes them instead of running those datums again, provided every chunk they name is
      still stored, and the objects go when the job ends (or with its logs, by gc).

Where code and packages come from (the runtime_env choice)
    No ``runtime_env`` is set: every node runs cairn (with the ``ray`` extra) and the
    packages the transforms use from its own Python environment, preinstalled, and sees the
    spec's folder (the transform's working directory and code) at the same path as the
    coordinator (one machine, a shared file system, or the same checkout on each node).
    Shipping code with ``working_dir``/``py_modules`` would upload the spec's folder for
    every job and move the transform's cwd; installing packages with ``pip`` needs nodes
    that reach an index. A node that lacks the transform's program or packages fails its
    datums with the program's own reason (``cannot start 'x'``, the interpreter's error in
    the log). Each datum records the node it ran on and the hash of that node's environment
    fingerprint (interpreter, packages, CPU, accelerator; stored as ``env/<h[:2]>/<h>``).

Stores
    The nodes must reach the coordinator's store: an S3 object store and a PostgreSQL
    catalog. An embedded store (a local folder, SQLite) is refused unless every node of the
    cluster is this machine; a ``memory://`` store always is.

Sandbox: a datum runs in the bubblewrap sandbox on its node when the coordinator's job
does; a node without a usable sandbox then fails its datums rather than run them unconfined.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import socket
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

import blake3

from cairn.data import DataStore
from cairn.pipelines.batch import DatumQueue, run_batch
from cairn.pipelines.datums import Datum
from cairn.pipelines.environment import environment_fingerprint
from cairn.pipelines.errors import ExecutorError
from cairn.pipelines.executor import DatumResult, RunContext, run_datum
from cairn.pipelines.sandbox import sandbox_available
from cairn.pipelines.spec import DatumSetSpec, PipelineSpec
from cairn.storage import ChunkRef, Content

__all__ = [
    "DEFAULT_SETS_PER_WORKER",
    "RayExecutor",
    "StoreAddress",
    "datum_sets",
    "foreign_nodes",
    "open_executor",
    "run_set",
    "task_resources",
]

# Without a datum_set_spec, each worker gets this many sets: few enough that a task's
# overhead is shared by many datums, enough that a lost node or a straggler costs a
# fraction of the job and the sets balance across nodes.
DEFAULT_SETS_PER_WORKER = 4
_INSTALL = "the ray executor needs Ray on this machine and every node: pip install 'cairn[ray]'"


def open_executor(url: str) -> RayExecutor | None:
    """The executor ``url`` names: None for ``local`` (or ""), a RayExecutor for ``ray`` or
    ``ray://HOST:PORT``. Connects lazily (at the first job). Raises ExecutorError for any
    other URL."""
    text = url.strip()
    if text in ("", "local"):
        return None
    if text == "ray":
        return RayExecutor("auto")
    parsed = urlparse(text)
    if parsed.scheme == "ray" and parsed.hostname:
        try:
            port = parsed.port
        except ValueError:
            port = None
        if port is not None and parsed.path in ("", "/") and not parsed.query:
            return RayExecutor(text)
    raise ExecutorError(f"unknown executor {url!r}: use local, ray or ray://HOST:PORT")


@dataclass(frozen=True)
class StoreAddress:
    """How a node opens the job's store: the object store's and catalog's URLs and the
    chunking the coordinator uses (so that equal content makes equal chunks)."""

    objects: str
    catalog: str
    avg_size: int
    pack_size: int

    @classmethod
    def of(cls, data: DataStore) -> StoreAddress:
        objects = getattr(data.chunks.objects, "url", "")
        return cls(objects, data.catalog.url, data.chunks.avg_size, data.chunks.pack_size)

    @property
    def embedded(self) -> bool:
        """Whether only this machine can open it (a local folder or a SQLite catalog)."""
        return urlparse(self.objects).scheme in ("", "file") or self.catalog.startswith("sqlite")


def datum_sets(
    items: Sequence[tuple[Datum, str]], spec: DatumSetSpec | None, workers: int
) -> list[list[tuple[Datum, str]]]:
    """``items`` (datum, hash) cut into sets, in order (Pachyderm's ``datum_set_spec``): a
    set closes at ``number`` datums or ``size_bytes`` input bytes, whichever comes first; with
    neither, ``per_worker`` (default DEFAULT_SETS_PER_WORKER) sets per worker, even in size.
    Every set holds at least one datum."""
    if not items:
        return []
    number = spec.number if spec else 0
    size = spec.size_bytes if spec else 0
    if not number and not size:
        per_worker = (spec.per_worker if spec else 0) or DEFAULT_SETS_PER_WORKER
        count = min(len(items), max(1, workers) * per_worker)
        number = math.ceil(len(items) / count)
    sets: list[list[tuple[Datum, str]]] = []
    current: list[tuple[Datum, str]] = []
    held = 0
    for item in items:
        current.append(item)
        held += item[0].size
        if (number and len(current) >= number) or (size and held >= size):
            sets.append(current)
            current, held = [], 0
    if current:
        sets.append(current)
    return sets


def task_resources(spec: PipelineSpec) -> dict[str, float | int]:
    """A datum set task's Ray resources from the spec: ``num_cpus`` (``cpu``, default 1),
    ``memory`` in bytes and ``num_gpus`` (``gpu.number``), each taken from
    ``resource_requests``, else ``resource_limits``."""
    found: dict[str, Any] = {}
    for attr in ("cpu", "memory", "gpu"):
        for source in (spec.resource_requests, spec.resource_limits):
            value = getattr(source, attr, None) if source is not None else None
            if value:
                found[attr] = value
                break
    out: dict[str, float | int] = {"num_cpus": float(found.get("cpu") or 1.0)}
    if found.get("memory"):
        out["memory"] = int(found["memory"])
    gpu = found.get("gpu")
    if gpu is not None and gpu.number:
        out["num_gpus"] = gpu.number
    return out


def foreign_nodes(nodes: Sequence[Mapping[str, Any]], address: str, host: str) -> list[str]:
    """The live nodes (as ``ray.nodes()`` lists them) that are not this machine, whose
    address is ``address`` and host name ``host``: ``"host (address)"`` each."""
    return [
        f"{n.get('NodeManagerHostname', '?')} ({n.get('NodeManagerAddress', '?')})"
        for n in nodes
        if n.get("Alive")
        and (n.get("NodeManagerAddress") != address or n.get("NodeManagerHostname") != host)
    ]


def _fits(resources: Mapping[str, float | int], node: Mapping[str, Any]) -> bool:
    have = node.get("Resources", {})
    need = {
        "CPU": resources.get("num_cpus", 0),
        "memory": resources.get("memory", 0),
        "GPU": resources.get("num_gpus", 0),
    }
    return bool(node.get("Alive")) and all(have.get(k, 0) >= v for k, v in need.items() if v)


# -- what a set leaves for a rerun of its job ----------------------------------------------
def _progress_prefix(ctx: RunContext) -> str:
    return f"logs/{ctx.pipeline}/{ctx.job}/sets/"


def _encode(r: DatumResult) -> dict[str, Any]:
    return {
        "hash": r.hash,
        "attempts": r.attempts,
        "exit_code": r.exit_code,
        "duration": r.duration,
        "log": base64.b64encode(r.log).decode(),
        "node": r.node,
        "environment": r.environment,
        "outputs": {
            path: [c.hash, c.size, [[ref.hash, ref.size] for ref in c.chunks]]
            for path, c in r.outputs.items()
        },
    }


def _decode(body: Mapping[str, Any], datum: Datum) -> DatumResult:
    outputs = {
        path: Content(h, size, tuple(ChunkRef(ch, cs) for ch, cs in refs))
        for path, (h, size, refs) in body["outputs"].items()
    }
    return DatumResult(
        datum,
        body["hash"],
        "success",
        body["attempts"],
        body["exit_code"],
        body["duration"],
        base64.b64decode(body["log"]),
        outputs,
        "",
        body["node"],
        body["environment"],
    )


def finished_earlier(
    data: DataStore, ctx: RunContext, todo: Mapping[str, Datum]
) -> list[DatumResult]:
    """The successful results that an earlier run of job ``ctx.job`` (its coordinator
    killed) stored for datums of ``todo`` (hash -> datum), whose chunks are all still
    stored (and now pinned by this job's lease). Unreadable records are ignored."""
    found: dict[str, DatumResult] = {}
    for key in data.chunks.objects.list(_progress_prefix(ctx)):
        try:
            bodies = json.loads(data.chunks.objects.get(key))
            for body in bodies:
                datum = todo.get(body["hash"])
                if datum is not None:
                    found[body["hash"]] = _decode(body, datum)
        except (ValueError, KeyError, TypeError):
            continue
    refs = {ref for r in found.values() for c in r.outputs.values() for ref in c.chunks}
    missing = data.chunks.missing(refs) if refs else set()
    return [
        r
        for r in found.values()
        if not any(ref.hash in missing for c in r.outputs.values() for ref in c.chunks)
    ]


# -- on a node ---------------------------------------------------------------------------
_stores: dict[StoreAddress, DataStore] = {}
_environments: dict[StoreAddress, str] = {}
_open_lock = threading.Lock()


def _node_store(where: StoreAddress) -> tuple[DataStore, str]:
    """The store ``where`` names, opened once per worker process, and the hash of this
    node's environment fingerprint, stored in it once per process."""
    from cairn.catalog import CatalogChunkIndex, open_catalog
    from cairn.storage import ChunkStore, open_object_store

    with _open_lock:
        data = _stores.get(where)
        if data is None:
            catalog = open_catalog(where.catalog)
            chunks = ChunkStore(
                open_object_store(where.objects),
                avg_size=where.avg_size,
                pack_size=where.pack_size,
                index=CatalogChunkIndex(catalog),
            )
            data = _stores[where] = DataStore(catalog, chunks)
        if where not in _environments:
            body = environment_fingerprint()
            key = f"env/{body['hash'][:2]}/{body['hash']}"
            data.chunks.objects.put(key, json.dumps(body, sort_keys=True).encode())
            _environments[where] = body["hash"]
        return data, _environments[where]


def _failed(datum: Datum, datum_hash: str, reason: str, node: str = "") -> DatumResult:
    return DatumResult(
        datum, datum_hash, "failed", 1, None, 0.0, f"[cairn] {reason}\n".encode(), {}, reason, node
    )


def run_set(
    where: StoreAddress, ctx: RunContext, items: list[tuple[Datum, str]]
) -> list[DatumResult]:
    """A Ray task: run the datum set ``items`` (datum, hash) on this node as the local
    executor would, storing outputs in the shared store, and return their results marked
    with this node's id and environment. Raises only for cairn's own failures (the store
    unreachable), which fail the set's datums at the coordinator."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    data, environment = _node_store(where)
    if ctx.sandbox and not sandbox_available():
        reason = (
            f"node {node[:12]} cannot start the transform: the job runs datums in the "
            "sandbox and this node has no usable bubblewrap; install it on the node"
        )
        return [_failed(d, h, reason, node) for d, h in items]
    results: list[DatumResult] = []
    with data.pins.lease():
        if ctx.transform.datum_batching:
            run_batch(data, ctx, DatumQueue(items), results.append)
        else:
            results = [run_datum(data, ctx, d, h) for d, h in items]
        data.chunks.flush()  # the coordinator commits trees naming these chunks
    results = [replace(r, node=node, environment=environment) for r in results]
    done = [_encode(r) for r in results if r.state == "success"]
    if done:
        name = blake3.blake3("\n".join(sorted(h for _, h in items)).encode()).hexdigest()
        data.chunks.objects.put(f"{_progress_prefix(ctx)}{name}", json.dumps(done).encode())
    return results


# -- at the coordinator ------------------------------------------------------------------
def _reason(exc: BaseException, tries: int) -> str:
    """One line saying why a datum set's task failed, without Ray's traceback."""
    import ray.exceptions as rex

    def first_line(e: BaseException) -> str:
        text = str(e).strip().splitlines()
        return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")

    if isinstance(exc, rex.RuntimeEnvSetupError):
        return f"the node cannot start the transform: its runtime environment failed: {exc}"
    if isinstance(exc, rex.RayTaskError):
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        if isinstance(cause, ImportError):
            return f"the node cannot start the transform: {first_line(cause)} ({_INSTALL})"
        return f"cairn failed on the node: {first_line(cause)}"
    if isinstance(exc, rex.WorkerCrashedError | rex.NodeDiedError | rex.ObjectLostError):
        return f"its node or worker was lost in each of {tries} attempt(s): {first_line(exc)}"
    return f"the Ray task failed: {first_line(exc)}"


class RayExecutor:
    """Runs datum sets as Ray tasks on the cluster at ``address`` (``auto`` or
    ``ray://HOST:PORT``); see the module doc. Connects at the first job."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._remote: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RayExecutor({self.address!r})"

    def _ray(self) -> Any:
        """Ray, connected. Raises ExecutorError (Ray missing, no cluster there)."""
        try:
            import ray
        except ImportError:
            raise ExecutorError(_INSTALL) from None
        with self._lock:
            if not ray.is_initialized():
                try:
                    ray.init(
                        address=self.address,
                        logging_level=logging.ERROR,
                        log_to_driver=False,
                        namespace="cairn",
                    )
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    where = "RAY_ADDRESS or ray start" if self.address == "auto" else self.address
                    raise ExecutorError(f"cannot reach a Ray cluster ({where}): {exc}") from None
            if self._remote is None:
                self._remote = ray.remote(run_set)
        return ray

    def check(self, data: DataStore, spec: PipelineSpec) -> None:
        """Refuse a job this cluster cannot run: a store its nodes cannot share, or
        resource requests that fit no live node. Raises ExecutorError."""
        ray = self._ray()
        where = StoreAddress.of(data)
        nodes = ray.nodes()
        if urlparse(where.objects).scheme in ("", "memory"):
            raise ExecutorError(
                "a memory:// object store lives in this process; a Ray cluster needs a "
                "shared object store (s3://) and catalog (postgresql://)"
            )
        if where.embedded:
            others = foreign_nodes(nodes, ray.util.get_node_ip_address(), socket.gethostname())
            if others:
                raise ExecutorError(
                    f"this store is embedded (objects {where.objects}, catalog "
                    f"{where.catalog.split('://')[0]}) and nodes {', '.join(others)} are other "
                    "machines that cannot open it: use a shared object store (s3://) and "
                    "catalog (postgresql://), or the local executor"
                )
        resources = task_resources(spec)
        if not any(_fits(resources, n) for n in nodes):
            raise ExecutorError(
                f"no live node of the Ray cluster has the resources a datum requests "
                f"({', '.join(f'{k}={v}' for k, v in resources.items())})"
            )

    def run(
        self,
        data: DataStore,
        ctx: RunContext,
        spec: PipelineSpec,
        todo: list[Datum],
        hashes: Mapping[str, str],
    ) -> Iterator[DatumResult]:
        """Run ``todo`` as datum set tasks, yielding each datum's result as its set ends.
        Raises ExecutorError (see :meth:`check`, which callers run first)."""
        if not todo:
            return
        earlier = finished_earlier(data, ctx, {hashes[d.id]: d for d in todo})
        yield from earlier
        taken = {r.hash for r in earlier}
        todo = [d for d in todo if hashes[d.id] not in taken]
        try:
            yield from self._run(data, ctx, spec, todo, hashes)
        finally:
            objects = data.chunks.objects
            objects.delete_many(list(objects.list(_progress_prefix(ctx))))

    def _run(
        self,
        data: DataStore,
        ctx: RunContext,
        spec: PipelineSpec,
        todo: list[Datum],
        hashes: Mapping[str, str],
    ) -> Iterator[DatumResult]:
        if not todo:
            return
        ray = self._ray()
        resources = task_resources(spec)
        cpus = sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive"))
        parallelism = spec.parallelism_spec
        if parallelism is not None and parallelism.constant is not None:
            workers = parallelism.constant
        elif parallelism is not None and parallelism.coefficient is not None:
            # Pachyderm multiplies the cluster's nodes; the cluster's cores are what run here
            workers = max(1, math.ceil(parallelism.coefficient * cpus))
        else:
            workers = max(1, int(cpus // resources["num_cpus"]))
        items = [(d, hashes[d.id]) for d in todo]
        queue = deque(datum_sets(items, spec.datum_set_spec, workers))
        options = dict(resources, max_retries=ctx.tries, retry_exceptions=False)
        task = self._remote.options(**options)
        # Put once, passed by reference to every task.
        where, context = ray.put(StoreAddress.of(data)), ray.put(ctx)
        pending: dict[Any, list[tuple[Datum, str]]] = {}
        while queue or pending:
            while queue and len(pending) < workers:
                chunk = queue.popleft()
                pending[task.remote(where, context, chunk)] = chunk
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                chunk = pending.pop(ref)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    reason = _reason(exc, ctx.tries)
                    results = [_failed(d, h, reason) for d, h in chunk]
                yield from results
