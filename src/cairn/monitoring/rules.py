"""Monitoring rules: what to watch, how to decide drift, and what to do about it.

A rule is YAML or JSON, validated with pydantic; an unknown field or a bad value is a
``RuleError`` naming the field's dotted path, as for pipeline specs. Example::

    name: cancer-drift
    model: cancer@champion          # NAME@ALIAS: the model whose training data is the reference
    deployment: cancer              # default: the model's name
    log_repo: predictions           # the prediction log (cairn.serving.predlog)
    window: {last: 200, since: 1h, min_rows: 100}
    tests: {method: test, alpha: 0.05, correction: bonferroni}   # cairn.monitoring.DriftConfig
    drift_share: 0.5
    schedule: {interval: 5m}
    action:
      alert: {webhook: "http://hooks.example/cairn"}   # optional; events are always written
      retrain:
        source: window              # or REPO@BRANCH[:/path]: copy those files (no bytes copied)
        labels: labels@master       # source window: request_id,label files joined by request id
        label: target               # the label column written to the training CSV
        to: training@master:/data/  # the training pipeline's input branch and folder
        pipeline: train
        model_path: /model/cancer.skops   # a pickle/joblib file needs trust: true
        canary: {percent: 10, requests: 100, seconds: 60}
        evaluate: {holdout: "holdout@master:/test.csv", label: target, metric: accuracy,
                   greater_is_better: true, tolerance: 0.0}
        # optional: before its canary, the challenger answers the deployment's logged
        # traffic offline (cairn.monitoring.replay); refused, it is rolled back unserved
        replay: {min_agreement: 0.9, since: 7d}   # and/or {metric: accuracy, not_worse_by: 0.01}

Durations are written as in pipeline specs (cairn.pipelines.units): Go durations (``30s``,
``5m``, ``1h30m``), days and weeks (``1d``, ``1w``) or seconds.
``tests`` takes DriftConfig's fields (``threshold`` is ``distance_threshold``); every default
and its source is in ``cairn.monitoring.drift``.

Rules are stored in the catalog (``monitors``, every version in ``monitor_versions``) as
canonical JSON; updating a rule to an equal one keeps its version.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import delete, insert, select, update

from cairn.catalog import Catalog
from cairn.catalog.schema import monitor_state, monitor_versions, monitors
from cairn.data import AlreadyExists, InvalidReference, NotFound, parse_ref
from cairn.data.refs import check_name
from cairn.data.subject import about
from cairn.ml.events import record_event
from cairn.ml.registry import parse_spec as parse_model_spec
from cairn.monitoring.errors import DriftInputError, RuleError
from cairn.pipelines.documents import dotted, load_document, read_document_file
from cairn.pipelines.units import duration_value

if TYPE_CHECKING:
    # drift loads SciPy, pandas and PyArrow: a second a remote monitor command (which
    # reads and sends rules) would pay for nothing
    from cairn.monitoring.drift import DriftConfig

__all__ = [
    "Action",
    "AlertAction",
    "CanarySpec",
    "EvaluateSpec",
    "MonitorInfo",
    "MonitorRule",
    "MonitorStep",
    "ReplaySpec",
    "RetrainAction",
    "Schedule",
    "Tests",
    "WindowSpec",
    "create_monitor",
    "delete_monitor",
    "get_monitor",
    "list_monitors",
    "load_rule_file",
    "load_rule_text",
    "monitor_version",
    "parse_rule",
]


def _ref(value: str, *, path: bool, what: str) -> str:
    try:
        parsed = parse_ref(value)
    except InvalidReference as exc:
        raise ValueError(f"{value!r} is not REPO@BRANCH:/path ({exc})") from None
    if path and not parsed.path:
        raise ValueError(f"{value!r} names no file; {what} is REPO@BRANCH:/path")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSpec(_Model):
    """The current window: the last ``last`` input rows and/or those of the last ``since``
    seconds; fewer than ``min_rows`` rows is no verdict (the check waits for traffic)."""

    last: int | None = Field(default=None, ge=1)
    since: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    min_rows: int = Field(default=30, ge=1)

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: Any) -> Any:
        return duration_value(value)


class Tests(_Model):
    """How each feature is tested: DriftConfig's fields under the same names, and
    ``threshold`` for its ``distance_threshold``."""

    method: Literal["auto", "test", "distance", "psi"] = "auto"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["bonferroni", "fdr", "none"] = "bonferroni"
    threshold: float = Field(default=0.1, gt=0, allow_inf_nan=False)
    psi_threshold: float = Field(default=0.1, gt=0, allow_inf_nan=False)
    columns: list[str] | None = None


class Schedule(_Model):
    """How often an idle monitor checks (seconds; also after each prediction-log commit)."""

    interval: float = Field(default=60.0, gt=0, allow_inf_nan=False)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        return duration_value(value)


class AlertAction(_Model):
    """Post each event of the monitor (the drift report, the loop's outcome) as JSON to
    ``webhook`` (http or https), waiting at most ``timeout`` seconds."""

    webhook: str | None = Field(default=None, pattern=r"^https?://\S+$")
    timeout: float = Field(default=5.0, gt=0, le=60)


class CanarySpec(_Model):
    """The challenger's share of live traffic (percent, above 0 and below 100) and how long
    it runs: until it answered ``requests`` requests and ``seconds`` passed (each when
    given; at least one). A canary that has not answered its ``requests`` after
    ``max_seconds`` (default one hour) is rolled back: too little live evidence to promote."""

    percent: float = Field(default=10.0, gt=0, lt=100)
    requests: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_seconds: float = Field(default=3600.0, gt=0, allow_inf_nan=False)

    @field_validator("seconds", "max_seconds", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return duration_value(value)

    @model_validator(mode="after")
    def _one(self) -> CanarySpec:
        if self.requests is None and self.seconds is None:
            raise ValueError("give requests, seconds or both: how long the canary runs")
        return self


class EvaluateSpec(_Model):
    """The held-out comparison: ``holdout`` (``REPO@BRANCH:/file.csv``) with the true values
    in column ``label``; ``metric`` a function of sklearn.metrics (``accuracy`` means
    ``accuracy_score``); the challenger passes when its metric is not worse than the
    champion's by more than ``tolerance``."""

    holdout: str
    label: str = "label"
    metric: str = "accuracy"
    greater_is_better: bool = True
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @field_validator("holdout")
    @classmethod
    def _holdout(cls, value: str) -> str:
        return _ref(value, path=True, what="holdout")

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _known_metric(value)


def _known_metric(value: str) -> str:
    from cairn.monitoring.performance import resolve_metric

    try:
        resolve_metric(metric_name(value))
    except DriftInputError as exc:
        raise ValueError(str(exc)) from None
    return value


class ReplaySpec(_Model):
    """The gate before the canary: the challenger replays the deployment's logged traffic
    of the last ``since`` (default 7 days) and/or the newest ``last`` rows
    (cairn.monitoring.replay) and takes live traffic only if it agrees with what
    production answered on at least ``min_agreement`` of the rows, and/or (``metric``,
    a sklearn.metrics name, over the rows whose labels arrived in ``retrain.labels``) is
    not worse than production's answers by more than ``not_worse_by``. At least one."""

    min_agreement: float | None = Field(default=None, ge=0, le=1)
    metric: str | None = None
    not_worse_by: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    since: float | None = Field(default=7 * 86400.0, gt=0, allow_inf_nan=False)
    last: int | None = Field(default=None, ge=1)

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: Any) -> Any:
        return duration_value(value)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        return None if value is None else _known_metric(value)

    @model_validator(mode="after")
    def _one(self) -> ReplaySpec:
        if self.min_agreement is None and self.metric is None:
            raise ValueError("give min_agreement, metric (with not_worse_by) or both")
        return self


