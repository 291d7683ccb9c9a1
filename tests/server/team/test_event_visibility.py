"""Who sees which event through ``cairn server`` (``events.list``, ``cairn list event``):
an event shows to readers of what it is about, ``auth.*`` events to clusterAdmins only.

One table, ``SEES``, says for each subject the fixture's events are about which callers
see them; every event the admin sees must have an entry (a new kind of event without one
fails the test, as a route without an entry fails the authorization matrix)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.server.team.test_auth_matrix import _rule, _skops_model, _spec
from tests.team_server import team_server

from cairn.api.remote.client import RemoteClient

CALLERS = ("anonymous", "nobody", "alice", "admin")
"""``alice`` reads repos ``open`` and ``open-pipe`` and model ``visible``; ``nobody``
holds no role; ``admin`` is root."""

ALICE = frozenset({"alice"})
NOT_ALICE: frozenset[str] = frozenset()
SEES: dict[str, frozenset[str]] = {
    # repos and their data: alice reads open, not closed
    "open": ALICE,
    "open@master": ALICE,
    "closed": NOT_ALICE,
    "closed@master": NOT_ALICE,
    # pipelines: their output repo decides (both read open)
    "open-pipe": ALICE,
    "closed-pipe": NOT_ALICE,
    # models, and the deployments and monitors of each
    "visible": ALICE,
    "hidden": NOT_ALICE,
    "dep-visible": ALICE,
    "dep-hidden": NOT_ALICE,
    "mon-visible": ALICE,  # deleted since: its model is found in its earlier events
    "mon-hidden": NOT_ALICE,
}
"""Subject of an event (other than ``auth.*``) -> who sees it besides the admin."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("events") / "home"
    with team_server(home, worker=False) as url:
        with RemoteClient(url, auto_run=False) as anyone:
            root_token = anyone.auth.activate()
        headers = {"Authorization": f"Bearer {root_token}"}
        with RemoteClient(url, root_token, auto_run=False) as root:
            for repo in ("open", "closed"):
                root.repos.create(repo)
                root.files.put(f"{repo}@master:/model.skops", _skops_model())
            for name in ("open-pipe", "closed-pipe"):
                spec = _spec(name)
                spec["input"]["pfs"]["repo"] = "open"
                answer = httpx.post(
                    f"{url}/api/v1/pipelines/create", json={"spec": spec}, headers=headers
                )
                assert answer.status_code == 200, answer.text
            for model, repo in (("visible", "open"), ("hidden", "closed")):
                root.models.register(model, f"{repo}@master:/model.skops")
                root.models.set_alias(f"{model}@champion", 1)
                root.deployments.create(f"dep-{model}", f"{model}@champion")
                rule = _rule(f"mon-{model}")
                rule["model"] = f"{model}@champion"
                root.monitors.create(rule)
            root.monitors.delete("mon-visible")
            tokens = {"admin": root_token, "anonymous": ""}
            for who in ("alice", "nobody"):
                tokens[who] = root.auth.create_token(who)[1]
            for repo in ("open", "open-pipe"):
                root.auth.set_role("repo", repo, "alice", "repoReader")
            root.auth.set_role("model", "visible", "alice", "repoReader")
        yield url, tokens


def _events(url: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/api/v1/events/list", json={}, headers=headers, timeout=60)


def _key(event: dict[str, Any]) -> tuple[int, str, str]:
    return event["id"], event["kind"], event["subject"]


def test_each_caller_sees_the_events_of_what_they_may_read(
    server: tuple[str, dict[str, str]],
) -> None:
    url, tokens = server
    everything = _events(url, tokens["admin"]).json()["result"]
    kinds = {e["kind"].split(".")[0] for e in everything}
    assert {"data", "model", "alias", "deployment", "monitor", "auth"} <= kinds

    unknown = sorted(
        {e["subject"] for e in everything if not e["kind"].startswith("auth.")} - SEES.keys()
    )
    assert not unknown, f"events about subjects without an entry in SEES: {unknown}"
    wrong: list[str] = []
    for who in CALLERS:
        answer = _events(url, tokens[who])
        if who == "anonymous":
            if answer.status_code != 401:
                wrong.append(f"anonymous got {answer.status_code}, not 401")
            continue
        seen = {_key(e) for e in answer.json()["result"]}
        for event in everything:
            expected = who == "admin" or (
                not event["kind"].startswith("auth.") and who in SEES[event["subject"]]
            )
            if (_key(event) in seen) != expected:
                wrong.append(f"{who} {'misses' if expected else 'sees'} {_key(event)}")
    assert not wrong, "\n".join(wrong)


def test_the_remote_client_lists_only_visible_events(server: tuple[str, dict[str, str]]) -> None:
    url, tokens = server
    with RemoteClient(url, tokens["nobody"], auto_run=False) as nobody:
        assert nobody.events.list() == []
    with RemoteClient(url, tokens["alice"], auto_run=False) as alice:
        subjects = {e.subject for e in alice.events.list()}
    assert subjects == {s for s, who in SEES.items() if "alice" in who}
