"""How a prediction's failure is told apart: the request's fault (a 400) or the model's (a
500), through ``predict_logged``, the request path that both protocols share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from cairn.ml.flavors import SklearnModel
from cairn.ml.models import ModelVersion
from cairn.serving.errors import InputRefused
from cairn.serving.predict import predict_logged


def _loaded(estimator: Any) -> SklearnModel:
    version = ModelVersion("m", 1, "models", "c" * 32, "/m.skops", "sklearn", None, None, 0.0)
    return SklearnModel(version, Path("/m.skops"), estimator)


def _predict(model: SklearnModel, frame: pd.DataFrame) -> Any:
    kwargs = {"predlog": None, "request_id": "r", "deployment": "d", "protocol": "mlflow"}
    return predict_logged(model, frame, None, target="1", **kwargs)


def test_a_type_error_on_the_inputs_is_the_request_s_fault() -> None:
    # before: scikit-learn's TypeError for a value that is no number (an object, as a JSON
    # request can send one) was answered with a 500
    estimator = LogisticRegression().fit(pd.DataFrame({"c": [1.0, 2.0, 3.0]}), [0, 1, 0])
    with pytest.raises(InputRefused) as caught:
        _predict(_loaded(estimator), pd.DataFrame({"c": [{"a": 1}]}, dtype=object))
    assert isinstance(caught.value.__cause__, TypeError)


def test_other_exceptions_stay_the_model_s() -> None:
    class Broken:
        feature_names_in_ = None

        def predict(self, x: Any) -> Any:
            raise RuntimeError("the model is broken")

    with pytest.raises(RuntimeError):
        _predict(_loaded(Broken()), pd.DataFrame({"c": [1.0]}))
