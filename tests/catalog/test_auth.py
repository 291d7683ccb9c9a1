"""Tokens, roles and the actor of events in the catalog (cairn.catalog.auth), on SQLite and
PostgreSQL."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, insert

import cairn.catalog.auth as auth_module
from cairn.catalog import Catalog, open_catalog
from cairn.catalog.actor import acting_as
from cairn.catalog.auth import ROOT, AuthStore, Principal, ResourceKind, Role
from cairn.catalog.errors import AuthStateError, Unauthenticated, UnknownToken
from cairn.ml.events import list_events
from cairn.storage.errors import FieldError

BOTH = pytest.mark.parametrize("make_catalog", ["sqlite", "postgresql"], indirect=True)
"""Runs a test on PostgreSQL too (a database each: about a second), for what the backends
could do differently: transactions, the write lock, types of the new columns."""


@pytest.fixture
def make_catalog(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], Catalog]]:
    """Catalogs on SQLite, or on PostgreSQL when parametrized so (BOTH)."""
    catalogs: list[Catalog] = []
    backend = getattr(request, "param", "sqlite")
    make_url = request.getfixturevalue("make_postgres_url") if backend == "postgresql" else None

    def make() -> Catalog:
        url = make_url() if make_url else f"sqlite:///{tmp_path}/catalog-{len(catalogs)}.db"
        catalogs.append(open_catalog(url))
        return catalogs[-1]

    yield make
    for catalog in catalogs:
        catalog.dispose()


@pytest.fixture
def store(make_catalog: Callable[[], Catalog]) -> AuthStore:
    return AuthStore(make_catalog())


@pytest.fixture
def active(store: AuthStore) -> AuthStore:
    store.activate()
    return store


@BOTH
def test_auth_is_off_until_activated_and_root_is_cluster_admin(store: AuthStore) -> None:
    assert not store.is_active()

    root_token = store.activate()

    assert store.is_active()
    assert AuthStore(store.catalog).is_active()  # another process sees it
    principal = store.authenticate(root_token)
    assert principal.subject == ROOT
    assert store.roles_of(principal, ResourceKind.REPO, "any") == [Role.CLUSTER_ADMIN]


@BOTH
def test_a_second_activate_is_refused(active: AuthStore) -> None:
    with pytest.raises(AuthStateError):
        active.activate()
    with pytest.raises(AuthStateError):
        AuthStore(active.catalog).activate()


def test_tokens_and_roles_need_auth_active(store: AuthStore) -> None:
    with pytest.raises(AuthStateError):
        store.create_token("alice")
    with pytest.raises(AuthStateError):
        store.set_role(ResourceKind.REPO, "images", "alice", Role.REPO_READER)


@BOTH
def test_a_created_token_authenticates_as_its_user(active: AuthStore) -> None:
    info, token = active.create_token("alice")

    assert token.startswith("cairn_") and token.endswith(info.hint) and len(info.hint) == 4
    assert active.authenticate(token) == Principal("alice", info.id)
    assert info.id in token and info.expires is None and info.revoked_at is None


def test_the_catalog_file_holds_no_token_text(make_catalog, tmp_path: Path) -> None:
    catalog = make_catalog()
    store = AuthStore(catalog)
    root_token = store.activate()
    _, token = store.create_token("alice")
    catalog.dispose()  # checkpoint the WAL into the file

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("catalog-0.db*"))
    for secret in (root_token, token):
        random_part = secret[len("cairn_") + 17 :]
        assert len(random_part) == 43
        assert random_part[:12].encode() not in stored
        assert random_part[-12:].encode() not in stored
    assert b"alice" in stored  # the file was read, and holds the rows


def test_tokens_are_compared_in_constant_time(
    active: AuthStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = active.create_token("alice")
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    active.authenticate(token)
    with pytest.raises(Unauthenticated):
        active.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))

    assert len(calls) == 2


@pytest.mark.parametrize(
    "bad",
    ["", "cairn_", "token", "cairn_0123456789abcdef_short", "Bearer cairn_x", "cairn_" + "a" * 60],
)
def test_malformed_tokens_are_unauthenticated(active: AuthStore, bad: str) -> None:
    with pytest.raises(Unauthenticated):
        active.authenticate(bad)


def test_a_wrong_secret_with_a_real_id_is_unauthenticated(active: AuthStore) -> None:
    _, token = active.create_token("alice")
    _, other = active.create_token("bob")
    forged = token[: len("cairn_") + 17] + other[len("cairn_") + 17 :]

    with pytest.raises(Unauthenticated):
        active.authenticate(forged)


@BOTH
def test_revocation_takes_effect_at_once_on_every_store(active: AuthStore) -> None:
    info, token = active.create_token("alice")
    other_server = AuthStore(active.catalog)
    assert other_server.authenticate(token).subject == "alice"

    revoked = active.revoke_token(info.id)

    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated):
        other_server.authenticate(token)
    with pytest.raises(Unauthenticated):
        active.authenticate(token)
    assert active.revoke_token(token) == revoked  # by its text, again: no change


def test_revoking_an_unknown_token_raises(active: AuthStore) -> None:
    with pytest.raises(UnknownToken):
        active.revoke_token("0123456789abcdef")
    with pytest.raises(UnknownToken):
        active.revoke_token("not a token")


def test_a_token_expires_after_its_ttl(active: AuthStore) -> None:
    info, token = active.create_token("ci", ttl=0.3)
    assert info.expires == pytest.approx(info.created + 0.3)
    assert active.authenticate(token).subject == "ci"

    time.sleep(0.4)

    with pytest.raises(Unauthenticated):
        active.authenticate(token)
    assert not active.get_token(info.id).valid(time.time())


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan"), "1h", True])
def test_a_ttl_must_be_a_positive_number(active: AuthStore, ttl) -> None:
    with pytest.raises(FieldError):
        active.create_token("alice", ttl=ttl)


def test_list_tokens_shows_no_secret_or_hash(active: AuthStore) -> None:
    info, token = active.create_token("alice")

    listed = active.list_tokens()

    assert [t.subject for t in listed] == [ROOT, "alice"]
    assert listed[1] == info
    assert token not in repr(listed)
    assert active.list_tokens("alice") == [info]


def test_roles_imply_the_lower_ones() -> None:
    order = [Role.REPO_READER, Role.REPO_WRITER, Role.REPO_OWNER, Role.CLUSTER_ADMIN]
    for i, held in enumerate(order):
        for j, wanted in enumerate(order):
            assert held.implies(wanted) is (i >= j)


@BOTH
def test_set_role_replaces_and_removes(active: AuthStore) -> None:
    active.set_role("repo", "images", "alice", "repoReader")
    active.set_role("repo", "images", "alice", Role.REPO_WRITER)
    active.set_role("model", "images", "bob", Role.REPO_OWNER)

    assert active.get_roles("repo", "images") == {"alice": [Role.REPO_WRITER]}
    assert active.has_role("alice", "repo", "images", Role.REPO_READER)
    assert not active.has_role("alice", "repo", "images", Role.REPO_OWNER)
    assert not active.has_role("alice", "repo", "other", Role.REPO_READER)
    assert not active.has_role("bob", "repo", "images", Role.REPO_READER)

    active.set_role("repo", "images", "alice", None)

    assert active.get_roles("repo", "images") == {}


@BOTH
def test_a_cluster_binding_holds_on_every_resource(active: AuthStore) -> None:
    active.set_role("cluster", "", "auditor", Role.REPO_READER)

    assert active.roles_of("auditor", "repo", "anything") == [Role.REPO_READER]
    assert active.has_role("auditor", "model", "cancer", Role.REPO_READER)
    assert not active.has_role("auditor", "model", "cancer", Role.REPO_WRITER)


@pytest.mark.parametrize(
    ("kind", "resource", "role"),
    [
        ("repo", "images", "clusterAdmin"),
        ("repo", "images", "admin"),
        ("bucket", "images", "repoReader"),
        ("cluster", "images", "clusterAdmin"),
        ("repo", "", "repoReader"),
    ],
)
def test_bad_bindings_are_refused(active: AuthStore, kind: str, resource: str, role: str) -> None:
    with pytest.raises(FieldError):
        active.set_role(kind, resource, "alice", role)


@BOTH
def test_the_last_cluster_admin_cannot_be_removed(active: AuthStore) -> None:
    with pytest.raises(AuthStateError):
        active.set_role("cluster", "", ROOT, None)
    active.set_role("cluster", "", "alice", Role.CLUSTER_ADMIN)
    active.set_role("cluster", "", ROOT, None)

    assert active.get_roles("cluster", "") == {"alice": [Role.CLUSTER_ADMIN]}


def test_set_owner_drops_the_bindings_of_a_deleted_namesake(active: AuthStore) -> None:
    active.set_role("repo", "images", "mallory", Role.REPO_WRITER)

    active.set_owner("repo", "images", "alice")

    assert active.get_roles("repo", "images") == {"alice": [Role.REPO_OWNER]}


@BOTH
def test_changes_write_events_with_their_actor_and_no_secret(active: AuthStore) -> None:
    with acting_as(ROOT):
        info, token = active.create_token("alice", ttl=60)
        active.set_role("repo", "images", "alice", Role.REPO_READER)
        active.revoke_token(info.id)

    events = list_events(active.catalog, kind="auth.")

    assert [(e.kind, e.subject, e.actor) for e in events] == [
        ("auth.activate", ROOT, None),
        ("auth.token.create", ROOT, None),
        ("auth.token.create", "alice", ROOT),
        ("auth.role.set", "images", ROOT),
        ("auth.token.revoke", "alice", ROOT),
    ]
    assert events[3].info == {
        "kind": "repo",
        "resource": "images",
        "user": "alice",
        "role": "repoReader",
    }
    assert token not in repr(events) and token[-20:] not in repr(events)


def test_every_event_writer_records_the_current_actor(active: AuthStore) -> None:
    from cairn.ml.events import record_event

    with active.catalog.write() as conn:
        record_event(conn, "alias.set", "cancer", {})
    with acting_as("alice"), active.catalog.write() as conn:
        record_event(conn, "alias.set", "cancer", {})

    assert [e.actor for e in list_events(active.catalog, kind="alias.set")] == [None, "alice"]


def test_an_old_events_table_gains_the_actor_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = MetaData()
    table = Table(
        "events",
        old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("time", Float, nullable=False),
        Column("kind", String(64), nullable=False),
        Column("subject", String(255), nullable=False),
        Column("info", Text, nullable=False),
    )
    engine = create_engine(url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(time=1.0, kind="alias.set", subject="m", info="{}"))
    engine.dispose()

    catalog = open_catalog(url)
    try:
        assert [e.actor for e in list_events(catalog)] == [None]
    finally:
        catalog.dispose()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subject=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,20}", fullmatch=True),
    ttl=st.one_of(st.none(), st.floats(min_value=60, max_value=1e9)),
)
def test_token_round_trip(active: AuthStore, subject: str, ttl: float | None) -> None:
    info, token = active.create_token(subject, ttl)

    assert active.authenticate(token) == Principal(subject, info.id)
    assert active.get_token(token) == info
    assert token not in repr(active.list_tokens())
    active.revoke_token(info.id)
    with pytest.raises(Unauthenticated):
        active.authenticate(token)


@pytest.mark.parametrize("subject", ["", " alice", "a b", "-x", "x" * 256, "é"])
def test_bad_user_names_are_refused(active: AuthStore, subject: str) -> None:
    with pytest.raises(FieldError):
        active.create_token(subject)
