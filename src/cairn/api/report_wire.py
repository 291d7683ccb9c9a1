"""The wire form of a ``MonitorReport`` (cairn.monitoring.model_report), which pydantic
cannot convert from its annotation: it holds pandas frames for the HTML plots.

The form is the report's ``--raw`` JSON (``MonitorReport.to_dict``, non-finite numbers as
null) with two additions, so that the report a remote ``monitors.check`` returns prints,
``--raw`` and ``--html``, exactly as the embedded one does:

- ``"floats"``: each feature's test values exactly (``{"result" | "prediction": [{field:
  value}]}``), non-finite ones as the strings ``"nan"``, ``"inf"``, ``"-inf"``: the
  verdict's ordering and the tables read them, and JSON has no NaN;
- ``"frames"``: the compared frames (``MonitorFrames``), each as Parquet (pyarrow, the
  engine cairn.monitoring already reads reference data with) in base64, with its column
  names beside it (Parquet wants text names; a positional signature has numbers). Object
  columns pyarrow cannot hold (mixed types) travel as text, which plots the same.

What differs from the embedded report: the free-form summaries (``reference``/``current``
of a feature, ``window``) hold null where the embedded one holds NaN, as ``--raw`` shows
them. The frames make the answer about as large as the compared columns' data.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from cairn.monitoring.drift import DriftResult
    from cairn.monitoring.model_report import MonitorReport

__all__ = ["report_from_wire", "report_to_wire"]

_FLOATS = ("statistic", "p_value", "p_adjusted", "distance", "psi", "threshold")
"""FeatureDrift's float fields: sent exactly, NaN and infinities included."""


def report_to_wire(report: MonitorReport) -> dict[str, Any]:
    """``report`` as JSON-able values (see the module doc)."""
    import json

    body: dict[str, Any] = json.loads(report.to_json())
    body["floats"] = {
        side: [{k: _float_out(getattr(f, k)) for k in _FLOATS} for f in result.features]
        for side, result in (("result", report.result), ("prediction", report.prediction))
        if result is not None
    }
    frames = report.frames
    body["frames"] = None
    if frames is not None:
        body["frames"] = {
            f.name: _frame_out(getattr(frames, f.name))
            for f in fields(frames)
            if getattr(frames, f.name) is not None
        }
    return body


def report_from_wire(body: Any) -> MonitorReport:
    """The MonitorReport ``report_to_wire`` made ``body`` from (an instance is returned as
    it is). Raises ValueError (pydantic reports it) for a body of another shape."""
    from cairn.monitoring.model_report import MonitorFrames, MonitorReport

    if isinstance(body, MonitorReport):
        return body
    if not isinstance(body, dict):
        raise ValueError(f"a monitor report is a JSON object, not {type(body).__name__}")
    try:
        floats = body.get("floats") or {}
        result = _drift(body["result"], floats.get("result"))
        prediction = None
        if body.get("prediction") is not None:
            prediction = _drift(body["prediction"], floats.get("prediction"))
        frames = None
        if body.get("frames"):
            frames = MonitorFrames(**{k: _frame_in(v) for k, v in body["frames"].items()})
        return MonitorReport(
            model=body["model"],
            version=int(body["version"]),
            deployment=body["deployment"],
            reference=body["reference"],
            window=body["window"],
            result=result,
            prediction=prediction,
            performance=body.get("performance"),
            frames=frames,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a monitor report: {type(exc).__name__}: {exc}") from None


def _drift(data: dict[str, Any], exact: list[dict[str, Any]] | None) -> DriftResult:
    from cairn.monitoring.drift import DriftConfig, DriftResult, FeatureDrift

    names = {f.name for f in fields(FeatureDrift)}
    features = []
    for i, f in enumerate(data["features"]):
        values = {k: v for k, v in f.items() if k in names}
        for k in _FLOATS:
            value = exact[i][k] if exact is not None else values[k]
            values[k] = math.nan if value is None else float(value)
        features.append(FeatureDrift(**values))
    return DriftResult(
        features=tuple(features),
        share_drifted=float(data["share_drifted"]),
        drifted=bool(data["drifted"]),
        config=DriftConfig.from_dict(data["config"]),
        n_reference=int(data["n_reference"]),
        n_current=int(data["n_current"]),
        method=data["method"],
    )


def _float_out(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # "nan", "inf", "-inf"


def _frame_out(frame: pd.DataFrame) -> dict[str, Any]:
    names = [_plain(c) for c in frame.columns]
    renamed = frame.set_axis([f"c{i}" for i in range(len(names))], axis=1)
    buffer = io.BytesIO()
    try:
        renamed.to_parquet(buffer, index=False)
    except (ValueError, TypeError):  # pyarrow's ArrowInvalid and ArrowTypeError
        # Object columns of mixed types pyarrow cannot hold; as text they plot the same.
        objects = [c for c in renamed if renamed[c].dtype == object]
        renamed = renamed.assign(**{c: renamed[c].map(_text) for c in objects})
        buffer = io.BytesIO()
        renamed.to_parquet(buffer, index=False)
    return {"columns": names, "parquet": base64.b64encode(buffer.getvalue()).decode("ascii")}


def _text(value: Any) -> Any:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return value if missing else str(value)


def _frame_in(data: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.read_parquet(io.BytesIO(base64.b64decode(data["parquet"])))
    return frame.set_axis(list(data["columns"]), axis=1)


def _plain(name: Any) -> Any:
    """A column name as JSON holds it (numpy integers become int)."""
    return name.item() if hasattr(name, "item") else name