def metric_name(name: str) -> str:
    """``accuracy`` -> ``accuracy_score`` (scikit-learn's name) when only the latter exists."""
    from sklearn import metrics as skm

    if not hasattr(skm, name) and hasattr(skm, f"{name}_score"):
        return f"{name}_score"
    return name


class RetrainAction(_Model):
    """Commit data to the training pipeline's input, take the model it trains as the
    challenger, canary it, evaluate it, and promote it or roll it back."""

    source: str = "window"
    labels: str | None = None
    label_column: str = "label"
    label: str = "label"
    to: str
    pipeline: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    model_path: str = Field(pattern=r"^/")
    canary: CanarySpec
    evaluate: EvaluateSpec
    replay: ReplaySpec | None = None
    keep_challenger: bool = False
    # Register the trained model trusted (cairn.ml.flavors, Trust): needed when it is a
    # pickle or joblib file (or an MLflow folder), whose loading runs its code.
    trust: bool = False

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return value if value == "window" else _ref(value, path=False, what="source")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: str | None) -> str | None:
        return None if value is None else _ref(value, path=False, what="labels")

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        parsed = _ref(value, path=False, what="to")
        if "@" not in value:
            raise ValueError(f"{value!r} names no branch; write REPO@BRANCH:/folder/")
        return parsed

    @model_validator(mode="after")
    def _pickle_needs_trust(self) -> RetrainAction:
        # Registration refuses an untrusted pickle by its content anyway; a name that says
        # pickle is refused here already, when the rule is written, not cycles later.
        from cairn.ml.flavors import PICKLE_SUFFIXES

        if self.model_path.endswith(PICKLE_SUFFIXES) and not self.trust:
            raise ValueError(
                f"model_path {self.model_path} is a pickle/joblib file, whose loading runs its "
                "code: save the model with skops (skops.io.dump) or set trust: true if you "
                "trust the training pipeline's code"
            )
        return self

    @model_validator(mode="after")
    def _window_needs_labels(self) -> RetrainAction:
        if self.source == "window" and self.labels is None:
            raise ValueError(
                "source: window needs labels (a REPO@BRANCH holding request_id and label "
                "columns): training data without labels cannot train a model"
            )
        return self

    @model_validator(mode="after")
    def _replay_metric_needs_labels(self) -> RetrainAction:
        if self.replay is not None and self.replay.metric is not None and self.labels is None:
            raise ValueError(
                "replay.metric compares answers with labels: set labels (a REPO@BRANCH "
                "holding request_id and label columns)"
            )
        return self


