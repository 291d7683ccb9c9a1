"""End-to-end tests of ``cairn set traffic``, ``inspect``/``list deployment`` and
``rollback deployment`` against a model with two scikit-learn versions (iris)."""

from __future__ import annotations

import io

import pytest

from .conftest import Cairn


@pytest.fixture
def iris(cairn: Cairn) -> Cairn:
    """Model ``iris``: v1 a depth-1 tree, v2 a depth-3 tree; champion v1, challenger v2."""
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    from cairn.client import Client

    x, y = load_iris(return_X_y=True, as_frame=True)
    blobs = [
        bytes(skops.io.dumps(DecisionTreeClassifier(max_depth=d, random_state=0).fit(x, y)))
        for d in (1, 3)
    ]
    client = Client(cairn.home, auto_run=False)
    try:
        client.create_repo("models")
        client.put_files(
            "models", "master", [(f"/v{i + 1}.skops", io.BytesIO(b)) for i, b in enumerate(blobs)]
        )
        for i in (1, 2):
            client.registry.register("iris", f"models@master:/v{i}.skops")
        client.registry.set_alias("iris", "champion", 1)
        client.registry.set_alias("iris", "challenger", 2)
    finally:
        client.data.catalog.dispose()
    return cairn


def _routes(policy: dict) -> dict[str, float]:
    return {r["target"]: r["weight"] for r in policy["routes"]}


def test_set_inspect_list_and_rollback_traffic(iris: Cairn):
    cairn = iris
    done = cairn("set", "traffic", "web", "--model", "iris", "--canary", "challenger=10")
    assert "revision 2" in done.stderr
    shown = cairn.raw("inspect", "deployment", "web")
    assert _routes(shown["policy"]) == {"champion": 90.0, "challenger": 10.0}
    assert shown["versions"] == {"champion": 1, "challenger": 2}
    assert [h["revision"] for h in shown["history"]] == [1, 2]

    cairn("set", "traffic", "web", "--shadow", "1", "--sticky-header", "X-User", "--reason", "ab")
    shown = cairn.raw("inspect", "deployment", "web")
    assert shown["revision"] == 3 and shown["policy"]["shadow"] == ["1"]
    assert shown["policy"]["sticky_header"] == "x-user" and shown["history"][-1]["reason"] == "ab"

    refused = cairn.fails("set", "traffic", "web", "--split", "champion=50,staging=50")
    assert "routes.1.target" in refused.stderr
    cairn.fails("set", "traffic", "web", "--split", "champion:50")
    cairn.fails("set", "traffic", "web", "--canary", "challenger=150")
    cairn.fails("set", "traffic", "web")  # nothing to change
    assert cairn.raw("inspect", "deployment", "web")["revision"] == 3

    listed = cairn.raw("list", "deployment")
    assert [(d["name"], d["model"], d["revision"]) for d in listed] == [("web", "iris", 3)]
    table = cairn("list", "deployment").stdout
    assert "web" in table and "champion 90%" in table

    cairn("rollback", "deployment", "web")
    shown = cairn.raw("inspect", "deployment", "web")
    assert shown["revision"] == 4 and shown["policy"]["shadow"] == []
    assert shown["history"][-1]["restores"] == 2
    assert "restores 2" in cairn("inspect", "deployment", "web").stdout

    cairn.write(
        "policy.yaml",
        "routes:\n  - {target: '2', weight: 1}\n  - {target: champion, weight: 3}\n",
    )
    cairn("set", "traffic", "web", "-f", "policy.yaml")
    assert _routes(cairn.raw("inspect", "deployment", "web")["policy"]) == {
        "2": 1.0,
        "champion": 3.0,
    }
    cairn("set", "traffic", "web", "--reset", "challenger", "--no-sticky")
    policy = cairn.raw("inspect", "deployment", "web")["policy"]
    assert _routes(policy) == {"challenger": 100.0} and policy["sticky_header"] is None

    # A policy file that is not JSON was a JSONDecodeError traceback (issue 10): now one
    # error line naming the file, from the loader specs and rules use.
    cairn.write("bad.json", '{"routes": [')
    refused = cairn.fails("set", "traffic", "web", "-f", "bad.json")
    assert "bad.json" in refused.stderr and "Traceback" not in refused.stderr


def test_unknown_deployment_is_an_error(iris: Cairn):
    iris.fails("inspect", "deployment", "nope")
    iris.fails("rollback", "deployment", "nope")
    iris.fails("set", "traffic", "nope", "--reset", "champion")
    made = iris("set", "traffic", "solo", "--model", "iris", "--reset", "champion")
    assert "revision 1" in made.stderr  # created with all traffic to champion; no change
    iris.fails("rollback", "deployment", "solo")  # nothing earlier


def test_serving_a_version_whose_repo_is_gone_is_one_error_line(iris: Cairn):
    # the version stays registered (pinned to its commit) but its files are gone: before,
    # `cairn serve` started uvicorn and every worker died with a traceback (exit 3)
    blob = iris("get", "file", "models@master:/v1.skops", binary=True).stdout
    iris("create", "repo", "scratch")
    iris.put("scratch@master:/m.skops", blob)
    iris("register", "model", "gone", "scratch@master:/m.skops")
    iris("set", "alias", "gone", "champion", "1")
    iris("delete", "repo", "scratch")
    proc = iris.fails("serve", "gone@champion", "--port", "1", timeout=60)
    assert "Traceback" not in proc.stderr
    assert "gone/1 cannot be served" in proc.stderr and "scratch" in proc.stderr
