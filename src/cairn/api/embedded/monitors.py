"""``client.monitors`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.api.embedded._compat import forward
from cairn.data import DataStore
from cairn.ml.registry import Registry
from cairn.monitoring.drift import DriftConfig
from cairn.monitoring.loop import Monitors, MonitorState
from cairn.monitoring.monitor import MIN_ROWS, MonitorReport, check_model, parse_time
from cairn.monitoring.rules import MonitorInfo, MonitorRule

__all__ = ["EmbeddedMonitors"]

RuleLike = MonitorRule | Mapping[str, Any] | str | Path


class EmbeddedMonitors:
    """MonitorsProtocol over the store's Monitors (``engine``, the loop) and, for
    ``check``, its ``data`` and ``registry``. Names of Monitors this does not define
    (``advance``, ``events``, ...) are forwarded to it."""

    def __init__(self, engine: Monitors, data: DataStore, registry: Registry) -> None:
        self._engine = engine
        self._data = data
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        return forward("monitors", self._engine, name, {})

    def list(self) -> builtins.list[MonitorInfo]:
        """Every monitor, by name."""
        return self._engine.list_monitors()

    def get(self, name: str) -> MonitorInfo:
        """The monitor's current rule. Raises NotFound."""
        return self._engine.get(name)

    def create(self, rule: RuleLike) -> MonitorInfo:
        """Store a new rule. Raises RuleError, AlreadyExists."""
        return self._engine.create(_rule(rule))

    def update(self, rule: RuleLike) -> MonitorInfo:
        """Store the next version of a rule. Raises RuleError, NotFound."""
        return self._engine.update(_rule(rule))

    def delete(self, name: str) -> None:
        """Delete a monitor and its state. Raises NotFound."""
        self._engine.delete(name)

    def state(self, name: str) -> MonitorState:
        """Where the monitor's loop is. Raises NotFound."""
        return self._engine.state(name)

    def tick(self) -> builtins.list[MonitorState]:
        """Advance every monitor as far as it can without waiting."""
        return self._engine.tick()

    def check(
        self,
        spec: str,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
        last: int | None = None,
        deployment: str | None = None,
        reference: str | None = None,
        config: DriftConfig | None = None,
        log_repo: str = "predictions",
        labels: str | None = None,
        label_column: str = "label",
        metric: str | None = None,
        freq: str | None = None,
        min_rows: int | None = None,
    ) -> MonitorReport:
        """The drift check of ``cairn monitor`` for the version ``spec`` names (see
        cairn.monitoring.monitor.check_model). Raises NotFound, DriftInputError,
        MonitoringError."""
        return check_model(
            self._data,
            self._registry,
            spec,
            deployment=deployment,
            since=parse_time(since),
            until=parse_time(until),
            last=last,
            reference=reference,
            config=config,
            log_repo=log_repo,
            labels=labels,
            label_column=label_column,
            metric=metric,
            freq=freq,
            min_rows=MIN_ROWS if min_rows is None else min_rows,
        )

    def explain(
        self,
        request_id: str | None = None,
        *,
        deployment: str | None = None,
        at: str | float | None = None,
        log_repo: str = "predictions",
    ) -> dict[str, Any]:
        """One logged prediction back to its model's lineage
        (cairn.monitoring.explain). Raises NotFound, DriftInputError."""
        from cairn.monitoring.explain import explain_prediction

        return explain_prediction(
            self._data,
            self._registry,
            self._engine.deployments,
            request_id,
            deployment=deployment,
            at=parse_time(at),
            log_repo=log_repo,
        )

    def replay(
        self,
        deployment: str,
        model: str,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
        last: int | None = None,
        log_repo: str = "predictions",
        labels: str | None = None,
        label_column: str = "label",
        metric: str | None = None,
    ) -> dict[str, Any]:
        """Logged traffic answered offline by a candidate (cairn.monitoring.replay).
        Raises NotFound, DriftInputError."""
        from cairn.monitoring.replay import replay

        return replay(
            self._data,
            self._registry,
            model,
            deployment,
            since=parse_time(since),
            until=parse_time(until),
            last=last,
            log_repo=log_repo,
            labels=labels,
            label_column=label_column,
            metric=metric,
        )


def _rule(rule: RuleLike) -> MonitorRule | dict[str, Any] | str | Path:
    return dict(rule) if isinstance(rule, Mapping) else rule
