"""Endpoints with real scikit-learn models: routing by policy, live policy changes and
alias rollbacks under load with zero failed predictions, shadows, signatures, unloading."""

from __future__ import annotations

import io
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import joblib
import pytest
from scipy import stats
from sklearn.naive_bayes import GaussianNB
from sqlalchemy import update

from cairn.catalog.schema import model_versions
from cairn.data import NotFound
from cairn.ml import SignatureError, UntrustedModel
from cairn.serving.endpoint import Endpoint
from cairn.serving.errors import InputRefused, NotReady
from cairn.serving.predlog import PredictionLog, read_records
from cairn.serving.source import StoreSource

POLL = 0.05
DEADLINE = 60.0  # a bound on waiting for a change, not a timing assertion


@pytest.fixture
def make_endpoint(digits, tmp_path) -> Iterator[Callable[..., Endpoint]]:
    made: list[Endpoint] = []
    client = digits.client

    def make(name: str = "web", **kwargs: object) -> Endpoint:
        try:
            client.deployments.get(name)
        except NotFound:
            client.deployments.ensure(name, "digits", "champion")
        ep = Endpoint(
            StoreSource(client.data, client.registry, client.deployments),
            name,
            cache_dir=tmp_path / "cache",
            poll_interval=POLL,
            rng=random.Random(7),
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(ep)
        return ep

    yield make
    for ep in made:
        ep.close()


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the endpoint did not pick up the change")
        time.sleep(POLL)


def test_predicts_with_the_champion_and_follows_the_policy(digits, make_endpoint):
    ep = make_endpoint()
    assert not ep.ready
    with pytest.raises(NotReady):
        ep.predict(digits.frame)
    ep.start()
    assert ep.ready and ep.targets == {"champion": 1} and set(ep.versions) == {1}
    answer = ep.predict(digits.frame)
    assert answer.version.version == 1 and answer.target == "champion"
    outputs = list(answer.outputs)
    assert len(outputs) == len(digits.labels)
    right = sum(int(a) == b for a, b in zip(outputs, digits.labels, strict=True))
    assert right / len(outputs) > 0.3  # a depth-3 tree on ten digits, far above chance
    assert ep.signature is not None and len(ep.signature["inputs"]) == 64
    # A 70/30 split between the aliases: both load, and the routing fits the weights.
    digits.client.deployments.split("web", {"champion": 70, "challenger": 30})
    _wait(lambda: ep.revision == 2)
    assert ep.targets == {"champion": 1, "challenger": 2} and set(ep.versions) == {1, 2}
    n = 4000
    picks = Counter()
    for _ in range(n):
        with ep.route({}) as routed:
            picks[routed.primary.version.version] += 1
    low, high = stats.binom.interval(1 - 1e-6, n, 0.3)
    assert low <= picks[2] <= high
    # A pinned version, and one that is not served.
    assert ep.predict(digits.frame.head(3), version=2).version.version == 2
    with pytest.raises(NotFound):
        ep.predict(digits.frame.head(3), version=9)


def test_sticky_header_pins_a_caller(digits, make_endpoint):
    digits.client.deployments.ensure("web", "digits", "champion")
    digits.client.deployments.split("web", {"champion": 50, "challenger": 50})
    digits.client.deployments.sticky("web", "X-User")
    ep = make_endpoint()
    ep.start()
    for user in ("ann", "bob", "cy", "dee"):
        seen = {
            ep.predict(digits.frame.head(1), headers={"x-user": user}).version.version
            for _ in range(20)
        }
        assert len(seen) == 1
        # Header names are case-insensitive.
        again = ep.predict(digits.frame.head(1), headers={"X-USER": user}).version.version
        assert {again} == seen


def test_policy_changes_and_rollbacks_under_load_fail_nothing(digits, make_endpoint):
    client = digits.client
    ep = make_endpoint()
    ep.start()
    stop = threading.Event()
    failures: list[BaseException] = []
    served: list[Counter[int]] = [Counter() for _ in range(4)]

    def load(slot: int) -> None:
        rows = digits.frame.head(5)
        while not stop.is_set():
            try:
                served[slot][ep.predict(rows).version.version] += 1
            except BaseException as exc:  # noqa: BLE001 - every failure is the test's failure
                failures.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()

    def total() -> Counter[int]:
        return sum(served, Counter())

    try:
        # A canary: version 2 starts answering.
        client.deployments.canary("web", "challenger", 50)
        _wait(lambda: total()[2] > 50)
        # All traffic to the challenger: version 1 is unloaded once its requests finish.
        client.deployments.reset("web", "challenger")
        _wait(lambda: set(ep.versions) == {2})
        # Move an alias and roll it back: the champion route follows the alias.
        client.deployments.reset("web", "champion")
        _wait(lambda: set(ep.versions) == {1})
        client.registry.set_alias("digits", "champion", 2, reason="promote")
        _wait(lambda: set(ep.versions) == {2})
        before = total()[1]
        client.registry.rollback_alias("digits", "champion", reason="worse")
        _wait(lambda: set(ep.versions) == {1} and total()[1] > before + 50)
        # Roll the policy back: the challenger comes back (as after `reset challenger`).
        client.deployments.rollback("web")
        _wait(lambda: ep.targets == {"challenger": 2})
        mark = total()[2]
        _wait(lambda: total()[2] > mark + 50)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert total()[1] > 0 and total()[2] > 0


def test_shadows_are_logged_never_returned(digits, make_endpoint):
    client = digits.client
    client.deployments.ensure("web", "digits", "champion")
    client.deployments.shadow("web", ["2"])
    log = PredictionLog(client.data, max_records=10_000, max_seconds=60)
    ep = make_endpoint(predlog=log)
    ep.start()
    ids = []
    for i in range(20):
        answer = ep.predict(digits.frame.iloc[i : i + 2], protocol="v2")
        assert answer.version.version == 1 and answer.shadows == (2,)
        ids.append(answer.request_id)
    ep.close()  # waits for the shadow copies
    log.flush(timeout=60)
    log.close()
    records = list(read_records(client.data, deployment="web"))
    primary = {r["request_id"]: r for r in records if not r["shadow"]}
    shadow = {r["request_id"]: r for r in records if r["shadow"]}
    assert set(primary) == set(shadow) == set(ids)
    assert {r["version"] for r in primary.values()} == {1}
    assert {(r["version"], r["target"], r["status"]) for r in shadow.values()} == {(2, "2", "ok")}
    first = primary[ids[0]]
    assert first["protocol"] == "v2" and len(first["outputs"]) == 2
    assert first["inputs"]["columns"] == list(digits.frame.columns)
    assert first["inputs"]["data"] == digits.frame.iloc[0:2].to_numpy().tolist()


def test_signature_errors_are_raised_and_logged(digits, make_endpoint):
    log = PredictionLog(digits.client.data, max_records=10_000, max_seconds=60)
    ep = make_endpoint(predlog=log)
    ep.start()
    with pytest.raises(SignatureError):
        ep.predict(digits.frame.drop(columns=["pixel_0_0"]), request_id="bad")
    log.close()
    [record] = read_records(digits.client.data)
    assert (record["request_id"], record["status"]) == ("bad", "invalid")
    assert "pixel_0_0" in record["error"] and record["outputs"] is None


def test_values_a_model_refuses_are_the_requests_fault(digits, make_endpoint):
    # v1 (a tree) takes a missing value, v2 (naive Bayes) raises ValueError on it: that is
    # InputRefused (a 400), logged as invalid, where it was a model failure (a 500)
    client = digits.client
    client.deployments.ensure("nan", "digits", "challenger")
    log = PredictionLog(client.data, max_records=10_000, max_seconds=60)
    ep = make_endpoint("nan", predlog=log)
    ep.start()
    frame = digits.frame.iloc[:2].copy()
    frame.iloc[0, 10] = float("nan")
    with pytest.raises(InputRefused) as info:
        ep.predict(frame, request_id="refused")
    assert isinstance(info.value.__cause__, ValueError)
    client.deployments.reset("nan", "champion")
    _wait(lambda: ep.targets == {"champion": 1})
    assert len(ep.predict(frame, request_id="taken").outputs) == 2
    log.close()
    records = {r["request_id"]: r for r in read_records(client.data, deployment="nan")}
    assert records["refused"]["status"] == "invalid" and records["refused"]["error"]
    assert records["taken"]["status"] == "ok"


def test_a_held_version_is_closed_only_after_its_request(digits, make_endpoint, monkeypatch):
    from cairn.ml import flavors

    closed: list[int] = []
    real_load = flavors.load

    def load(version, local, **kw):
        model = real_load(version, local, **kw)
        real_close = model.close

        def close() -> None:
            closed.append(version.version)
            real_close()

        model.close = close
        return model

    monkeypatch.setattr(flavors, "load", load)
    ep = make_endpoint()
    assert ep.refresh()  # by hand, so that the refreshes below are the ones that act
    held = ep.route({})
    digits.client.deployments.reset("web", "challenger")
    assert ep.refresh() and set(ep.versions) == {2}
    assert closed == []  # still held by the request
    assert len(held.primary.predict(digits.frame.head(2))) == 2
    held.release()
    held.release()  # idempotent
    assert closed == [1]
    assert not ep.refresh()  # nothing changed
    ep.close()
    assert closed == [1, 2]


def test_unknown_deployment_and_unset_alias(digits, make_endpoint):
    client = digits.client
    with pytest.raises(NotFound):
        Endpoint(
            StoreSource(client.data, client.registry, client.deployments),
            "nope",
            cache_dir=digits.client.home,
        )
    ep = make_endpoint()
    assert ep.refresh()  # by hand: no polling thread races the two changes below
    client.deployments.split("web", {"champion": 1, "challenger": 1})
    client.registry.delete_alias("digits", "challenger")
    with pytest.raises(NotFound):
        ep.refresh()
    assert ep.targets == {"champion": 1}  # the table being served stays
    assert ep.predict(digits.frame.head(1)).version.version == 1


def test_a_pickle_version_not_recorded_as_trusted_is_never_served(digits, make_endpoint):
    # A joblib version in the catalog without a trust record (registered by a cairn from
    # before trust was recorded): serving refuses to load it, before and while serving.
    client = digits.client
    model = GaussianNB().fit(digits.frame, digits.labels)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    client.put_files("models", "master", [("/v3/model.joblib", io.BytesIO(buf.getvalue()))])
    v3 = client.registry.register("digits", "models@master:/v3/model.joblib", trust=True)
    with client.data.catalog.write() as conn:
        conn.execute(
            update(model_versions)
            .where(model_versions.c.name == "digits", model_versions.c.version == v3.version)
            .values(trusted=False)
        )
    client.registry.set_alias("digits", "challenger", v3.version)
    client.deployments.ensure("pickled", "digits", "challenger")
    with pytest.raises(UntrustedModel):
        make_endpoint("pickled").start()
    ep = make_endpoint()
    assert ep.refresh()
    client.deployments.split("web", {"champion": 1, "challenger": 1})
    with pytest.raises(UntrustedModel):
        ep.refresh()
    assert ep.targets == {"champion": 1}  # the table being served stays
