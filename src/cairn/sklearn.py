"""``cairn.sklearn``: MLflow's ``mlflow.sklearn`` verbs for cairn runs.

``autolog()`` records every ``fit`` of a scikit-learn estimator (any class
``sklearn.utils.all_estimators`` lists, Pipelines and searches included) as MLflow's
sklearn autologging documents it:

- params: ``get_params(deep=True)``, each as text (a Pipeline's ``clf__C`` too);
- tags: ``estimator_name``, ``estimator_class`` (module and class), and
  ``mlflow.autologging = sklearn``;
- metrics on the training data: ``training_score`` (``estimator.score``), and for
  classifiers ``training_accuracy_score``, ``training_precision_score``,
  ``training_recall_score``, ``training_f1_score`` (weighted averages), with
  ``predict_proba`` also ``training_log_loss`` and ``training_roc_auc`` (one-vs-rest,
  weighted); for regressors ``training_mean_squared_error``,
  ``training_root_mean_squared_error``, ``training_mean_absolute_error``,
  ``training_r2_score``. ``sample_weight`` passed to ``fit`` weighs them;
- artifacts: ``estimator.html`` (scikit-learn's HTML view), for classifiers
  ``training_confusion_matrix.png``, and the fitted model (``log_model``, at ``model``;
  signature from the fitted estimator, with the training rows' types when
  ``log_input_examples=True``) unless ``log_models=False``.

A ``fit`` with no active run starts one and ends it when ``fit`` returns (``failed`` when
it raises), as MLflow does; inside an active run it logs there. Only the outermost
``fit`` is recorded (a Pipeline's steps are in its params). Differences from MLflow:
``fit_transform``/``fit_predict`` called directly are not recorded, and searches
(``GridSearchCV``) log no child run per candidate; metric failures are skipped silently
(never the ``fit``).
"""

from __future__ import annotations

import functools
import io
import threading
from typing import Any

from cairn import sdk, tracking

__all__ = ["autolog", "load_model", "log_model"]

_state = threading.local()
_patched: dict[type, Any] = {}  # class -> its own fit before autolog wrapped it
_options: dict[str, Any] = {"disable": True}


def log_model(sk_model: Any, name: str | None = None, **kwargs: Any) -> Any:
    """``mlflow.sklearn.log_model``: see ``cairn.tracking.log_model``."""
    return tracking.log_model(sk_model, name, **kwargs)


def load_model(model_uri: str, *, trust: bool = False) -> Any:
    """The fitted estimator at ``model_uri`` (``models:/...`` or ``runs:/...``), as
    ``mlflow.sklearn.load_model`` returns it. Raises as ``cairn.tracking.load_model``."""
    return tracking.load_model(model_uri, trust=trust).unwrap_python_model()


def autolog(
    log_models: bool = True,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    disable: bool = False,
    silent: bool = False,
    **ignored: Any,
) -> None:
    """Record ``fit`` of scikit-learn estimators (see the module's doc); ``disable=True``
    restores the original methods. Other MLflow options are accepted and ignored."""
    _options.update(
        log_models=log_models,
        log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures,
        disable=disable,
    )
    if disable:
        for cls, fit in _patched.items():
            setattr(cls, "fit", fit)  # noqa: B010
        _patched.clear()
        return
    from sklearn.utils import all_estimators

    for _name, cls in all_estimators():
        if "fit" in vars(cls) and cls not in _patched:
            _patched[cls] = vars(cls)["fit"]
            setattr(cls, "fit", _wrap(vars(cls)["fit"]))  # noqa: B010


def _wrap(fit: Any) -> Any:
    @functools.wraps(fit)
    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _options.get("disable") or getattr(_state, "depth", 0):
            return fit(self, *args, **kwargs)
        _state.depth = 1
        try:
            return _record(fit, self, args, kwargs)
        finally:
            _state.depth = 0

    return recorded


def _record(fit: Any, est: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    started = sdk.active_run() is None
    if started:
        sdk.start_run()
    try:
        sdk.log_params({k: str(v) for k, v in est.get_params(deep=True).items()})
        cls = type(est)
        sdk.set_tags(
            {
                "estimator_name": cls.__name__,
                "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
                "mlflow.autologging": "sklearn",
            }
        )
        result = fit(est, *args, **kwargs)
        if y is not None:
            sdk.log_metrics(_training_metrics(est, X, y, kwargs.get("sample_weight")))
        _artifacts(est, X, y)
    except BaseException:
        if started:
            sdk.end_run("FAILED")
        raise
    if started:
        sdk.end_run()
    return result


def _training_metrics(est: Any, X: Any, y: Any, weight: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}

    def put(name: str, compute: Any) -> None:
        try:
            value = float(compute())
        except Exception:  # noqa: BLE001 - a metric that does not apply is left out
            return
        if np.isfinite(value):
            out[name] = value

    if is_classifier(est):
        pred = est.predict(X)
        put(
            "training_accuracy_score", lambda: metrics.accuracy_score(y, pred, sample_weight=weight)
        )
        for key, fn in (
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
            ("f1", metrics.f1_score),
        ):
            put(
                f"training_{key}_score",
                lambda fn=fn: fn(y, pred, average="weighted", sample_weight=weight),
            )
        if hasattr(est, "predict_proba"):
            proba = est.predict_proba(X)
            put("training_log_loss", lambda: metrics.log_loss(y, proba, sample_weight=weight))
            if proba.shape[1] == 2:
                put(
                    "training_roc_auc",
                    lambda: metrics.roc_auc_score(y, proba[:, 1], sample_weight=weight),
                )
            else:
                put(
                    "training_roc_auc",
                    lambda: metrics.roc_auc_score(
                        y, proba, multi_class="ovr", average="weighted", sample_weight=weight
                    ),
                )
    elif is_regressor(est):
        pred = est.predict(X)
        mse = lambda: metrics.mean_squared_error(y, pred, sample_weight=weight)  # noqa: E731
        put("training_mean_squared_error", mse)
        put("training_root_mean_squared_error", lambda: np.sqrt(mse()))
        put(
            "training_mean_absolute_error",
            lambda: metrics.mean_absolute_error(y, pred, sample_weight=weight),
        )
        put("training_r2_score", lambda: metrics.r2_score(y, pred, sample_weight=weight))
    if hasattr(est, "score"):
        put(
            "training_score",
            lambda: (
                est.score(X, y, sample_weight=weight) if weight is not None else est.score(X, y)
            ),
        )
    return out


def _artifacts(est: Any, X: Any, y: Any) -> None:
    from sklearn.base import is_classifier
    from sklearn.utils import estimator_html_repr

    files: dict[str, bytes | str] = {"estimator.html": estimator_html_repr(est).encode()}
    if is_classifier(est) and y is not None:
        try:
            files["training_confusion_matrix.png"] = _confusion_png(est, X, y)
        except Exception:  # noqa: BLE001,S110 - a plot that cannot be drawn is left out
            pass
    sdk._store_artifacts(files)
    if _options.get("log_models", True):
        import pandas as pd

        example = None
        if _options.get("log_input_examples"):
            example = (X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)).head(5)
        tracking.log_model(est, "model", input_example=example)


def _confusion_png(est: Any, X: Any, y: Any) -> bytes:
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    # A Figure outside pyplot: no backend is chosen or changed for the user's session.
    figure = Figure()
    ConfusionMatrixDisplay.from_estimator(est, X, y, ax=figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
