"""Tests of cairn.pipelines.secret_store: the secrets file and masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.data import AlreadyExists, InvalidReference, NotFound
from cairn.pipelines.errors import SecretError
from cairn.pipelines.secret_store import MIN_MASKED, Masker, SecretInfo, SecretStore
from cairn.pipelines.spec import SecretRef


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path / "home" / "secrets.json")


def ref(name: str, key: str, env_var: str) -> SecretRef:
    return SecretRef(name=name, key=key, env_var=env_var)


def test_create_list_resolve_delete(store: SecretStore) -> None:
    created = store.create("aws", {"secret": "s3cr3t", "id": "AKIA"})
    store.create("db", {"password": "pw-1234"})

    assert created == SecretInfo("aws", ("id", "secret"))
    assert store.list() == [SecretInfo("aws", ("id", "secret")), SecretInfo("db", ("password",))]
    assert store.resolve([ref("aws", "secret", "AWS_SECRET"), ref("db", "password", "PW")]) == {
        "AWS_SECRET": "s3cr3t",
        "PW": "pw-1234",
    }
    assert store.path.stat().st_mode & 0o777 == 0o600

    store.delete("aws")

    assert [s.name for s in store.list()] == ["db"]
    with pytest.raises(NotFound):
        store.delete("aws")


def test_an_existing_secret_is_not_overwritten(store: SecretStore) -> None:
    store.create("aws", {"secret": "one"})

    with pytest.raises(AlreadyExists):
        store.create("aws", {"secret": "two"})

    assert store.resolve([ref("aws", "secret", "X")]) == {"X": "one"}


@pytest.mark.parametrize(
    ("name", "values"),
    [("bad name", {"k": "v"}), ("ok", {}), ("ok", {"bad key": "v"}), ("ok", {"k": "a\0b"})],
    ids=["name", "no-values", "key", "nul"],
)
def test_bad_names_keys_and_values_are_refused(
    store: SecretStore, name: str, values: dict[str, str]
) -> None:
    with pytest.raises(InvalidReference):
        store.create(name, values)
    assert not store.path.exists()


@pytest.mark.parametrize(
    "refs",
    [[ref("nope", "k", "X")], [ref("aws", "nope", "X")]],
    ids=["missing-secret", "missing-key"],
)
def test_resolving_what_is_not_stored_is_not_found(
    store: SecretStore, refs: list[SecretRef]
) -> None:
    store.create("aws", {"secret": "s3cr3t"})

    with pytest.raises(NotFound):
        store.resolve(refs)


def test_a_file_others_may_read_is_refused(store: SecretStore) -> None:
    store.create("aws", {"secret": "s3cr3t"})
    store.path.chmod(0o644)

    with pytest.raises(SecretError):
        store.resolve([ref("aws", "secret", "X")])
    with pytest.raises(SecretError):
        store.create("db", {"password": "pw"})


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"aws": "flat"}', '{"aws": {"k": 1}}'])
def test_a_malformed_file_is_refused(store: SecretStore, text: str) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(text)
    store.path.chmod(0o600)

    with pytest.raises(SecretError):
        store.list()


def test_the_file_is_plain_json_of_name_to_keys_and_values(store: SecretStore) -> None:
    store.create("aws", {"secret": "s3cr3t"})

    assert json.loads(store.path.read_text()) == {"aws": {"secret": "s3cr3t"}}


def test_masker_hides_values_and_their_lines_longest_first() -> None:
    mask = Masker(["token-123", "token-123-long", "line-one\nline-two", "abc"])

    text = "a token-123-long, token-123, line-one and line-two, abc"

    assert mask.text(text) == "a ***, ***, *** and ***, abc"
    assert mask.bytes(text.encode()) == b"a ***, ***, *** and ***, abc"
    assert len("abc") < MIN_MASKED  # short values stay: masking them would garble logs


def test_an_empty_masker_changes_nothing() -> None:
    mask = Masker([])

    assert not mask
    assert mask.text("x") == "x" and mask.bytes(b"x") == b"x"
