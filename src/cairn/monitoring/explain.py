"""Explain one logged prediction: from the request back to the bytes that made its model.

``explain_prediction`` finds a record of the prediction log (``cairn.serving.predlog``) by
request id, or the one of a deployment nearest a time, and returns one JSON-able document
(the ``--raw`` form of ``cairn explain prediction``)::

    {"request": {request_id, time, deployment, model, version, target, protocol, method,
                 inputs, outputs, latency_ms, shadow, status, error},
     "log": {"repo", "commit"},                # the log commit read
     "mirrors": [...],                         # shadow records of the same request id
     "deployment": {"revision", "time", "reason", "policy"} | {"missing": why},
     "aliases": {alias: version at that moment}, "answered_as": [aliases of the version],
     "lineage": Registry.lineage of model/version | null,
     "missing": [what was deleted since, in words],
     "drift": {"monitor", "drifted", "share_drifted", "window", "event"} | null,
     "events": [events of the model, deployment and its monitors within EVENT_SPAN s]}

Everything is read as recorded, never through branch heads: the version the record
names (not what an alias points to now), the deployment revision in force at the
record's time, the alias history, and the lineage's recorded commits. Something deleted
since (the model version, its commit, the pipeline's job, the deployment) is named in
``missing`` and the rest is still returned. Nothing is written.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from cairn.data import DataStore, NotFound, Ref
from cairn.data.paths import normalize
from cairn.data.subject import about
from cairn.ml.events import list_events
from cairn.monitoring.errors import DriftInputError
from cairn.monitoring.rules import list_monitors
from cairn.monitoring.state import read_state
from cairn.serving.predlog import read_records

if TYPE_CHECKING:
    from cairn.ml.registry import Registry
    from cairn.serving.policy import Deployments

__all__ = ["EVENT_SPAN", "explain_prediction", "find_record"]

EVENT_SPAN = 3600.0
"""Events within this many seconds either side of the request are "around it"."""

_NEAR = 300.0  # --at finds the nearest record within this many seconds


def find_record(
    data: DataStore,
    request_id: str | None = None,
    *,
    deployment: str | None = None,
    at: float | None = None,
    log_repo: str = "predictions",
) -> tuple[dict[str, Any], builtins.list[dict[str, Any]], str]:
    """The record answering ``request_id`` (or ``deployment``'s record nearest ``at``,
    UTC seconds, within five minutes), the shadow records of the same request, and the log
    commit read. A request is looked for in every deployment's folder unless
    ``deployment`` narrows it. Raises NotFound (no such record, log repo or folder),
    DriftInputError (neither a request id nor ``deployment`` with ``at``)."""
    if request_id is None and (deployment is None or at is None):
        raise DriftInputError("name a request id, or a deployment and a time (at)")
    head = data.resolve(Ref(log_repo, None)).id
    since = until = None
    if request_id is None and at is not None:
        since, until = at - _NEAR, at + _NEAR
    found: builtins.list[dict[str, Any]] = []
    for rec in read_records(
        data, log_repo, commit=head, deployment=deployment, since=since, until=until
    ):
        if request_id is None or rec.get("request_id") == request_id:
            found.append(rec)
    if request_id is None:
        answered = [r for r in found if not r.get("shadow")] or found
        if answered:
            best = min(answered, key=lambda r: abs(float(r["time"]) - float(at or 0.0)))
            request_id = best["request_id"]
            found = [r for r in found if r.get("request_id") == request_id]
    if not found:
        what = f"request {request_id!r}" if request_id else f"request of {deployment!r} near {at}"
        raise about(
            NotFound(f"no {what} in the prediction log {log_repo}@{head[:12]}"),
            "prediction.missing",
        )
    primary = next((r for r in found if not r.get("shadow")), found[0])
    mirrors = [r for r in found if r is not primary]
    return primary, mirrors, head


def explain_prediction(
    data: DataStore,
    registry: Registry,
    deployments: Deployments,
    request_id: str | None = None,
    *,
    deployment: str | None = None,
    at: float | None = None,
    log_repo: str = "predictions",
) -> dict[str, Any]:
    """The document of the module doc for one logged request. Raises NotFound (no such
    record), DriftInputError (neither a request id nor a deployment and time)."""
    rec, mirrors, head = find_record(
        data, request_id, deployment=deployment, at=at, log_repo=log_repo
    )
    t = float(rec["time"])
    name, version = rec.get("model"), rec.get("version")
    missing: builtins.list[str] = []
    doc: dict[str, Any] = {
        "request": rec,
        "log": {"repo": log_repo, "commit": head},
        "mirrors": mirrors,
        "deployment": _revision_at(deployments, rec.get("deployment"), t, missing),
        "aliases": {},
        "answered_as": [],
        "lineage": None,
        "missing": missing,
    }
    if name is not None:
        doc["aliases"] = _aliases_at(registry, name, t, doc["deployment"])
        doc["answered_as"] = sorted(a for a, v in doc["aliases"].items() if v == version)
        try:
            doc["lineage"] = registry.lineage(f"{name}/{version}")
        except NotFound as exc:
            missing.append(f"model version {name}/{version}: {exc}")
        lineage = doc["lineage"]
        if lineage is not None and lineage.get("training"):
            missing += _deleted_inputs(data, lineage["training"])
    monitors = [
        m for m in list_monitors(data.catalog) if m.rule.deployment_name == rec.get("deployment")
    ]
    doc["drift"] = _drift_at(data, monitors, rec)
    subjects = {s for s in (name, rec.get("deployment")) if s} | {m.name for m in monitors}
    doc["events"] = [
        e.to_json()
        for s in sorted(subjects)
        for e in list_events(data.catalog, subject=s)
        if abs(e.time - t) <= EVENT_SPAN
    ]
    doc["events"].sort(key=lambda e: e["time"])
    return doc


def _revision_at(
    deployments: Deployments, name: str | None, t: float, missing: builtins.list[str]
) -> dict[str, Any]:
    """The deployment revision in force at ``t``."""
    if name is None:
        return {"missing": "the record names no deployment"}
    try:
        history = deployments.history(name)
    except NotFound:
        missing.append(f"deployment {name!r} was deleted")
        return {"name": name, "missing": f"deployment {name!r} does not exist any more"}
    before = [r for r in history if r.time <= t]
    if not before:
        return {"name": name, "missing": "no revision of the deployment is older than the record"}
    r = before[-1]
    return {"name": name, **r.to_json()}


def _aliases_at(
    registry: Registry, name: str, t: float, revision: dict[str, Any]
) -> dict[str, int | None]:
    """Where each alias of the model (those the policy routes to, and those it has now or
    had) pointed at ``t``, from the alias history."""
    names: set[str] = set()
    try:
        names |= set(registry.aliases(name))
    except NotFound:
        return {}
    policy = revision.get("policy") or {}
    targets = [r["target"] for r in policy.get("routes") or []] + list(policy.get("shadow") or [])
    names |= {t for t in targets if not t.isdigit()}
    out: dict[str, int | None] = {}
    for alias in sorted(names):
        try:
            moves = registry.alias_history(name, alias)
        except NotFound:
            continue
        before = [m for m in moves if m["time"] <= t]
        if before:
            out[alias] = before[-1]["version"]
    return out


def _deleted_inputs(data: DataStore, training: dict[str, Any]) -> builtins.list[str]:
    """The recorded input commits that do not exist any more."""
    gone = []
    for name, c in (training.get("input_commits") or {}).items():
        try:
            data.inspect_commit(c["repo"], c["commit"])
        except NotFound:
            gone.append(f"input {name}: commit {c['repo']}@{c['commit']} was deleted")
    for f in training.get("input_files") or []:
        try:
            data.inspect_file(Ref(f["repo"], f["commit"], path=normalize(f["path"])))
        except NotFound:
            gone.append(f"input file {f['repo']}@{f['commit']}:{f['path']} was deleted")
    return gone


def _drift_at(
    data: DataStore, monitors: builtins.list[Any], rec: dict[str, Any]
) -> dict[str, Any] | None:
    """The drift verdict of the window the request fell in: the ``monitor.drift`` event
    whose window (re-read at its recorded log commit) holds the request; else, when a
    monitor checked after the request, that no drift window held it (checks that found no
    drift are not recorded one by one)."""
    from cairn.monitoring.windows import read_window

    t = float(rec["time"])
    for m in monitors:
        for e in list_events(data.catalog, subject=m.name, kind="monitor.drift"):
            window = e.info.get("window") or {}
            if e.time < t or (window.get("until") is not None and t >= window["until"]):
                continue
            try:
                held = read_window(
                    data,
                    m.rule.deployment_name,
                    repo=m.rule.log_repo,
                    commit=window.get("log_commit"),
                    since=window.get("since"),
                    until=window.get("until"),
                    last=window.get("last"),
                )
            except NotFound:
                continue
            if rec["request_id"] in set(held.requests["request_id"]):
                return {
                    "monitor": m.name,
                    "drifted": True,
                    "share_drifted": e.info.get("share_drifted"),
                    "window": window,
                    "event": e.id,
                }
    for m in monitors:
        check = read_state(data.catalog, m.name).info.get("last_check") or {}
        if check.get("time", 0) >= t:
            return {
                "monitor": m.name,
                "drifted": False,
                "share_drifted": None,
                "window": None,
                "event": None,
            }
    return None