class Action(_Model):
    """``alert`` (events, and a webhook if given) and/or ``retrain``; at least one."""

    alert: AlertAction | None = None
    retrain: RetrainAction | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        if self.alert is None and self.retrain is None:
            raise ValueError("give alert, retrain or both")
        return self


class MonitorRule(_Model):
    """One monitoring rule (see the module doc)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
    description: str = ""
    model: str
    deployment: str | None = None
    log_repo: str = "predictions"
    reference: str | None = None
    window: WindowSpec = Field(default_factory=WindowSpec)
    tests: Tests = Field(default_factory=Tests)
    drift_share: float = Field(default=0.5, ge=0, le=1)
    schedule: Schedule = Field(default_factory=Schedule)
    action: Action = Field(default_factory=lambda: Action(alert=AlertAction()))

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        try:
            _, alias, _ = parse_model_spec(value)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
        if alias is None:
            raise ValueError(f"{value!r}: name the model by alias, NAME@ALIAS (cancer@champion)")
        return value

    @property
    def model_name(self) -> str:
        return parse_model_spec(self.model)[0]

    @property
    def alias(self) -> str:
        return parse_model_spec(self.model)[1] or "champion"

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.model_name

    def drift_config(self) -> DriftConfig:
        """The rule's tests as the DriftConfig ``compute_drift`` takes."""
        from cairn.monitoring.drift import DriftConfig

        t = self.tests
        return DriftConfig(
            method=t.method,
            alpha=t.alpha,
            correction=t.correction,
            distance_threshold=t.threshold,
            psi_threshold=t.psi_threshold,
            drift_share=self.drift_share,
            columns=tuple(t.columns) if t.columns is not None else None,
        )

    def canonical(self) -> str:
        """Every field, defaults included, as JSON with sorted keys: what the catalog keeps."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def parse_rule(data: Any, *, source: str = "<rule>") -> MonitorRule:
    """Validate one decoded rule (a mapping). Raises RuleError naming ``source`` and every
    bad field's dotted path (``action.retrain.canary.percent``)."""
    if isinstance(data, MonitorRule):
        return data
    if not isinstance(data, dict):
        raise RuleError(
            f"{source}: expected a mapping (a monitoring rule), got {type(data).__name__}"
        )
    try:
        return MonitorRule.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors(include_url=False):
            msg = str(e["msg"]).removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown field; check its spelling against the rule format"
            problems.append((dotted(e["loc"]), msg))
        text = "; ".join(f"{f}: {m}" if f else m for f, m in problems)
        raise RuleError(f"{source}: {text}", problems[0][0], problems) from None


def load_rule_text(text: str, *, source: str = "<rule>") -> MonitorRule:
    """A rule from YAML or JSON text, read by cairn.pipelines.documents (the limits of
    pipeline specs: size, nesting, YAML aliases). Raises RuleError."""
    data = load_document(text, source, what="a monitoring rule", error=RuleError)
    return parse_rule(data, source=source)


def load_rule_file(path: str | Path) -> MonitorRule:
    """A rule from a UTF-8 YAML or JSON file. Raises OSError, RuleError."""
    return load_rule_text(read_document_file(path, error=RuleError), source=str(path))


