"""Searching runs with MLflow's filter grammar (cairn.ml.search): each operator on each
entity, AND, quoting, order-by with missing values last, and malformed filters refused
with MLError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.ml import MLError
from cairn.ml.models import RunInfo
from cairn.ml.search import parse_filter, search


def run(rid: str, created: float, *, params=None, metrics=None, tags=None, state="finished"):
    return RunInfo(
        id=rid,
        name=f"name-{rid}",
        experiment="e",
        state=state,
        created=created,
        finished=created + 1,
        params=params or {},
        metrics=metrics or {},
        tags=tags or {},
    )


RUNS = [
    run("a", 1.0, params={"lr": 0.1, "model": "svm"}, metrics={"acc": 0.9}, tags={"team": "x"}),
    run("b", 2.0, params={"lr": 0.01, "model": "SVC"}, metrics={"acc": 0.7, "loss": 0.3}),
    run("c", 3.0, params={"lr": 0.1, "model": "tree"}, tags={"mlflow.parentRunId": "a"}),
    run("d", 4.0, params={"flag": True}, metrics={"acc": 0.8}, state="failed"),
]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("", ["d", "c", "b", "a"]),
        ("metrics.acc > 0.75", ["d", "a"]),
        ("metrics.acc >= 0.8 AND metrics.acc <= 0.8", ["d"]),
        ("metrics.acc != 0.9", ["d", "b"]),  # c has no acc: it matches nothing
        ("metrics.loss < 1", ["b"]),
        ("params.lr = '0.1'", ["c", "a"]),  # JSON 0.1 compares as MLflow's text '0.1'
        ('params.lr != "0.1"', ["b"]),
        ("params.flag = 'True'", ["d"]),
        ("params.model LIKE 's%'", ["a"]),
        ("params.model ILIKE 's%'", ["b", "a"]),
        ("params.model LIKE '_ree'", ["c"]),
        ("params.model IN ('svm', 'tree')", ["c", "a"]),
        ("params.model NOT IN ('svm')", ["c", "b"]),
        ("tags.team = 'x'", ["a"]),
        ("tags.mlflow.parentRunId = 'a'", ["c"]),
        ("tags.\"mlflow.parentRunId\" = 'a'", ["c"]),
        ("tags.`mlflow.runName` = 'name-b'", ["b"]),
        ("attributes.status = 'FAILED'", ["d"]),
        ("attribute.status IN ('FINISHED') and params.lr = '0.1'", ["c", "a"]),
        ("attributes.run_name LIKE 'name-%' AND attributes.start_time > 2500", ["d", "c"]),
        ("run.run_id = 'b'", ["b"]),
        ("metrics.acc>0.85", ["a"]),
    ],
)
def test_filters_select_as_mlflow_documents(text, ids):
    assert [r.id for r in search(RUNS, text)] == ids


@pytest.mark.parametrize(
    ("order", "ids"),
    [
        (["metrics.acc DESC"], ["a", "d", "b", "c"]),  # c has no acc: last either way
        (["metrics.acc ASC"], ["b", "d", "a", "c"]),
        (["metrics.acc"], ["b", "d", "a", "c"]),
        (["params.lr DESC", "attributes.start_time ASC"], ["a", "c", "b", "d"]),
        (["attributes.start_time"], ["a", "b", "c", "d"]),
    ],
)
def test_order_by_sorts_with_missing_values_last(order, ids):
    assert [r.id for r in search(RUNS, None, order)] == ids


def test_max_results_cuts_after_ordering():
    assert [r.id for r in search(RUNS, "", ["metrics.acc DESC"], max_results=2)] == ["a", "d"]


@pytest.mark.parametrize(
    "text",
    [
        "metrics.acc = 'high'",  # a metric compares with a number
        "params.lr = 0.1",  # a param with a quoted string
        "lr = '0.1'",  # no entity
        "params.a = 'x' OR params.b = 'y'",  # MLflow has no OR
        "params.a = 'x",  # unterminated
        "attributes.colour = 'red'",  # unknown attribute
        "metrics.acc LIKE '1%'",  # LIKE is for strings
        "params.a IN 'x'",  # IN takes a list
        "params.a = 'x' params.b = 'y'",  # AND missing
        "metrics.acc >",
        "params.a ~ 'x'",
    ],
)
def test_malformed_filters_are_refused(text):
    with pytest.raises(MLError):
        parse_filter(text)


@pytest.mark.parametrize("order", [["metrics.acc DOWN"], ["acc"], ["attributes.colour"]])
def test_malformed_order_by_is_refused(order):
    with pytest.raises(MLError):
        search(RUNS, "", order)


@settings(max_examples=80, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30))
def test_any_string_value_round_trips_through_quoting(value):
    quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    [clause] = parse_filter(f"params.p = {quoted}")
    assert clause.value == value
    assert [r.id for r in search([run("z", 1.0, params={"p": value})], f"params.p = {quoted}")]
