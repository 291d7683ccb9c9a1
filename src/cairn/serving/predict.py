"""One prediction of one loaded model, logged whatever its outcome: the request path that
the Endpoint and the HTTP server share."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from cairn.ml.errors import SignatureError
from cairn.ml.models import Signature
from cairn.serving.errors import InputRefused
from cairn.serving.predlog import PredictionLog, make_record

if TYPE_CHECKING:
    from cairn.ml.flavors import LoadedModel

__all__ = ["enforce_signature", "method_of", "outcome", "predict_logged"]


def method_of(params: dict[str, Any] | None) -> str:
    """The model method a request's ``params`` ask for (``{"method": "predict_proba"}``),
    ``predict`` by default: what the prediction log records beside the outputs, so that
    drift compares outputs of one method only."""
    method = (params or {}).get("method", "predict")
    return method if isinstance(method, str) else repr(method)


def predict_logged(
    model: LoadedModel,
    frame: Any,
    params: dict[str, Any] | None,
    *,
    predlog: PredictionLog | None,
    request_id: str,
    deployment: str,
    protocol: str,
    target: str,
    strict: bool = False,
) -> tuple[Any, float]:
    """Enforce ``model``'s signature on ``frame``, predict, and submit the request's record
    to ``predlog`` (when logging) whatever the outcome: ``ok``, ``invalid`` (a signature
    mismatch, or values the model refused) or ``error``. ``strict``: enforce the signature
    strictly (``cairn.ml.signature.enforce``). Returns (outputs, latency in ms).
    Raises SignatureError (a 400), InputRefused (the model raised ValueError or TypeError
    on the inputs: a 400) or what else the model raised (the model is broken: a 500)."""
    mv = model.version
    method = method_of(params)  # before predict: a model may consume its params
    started = time.perf_counter()
    status, error, outputs = "ok", None, None
    try:
        outputs = model.predict(enforce_signature(model, frame, strict), params=params)
    except Exception as exc:
        status, error = outcome(exc)
        if status == "invalid" and not isinstance(exc, SignatureError):
            raise InputRefused(f"the model refused these inputs: {error}") from exc
        raise
    finally:
        latency = (time.perf_counter() - started) * 1000.0
        if predlog is not None:
            predlog.submit(
                make_record(
                    request_id=request_id,
                    deployment=deployment,
                    model=mv.name,
                    version=mv.version,
                    protocol=protocol,
                    inputs=frame,
                    outputs=outputs,
                    latency_ms=latency,
                    status=status,
                    error=error,
                    target=target,
                    method=method,
                )
            )
    return outputs, latency


def outcome(exc: Exception) -> tuple[str, str]:
    """A prediction log record's (status, error) for what predicting raised: ``invalid``
    for a signature mismatch, a ValueError or a TypeError (libraries raise them for values
    they cannot take: scikit-learn's "Input X contains NaN", an encoder given numbers and
    strings in one column: the request's fault), else ``error``."""
    if isinstance(exc, SignatureError):
        return "invalid", str(exc)
    if isinstance(exc, ValueError | TypeError):
        return "invalid", f"{type(exc).__name__}: {exc}"
    return "error", f"{type(exc).__name__}: {exc}"


def enforce_signature(model: LoadedModel, frame: Any, strict: bool = False) -> Any:
    """``frame`` passed through ``cairn.ml.signature.enforce`` with ``model``'s signature
    (as it is without one, and for MLflow models, which MLflow's pyfunc enforces itself
    by MLflow's rules). Raises SignatureError."""
    signature: Signature | None = model.signature
    if not signature or model.version.flavor == "mlflow":
        return frame
    from cairn.ml.signature import enforce

    return enforce(signature, frame, strict=strict)
