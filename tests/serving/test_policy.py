"""Traffic policies: validation with field paths, the statistics of routing, and the
deployments table (revisions, history, events, rollback, helpers)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cairn.data import NotFound
from cairn.ml.events import list_events
from cairn.serving.errors import PolicyConflict, PolicyError, ServingError
from cairn.serving.policy import (
    TrafficPolicy,
    choose,
    load_policy_file,
    parse_policy,
    sticky_point,
)

# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "path"),
    [
        (
            {"routes": [{"target": "a", "weight": 1}, {"target": "b", "weight": -1}]},
            "routes.1.weight",
        ),
        ({"routes": [{"target": "a", "weight": float("inf")}]}, "routes.0.weight"),
        ({"routes": [{"target": "a b", "weight": 1}]}, "routes.0.target"),
        ({"routes": [{"target": "a", "weight": 1, "share": 2}]}, "routes.0.share"),
        ({"routes": [{"weight": 1}]}, "routes.0.target"),
        ({"routes": []}, "routes"),
        ({"routes": [{"target": "a", "weight": 0}, {"target": "b", "weight": 0}]}, "routes"),
        ({"routes": [{"target": "a", "weight": 1}, {"target": "a", "weight": 2}]}, "routes"),
        ({"routes": [{"target": "a", "weight": 1}], "shadow": ["a"]}, "shadow"),
        ({"routes": [{"target": "a", "weight": 1}], "shadow": ["b", "b"]}, "shadow"),
        ({"routes": [{"target": "a", "weight": 1}], "sticky_header": "x user"}, "sticky_header"),
        ({"routes": [{"target": "a", "weight": 1}], "mirror": ["b"]}, "mirror"),
    ],
)
def test_invalid_policies_name_the_field(policy, path):
    with pytest.raises(PolicyError) as info:
        parse_policy(policy)
    assert path in [p for p, _ in info.value.problems]
    assert path in str(info.value)
    with pytest.raises(PolicyError):  # the same from JSON text
        parse_policy(json.dumps(policy, allow_nan=True))


def test_a_valid_policy_is_canonical_and_headers_are_lower_case():
    p = parse_policy(
        '{"sticky_header": "X-User", "shadow": ["7"], '
        '"routes": [{"weight": 90, "target": "champion"}, {"target": "challenger", "weight": 10}]}'
    )
    assert p.sticky_header == "x-user"
    assert p.canonical() == (
        '{"routes":[{"target":"champion","weight":90.0},{"target":"challenger","weight":10.0}],'
        '"shadow":["7"],"sticky_header":"x-user"}'
    )
    assert p.percentages() == {"champion": 90.0, "challenger": 10.0}
    assert p.targets() == ["champion", "challenger", "7"]


_targets = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True)


@st.composite
def policies(draw: st.DrawFn) -> TrafficPolicy:
    names = draw(st.lists(_targets, min_size=1, max_size=6, unique=True))
    cut = draw(st.integers(1, len(names)))
    weights = draw(
        st.lists(
            st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
            min_size=cut,
            max_size=cut,
        ).filter(lambda w: sum(w) > 0)
    )
    header = draw(st.none() | st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True))
    return parse_policy(
        {
            "routes": [
                {"target": t, "weight": w} for t, w in zip(names[:cut], weights, strict=True)
            ],
            "shadow": names[cut:],
            "sticky_header": header,
        }
    )


@settings(max_examples=60, deadline=None)
@given(policies())
def test_canonical_json_round_trips(policy):
    again = parse_policy(policy.canonical())
    assert again == policy
    assert again.canonical() == policy.canonical()


# -- routing statistics --------------------------------------------------------------------
N = 20_000
ALPHA = 1e-6  # chance that a correct router fails one of these bounds


def _within_binomial(count: int, n: int, p: float) -> bool:
    low, high = stats.binom.interval(1 - ALPHA, n, p)
    return low <= count <= high


def test_a_90_10_split_holds_within_a_binomial_bound():
    rng = random.Random(1234)
    picks = [choose([("champion", 90), ("challenger", 10)], None, rng) for _ in range(N)]
    assert _within_binomial(picks.count("challenger"), N, 0.10)
    assert set(picks) == {"champion", "challenger"}


def test_a_three_way_split_fits_its_weights_by_chi_square():
    rng = random.Random(99)
    routes = [("a", 5.0), ("b", 3.0), ("c", 2.0), ("never", 0.0)]
    picks = [choose(routes, None, rng) for _ in range(N)]
    assert "never" not in picks
    observed = [picks.count(t) for t in "abc"]
    expected = [N * 0.5, N * 0.3, N * 0.2]
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_sticky_values_keep_their_target_and_spread_by_the_weights():
    routes = [("champion", 90.0), ("challenger", 10.0)]
    users = [f"user-{i}" for i in range(N)]
    first = {u: choose(routes, u, random.Random(1)) for u in users}
    for u in users[:500]:  # whatever the random state, the same user goes the same way
        assert choose(routes, u, random.Random()) == first[u]
    on_challenger = sum(1 for t in first.values() if t == "challenger")
    assert _within_binomial(on_challenger, N, 0.10)
    # Growing the canary (last in the list) to 20% keeps every canary user on it.
    grown = [("champion", 80.0), ("challenger", 20.0)]
    moved = {u: choose(grown, u, random.Random(1)) for u in users}
    assert all(moved[u] == "challenger" for u, t in first.items() if t == "challenger")
    assert _within_binomial(sum(1 for t in moved.values() if t == "challenger"), N, 0.20)


def test_sticky_points_are_uniform():
    points = [sticky_point(f"session-{i}") for i in range(5000)]
    assert all(0 <= x < 1 for x in points)
    assert stats.kstest(points, "uniform").pvalue > ALPHA


def test_choose_refuses_routes_without_weight():
    with pytest.raises(PolicyError):
        choose([("a", 0.0)], None, random.Random())


# -- deployments ---------------------------------------------------------------------------
def test_ensure_creates_once_and_records_history(digits):
    deployments = digits.client.deployments
    made = deployments.ensure("web", "digits", "champion")
    assert (made.model, made.revision) == ("digits", 1)
    assert made.policy.percentages() == {"champion": 100.0}
    again = deployments.ensure("web", "digits", "challenger")  # exists: unchanged
    assert again.revision == 1 and again.policy == made.policy
    with pytest.raises(ServingError):
        deployments.ensure("web", "other-model", "champion")
    assert [d.name for d in deployments.list_deployments()] == ["web"]
    [rev] = deployments.history("web")
    assert (rev.revision, rev.reason, rev.restores) == (1, "created", None)
    assert [e.kind for e in list_events(digits.client.data.catalog, subject="web")] == [
        "deployment.create"
    ]


def test_set_policy_bumps_the_revision_in_one_transaction(digits):
    deployments = digits.client.deployments
    deployments.ensure("web", "digits", "champion")
    policy = parse_policy(
        {"routes": [{"target": "champion", "weight": 3}, {"target": "2", "weight": 1}]}
    )
    done = deployments.set_policy("web", policy, reason="try v2")
    assert done.revision == 2 and deployments.revision("web") == 2
    assert deployments.set_policy("web", policy).revision == 2  # the same policy: no change
    history = deployments.history("web")
    assert [(h.revision, h.reason) for h in history] == [(1, "created"), (2, "try v2")]
    events = list_events(digits.client.data.catalog, subject="web", kind="deployment.policy")
    assert events[-1].info["revision"] == 2 and events[-1].info["reason"] == "try v2"


@pytest.mark.parametrize(
    ("routes", "path"),
    [
        (
            [{"target": "champion", "weight": 1}, {"target": "staging", "weight": 1}],
            "routes.1.target",
        ),
        ([{"target": "9", "weight": 1}], "routes.0.target"),
    ],
)
def test_unknown_targets_are_refused_and_nothing_changes(digits, routes, path):
    deployments = digits.client.deployments
    deployments.ensure("web", "digits", "champion")
    with pytest.raises(PolicyError) as info:
        deployments.set_policy("web", {"routes": routes})
    assert path in [p for p, _ in info.value.problems]
    assert deployments.revision("web") == 1 and len(deployments.history("web")) == 1
    with pytest.raises(PolicyError):
        deployments.shadow("web", ["nope"])
    assert deployments.revision("web") == 1


def test_unknown_deployment_and_stale_revision(digits):
    deployments = digits.client.deployments
    with pytest.raises(NotFound):
        deployments.get("nope")
    with pytest.raises(NotFound):
        deployments.revision("nope")
    with pytest.raises(NotFound):
        deployments.canary("nope", "challenger", 10)
    with pytest.raises(PolicyError):
        deployments.ensure("web", "digits", "no-such-alias")
    deployments.ensure("web", "digits", "champion")
    deployments.canary("web", "challenger", 10)
    with pytest.raises(PolicyConflict):
        deployments.set_policy(
            "web", {"routes": [{"target": "2", "weight": 1}]}, expected_revision=1
        )


def test_helpers_write_percentages(digits):
    deployments = digits.client.deployments
    deployments.ensure("web", "digits", "champion")
    p = deployments.canary("web", "challenger", 10).policy
    assert p.percentages() == {"champion": 90.0, "challenger": 10.0}
    assert [r.target for r in p.routes] == ["champion", "challenger"]  # the canary goes last
    p = deployments.canary("web", "challenger", 25).policy
    assert p.percentages() == {"champion": 75.0, "challenger": 25.0}
    p = deployments.shadow("web", ["1"]).policy
    assert p.shadow == ["1"]
    p = deployments.sticky("web", "X-Session").policy
    assert p.sticky_header == "x-session" and p.shadow == ["1"]
    p = deployments.split("web", {"1": 1, "champion": 1}).policy  # "1" stops shadowing
    assert p.shadow == [] and p.percentages() == {"1": 50.0, "champion": 50.0}
    p = deployments.canary("web", "1", 0).policy  # 0% removes the route
    assert p.percentages() == {"champion": 100.0}
    with pytest.raises(PolicyError):
        deployments.canary("web", "champion", 50)  # nobody takes the other half
    with pytest.raises(PolicyError):
        deployments.canary("web", "challenger", 120)
    p = deployments.reset("web", "challenger").policy
    assert p.percentages() == {"challenger": 100.0} and p.sticky_header == "x-session"


def test_rollback_walks_back_one_revision_at_a_time(digits):
    deployments = digits.client.deployments
    a = deployments.ensure("web", "digits", "champion").policy
    b = deployments.canary("web", "challenger", 10).policy
    deployments.canary("web", "challenger", 50)
    back = deployments.rollback("web", reason="errors up")
    assert back.policy == b and back.revision == 4
    assert deployments.rollback("web").policy == a
    with pytest.raises(PolicyError):
        deployments.rollback("web")
    history = deployments.history("web")
    assert [h.restores for h in history] == [None, None, None, 2, 1]
    assert history[3].reason == "errors up"
    kinds = [e.kind for e in list_events(digits.client.data.catalog, subject="web")]
    assert kinds.count("deployment.rollback") == 2
    # A policy set after rollbacks is rolled back to the one before it.
    deployments.reset("web", "2")
    assert deployments.rollback("web").policy == a


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.json", '{"routes": ['),
        ("bad.yaml", "routes: [unclosed"),
        ("list.yaml", "- 1\n- 2\n"),
        ("weights.yaml", "routes: [{target: champion, weight: -1}]\n"),
    ],
)
def test_a_bad_policy_file_is_a_policy_error_naming_the_file(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    assert str(path) in str(caught.value)


def test_a_policy_file_reads_as_json_or_yaml(tmp_path):
    (tmp_path / "p.json").write_text('{"routes": [{"target": "champion", "weight": 1}]}')
    (tmp_path / "p.yaml").write_text("routes: [{target: champion, weight: 1}]\n")
    assert load_policy_file(tmp_path / "p.json") == load_policy_file(tmp_path / "p.yaml")
