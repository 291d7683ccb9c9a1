"""A model's metric over time from predictions joined to late labels by request id."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from cairn.monitoring import DriftInputError
from cairn.monitoring.performance import metric_over_time

DAY = 86_400.0


def test_accuracy_per_day_of_a_real_model():
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=2000).fit(X[:900], y[:900])
    rest_X, rest_y = X[900:], y[900:]
    predicted = model.predict(rest_X)
    n = len(rest_y)
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 3 * DAY, n))
    # on day 3 the truth arrives for half of the requests only
    predictions = pd.DataFrame(
        {"request_id": [f"r{i}" for i in range(n)], "time": times, "prediction": predicted}
    )
    labelled = (times < 2 * DAY) | (np.arange(n) % 2 == 0)
    labels = pd.DataFrame(
        {"request_id": predictions.request_id[labelled], "label": rest_y[labelled]}
    ).sample(frac=1.0, random_state=1)
    out = metric_over_time(predictions, labels)
    assert out.attrs["metric"] == "accuracy_score"
    assert list(out.columns) == ["start", "predictions", "labelled", "value"]
    assert len(out) == 3 and out.predictions.sum() == n and out.labelled.sum() == labelled.sum()
    for day, row in out.iterrows():
        mask = (times >= day * DAY) & (times < (day + 1) * DAY) & labelled
        assert row.value == pytest.approx(accuracy_score(rest_y[mask], predicted[mask]))
    assert str(out.start[0]) == "1970-01-01 00:00:00+00:00"
    macro = metric_over_time(
        predictions, labels, metric=lambda t, p: f1_score(t, p, average="macro"), freq="3D"
    )
    assert len(macro) == 1


def test_batch_requests_match_labels_by_position_and_corrections_win():
    predictions = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "c", "d"],
            "time": pd.to_datetime([0, 10, DAY, DAY, DAY + 1], unit="s"),
            "prediction": [1, 0, 1, 1, 0],
        }
    )
    labels = pd.DataFrame({"request_id": ["a", "a", "b", "c", "c"], "label": [0, 1, 1, 1, 0]})
    out = metric_over_time(predictions, labels)
    assert out.value.tolist() == [0.5, 0.5]  # a: corrected to 1 (right), b wrong; c: 1 of 2
    assert out.labelled.tolist() == [2, 2] and out.predictions.tolist() == [2, 3]


def test_unknown_metric_and_missing_columns_raise():
    frame = pd.DataFrame({"request_id": ["a"], "time": [0.0], "prediction": [1]})
    labels = pd.DataFrame({"request_id": ["a"], "label": [1]})
    with pytest.raises(DriftInputError):
        metric_over_time(frame, labels, metric="no_such_metric")
    with pytest.raises(DriftInputError):
        metric_over_time(frame.drop(columns="time"), labels)
    assert metric_over_time(frame, labels, metric="mean_absolute_error").value[0] == 0.0
