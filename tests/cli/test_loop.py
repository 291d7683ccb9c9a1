"""``cairn create/update/list/inspect/delete monitor`` and ``cairn list event``."""

from __future__ import annotations

import pytest
from tests.cli.conftest import Cairn

RULE = """
name: cancer-drift
model: cancer@champion
window: {last: 100}
action:
  alert: {}
"""


@pytest.mark.embedded_only(
    "drives the loop with `cairn run`, which a server refuses (its worker ticks)"
)
def test_monitor_commands(cairn: Cairn) -> None:
    cairn.write("rule.yaml", RULE)
    created = cairn("create", "monitor", "-f", "rule.yaml")
    assert "created monitor cancer-drift (version 1)" in created.stderr
    cairn.fails("create", "monitor", "-f", "rule.yaml")
    [listed] = cairn.raw("list", "monitor")
    assert listed["name"] == "cancer-drift" and listed["state"]["step"] == "idle"
    assert "cancer-drift" in cairn("list", "monitor").stdout

    cairn.write("rule.yaml", RULE.replace("last: 100", "last: 300"))
    assert "version 2" in cairn("update", "monitor", "-f", "rule.yaml").stderr
    shown = cairn.raw("inspect", "monitor", "cancer-drift")
    assert shown["version"] == 2 and shown["rule"]["window"]["last"] == 300
    assert [e["kind"] for e in shown["events"]] == ["monitor.create", "monitor.update"]
    assert "Step:" in cairn("inspect", "monitor", "cancer-drift").stdout

    events = cairn.raw("list", "event", "--subject", "cancer-drift")
    assert [e["kind"] for e in events] == ["monitor.create", "monitor.update"]
    assert "monitor.update" in cairn("list", "event").stdout

    cairn.write("bad.yaml", RULE.replace("window:", "windw:"))
    bad = cairn.fails("create", "monitor", "-f", "bad.yaml")
    assert "windw" in bad.stderr

    cairn("delete", "monitor", "cancer-drift")
    assert cairn.raw("list", "monitor") == []
    cairn.fails("inspect", "monitor", "cancer-drift")
    # `cairn run --once` with a rule whose model does not exist yet: no crash, no verdict.
    cairn("create", "monitor", "-f", "rule.yaml")
    cairn("run", "--once")


@pytest.mark.embedded_only(
    "drives the loop with `cairn run`, which a server refuses (its worker ticks)"
)
def test_list_event_shows_a_drift_events_verdict_before_its_features(cairn: Cairn) -> None:
    from cairn.client import Client
    from cairn.ml.events import record_event

    cairn.write("rule.yaml", RULE)
    cairn("create", "monitor", "-f", "rule.yaml")
    features = [
        {"name": f"worst feature number {i}", "score": 1e-5, "threshold": 0.05, "method": "test"}
        for i in range(16)
    ]
    info = {
        "share_drifted": 16 / 30,
        "drift_share": 0.3,
        "method": "test",
        "n_current": 50,
        "n_reference": 160,
        "features": features,
        "window": {"last": 50},
    }
    catalog = Client(cairn.home, auto_run=False).data.catalog
    with catalog.write() as conn:
        record_event(conn, "monitor.drift", "cancer-drift", info)
    catalog.dispose()
    shown = cairn("list", "event", "--kind", "monitor.drift").stdout
    assert "53% of features drifted (>= 30%; test, 50 rows vs 160): worst feature number 0" in (
        " ".join(shown.split())
    )
