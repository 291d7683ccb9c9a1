"""One ``cairn serve`` worker's lifecycle: open the store, load the deployment's models
and its prediction log (``start``), follow policy changes off the request path
(``sync``), and close it all, committing the log (``stop``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.client import Client
from cairn.server import mlflow_protocol as mlp
from cairn.server.metrics import ServerMetrics
from cairn.server.settings import ServerSettings
from cairn.serving.endpoint import Endpoint
from cairn.serving.predlog import PredictionLog

__all__ = ["State", "start", "stop", "sync"]


@dataclass
class State:
    """What one worker holds while it runs."""

    settings: ServerSettings
    client: Client
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
    # who may call the admin routes (cairn.server.team.auth.AuthGuard), made on first use
    guard: Any = None


def start(settings: ServerSettings) -> State:
    client = Client.open(settings.home, auto_run=False)
    model = client.deployments.get(settings.deployment).model
    cache = settings.cache_dir or client.home / "work" / "serving"
    predlog = PredictionLog(client.data, settings.log_repo) if settings.log_repo else None
    endpoint = Endpoint(
        client.data,
        client.registry,
        client.traffic,
        settings.deployment,
        cache_dir=cache,
        poll_interval=settings.poll_interval,
        predlog=predlog,
    )
    try:
        endpoint.start()
    except BaseException:
        endpoint.close()
        if predlog is not None:
            predlog.close()
        raise
    state = State(
        settings, client, endpoint, predlog, ServerMetrics(settings.deployment), model, cache
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
            state.client.data.catalog.dispose()


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
