"""The monitoring loop: each monitor's state machine, persisted so that it survives crashes.

States (``monitor_state.step``) and what moves a monitor out of each::

    idle --check: drift--> drift --commit data--> data_committed --job done--> model_trained
      ^    (alert only: back to idle)                   |  job failed: idle (monitor.failed)
      |                                                 v
      |   challenger_registered <--register + alias "challenger"-- model_trained
      |          |
      |          v  Deployments.canary(challenger, percent)
      |        canary --requests and/or seconds reached, evaluation recorded--> evaluated
      |                                                                          |
      +--------- promoted (champion := challenger, traffic 100% champion) <------+
      +--------- rolled_back (traffic 100% champion, challenger alias removed) <-+

Every transition is one catalog write transaction holding the new step, what it found
(``info``) and an event ``monitor.<step>`` (subject: the monitor) with its reasons, guarded by
the step it leaves (compare and set): a crash between two steps resumes at the step last
recorded, and two processes ticking one monitor never both move it. The side effect of a
step (a commit, a registration, an alias or policy change) happens before its transition
and is idempotent: a step redone after a crash finds its commit, version or policy already
in place and reuses it. Promotion is only ever done from ``evaluated``, whose info holds the
evaluation, so a model whose evaluation was not recorded is never promoted.

``tick()`` advances each monitor as far as it can without waiting: a canary that needs more
requests or time, or a training job not finished yet, leaves the monitor where it is until
the next tick. An idle monitor checks for drift when ``schedule.interval`` passed since its
last check or the prediction log has a new commit. The window of a check starts after the
previous cycle's window (or its promotion), so one shift triggers one cycle.

Errors of cairn (a missing repo, a rule that cannot run) end the cycle with a
``monitor.failed`` event naming the reason, after putting all traffic back on the
champion; other exceptions propagate from ``advance`` and leave the step as it was (the
next tick retries it). Webhook failures are ``monitor.webhook_failed`` events, never errors.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
from sqlalchemy import select, update

from cairn.catalog.schema import monitor_state
from cairn.data import DataStore, NotFound, Ref, parse_ref
from cairn.data.paths import normalize
from cairn.ml.events import Event, list_events, record_event
from cairn.monitoring.errors import LoopError
from cairn.monitoring.rules import (
    MonitorInfo,
    MonitorRule,
    MonitorStep,
    RetrainAction,
    create_monitor,
    delete_monitor,
    get_monitor,
    list_monitors,
    load_rule_file,
    metric_name,
    monitor_version,
    parse_rule,
)
from cairn.storage.errors import CairnError

if TYPE_CHECKING:
    from cairn.ml.registry import Registry
    from cairn.pipelines import Pipelines
    from cairn.serving.policy import Deployments

__all__ = ["STEPS", "MonitorState", "MonitorStep", "Monitors"]

log = logging.getLogger("cairn.monitoring.loop")


STEPS = tuple(MonitorStep)


@dataclass(frozen=True)
class MonitorState:
    """Where a monitor's loop is: ``cycle`` (drift detections so far), ``step`` (one of
    STEPS), ``info`` (the current cycle's findings under ``"cycle"``, the last check under
    ``"last_check"``), ``updated`` (UTC seconds)."""

    monitor: str
    cycle: int
    step: MonitorStep
    info: dict[str, Any]
    updated: float

    def to_json(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "cycle": self.cycle,
            "step": self.step,
            "info": self.info,
            "updated": self.updated,
        }


@dataclass
class _Move:
    """A transition: the next step, the event kind and reasons, and info changes."""

    step: MonitorStep
    kind: str
    reasons: dict[str, Any]
    cycle: dict[str, Any] | None = None  # merged into info["cycle"]
    end: bool = False  # the cycle is over: info["cycle"] moves to info["last_cycle"]


class Monitors:
    """Monitoring rules and their loops over one store.

    ``runner`` (optional) runs the pipelines after the loop commits training data (the
    Client passes its ``run_pipelines`` when it runs pipelines itself); without it the
    training job runs in whatever process runs pipelines (``cairn run``) and a later tick
    picks its model up. ``clock`` gives UTC seconds (tests pass their own).
    """

    def __init__(
        self,
        data: DataStore,
        pipelines: Pipelines,
        registry: Registry,
        deployments: Deployments,
        *,
        runner: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.data = data
        self.catalog = data.catalog
        self.pipelines = pipelines
        self.registry = registry
        self.deployments = deployments
        self.runner = runner
        self.clock = clock

    # -- rules ---------------------------------------------------------------------------
    def create(self, rule: MonitorRule | dict[str, Any] | str | Path) -> MonitorInfo:
        """Store a new rule (a MonitorRule, a mapping, or a YAML/JSON file path). Raises
        RuleError, AlreadyExists."""
        return create_monitor(self.catalog, self._rule(rule))

    def update(self, rule: MonitorRule | dict[str, Any] | str | Path) -> MonitorInfo:
        """Store the next version of a rule; a cycle in progress finishes with the version
        it started with. Raises RuleError, NotFound."""
        return create_monitor(self.catalog, self._rule(rule), update_=True)

    @staticmethod
    def _rule(rule: MonitorRule | dict[str, Any] | str | Path) -> MonitorRule:
        if isinstance(rule, str | Path):
            return load_rule_file(rule)
        return parse_rule(rule)

    def get(self, name: str) -> MonitorInfo:
        """The monitor's current rule. Raises NotFound."""
        return get_monitor(self.catalog, name)

    def list_monitors(self) -> list[MonitorInfo]:
        """Every monitor, by name."""
        return list_monitors(self.catalog)

    def delete(self, name: str) -> None:
        """Delete a monitor and its state (events stay). Raises NotFound."""
        delete_monitor(self.catalog, name)

    def state(self, name: str) -> MonitorState:
        """Where the monitor's loop is. Raises NotFound."""
        with self.catalog.read() as conn:
            row = conn.execute(select(monitor_state).where(monitor_state.c.monitor == name)).first()
        if row is None:
            raise NotFound(f"monitor {name!r} does not exist")
        return MonitorState(
            row.monitor, row.cycle, MonitorStep(row.step), json.loads(row.info), row.updated
        )

    def events(self, name: str, limit: int | None = None) -> list[Event]:
        """The monitor's events, oldest first (at most the newest ``limit``)."""
        return list_events(self.catalog, subject=name, kind="monitor.", limit=limit)

    # -- the loop ------------------------------------------------------------------------
    def tick(self) -> list[MonitorState]:
        """Advance every monitor as far as it can without waiting; return their states. An
        unexpected error in one monitor does not stop the others; the first is raised
        once all were ticked (its step stays, so the next tick retries it)."""
        states, first = [], None
        for info in self.list_monitors():
            try:
                states.append(self.advance(info.name))
            except Exception as exc:  # noqa: BLE001 - every monitor gets its tick
                log.exception("monitor %s: tick failed", info.name)
                first = first or exc
        if first is not None:
            raise first
        return states

    def advance(self, name: str) -> MonitorState:
        """Advance one monitor until it has to wait; return its state. Raises NotFound."""
        for _ in range(len(STEPS) + 1):
            state = self.state(name)
            rule = self._cycle_rule(name, state)
            try:
                move = _STEP_HANDLERS[state.step](self, rule, state)
            except CairnError as exc:
                if state.step == MonitorStep.IDLE:
                    raise
                move = self._fail(rule, state, exc)
            if move is None or not self._apply(name, state, move):
                break
            if move.step == MonitorStep.IDLE and state.step != MonitorStep.IDLE:
                break
        return self.state(name)

    def _cycle_rule(self, name: str, state: MonitorState) -> MonitorRule:
        version = (state.info.get("cycle") or {}).get("rule_version")
        if state.step != MonitorStep.IDLE and version is not None:
            return monitor_version(self.catalog, name, int(version))
        return self.get(name).rule

    def _apply(self, name: str, state: MonitorState, move: _Move) -> bool:
        """Record a transition if the monitor is still where ``state`` says."""
        info = dict(state.info)
        idle = MonitorStep.IDLE
        cycle = state.cycle + (1 if state.step == idle and move.step != idle else 0)
        if move.kind == "monitor.drift" and move.step == idle:
            cycle = state.cycle + 1  # an alert-only cycle
        current = dict(info.get("cycle") or {})
        if move.cycle:
            current.update(move.cycle)
        info["cycle"] = current
        if move.end:
            info["last_cycle"] = {**current, "outcome": move.kind.removeprefix("monitor.")}
            info["after"] = current.get("after", info.get("after"))
            info["cycle"] = {}
        now = self.clock()
        reasons = {"cycle": cycle, "step": move.step, **move.reasons}
        with self.catalog.write() as conn:
            done = conn.execute(
                update(monitor_state)
                .where(
                    monitor_state.c.monitor == name,
                    monitor_state.c.cycle == state.cycle,
                    monitor_state.c.step == state.step,
                    monitor_state.c.updated == state.updated,
                )
                .values(cycle=cycle, step=move.step, info=json.dumps(info), updated=now)
            )
            if done.rowcount != 1:
                return False
            if move.kind:
                record_event(conn, move.kind, name, reasons)
        if move.kind:
            self._post(name, move.kind, reasons)
        return True

    def _note(self, name: str, state: MonitorState, **changes: Any) -> None:
        """Update the idle monitor's info without a transition or an event."""
        info = {**state.info, **changes}
        with self.catalog.write() as conn:
            conn.execute(
                update(monitor_state)
                .where(
                    monitor_state.c.monitor == name,
                    monitor_state.c.step == state.step,
                    monitor_state.c.updated == state.updated,
                )
                .values(info=json.dumps(info), updated=self.clock())
            )

    def _post(self, name: str, kind: str, reasons: dict[str, Any]) -> None:
        """POST the event to the rule's webhook; a failure is an event, never an error."""
        try:
            rule = self.get(name).rule
        except NotFound:
            return
        alert = rule.action.alert
        if alert is None or alert.webhook is None or kind == "monitor.webhook_failed":
            return
        body = json.dumps(
            {"monitor": name, "kind": kind, "model": rule.model, "info": reasons},
            default=str,
            sort_keys=True,
        ).encode()
        request = urllib.request.Request(
            alert.webhook,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "cairn-monitor"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=alert.timeout) as response:
                response.read()
        except Exception as exc:  # noqa: BLE001 - any network failure is recorded
            with self.catalog.write() as conn:
                record_event(
                    conn,
                    "monitor.webhook_failed",
                    name,
                    {
                        "webhook": alert.webhook,
                        "event": kind,
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                )

    def _fail(self, rule: MonitorRule, state: MonitorState, exc: CairnError) -> _Move:
        reasons: dict[str, Any] = {"failed_at": state.step, "error": str(exc)}
        live = (MonitorStep.CANARY, MonitorStep.EVALUATED)
        if state.step in live and rule.action.retrain is not None:
            try:
                self.deployments.reset(
                    rule.deployment_name, rule.alias, reason=f"monitor {rule.name}: failed"
                )
                reasons["traffic"] = f"100% {rule.alias}"
            except CairnError as again:
                reasons["traffic_error"] = str(again)
        return _Move(MonitorStep.IDLE, "monitor.failed", reasons, end=True)

    # -- steps ---------------------------------------------------------------------------
    def _step_idle(self, rule: MonitorRule, state: MonitorState) -> _Move | None:
        now = self.clock()
        try:
            head = self.data.resolve(Ref(rule.log_repo, "master")).id
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
            report = _check(self, rule, window)
        except CairnError as exc:  # too few rows, no reference yet: no verdict
            self._note(rule.name, state, last_check={**check, "error": str(exc)})
            return None
        rows = int(report.window["rows"])
        result = report.result
        check.update(rows=rows, drifted=result.drifted, share_drifted=result.share_drifted)
        if not result.drifted:
            self._note(rule.name, state, last_check=check)
            return None
        version = self.get(rule.name).version
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
            return _Move(MonitorStep.IDLE, "monitor.drift", reasons, cycle, end=True)
        return _Move(MonitorStep.DRIFT, "monitor.drift", reasons, cycle)

    def _step_drift(self, rule: MonitorRule, state: MonitorState) -> _Move | None:
        retrain = _retrain(rule)
        to = parse_ref(retrain.to)
        spec = self.pipelines.inspect_pipeline(retrain.pipeline).spec
        if to.repo not in {p.repo for p in spec.input.pfs_inputs()}:
            raise LoopError(
                f"pipeline {retrain.pipeline!r} does not read repo {to.repo!r}; set "
                "action.retrain.to to one of its inputs"
            )
        cycle = state.info["cycle"]
        if retrain.source == "window":
            commit, detail = self._commit_window(rule, retrain, cycle["window"], state.cycle)
        else:
            commit, detail = self._commit_source(retrain)
        if self.runner is not None:
            self.runner()
        reasons = {"repo": to.repo, "branch": to.commit, "commit": commit, **detail}
        return _Move(
            MonitorStep.DATA_COMMITTED,
            "monitor.data_committed",
            reasons,
            {"training_commit": commit},
        )

    def _commit_window(
        self, rule: MonitorRule, retrain: RetrainAction, window: dict[str, Any], cycle: int
    ) -> tuple[str, dict[str, Any]]:
        from cairn.monitoring.windows import read_window

        frame = read_window(
            self.data,
            rule.deployment_name,
            repo=rule.log_repo,
            commit=window["log_commit"],
            since=window["since"],
            until=window["until"],
            last=window["last"],
        )
        labels = read_labels(self.data, retrain.labels or "", retrain.label_column)
        joined = _join_labels(frame.inputs, frame.requests, labels)
        labelled = joined[joined["_label"].notna()].drop(columns=["_label"])
        labelled[retrain.label] = joined.loc[labelled.index, "_label"].to_numpy()
        if labelled.empty:
            raise LoopError(
                f"none of the window's {len(frame)} rows has a label in {retrain.labels}; "
                "write request_id,label rows there so the window can train a model"
            )
        to = parse_ref(retrain.to)
        folder = (to.path or "").rstrip("/")
        path = retrain.to.endswith("/") or not folder
        dest = f"{folder}/window-{rule.name}-{cycle}.csv" if path else folder
        body = labelled.to_csv(index=False).encode()
        branch = to.commit or "master"
        try:
            existing = self.data.resolve(Ref(to.repo, branch))
            same = b"".join(self.data.read_file(Ref(to.repo, existing.id, path=normalize(dest))))
        except NotFound:
            existing, same = None, None
        if existing is not None and same == body:
            commit = existing.id  # committed before a crash: reuse it
        else:
            commit = self.data.put_files(
                to.repo,
                branch,
                [(dest, io.BytesIO(body))],
                description=f"monitor {rule.name}: window of cycle {cycle}",
            ).id
        return commit, {"path": dest, "rows": len(frame), "labelled": len(labelled)}

    def _commit_source(self, retrain: RetrainAction) -> tuple[str, dict[str, Any]]:
        src = parse_ref(retrain.source)
        to = parse_ref(retrain.to)
        src_commit = self.data.resolve(src).id
        base = normalize(src.path) if src.path else ""
        dest = normalize(to.path) if to.path else ""
        files = [p for p, _ in self.data.walk_files(Ref(src.repo, src_commit, path=base or None))]
        if not files:
            raise LoopError(f"{retrain.source} holds no files to commit")
        is_dir = self.data.inspect_file(Ref(src.repo, src_commit, path=base or None)).type == "dir"
        branch = to.commit or "master"
        target = dest
        if not is_dir and (retrain.to.endswith("/") or not dest):
            target = f"{dest}/{base.rpartition('/')[2]}".strip("/")
        try:
            head = self.data.resolve(Ref(to.repo, branch))
            have = self.data.inspect_file(Ref(to.repo, head.id, path=target or None)).hash
            want = self.data.inspect_file(Ref(src.repo, src_commit, path=base or None)).hash
            commit = head.id if have == want else None
        except NotFound:
            commit = None
        if commit is None:
            commit = self.data.copy_file(
                Ref(src.repo, src_commit, path=base or None), to.repo, branch, target or "/"
            ).id
        return commit, {
            "source": f"{src.repo}@{src_commit}",
            "path": "/" + target,
            "files": len(files),
        }

    def _step_data_committed(self, rule: MonitorRule, state: MonitorState) -> _Move | None:
        retrain = _retrain(rule)
        to = parse_ref(retrain.to)
        wanted = self.data.inspect_commit(to.repo, state.info["cycle"]["training_commit"])
        spec = self.pipelines.inspect_pipeline(retrain.pipeline).spec
        names = [p.input_name for p in spec.input.pfs_inputs() if p.repo == to.repo]
        for job in self.pipelines.list_jobs(retrain.pipeline):  # newest first
            used = [job.inputs.get(n) for n in names if job.inputs.get(n)]
            if not used:
                continue
            covered = any(
                self.data.inspect_commit(to.repo, c).created >= wanted.created for c in used
            )
            if not covered:
                continue
            if job.state == "success" and job.output_commit:
                ref = Ref(retrain.pipeline, job.output_commit, path=normalize(retrain.model_path))
                try:
                    self.data.inspect_file(ref)
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
                return _Move(
                    MonitorStep.MODEL_TRAINED,
                    "monitor.model_trained",
                    reasons,
                    {"job": job.id, "output_commit": job.output_commit},
                )
            if job.state in ("failure", "unrunnable"):
                raise LoopError(
                    f"training job {retrain.pipeline}@{job.id} {job.state}: {job.reason}"
                )
            return None  # running
        return None  # not started yet

    def _step_model_trained(self, rule: MonitorRule, state: MonitorState) -> _Move | None:
        retrain = _retrain(rule)
        cycle = state.info["cycle"]
        path = "/" + normalize(retrain.model_path)
        found = None
        try:
            versions = self.registry.list_versions(rule.model_name)
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
            found = self.registry.register(
                rule.model_name,
                f"{retrain.pipeline}@{cycle['output_commit']}:{path}",
                description=f"monitor {rule.name}, cycle {state.cycle}",
                trust=retrain.trust,
            )
        self.registry.set_alias(
            rule.model_name,
            "challenger",
            found.version,
            reason=f"monitor {rule.name}, cycle {state.cycle}",
        )
        champion = self.registry.resolve(rule.model).version
        reasons = {
            "model": rule.model_name,
            "version": found.version,
            "champion": champion,
            "ref": found.ref,
        }
        return _Move(
            MonitorStep.CHALLENGER_REGISTERED,
            "monitor.challenger_registered",
            reasons,
            {"challenger": found.version, "champion": champion},
        )

    def _step_challenger_registered(self, rule: MonitorRule, state: MonitorState) -> _Move:
        canary = _retrain(rule).canary
        deployment = self.deployments.canary(
            rule.deployment_name,
            "challenger",
            canary.percent,
            reason=f"monitor {rule.name}, cycle {state.cycle}: canary",
        )
        now = self.clock()
        reasons = {
            "deployment": deployment.name,
            "percent": canary.percent,
            "revision": deployment.revision,
            "requests": canary.requests,
            "seconds": canary.seconds,
        }
        return _Move(MonitorStep.CANARY, "monitor.canary", reasons, {"canary_started": now})

    def _step_canary(self, rule: MonitorRule, state: MonitorState) -> _Move | None:
        retrain = _retrain(rule)
        cycle = state.info["cycle"]
        live = self._live(rule, retrain, cycle)
        waited = self.clock() - cycle["canary_started"]
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
            return _Move(
                MonitorStep.EVALUATED, "monitor.evaluated", timed_out, {"evaluation": timed_out}
            )
        if retrain.canary.seconds is not None and waited < retrain.canary.seconds:
            return None
        evaluation = _evaluate(self, rule, retrain, cycle, live)
        evaluation["canary_seconds"] = waited
        return _Move(
            MonitorStep.EVALUATED, "monitor.evaluated", evaluation, {"evaluation": evaluation}
        )

    def _step_evaluated(self, rule: MonitorRule, state: MonitorState) -> _Move:
        retrain = _retrain(rule)
        cycle = state.info["cycle"]
        evaluation = cycle["evaluation"]
        why = f"monitor {rule.name}, cycle {state.cycle}"
        version = cycle["challenger"]
        aliases = self.registry.aliases(rule.model_name)
        if evaluation["decision"] == "promote":
            self.registry.set_alias(rule.model_name, rule.alias, version, reason=f"{why}: promoted")
            self.deployments.reset(rule.deployment_name, rule.alias, reason=f"{why}: promoted")
            if not retrain.keep_challenger and aliases.get("challenger") is not None:
                self.registry.delete_alias(rule.model_name, "challenger")
            reasons = {
                "version": version,
                "previous": cycle["champion"],
                "reasons": evaluation["reasons"],
            }
            return _Move(
                MonitorStep.IDLE, "monitor.promoted", reasons, {"after": self.clock()}, end=True
            )
        self.deployments.reset(rule.deployment_name, rule.alias, reason=f"{why}: rolled back")
        if not retrain.keep_challenger and aliases.get("challenger") == version:
            self.registry.delete_alias(rule.model_name, "challenger")
        reasons = {
            "version": version,
            "champion": cycle["champion"],
            "reasons": evaluation["reasons"],
        }
        return _Move(
            MonitorStep.IDLE, "monitor.rolled_back", reasons, {"after": self.clock()}, end=True
        )

    # -- live traffic --------------------------------------------------------------------
    def _live(
        self, rule: MonitorRule, retrain: RetrainAction, cycle: dict[str, Any]
    ) -> dict[str, Any]:
        """Requests (not shadows) answered since the canary started, per side: count,
        errors, and with labels the live metric."""
        records = _records_since(
            self.data, rule.log_repo, rule.deployment_name, cycle["canary_started"]
        )
        sides = {"challenger": cycle["challenger"], "champion": cycle["champion"]}
        out: dict[str, Any] = {}
        labels = None
        if retrain.labels is not None:
            labels = read_labels(self.data, retrain.labels, retrain.label_column)
        name, fn = _metric(retrain)
        for side, version in sides.items():
            mine = [r for r in records if r.get("version") == version]
            stats: dict[str, Any] = {
                "version": version,
                "requests": len(mine),
                "errors": sum(1 for r in mine if r.get("status") == "error"),
            }
            if labels is not None and not labels.empty:
                truth = labels.groupby("request_id")["label"].last()
                pairs = [
                    (truth[r["request_id"]], r["outputs"][0])
                    for r in mine
                    if r.get("status") == "ok"
                    and r["request_id"] in truth.index
                    and r.get("outputs")
                ]
                stats["labelled"] = len(pairs)
                if pairs:
                    stats[name] = float(fn([p[0] for p in pairs], [p[1] for p in pairs]))
            out[side] = stats
        return out


# What advances a monitor out of each step (tests check every step has one).
_STEP_HANDLERS: dict[MonitorStep, Callable[[Monitors, MonitorRule, MonitorState], _Move | None]] = {
    MonitorStep.IDLE: Monitors._step_idle,
    MonitorStep.DRIFT: Monitors._step_drift,
    MonitorStep.DATA_COMMITTED: Monitors._step_data_committed,
    MonitorStep.MODEL_TRAINED: Monitors._step_model_trained,
    MonitorStep.CHALLENGER_REGISTERED: Monitors._step_challenger_registered,
    MonitorStep.CANARY: Monitors._step_canary,
    MonitorStep.EVALUATED: Monitors._step_evaluated,
}


# -- helpers -------------------------------------------------------------------------------
def _retrain(rule: MonitorRule) -> RetrainAction:
    if rule.action.retrain is None:
        raise LoopError(f"monitor {rule.name!r} has no action.retrain")
    return rule.action.retrain


def _metric(retrain: RetrainAction) -> tuple[str, Callable[[Any, Any], float]]:
    from cairn.monitoring.performance import resolve_metric

    return resolve_metric(metric_name(retrain.evaluate.metric))


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


def read_labels(data: DataStore, ref: str, column: str = "label") -> pd.DataFrame:
    """``request_id`` and ``label`` of every ``.csv`` / ``.jsonl`` file at ``ref``
    (``REPO[@BRANCH][:/path]``), in path order; later files correct earlier ones. Files
    without the two columns are skipped. Raises NotFound."""
    parsed = parse_ref(ref)
    head = data.resolve(Ref(parsed.repo, parsed.commit)).id
    frames = []
    for path, _ in data.walk_files(Ref(parsed.repo, head, path=parsed.path or None)):
        body = b"".join(data.read_file(Ref(parsed.repo, head, path=path)))
        if path.endswith(".csv"):
            frame = pd.read_csv(io.BytesIO(body))
        elif path.endswith((".jsonl", ".json")):
            frame = pd.DataFrame([orjson.loads(x) for x in body.splitlines() if x.strip()])
        else:
            continue
        if {"request_id", column} <= set(frame.columns):
            frames.append(frame[["request_id", column]].set_axis(["request_id", "label"], axis=1))
    if not frames:
        return pd.DataFrame({"request_id": [], "label": []})
    out = pd.concat(frames, ignore_index=True)
    out["request_id"] = out["request_id"].astype(str)
    return out


def _join_labels(
    inputs: pd.DataFrame, requests: pd.DataFrame, labels: pd.DataFrame
) -> pd.DataFrame:
    """The window's inputs with a ``_label`` column: a request's k-th row takes its k-th
    label; a single-row request its last label (a correction)."""
    labs = labels.assign(_pos=labels.groupby("request_id").cumcount())
    sizes = requests.groupby("request_id").size()
    single = labs["request_id"].map(sizes).eq(1)
    labs = pd.concat([labs[~single], labs[single].groupby("request_id").tail(1).assign(_pos=0)])
    keys = (
        requests[["request_id", "row"]].astype({"request_id": str}).rename(columns={"row": "_pos"})
    )
    joined = keys.merge(labs, on=["request_id", "_pos"], how="left")
    return inputs.reset_index(drop=True).assign(_label=joined["label"].to_numpy())


def _records_since(
    data: DataStore, repo: str, deployment: str, since: float
) -> list[dict[str, Any]]:
    """Prediction-log records of ``deployment`` with time >= ``since``, shadows left out;
    day folders before the day of ``since`` (less one) are not read."""
    from datetime import UTC, date, datetime, timedelta

    try:
        head = data.resolve(Ref(repo, "master")).id
        days = data.list_file(Ref(repo, head, path=normalize(deployment)))
    except NotFound:
        return []
    first = datetime.fromtimestamp(since, UTC).date() - timedelta(days=1)
    out = []
    for info in days:
        try:
            day = date.fromisoformat(info.path.rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            continue
        if info.type != "dir" or day < first:
            continue
        for path, _ in data.walk_files(Ref(repo, head, path=normalize(info.path))):
            if not path.endswith(".jsonl"):
                continue
            for line in b"".join(data.read_file(Ref(repo, head, path=path))).splitlines():
                if line.strip():
                    rec = orjson.loads(line)
                    if float(rec["time"]) >= since and not rec.get("shadow"):
                        out.append(rec)
    return out


def _evaluate(
    monitors: Monitors,
    rule: MonitorRule,
    retrain: RetrainAction,
    cycle: dict[str, Any],
    live: dict[str, Any],
) -> dict[str, Any]:
    """The held-out metric of challenger and champion, the live numbers, and the
    decision with its reasons."""
    from cairn.ml import flavors
    from cairn.ml.signature import columns

    ev = retrain.evaluate
    holdout = parse_ref(ev.holdout)
    body = b"".join(monitors.data.read_file(holdout))
    frame = pd.read_csv(io.BytesIO(body))
    if ev.label not in frame.columns:
        raise LoopError(f"{ev.holdout} has no column {ev.label!r}; set evaluate.label")
    truth = frame[ev.label]
    name, fn = _metric(retrain)
    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cairn-evaluate-") as tmp:
        for side in ("challenger", "champion"):
            version = monitors.registry.get_version(rule.model_name, cycle[side])
            model = flavors.load(version, flavors.fetch(monitors.data, version, Path(tmp)))
            try:
                wanted = columns(version.signature) or [c for c in frame.columns if c != ev.label]
                predicted = model.predict(frame[wanted])
            finally:
                model.close()
            scores[side] = float(fn(truth.tolist(), list(predicted)))
    sign = 1.0 if ev.greater_is_better else -1.0
    reasons = []
    ok = sign * (scores["challenger"] - scores["champion"]) >= -ev.tolerance
    reasons.append(
        f"holdout {name}: challenger {scores['challenger']:.4f} vs champion "
        f"{scores['champion']:.4f} (tolerance {ev.tolerance:g}): "
        + ("not worse" if ok else "worse")
    )
    ch, cp = live["challenger"], live["champion"]
    rate = ch["errors"] / ch["requests"] if ch["requests"] else 0.0
    base = cp["errors"] / cp["requests"] if cp["requests"] else 0.0
    if rate > base:
        ok = False
        reasons.append(
            f"live errors: challenger {ch['errors']}/{ch['requests']} vs champion "
            f"{cp['errors']}/{cp['requests']}"
        )
    else:
        reasons.append(
            f"live: challenger answered {ch['requests']} request(s), {ch['errors']} error(s)"
        )
    if name in ch and name in cp:
        live_ok = sign * (ch[name] - cp[name]) >= -ev.tolerance
        ok = ok and live_ok
        reasons.append(
            f"live {name}: challenger {ch[name]:.4f} on {ch['labelled']} vs champion "
            f"{cp[name]:.4f} on {cp['labelled']}: " + ("not worse" if live_ok else "worse")
        )
    return {
        "decision": "promote" if ok else "rollback",
        "metric": name,
        "holdout": {"ref": ev.holdout, "rows": len(frame), **scores},
        "live": live,
        "reasons": reasons,
    }
