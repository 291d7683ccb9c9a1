"""Monitoring rules: validation errors name the field; rules are stored and versioned."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.catalog import open_catalog
from cairn.data import AlreadyExists, NotFound
from cairn.monitoring.errors import RuleError
from cairn.monitoring.rules import (
    create_monitor,
    delete_monitor,
    get_monitor,
    list_monitors,
    load_rule_file,
    load_rule_text,
    monitor_version,
)

RULE = """
name: cancer-drift
model: cancer@champion
window: {last: 200, since: 1h, min_rows: 50}
tests: {method: test, alpha: 0.01, correction: fdr}
drift_share: 0.25
schedule: {interval: 5m}
action:
  alert: {webhook: "http://127.0.0.1:8000/hook"}
  retrain:
    labels: labels@master
    label: target
    to: training@master:/data/
    pipeline: train
    model_path: /model.skops
    canary: {percent: 10, requests: 100, seconds: 1m}
    evaluate: {holdout: "holdout@master:/test.csv", label: target, metric: f1}
"""


def test_a_rule_parses_with_durations_and_its_drift_config() -> None:
    rule = load_rule_text(RULE)
    assert rule.window.since == 3600 and rule.schedule.interval == 300
    assert rule.action.retrain is not None and rule.action.retrain.canary.seconds == 60
    config = rule.drift_config()
    assert (config.method, config.alpha, config.correction, config.drift_share) == (
        "test",
        0.01,
        "fdr",
        0.25,
    )
    assert rule.model_name == "cancer" and rule.alias == "champion"
    assert rule.deployment_name == "cancer"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("windw: {last: 3}", "windw"),
        ("window: {last: 0}", "window.last"),
        ("tests: {method: magic}", "tests.method"),
        ("drift_share: 2", "drift_share"),
        ("schedule: {interval: soon}", "schedule.interval"),
        ("model: cancer", "model"),
        ("action: {}", "action"),
        ("action: {alert: {webhook: 'ftp://x'}}", "action.alert.webhook"),
        (
            "action: {retrain: {labels: l, to: t@master:/d/, pipeline: p, model_path: /m, "
            "canary: {percent: 100, requests: 1}, evaluate: {holdout: 'h@master:/f.csv'}}}",
            "action.retrain.canary.percent",
        ),
        (
            "action: {retrain: {labels: l, to: t@master:/d/, pipeline: p, model_path: /m, "
            "canary: {percent: 5}, evaluate: {holdout: 'h@master:/f.csv'}}}",
            "action.retrain.canary",
        ),
        (
            "action: {retrain: {labels: l, to: t@master:/d/, pipeline: p, model_path: /m, "
            "canary: {requests: 5}, evaluate: {holdout: 'h@master:/f.csv', metric: nope}}}",
            "action.retrain.evaluate.metric",
        ),
        (
            "action: {retrain: {to: t@master:/d/, pipeline: p, model_path: /m, "
            "canary: {requests: 5}, evaluate: {holdout: 'h@master:/f.csv'}, colour: red}}",
            "action.retrain.colour",
        ),
    ],
)
def test_errors_name_the_field(change: str, field: str) -> None:
    key = change.split(":")[0]
    text = f"name: m\nmodel: cancer@champion\n{change}\n"
    if key not in ("model", "action"):
        text += "action: {alert: {}}\n"
    if key == "model":
        text = f"name: m\n{change}\n"
    with pytest.raises(RuleError) as caught:
        load_rule_text(text, source="rule.yaml")
    assert field in [f for f, _ in caught.value.problems], caught.value.problems
    assert str(caught.value).startswith("rule.yaml: ")


def test_window_source_needs_labels() -> None:
    text = RULE.replace("    labels: labels@master\n", "")
    with pytest.raises(RuleError) as caught:
        load_rule_text(text)
    assert caught.value.field == "action.retrain"


def test_a_replay_gate_parses_and_needs_a_threshold() -> None:
    gated = load_rule_text(RULE + "    replay: {min_agreement: 0.9, since: 2d}\n")
    replay = gated.action.retrain.replay
    assert (replay.min_agreement, replay.since, replay.metric) == (0.9, 2 * 86400.0, None)
    metric = load_rule_text(RULE + "    replay: {metric: accuracy, not_worse_by: 0.01}\n")
    assert metric.action.retrain.replay.not_worse_by == 0.01
    for bad, field in [
        ("{since: 1d}", "action.retrain.replay"),
        ("{min_agreement: 1.5}", "action.retrain.replay.min_agreement"),
        ("{metric: no_such_metric}", "action.retrain.replay.metric"),
    ]:
        with pytest.raises(RuleError) as caught:
            load_rule_text(RULE + f"    replay: {bad}\n")
        assert caught.value.field == field, caught.value.problems


def test_rules_are_stored_and_versioned(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    path = tmp_path / "rule.yaml"
    path.write_text(RULE)
    rule = load_rule_file(path)
    assert create_monitor(catalog, rule).version == 1
    with pytest.raises(AlreadyExists):
        create_monitor(catalog, rule)
    assert create_monitor(catalog, rule, update_=True).version == 1  # unchanged: same version
    changed = rule.model_copy(update={"drift_share": 0.5})
    assert create_monitor(catalog, changed, update_=True).version == 2
    assert get_monitor(catalog, "cancer-drift").rule.drift_share == 0.5
    assert monitor_version(catalog, "cancer-drift", 1).drift_share == 0.25
    assert [m.name for m in list_monitors(catalog)] == ["cancer-drift"]
    delete_monitor(catalog, "cancer-drift")
    with pytest.raises(NotFound):
        get_monitor(catalog, "cancer-drift")
    with pytest.raises(NotFound):
        create_monitor(catalog, rule, update_=True)
    catalog.dispose()


def test_a_pickle_model_path_needs_trust() -> None:
    # the loop registers what the training pipeline writes: a pickle needs the rule's consent
    text = RULE.replace("/model.skops", "/model.joblib")
    with pytest.raises(RuleError) as caught:
        load_rule_text(text)
    assert caught.value.field == "action.retrain"
    rule = load_rule_text(text.replace("    model_path:", "    trust: true\n    model_path:"))
    assert rule.action.retrain is not None and rule.action.retrain.trust
    assert load_rule_text(RULE).action.retrain.trust is False  # skops needs none


@pytest.mark.parametrize(
    ("since", "seconds"), [("1d", 86400.0), ("1w", 604800.0), ("1d12h", 129600.0)]
)
def test_window_since_takes_days_and_weeks(since: str, seconds: float) -> None:
    # A rule refused `since: 1d` while `cairn monitor --since 1d` took it (issue 10).
    rule = load_rule_text(RULE.replace("since: 1h", f"since: {since}"))
    assert rule.window.since == seconds


@pytest.mark.parametrize("text", ["name: [unclosed", "[1, 2]", "", "a: 1\n---\nb: 2\n"])
def test_a_rule_that_is_no_single_mapping_is_a_rule_error(text: str) -> None:
    with pytest.raises(RuleError):
        load_rule_text(text, source="rule.yaml")


def test_a_rule_file_shares_the_spec_limits(tmp_path: Path) -> None:
    # The rule loader is the spec loader: YAML alias bombs are refused, not expanded.
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for level in "bcdefgh":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [{','.join([f'*{prev}'] * 10)}]\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    assert str(path) in str(caught.value)
