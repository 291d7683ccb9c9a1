"""Policy changes and alias rollbacks under steady load fail no request, and the versions
that answer follow them."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
from tests.server.conftest import Models, Server

from cairn.client import Client

DEADLINE = 120.0  # seconds a change may take to show (it takes about the poll interval)


class Load:
    """Client threads posting /invocations back to back, recording (status, version)."""

    def __init__(self, server: Server, body: dict, threads: int = 3) -> None:
        self.server = server
        self.body = body
        self.results: list[tuple[int, str]] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.more = threading.Condition(self.lock)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    r = http.post("/invocations", json=self.body)
                    item = (r.status_code, r.headers.get("x-cairn-model-version", ""))
                except httpx.HTTPError as exc:
                    item = (0, repr(exc))
                with self.more:
                    self.results.append(item)
                    if item[0] != 200:
                        self.failures.append(repr(item))
                    self.more.notify_all()

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def wait(self, done: Callable[[list[str]], bool], what: str) -> int:
        """Wait until ``done(versions answered since the call)``; return the position."""
        with self.more:
            start = len(self.results)
            ok = self.more.wait_for(
                lambda: done([v for _, v in self.results[start:]]), timeout=DEADLINE
            )
            assert ok, f"{what}: not seen; answered since: {self.results[start:][-20:]}"
            return len(self.results)

    def next(self, count: int) -> list[str]:
        """The versions of the next ``count`` responses."""
        with self.more:
            start = len(self.results)
            assert self.more.wait_for(lambda: len(self.results) >= start + count, DEADLINE)
            return [v for _, v in self.results[start : start + count]]


def _settled(old: str, run: int = 40) -> Callable[[list[str]], bool]:
    """``run`` responses in a row without version ``old``."""

    def check(versions: list[str]) -> bool:
        tail = versions[-run:]
        return len(tail) == run and old not in tail

    return check


def test_canary_alias_move_and_rollbacks_under_load_fail_nothing(
    start_server: Callable[..., Server], models: Models
) -> None:
    # Two workers: each follows the policy and the aliases on its own, and /metrics adds
    # both workers' counts up (prometheus_client's multiprocess mode).
    server = start_server("rollout@champion", "--workers", "2")
    client = Client.open(models.home, auto_run=False)
    body = {"instances": models.digits_x[:2].tolist()}
    try:
        with Load(server, body) as load:
            assert set(load.next(100)) == {"1"}
            # a 50% canary to the challenger (version 2)
            client.deployments.canary("rollout", "challenger", 50)
            load.wait(lambda v: "2" in v, "the canary answering")
            split = load.next(300)
            assert set(split) == {"1", "2"}
            assert 0.3 < split.count("2") / len(split) < 0.7
            # champion moves to version 3, then is rolled back to 1
            client.registry.set_alias("rollout", "champion", 3)
            load.wait(_settled("1"), "version 1 leaving")
            assert set(load.next(100)) == {"2", "3"}
            assert client.registry.rollback_alias("rollout", "champion").version == 1
            load.wait(_settled("3"), "version 3 leaving")
            assert set(load.next(100)) == {"1", "2"}
            # the policy is rolled back too: all traffic to the champion again
            client.deployments.rollback("rollout")
            load.wait(_settled("2"), "the canary leaving")
            assert set(load.next(100)) == {"1"}
        assert load.failures == []
    finally:
        client.data.catalog.dispose()
    samples = server.metrics()
    answered = {
        dict(labels)["version"]: value
        for (name, labels), value in samples.items()
        if name == "cairn_requests_total" and dict(labels)["code"] == "200"
    }
    assert sum(answered.values()) == len(load.results)
    assert set(answered) == {"1", "2", "3"}
    revision = [v for (name, _), v in samples.items() if name == "cairn_policy_revision"]
    assert revision == [3.0]
