"""The monitoring loop: each monitor's state machine, persisted so that it survives crashes.

States (``monitor_state.step``) and what moves a monitor out of each::

    idle --check: drift--> drift --commit data--> data_committed --job done--> model_trained
      ^    (alert only: back to idle)                   |  job failed: idle (monitor.failed)
      |                                                 v
      |   challenger_registered <--register + alias "challenger"-- model_trained
      |          |
      |          |  retrain.replay set: the challenger replays the logged traffic first;
      |          |  refused, it goes straight to evaluated (rollback), never served
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
next tick retries it). Webhooks are posted off the tick path (``webhook``); their failures
are ``monitor.webhook_failed`` events, never errors.

Modules of the loop: ``state`` (the persisted state and its compare-and-set transitions),
``steps`` (one handler per step, dispatched through ``_STEP_HANDLERS`` below),
``window_commit`` (the training data a cycle commits), ``labels``, ``evaluation`` (the
canary's decision) and ``webhook``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.data import DataStore, NotFound
from cairn.ml.events import Event, list_events
from cairn.monitoring import steps
from cairn.monitoring.rules import (
    MonitorInfo,
    MonitorRule,
    MonitorStep,
    create_monitor,
    delete_monitor,
    get_monitor,
    list_monitors,
    load_rule_file,
    monitor_version,
    parse_rule,
)
from cairn.monitoring.state import STEPS, MonitorState, Move, apply_move, read_state
from cairn.monitoring.webhook import FAILED, Webhooks
from cairn.storage.errors import CairnError

if TYPE_CHECKING:
    from cairn.ml.registry import Registry
    from cairn.pipelines import Pipelines
    from cairn.serving.policy import Deployments

__all__ = ["STEPS", "MonitorState", "MonitorStep", "Monitors"]

log = logging.getLogger("cairn.monitoring.loop")


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
        self.webhooks = Webhooks(self.catalog)

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
        return read_state(self.catalog, name)

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

    def flush_webhooks(self, timeout: float | None = None) -> bool:
        """Wait until every webhook post queued by past ticks was sent or recorded as
        ``monitor.webhook_failed``; False if some still wait after ``timeout`` seconds."""
        return self.webhooks.flush(timeout)

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

    def _apply(self, name: str, state: MonitorState, move: Move) -> bool:
        """Record a transition if the monitor is still where ``state`` says; queue its
        webhook."""
        reasons = apply_move(self.catalog, name, state, move, self.clock())
        if reasons is None:
            return False
        if move.kind:
            self._post(name, move.kind, reasons)
        return True

    def _post(self, name: str, kind: str, reasons: dict[str, Any]) -> None:
        """Queue the event for the rule's webhook (``cairn.monitoring.webhook``)."""
        try:
            rule = self.get(name).rule
        except NotFound:
            return
        alert = rule.action.alert
        if alert is None or alert.webhook is None or kind == FAILED:
            return
        self.webhooks.post(alert.webhook, alert.timeout, name, kind, rule.model, reasons)

    def _fail(self, rule: MonitorRule, state: MonitorState, exc: CairnError) -> Move:
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
        return Move(MonitorStep.IDLE, "monitor.failed", reasons, end=True)


# What advances a monitor out of each step (tests check every step has one).
_STEP_HANDLERS: dict[MonitorStep, Callable[[Monitors, MonitorRule, MonitorState], Move | None]] = {
    MonitorStep.IDLE: steps.idle,
    MonitorStep.DRIFT: steps.drift,
    MonitorStep.DATA_COMMITTED: steps.data_committed,
    MonitorStep.MODEL_TRAINED: steps.model_trained,
    MonitorStep.CHALLENGER_REGISTERED: steps.challenger_registered,
    MonitorStep.CANARY: steps.canary,
    MonitorStep.EVALUATED: steps.evaluated,
}
