"""One ``cairn serve`` worker's lifecycle: open the store, load the deployment's models
and its prediction log (``start``), follow policy changes off the request path
(``sync``), and close it all, committing the log (``stop``).

The store is the one in this process (``settings.home``) or, when ``settings.url`` names
a ``cairn server``, that server's through the face (cairn.server.remote_store):
``open_store`` picks, and the rest does not know which it holds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.client import Client
from cairn.data import DataStore
from cairn.server import mlflow_protocol as mlp
from cairn.server.metrics import ServerMetrics
from cairn.server.settings import ServerSettings
from cairn.serving.endpoint import Endpoint
from cairn.serving.predlog import PredictionLog
from cairn.serving.source import LogSink, ServingSource, StoreSource

__all__ = ["State", "Store", "open_store", "start", "stop", "sync"]


@dataclass
class Store:
    """Where a model server reads and writes: ``client`` (cairn.Client, or the remote
    client when ``url`` names a server), the endpoint's ``source``, the log's ``sink``
    and the default cache folder of model files."""

    client: Any
    source: ServingSource
    sink: DataStore | LogSink
    cache_dir: Path
    url: str | None = None

    def close(self) -> None:
        if self.url is None:
            self.client.data.catalog.dispose()
        else:
            self.client.close()


def open_store(settings: ServerSettings) -> Store:
    """The store ``settings`` name: the ``cairn server`` at ``settings.url`` (with
    ``settings.token``), else the embedded one in ``settings.home``. Model files are
    cached in ``settings.cache_dir``, else ``<home>/work/serving`` (embedded) or
    ``$XDG_CACHE_HOME/cairn/serving`` (remote; ``~/.cache`` without it). Raises
    ConfigError, ServerUnreachable."""
    if settings.url is not None:
        from cairn.api.remote.client import RemoteClient
        from cairn.server.remote_store import FaceSink, FaceSource

        # auto_run off: a log commit must not wait for the server's pipelines downstream
        remote = RemoteClient(settings.url, settings.token, auto_run=False)
        cache = settings.cache_dir or _user_cache() / "serving"
        return Store(remote, FaceSource(remote), FaceSink(remote), cache, settings.url)
    client = Client.open(settings.home, auto_run=False)
    source = StoreSource(client.data, client.registry, client.traffic)
    cache = settings.cache_dir or client.home / "work" / "serving"
    return Store(client, source, client.data, cache)


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cairn"


@dataclass
class State:
    """What one worker holds while it runs."""

    settings: ServerSettings
    store: Store
    endpoint: Endpoint
    log: PredictionLog | None
    metrics: ServerMetrics
    model: str
    cache_dir: Path
    # the signature's inputs when every loaded version agrees on them (names positional
    # inputs); recomputed when the endpoint's revision changes, never per request
    schema: mlp.InputSchema | None = None
    revision: int | None = -1
    # with allow_any_version: versions a V2 path named that the policy does not reach,
    # loaded on first use
    pinned: dict[int, Any] = field(default_factory=dict)
    # who may call the admin routes (cairn.server.team.auth.AuthGuard, or
    # cairn.server.remote_store.FaceAdmin), made on first use
    guard: Any = None


def start(settings: ServerSettings) -> State:
    store = open_store(settings)
    try:
        model = store.source.deployment(settings.deployment).model
        cache = store.cache_dir
        predlog = PredictionLog(store.sink, settings.log_repo) if settings.log_repo else None
        endpoint = Endpoint(
            store.source,
            settings.deployment,
            cache_dir=cache,
            poll_interval=settings.poll_interval,
            predlog=predlog,
            strict_schema=settings.strict_schema,
        )
        try:
            endpoint.start()
        except BaseException:
            endpoint.close()
            if predlog is not None:
                predlog.close()
            raise
    except BaseException:
        store.close()
        raise
    state = State(
        settings, store, endpoint, predlog, ServerMetrics(settings.deployment), model, cache
    )
    sync(state)
    return state


def stop(state: State) -> None:
    """Stop following, close the models, commit the log (what is queued is committed)."""
    try:
        state.endpoint.close()
        for model in state.pinned.values():
            model.close()
    finally:
        try:
            if state.log is not None:
                state.log.close()
        finally:
            state.metrics.close()
            state.store.close()


def sync(state: State) -> None:
    """Follow the endpoint (off the request path): the policy revision, the loaded
    versions, the log's counters, and the input schema positional inputs are named by."""
    endpoint = state.endpoint
    revision = endpoint.revision
    versions = endpoint.versions
    state.metrics.set_endpoint(revision, sorted(versions))
    if state.log is not None:
        state.metrics.set_log_stats(state.log.stats)
    if revision == state.revision:
        return
    keys = {_input_key(mv.signature) for mv in versions.values()}
    key = keys.pop() if len(keys) == 1 else None
    state.schema = mlp.InputSchema.of(*key) if key else None
    state.revision = revision


def _input_key(signature: Mapping[str, Any] | None) -> tuple[tuple[str, ...], ...] | None:
    specs = (signature or {}).get("inputs") or []
    if not specs:
        return None
    return tuple(str(s["name"]) for s in specs), tuple(str(s["type"]) for s in specs)
