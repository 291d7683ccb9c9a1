"""The canary's evaluation: challenger and champion on a held-out table, their live
error rates and (with labels) their live metric, and the decision with its reasons."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cairn.data import DataStore, parse_ref
from cairn.monitoring.errors import LoopError
from cairn.monitoring.rules import MonitorRule, RetrainAction, metric_name

if TYPE_CHECKING:
    from cairn.ml.registry import Registry

__all__ = ["evaluate", "metric_of"]


def metric_of(retrain: RetrainAction) -> tuple[str, Callable[[Any, Any], float]]:
    """The evaluation metric's name and function (``sklearn.metrics``)."""
    from cairn.monitoring.performance import resolve_metric

    return resolve_metric(metric_name(retrain.evaluate.metric))


def evaluate(
    data: DataStore,
    registry: Registry,
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
    body = b"".join(data.read_file(holdout))
    frame = pd.read_csv(io.BytesIO(body))
    if ev.label not in frame.columns:
        raise LoopError(f"{ev.holdout} has no column {ev.label!r}; set evaluate.label")
    truth = frame[ev.label]
    name, fn = metric_of(retrain)
    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cairn-evaluate-") as tmp:
        for side in ("challenger", "champion"):
            version = registry.get_version(rule.model_name, cycle[side])
            model = flavors.load(version, flavors.fetch(data, version, Path(tmp)))
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
