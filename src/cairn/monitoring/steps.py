"""What advances a monitor out of each step (``cairn.monitoring.loop``'s state machine).

Each handler takes the ``Monitors``, the rule of the cycle and the monitor's state, does
the step's side effect (idempotently: redone after a crash it finds its commit, version or
policy in place) and returns the transition (``Move``), or None to wait for the next
tick. ``loop._STEP_HANDLERS`` maps every step to its handler. A CairnError raised here
ends the cycle (``monitor.failed``); the loop puts traffic back on the champion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.data import NotFound, Ref, parse_ref
from cairn.data.paths import normalize
from cairn.monitoring.errors import LoopError
from cairn.monitoring.evaluation import evaluate, metric_of
from cairn.monitoring.labels import read_labels
from cairn.monitoring.rules import MonitorRule, MonitorStep, ReplaySpec, RetrainAction, metric_name
from cairn.monitoring.state import MonitorState, Move, note
from cairn.monitoring.window_commit import commit_source, commit_window
from cairn.serving.predlog import read_records
from cairn.storage.errors import CairnError

if TYPE_CHECKING:
    from cairn.monitoring.loop import Monitors

__all__ = [
    "canary",
    "challenger_registered",
    "data_committed",
    "drift",
    "evaluated",
    "idle",
    "model_trained",
    "retrain_of",
]


def idle(monitors: Monitors, rule: MonitorRule, state: MonitorState) -> Move | None:
    now = monitors.clock()
    try:
        head = monitors.data.resolve(Ref(rule.log_repo, "master")).id
    except NotFound:
        return None  # nothing logged yet
    last = state.info.get("last_check") or {}
    due = head != last.get("log_commit") or now - last.get("time", 0) >= rule.schedule.interval
    if not due:
        return None
    since = now - rule.window.since if rule.window.since is not None else None
    after = state.info.get("after")
    if after is not None:
        since = after if since is None else max(since, after)
    window = {"log_commit": head, "since": since, "until": now, "last": rule.window.last}
    check: dict[str, Any] = {"time": now, "log_commit": head}
    try:
        report = _check(monitors, rule, window)
    except CairnError as exc:  # too few rows, no reference yet: no verdict
        note(
            monitors.catalog,
            rule.name,
            state,
            monitors.clock(),
            last_check={**check, "error": str(exc)},
        )
        return None
    rows = int(report.window["rows"])
    result = report.result
    check.update(rows=rows, drifted=result.drifted, share_drifted=result.share_drifted)
    if not result.drifted:
        note(monitors.catalog, rule.name, state, monitors.clock(), last_check=check)
        return None
    version = monitors.get(rule.name).version
    reasons = {
        "model": rule.model,
        "deployment": rule.deployment_name,
        "share_drifted": result.share_drifted,
        "drift_share": rule.drift_share,
        "method": result.method,
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "features": [
            {"name": f.name, "score": f.score, "threshold": f.threshold, "method": f.method}
            for f in result.features
            if f.drifted
        ],
        "window": window,
        "action": "retrain" if rule.action.retrain else "alert",
    }
    cycle = {
        "rule_version": version,
        "started": now,
        "window": window,
        "after": now,
        "drift": reasons,
    }
    state.info["last_check"] = check
    if rule.action.retrain is None:
        return Move(MonitorStep.IDLE, "monitor.drift", reasons, cycle, end=True)
    return Move(MonitorStep.DRIFT, "monitor.drift", reasons, cycle)


def drift(monitors: Monitors, rule: MonitorRule, state: MonitorState) -> Move | None:
    retrain = retrain_of(rule)
    to = parse_ref(retrain.to)
    spec = monitors.pipelines.inspect_pipeline(retrain.pipeline).spec
    if to.repo not in {p.repo for p in spec.pfs_inputs()}:
        raise LoopError(
            f"pipeline {retrain.pipeline!r} does not read repo {to.repo!r}; set "
            "action.retrain.to to one of its inputs"
        )
    cycle = state.info["cycle"]
    if retrain.source == "window":
        commit, detail = commit_window(monitors.data, rule, retrain, cycle["window"], state.cycle)
    else:
        commit, detail = commit_source(monitors.data, retrain)
    if monitors.runner is not None:
        monitors.runner()
    reasons = {"repo": to.repo, "branch": to.commit, "commit": commit, **detail}
    return Move(
        MonitorStep.DATA_COMMITTED,
        "monitor.data_committed",
        reasons,
        {"training_commit": commit},
    )


def data_committed(monitors: Monitors, rule: MonitorRule, state: MonitorState) -> Move | None:
    retrain = retrain_of(rule)
    to = parse_ref(retrain.to)
    wanted = monitors.data.inspect_commit(to.repo, state.info["cycle"]["training_commit"])
    spec = monitors.pipelines.inspect_pipeline(retrain.pipeline).spec
    names = [p.input_name for p in spec.pfs_inputs() if p.repo == to.repo]
    for job in monitors.pipelines.list_jobs(retrain.pipeline):  # newest first
        used = [job.inputs.get(n) for n in names if job.inputs.get(n)]
        if not used:
            continue
        covered = any(
            monitors.data.inspect_commit(to.repo, c).created >= wanted.created for c in used
        )
        if not covered:
            continue
        if job.state == "success" and job.output_commit:
            ref = Ref(retrain.pipeline, job.output_commit, path=normalize(retrain.model_path))
            try:
                monitors.data.inspect_file(ref)
            except NotFound:
                raise LoopError(
                    f"job {retrain.pipeline}@{job.id} wrote no {retrain.model_path}; set "
                    "action.retrain.model_path to the model file its transform writes"
                ) from None
            reasons = {
                "pipeline": retrain.pipeline,
                "job": job.id,
                "commit": job.output_commit,
                "path": retrain.model_path,
            }
            return Move(
                MonitorStep.MODEL_TRAINED,
                "monitor.model_trained",
                reasons,
                {"job": job.id, "output_commit": job.output_commit},
            )
        if job.state in ("failure", "unrunnable"):
            raise LoopError(f"training job {retrain.pipeline}@{job.id} {job.state}: {job.reason}")
        return None  # running
    return None  # not started yet


def model_trained(monitors: Monitors, rule: MonitorRule, state: MonitorState) -> Move | None:
    retrain = retrain_of(rule)
    cycle = state.info["cycle"]
    path = "/" + normalize(retrain.model_path)
    found = None
    try:
        versions = monitors.registry.list_versions(rule.model_name)
    except NotFound:
        versions = []
    for v in versions:
        if (v.repo, v.commit, "/" + normalize(v.path)) == (
            retrain.pipeline,
            cycle["output_commit"],
            path,
        ):
            found = v  # registered before a crash
    if found is None:
        found = monitors.registry.register(
            rule.model_name,
            f"{retrain.pipeline}@{cycle['output_commit']}:{path}",
            description=f"monitor {rule.name}, cycle {state.cycle}",
            trust=retrain.trust,
        )
    monitors.registry.set_alias(
        rule.model_name,
        "challenger",
        found.version,
        reason=f"monitor {rule.name}, cycle {state.cycle}",
    )
    champion = monitors.registry.resolve(rule.model).version
    reasons = {
        "model": rule.model_name,
        "version": found.version,
        "champion": champion,
        "ref": found.ref,
    }
    return Move(
        MonitorStep.CHALLENGER_REGISTERED,
        "monitor.challenger_registered",
        reasons,
        {"challenger": found.version, "champion": champion},
    )


def challenger_registered(monitors: Monitors, rule: MonitorRule, state: MonitorState) -> Move:
    retrain = retrain_of(rule)
    canary = retrain.canary
    gate: dict[str, Any] | None = None
    if retrain.replay is not None:
        gate = _replay_gate(monitors, rule, retrain, retrain.replay, state)
        if not gate["passed"]:
            refused = {
                "decision": "rollback",
                "metric": None,
                "replay": gate,
                "reasons": gate["reasons"],
            }
            return Move(
                MonitorStep.EVALUATED, "monitor.evaluated", refused, {"evaluation": refused}
            )
    deployment = monitors.deployments.canary(
        rule.deployment_name,
        "challenger",
        canary.percent,
        reason=f"monitor {rule.name}, cycle {state.cycle}: canary",
    )
    now = monitors.clock()
    reasons = {
        "deployment": deployment.name,
        "percent": canary.percent,
        "revision": deployment.revision,
        "requests": canary.requests,
        "seconds": canary.seconds,
    }
    if gate is not None:
        reasons["replay"] = gate
    return Move(MonitorStep.CANARY, "monitor.canary", reasons, {"canary_started": now})


def canary(monitors: Monitors, rule: MonitorRule, state: MonitorState) -> Move | None:
    retrain = retrain_of(rule)
    cycle = state.info["cycle"]
    live = _live(monitors, rule, retrain, cycle)
    waited = monitors.clock() - cycle["canary_started"]
    wanted, answered = retrain.canary.requests, live["challenger"]["requests"]
    if wanted is not None and answered < wanted:
        if waited < retrain.canary.max_seconds:
            return None
        timed_out = {
            "decision": "rollback",
            "metric": None,
            "live": live,
            "reasons": [
                f"canary timed out: the challenger answered {answered} of {wanted} "
                f"request(s) in {waited:.0f} s (canary.max_seconds "
                f"{retrain.canary.max_seconds:g})"
            ],
            "canary_seconds": waited,
        }
        return Move(
            MonitorStep.EVALUATED, "monitor.evaluated", timed_out, {"evaluation": timed_out}
        )
    if retrain.canary.seconds is not None and waited < retrain.canary.seconds:
        return None
    evaluation = evaluate(monitors.data, monitors.registry, rule, retrain, cycle, live)
    evaluation["canary_seconds"] = waited
    return Move(MonitorStep.EVALUATED, "monitor.evaluated", evaluation, {"evaluation": evaluation})


def evaluated(monitors: Monitors, rule: MonitorRule, state: MonitorState) -> Move:
    retrain = retrain_of(rule)
    cycle = state.info["cycle"]
    evaluation = cycle["evaluation"]
    why = f"monitor {rule.name}, cycle {state.cycle}"
    version = cycle["challenger"]
    aliases = monitors.registry.aliases(rule.model_name)
    if evaluation["decision"] == "promote":
        monitors.registry.set_alias(rule.model_name, rule.alias, version, reason=f"{why}: promoted")
        monitors.deployments.reset(rule.deployment_name, rule.alias, reason=f"{why}: promoted")
        if not retrain.keep_challenger and aliases.get("challenger") is not None:
            monitors.registry.delete_alias(rule.model_name, "challenger")
        reasons = {
            "version": version,
            "previous": cycle["champion"],
            "reasons": evaluation["reasons"],
        }
        return Move(
            MonitorStep.IDLE, "monitor.promoted", reasons, {"after": monitors.clock()}, end=True
        )
    monitors.deployments.reset(rule.deployment_name, rule.alias, reason=f"{why}: rolled back")
    if not retrain.keep_challenger and aliases.get("challenger") == version:
        monitors.registry.delete_alias(rule.model_name, "challenger")
    reasons = {
        "version": version,
        "champion": cycle["champion"],
        "reasons": evaluation["reasons"],
    }
    return Move(
        MonitorStep.IDLE, "monitor.rolled_back", reasons, {"after": monitors.clock()}, end=True
    )


def _live(
    monitors: Monitors, rule: MonitorRule, retrain: RetrainAction, cycle: dict[str, Any]
) -> dict[str, Any]:
    """Requests (not shadows) answered since the canary started, per side: count,
    errors, and with labels the live metric."""
    try:
        records = list(
            read_records(
                monitors.data,
                rule.log_repo,
                deployment=rule.deployment_name,
                since=cycle["canary_started"],
                shadow=False,
            )
        )
    except NotFound:
        records = []
    sides = {"challenger": cycle["challenger"], "champion": cycle["champion"]}
    out: dict[str, Any] = {}
    labels = None
    if retrain.labels is not None:
        labels = read_labels(monitors.data, retrain.labels, retrain.label_column)
    name, fn = metric_of(retrain)
    for side, version in sides.items():
        mine = [r for r in records if r.get("version") == version]
        stats: dict[str, Any] = {
            "version": version,
            "requests": len(mine),
            "errors": sum(1 for r in mine if r.get("status") == "error"),
        }
        if labels is not None and not labels.empty:
            truth = labels.groupby("request_id")[retrain.label_column].last()
            pairs = [
                (truth[r["request_id"]], r["outputs"][0])
                for r in mine
                if r.get("status") == "ok" and r["request_id"] in truth.index and r.get("outputs")
            ]
            stats["labelled"] = len(pairs)
            if pairs:
                stats[name] = float(fn([p[0] for p in pairs], [p[1] for p in pairs]))
        out[side] = stats
    return out


def _replay_gate(
    monitors: Monitors,
    rule: MonitorRule,
    retrain: RetrainAction,
    spec: ReplaySpec,
    state: MonitorState,
) -> dict[str, Any]:
    """The challenger replayed on the deployment's logged traffic before any live request
    (cairn.monitoring.replay), and whether it passes ``retrain.replay``."""
    from cairn.monitoring.replay import replay, replay_verdict

    version = state.info["cycle"]["challenger"]
    now = monitors.clock()
    doc = replay(
        monitors.data,
        monitors.registry,
        f"{rule.model_name}/{version}",
        rule.deployment_name,
        since=now - spec.since if spec.since is not None else None,
        until=now,
        last=spec.last,
        log_repo=rule.log_repo,
        labels=retrain.labels if spec.metric is not None else None,
        label_column=retrain.label_column,
        metric=metric_name(spec.metric) if spec.metric is not None else None,
    )
    passed, reasons = replay_verdict(doc, spec)
    return {
        "passed": passed,
        "reasons": reasons,
        "version": version,
        "log_commit": doc["commit"],
        "compared": doc["compared"],
        "agreement": doc["agreement"],
        "production": doc["production"],
        "confusion": doc["confusion"],
        "labels": doc["labels"],
    }


def retrain_of(rule: MonitorRule) -> RetrainAction:
    if rule.action.retrain is None:
        raise LoopError(f"monitor {rule.name!r} has no action.retrain")
    return rule.action.retrain


def _check(monitors: Monitors, rule: MonitorRule, window: dict[str, Any]) -> Any:
    """The drift report of the rule's window (cairn.monitoring.monitor.check_model)."""
    from cairn.monitoring.monitor import check_model

    return check_model(
        monitors.data,
        monitors.registry,
        rule.model,
        deployment=rule.deployment_name,
        since=window["since"],
        until=window["until"],
        last=window["last"],
        reference=rule.reference,
        config=rule.drift_config(),
        log_repo=rule.log_repo,
        min_rows=rule.window.min_rows,
    )