# -- the catalog ---------------------------------------------------------------------------
class MonitorStep(StrEnum):
    """Where a monitor's loop is (``monitor_state.step`` stores the value; a new monitor
    starts ``idle``); cairn.monitoring.loop draws the transitions."""

    IDLE = "idle"
    DRIFT = "drift"
    DATA_COMMITTED = "data_committed"
    MODEL_TRAINED = "model_trained"
    CHALLENGER_REGISTERED = "challenger_registered"
    CANARY = "canary"
    EVALUATED = "evaluated"


@dataclass(frozen=True)
class MonitorInfo:
    """A stored rule: its ``version`` (1 at creation, + 1 per changing update) and times
    (UTC seconds)."""

    name: str
    version: int
    rule: MonitorRule
    created: float
    updated: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
            "rule": self.rule.model_dump(mode="json"),
        }


def _info(row: Any) -> MonitorInfo:
    return MonitorInfo(
        row.name, row.version, parse_rule(json.loads(row.spec)), row.created, row.updated
    )


def create_monitor(catalog: Catalog, rule: MonitorRule, *, update_: bool = False) -> MonitorInfo:
    """Store ``rule`` as a new monitor, or with ``update_`` as the next version of an
    existing one (an equal rule keeps the version). Raises AlreadyExists (create of an
    existing name), NotFound (update of a missing one), InvalidReference (a bad name)."""
    check_name(rule.name, "monitor")
    spec = rule.canonical()
    now = time.time()
    with catalog.write() as conn:
        row = conn.execute(select(monitors).where(monitors.c.name == rule.name)).first()
        if row is None and update_:
            raise about(NotFound(f"monitor {rule.name!r} does not exist"), "monitor.create")
        if row is not None and not update_:
            raise about(AlreadyExists(f"monitor {rule.name!r} exists"), "monitor.exists")
        if row is not None and row.spec == spec:
            return _info(row)
        version = 1 if row is None else row.version + 1
        if row is None:
            conn.execute(
                insert(monitors).values(
                    name=rule.name, version=1, spec=spec, created=now, updated=now
                )
            )
            conn.execute(
                insert(monitor_state).values(
                    monitor=rule.name, cycle=0, step=MonitorStep.IDLE, info="{}", updated=now
                )
            )
        else:
            conn.execute(
                update(monitors)
                .where(monitors.c.name == rule.name)
                .values(version=version, spec=spec, updated=now)
            )
        conn.execute(
            insert(monitor_versions).values(name=rule.name, version=version, spec=spec, created=now)
        )
        record_event(
            conn,
            "monitor.create" if row is None else "monitor.update",
            rule.name,
            {"version": version, "model": rule.model},
        )
        row = conn.execute(select(monitors).where(monitors.c.name == rule.name)).first()
    return _info(row)


def get_monitor(catalog: Catalog, name: str) -> MonitorInfo:
    """The monitor's current rule. Raises NotFound."""
    with catalog.read() as conn:
        row = conn.execute(select(monitors).where(monitors.c.name == name)).first()
    if row is None:
        raise about(NotFound(f"monitor {name!r} does not exist"), "monitor.missing")
    return _info(row)


def monitor_version(catalog: Catalog, name: str, version: int) -> MonitorRule:
    """Version ``version`` of the monitor's rule. Raises NotFound."""
    with catalog.read() as conn:
        row = conn.execute(
            select(monitor_versions).where(
                monitor_versions.c.name == name, monitor_versions.c.version == version
            )
        ).first()
    if row is None:
        raise NotFound(f"monitor {name!r} has no version {version}")
    return parse_rule(json.loads(row.spec))


def list_monitors(catalog: Catalog) -> list[MonitorInfo]:
    """Every monitor, by name."""
    with catalog.read() as conn:
        rows = conn.execute(select(monitors).order_by(monitors.c.name)).all()
    return [_info(r) for r in rows]


def delete_monitor(catalog: Catalog, name: str) -> None:
    """Delete the monitor, its versions and its loop state (its events stay). A cycle in
    progress stops where it is: traffic and aliases are left as they are. Raises NotFound."""
    with catalog.write() as conn:
        if conn.execute(select(monitors.c.name).where(monitors.c.name == name)).first() is None:
            raise NotFound(f"monitor {name!r} does not exist")
        conn.execute(delete(monitors).where(monitors.c.name == name))
        conn.execute(delete(monitor_versions).where(monitor_versions.c.name == name))
        conn.execute(delete(monitor_state).where(monitor_state.c.monitor == name))
        record_event(conn, "monitor.delete", name, {})
