"""The table of operation -> required roles (cairn.api.access): it covers the whole face,
and each user gets what their roles give, no more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy import insert

from cairn.api.access import EXTRA, RULES, authorize, missing_rules, on_created, visible
from cairn.api.protocol import SUB_CLIENTS
from cairn.catalog import Catalog, open_catalog
from cairn.catalog.auth import ROOT, AuthStore, Principal, ResourceKind, Role
from cairn.catalog.errors import PermissionDenied, Unauthenticated
from cairn.catalog.schema import deployments, models, monitors, runs
from cairn.client import Client
from cairn.data import RepoInfo
from cairn.ml.events import Event
from cairn.ml.models import ModelVersion
from cairn.storage.errors import FieldError

REPO, MODEL, CLUSTER = ResourceKind.REPO, ResourceKind.MODEL, ResourceKind.CLUSTER
ADMIN = Principal(ROOT)
READER, WRITER, OWNER, NOBODY = (Principal(n) for n in ("reader", "writer", "owner", "nobody"))


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    catalog = open_catalog(f"sqlite:///{tmp_path}/catalog.db")
    yield catalog
    catalog.dispose()


@pytest.fixture
def store(catalog: Catalog) -> AuthStore:
    """Auth active; on repo ``images`` and model ``cancer``: reader, writer and owner."""
    store = AuthStore(catalog)
    store.activate()
    for kind, name in ((REPO, "images"), (MODEL, "cancer")):
        store.set_role(kind, name, "reader", Role.REPO_READER)
        store.set_role(kind, name, "writer", Role.REPO_WRITER)
        store.set_role(kind, name, "owner", Role.REPO_OWNER)
    return store


def _allowed(store: AuthStore, who: Principal, sub: str, method: str, **kwargs: Any) -> bool:
    try:
        authorize(store, who, sub, method, kwargs)
    except PermissionDenied:
        return False
    return True


def _add_model(catalog: Catalog, name: str) -> None:
    with catalog.write() as conn:
        conn.execute(insert(models).values(name=name, description="", created=0.0, updated=0.0))


# -- the table covers the face ---------------------------------------------------------------
def test_every_method_of_every_protocol_has_a_rule() -> None:
    assert missing_rules() == []
    declared = {
        (sub, name)
        for sub, protocol in SUB_CLIENTS.items()
        for name, member in vars(protocol).items()
        if not name.startswith("_") and callable(member)
    }
    assert set(RULES) == declared  # and no rule for a method that is gone


def test_a_method_without_a_rule_is_reported() -> None:
    class GrownProtocol(Protocol):
        def list(self) -> list[str]: ...
        def archive(self, name: str) -> None: ...

    assert missing_rules({"repos": GrownProtocol}) == ["repos.archive"]


def test_the_server_operations_beyond_the_face_have_rules() -> None:
    for op in (
        "auth.whoami auth.create_token auth.list_tokens auth.revoke_token auth.set_role"
        " auth.get_roles auth.check store.gc store.fsck secrets.list secrets.create"
        " secrets.delete".split()
    ):
        assert tuple(op.split(".")) in EXTRA or tuple(op.split(".")) in RULES, op


def test_an_operation_without_a_rule_is_for_cluster_admins(store: AuthStore) -> None:
    assert _allowed(store, ADMIN, "store", "rebuild")
    with pytest.raises(PermissionDenied) as refused:
        authorize(store, OWNER, "store", "rebuild", {})
    assert refused.value.role == Role.CLUSTER_ADMIN


# -- who may do what -------------------------------------------------------------------------
def test_everything_is_allowed_while_auth_is_off(catalog: Catalog) -> None:
    off = AuthStore(catalog)

    authorize(off, None, "repos", "delete", {"name": "images"})
    authorize(off, None, "store", "gc", {})
    assert visible(off, None, "events", "list", ["anything"]) == ["anything"]


def test_no_principal_is_unauthenticated_once_auth_is_on(store: AuthStore) -> None:
    with pytest.raises(Unauthenticated):
        authorize(store, None, "repos", "list", {})


def test_a_reader_reads_and_is_refused_a_write_naming_repo_writer(store: AuthStore) -> None:
    authorize(store, READER, "files", "read", {"ref": "images@master:/a.png"})

    with pytest.raises(PermissionDenied) as refused:
        authorize(store, READER, "files", "put", {"ref": "images@master:/a.png", "data": b""})

    assert (refused.value.role, refused.value.kind, refused.value.resource) == (
        Role.REPO_WRITER,
        REPO,
        "images",
    )
    assert str(refused.value) == "reader lacks repoWriter on repo images"


@pytest.mark.parametrize(
    ("sub", "method", "kwargs", "least"),
    [
        ("repos", "get", {"name": "images"}, READER),
        ("branches", "list", {"repo": "images"}, READER),
        ("branches", "create", {"ref": "images@dev"}, WRITER),
        ("branches", "delete", {"ref": "images@dev"}, WRITER),
        ("commits", "list", {"ref": "images@master"}, READER),
        ("commits", "start", {"ref": "images@master"}, WRITER),
        ("commits", "finish", {"ref": "images@master"}, WRITER),
        ("files", "glob", {"ref": "images@master", "pattern": "/*"}, READER),
        ("files", "diff", {"new": "images@master"}, READER),
        ("files", "delete", {"ref": "images@master:/a", "more": ["images@master:/b"]}, WRITER),
        ("files", "lineage", {"ref": "images@master:/a"}, READER),
        ("repos", "delete", {"name": "images"}, OWNER),
        ("pipelines", "get", {"name": "images"}, READER),
        ("pipelines", "stop", {"name": "images"}, WRITER),
        ("pipelines", "delete", {"name": "images"}, OWNER),
        ("jobs", "logs", {"ref": "images@0123abcd"}, READER),
        ("models", "get", {"spec": "cancer@champion"}, READER),
        ("models", "versions", {"name": "cancer"}, READER),
        ("models", "set_alias", {"spec": "cancer@champion", "version": 2}, WRITER),
        ("models", "rollback", {"spec": "cancer@champion"}, WRITER),
        ("auth", "set_role", {"kind": "repo", "resource": "images"}, OWNER),
        ("auth", "get_roles", {"kind": "model", "resource": "cancer"}, READER),
    ],
)
def test_each_role_is_enough_and_the_one_below_is_not(
    store: AuthStore, sub: str, method: str, kwargs: dict[str, Any], least: Principal
) -> None:
    ladder = [NOBODY, READER, WRITER, OWNER, ADMIN]
    for who in ladder:
        assert _allowed(store, who, sub, method, **kwargs) is (
            ladder.index(who) >= ladder.index(least)
        ), who


def test_copy_reads_the_source_and_writes_the_target(store: AuthStore) -> None:
    store.set_role(REPO, "scratch", "reader", Role.REPO_WRITER)
    kwargs = {"src": "images@master:/a", "dst": "scratch@master:/a"}

    assert _allowed(store, READER, "files", "copy", **kwargs)
    assert not _allowed(store, READER, "files", "copy", src="scratch@master:/a", dst=kwargs["src"])


def test_paths_on_the_server_need_cluster_admin(store: AuthStore) -> None:
    assert not _allowed(
        store, OWNER, "files", "upload", ref="images@master:/", sources=["/etc/passwd"]
    )
    assert not _allowed(store, OWNER, "files", "download", ref="images@master:/a", output="/tmp")
    assert not _allowed(store, OWNER, "pipelines", "create", spec="/srv/pipeline.yaml")
    assert not _allowed(store, OWNER, "monitors", "create", rule="/srv/rule.yaml")
    assert _allowed(store, ADMIN, "files", "upload", ref="images@master:/", sources=["/x"])


def _spec(name: str, *inputs: str, **transform: Any) -> dict[str, Any]:
    leaves = [{"pfs": {"repo": r, "glob": "/*"}} for r in inputs]
    return {
        "pipeline": {"name": name},
        "transform": {"cmd": ["true"], **transform},
        "input": leaves[0] if len(leaves) == 1 else {"cross": leaves},
    }


def test_creating_a_pipeline_needs_read_on_every_input(store: AuthStore) -> None:
    store.set_role(REPO, "labels", "writer", Role.REPO_READER)

    assert _allowed(store, WRITER, "pipelines", "create", spec=_spec("edges", "images"))
    assert _allowed(store, WRITER, "pipelines", "create", spec=[_spec("e", "images", "labels")])
    with pytest.raises(PermissionDenied) as refused:
        authorize(store, READER, "pipelines", "create", {"spec": _spec("e", "images", "labels")})
    assert (refused.value.role, refused.value.resource) == (Role.REPO_READER, "labels")


def test_updating_a_pipeline_needs_write_on_its_output(store: AuthStore) -> None:
    store.set_role(REPO, "edges", "writer", Role.REPO_WRITER)

    assert _allowed(store, WRITER, "pipelines", "update", spec=_spec("edges", "images"))
    assert not _allowed(store, READER, "pipelines", "update", spec=_spec("edges", "images"))


def test_a_pipeline_reading_secrets_needs_cluster_admin(store: AuthStore) -> None:
    secret = {"secrets": [{"name": "db", "key": "password", "env_var": "PW"}]}

    assert not _allowed(store, OWNER, "pipelines", "create", spec=_spec("e", "images", **secret))
    assert _allowed(store, ADMIN, "pipelines", "create", spec=_spec("e", "images", **secret))


def test_registering_a_new_model_is_open_and_an_existing_one_needs_writer(
    store: AuthStore,
) -> None:
    _add_model(store.catalog, "cancer")
    ref = "images@0123abcd:/model.skops"

    assert _allowed(store, READER, "models", "register", name="fresh", ref=ref)
    assert not _allowed(store, NOBODY, "models", "register", name="fresh", ref=ref)  # no read
    assert not _allowed(store, READER, "models", "register", name="cancer", ref=ref)
    assert _allowed(store, WRITER, "models", "register", name="cancer", ref=ref)
    assert not _allowed(store, OWNER, "models", "register", name="cancer", ref=ref, trust=True)
    assert not _allowed(store, OWNER, "models", "register", name="cancer", ref=ref, command=["x"])


def test_deployments_are_governed_by_their_model(store: AuthStore) -> None:
    with store.catalog.write() as conn:
        conn.execute(
            insert(deployments).values(
                name="cancer-prod", model="cancer", policy="{}", revision=1, updated=0.0
            )
        )

    assert _allowed(store, READER, "deployments", "history", name="cancer-prod")
    assert not _allowed(store, NOBODY, "deployments", "get", name="cancer-prod")
    assert not _allowed(store, READER, "deployments", "apply", name="cancer-prod", reset="3")
    assert _allowed(store, WRITER, "deployments", "rollback", name="cancer-prod")
    assert not _allowed(store, READER, "deployments", "create", name="new", model="cancer@x")


def test_monitors_are_governed_by_their_model_and_the_repos_they_read(store: AuthStore) -> None:
    rule = {"name": "drift", "model": "cancer@champion", "log_repo": "images"}
    with store.catalog.write() as conn:
        conn.execute(
            insert(monitors).values(
                name="drift", version=1, spec=json.dumps(rule), created=0.0, updated=0.0
            )
        )

    assert _allowed(store, WRITER, "monitors", "create", rule={**rule, "name": "d2"})
    assert not _allowed(store, READER, "monitors", "create", rule={**rule, "name": "d2"})
    assert not _allowed(
        store, WRITER, "monitors", "create", rule={**rule, "log_repo": "secret-logs"}
    )
    assert _allowed(store, READER, "monitors", "state", name="drift")
    assert not _allowed(store, READER, "monitors", "delete", name="drift")
    assert not _allowed(store, OWNER, "monitors", "tick")


def test_a_default_argument_counts(store: AuthStore) -> None:
    # monitors.check reads log_repo="predictions" unless told otherwise.
    assert not _allowed(store, READER, "monitors", "check", spec="cancer@champion")
    assert _allowed(store, READER, "monitors", "check", spec="cancer@champion", log_repo="images")


def test_runs_of_a_pipeline_need_read_on_its_repo(store: AuthStore) -> None:
    with store.catalog.write() as conn:
        for rid, repo in (("a" * 32, "images"), ("b" * 32, "hidden"), ("c" * 32, None)):
            conn.execute(
                insert(runs).values(id=rid, name=rid[:3], state="finished", created=0.0, repo=repo)
            )

    assert _allowed(store, READER, "runs", "history", run="aaa", key="loss")
    assert not _allowed(store, READER, "runs", "history", run="b" * 32, key="loss")
    assert _allowed(store, NOBODY, "runs", "log", run="c" * 32, metrics={"loss": 1.0})
    assert not _allowed(store, READER, "runs", "finish", run="a" * 32)


def test_arguments_the_method_does_not_take_are_refused(store: AuthStore) -> None:
    with pytest.raises(FieldError):
        authorize(store, ADMIN, "repos", "get", {"name": "images", "force": True})
    with pytest.raises(FieldError):
        authorize(store, ADMIN, "repos", "get", {})


def test_tokens_are_the_admins_and_each_users_own(store: AuthStore) -> None:
    info, _ = store.create_token("reader")
    other, _ = store.create_token("writer")

    assert _allowed(store, READER, "auth", "revoke_token", token_or_id=info.id)
    assert not _allowed(store, READER, "auth", "revoke_token", token_or_id=other.id)
    assert not _allowed(store, READER, "auth", "revoke_token", token_or_id="f" * 16)
    assert _allowed(store, ADMIN, "auth", "revoke_token", token_or_id=other.id)
    assert _allowed(store, READER, "auth", "list_tokens", subject="reader")
    assert not _allowed(store, READER, "auth", "list_tokens", subject=None)
    assert not _allowed(store, OWNER, "auth", "create_token", subject="x")
    assert not _allowed(store, OWNER, "auth", "set_role", kind="cluster", resource="")
    assert _allowed(store, NOBODY, "auth", "check", kind="repo", resource="images")


# -- results and ownership -------------------------------------------------------------------
def test_listings_show_only_what_the_caller_may_read(store: AuthStore) -> None:
    repos = [RepoInfo(n, "user", "", 0.0) for n in ("hidden", "images")]
    auth_event = Event(1, 0.0, "auth.token.create", "x", {})
    alias_event = Event(2, 0.0, "alias.set", "cancer", {})

    assert visible(store, READER, "repos", "list", repos) == repos[1:]
    assert visible(store, ADMIN, "repos", "list", repos) == repos
    assert visible(store, READER, "events", "list", [auth_event, alias_event]) == [alias_event]
    assert visible(store, READER, "repos", "get", repos[1]) is repos[1]  # no rule to show


def test_a_single_result_the_caller_may_not_read_is_refused(store: AuthStore) -> None:
    from cairn.ml.models import RunInfo

    run = RunInfo("r" * 32, "r", "default", "finished", 0.0, None, {}, {}, {}, repo="hidden")

    with pytest.raises(PermissionDenied):
        visible(store, READER, "runs", "get", run)


def test_creating_a_repo_makes_its_creator_the_only_owner(store: AuthStore) -> None:
    store.set_role(REPO, "fresh", "writer", Role.REPO_WRITER)  # left from a deleted namesake
    authorize(store, NOBODY, "repos", "create", {"name": "fresh"})

    on_created(
        store, NOBODY, "repos", "create", {"name": "fresh"}, RepoInfo("fresh", "user", "", 0)
    )

    assert store.get_roles(REPO, "fresh") == {"nobody": [Role.REPO_OWNER]}
    assert _allowed(store, NOBODY, "repos", "delete", name="fresh")


def test_a_model_is_owned_by_whoever_made_version_one(store: AuthStore) -> None:
    def version(n: int) -> ModelVersion:
        return ModelVersion("fresh", n, "images", "c" * 32, "/m", "sklearn", None, None, 0.0)

    kwargs = {"name": "fresh", "ref": "images@c:/m"}
    on_created(store, READER, "models", "register", kwargs, version(1))
    on_created(store, WRITER, "models", "register", kwargs, version(2))

    assert store.get_roles(MODEL, "fresh") == {"reader": [Role.REPO_OWNER]}


def test_with_a_real_client_a_reader_reads_and_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    client = Client(tmp_path / "home")
    try:
        store = AuthStore(client.data.catalog)
        store.activate()
        alice, bob = Principal("alice"), Principal("bob")

        def call(who: Principal, sub: str, method: str, **kwargs: Any) -> Any:
            authorize(store, who, sub, method, kwargs)
            result = getattr(getattr(client, sub), method)(**kwargs)
            on_created(store, who, sub, method, kwargs, result)
            return visible(store, who, sub, method, result)

        call(alice, "repos", "create", name="images")
        call(alice, "files", "put", ref="images@master:/a.txt", data=b"hello")
        store.set_role(REPO, "images", "bob", Role.REPO_READER)

        assert call(bob, "files", "read", ref="images@master:/a.txt") == b"hello"
        assert [r.name for r in call(bob, "repos", "list")] == ["images"]
        with pytest.raises(PermissionDenied):
            call(bob, "files", "put", ref="images@master:/b.txt", data=b"no")
        store.set_role(REPO, "images", "bob", None)
        assert call(bob, "repos", "list") == []
    finally:
        client.data.catalog.dispose()
