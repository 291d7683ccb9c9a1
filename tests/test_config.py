"""Choosing the backends: environment, then <home>/config.toml, then the embedded default."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn import CairnError, Client, find_home
from cairn.storage.config import (
    CATALOG_ENV,
    OBJECTS_ENV,
    ConfigError,
    is_home,
    load_store_config,
)
from cairn.storage.settings import read_settings


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OBJECTS_ENV, raising=False)
    monkeypatch.delenv(CATALOG_ENV, raising=False)
    monkeypatch.delenv("CAIRN_HOME", raising=False)


def _write_config(home: Path, body: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(body)


def test_without_configuration_the_store_is_embedded(tmp_path: Path) -> None:
    config = load_store_config(tmp_path)

    assert config.objects == (tmp_path / "objects").as_uri()
    assert config.catalog == f"sqlite:///{tmp_path / 'catalog.db'}"
    assert (config.objects_from, config.catalog_from) == ("default", "default")


def test_config_toml_names_the_backends(tmp_path: Path) -> None:
    _write_config(
        tmp_path,
        '[store]\nobjects = "s3://bucket/cairn"\ncatalog = "postgresql://cairn@db/cairn"\n',
    )

    config = load_store_config(tmp_path)

    assert config.objects == "s3://bucket/cairn"
    assert config.catalog == "postgresql://cairn@db/cairn"
    assert config.catalog_from == "config.toml"


def test_the_environment_overrides_config_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_config(tmp_path, '[store]\nobjects = "s3://file/x"\ncatalog = "sqlite:///f.db"\n')
    monkeypatch.setenv(OBJECTS_ENV, "memory://")

    config = load_store_config(tmp_path)

    assert (config.objects, config.objects_from) == ("memory://", "env")
    assert (config.catalog, config.catalog_from) == ("sqlite:///f.db", "config.toml")


def test_a_relative_objects_folder_is_below_the_home(tmp_path: Path) -> None:
    _write_config(tmp_path, '[store]\nobjects = "elsewhere/objects"\n')

    config = load_store_config(tmp_path)

    assert config.objects == (tmp_path / "elsewhere" / "objects").as_uri()
    assert config.catalog_from == "default"


@pytest.mark.parametrize(
    "body",
    [
        "[store\n",
        '[store]\nobject = "s3://typo"\n',
        "[store]\ncatalog = 3\n",
        '[store]\ncatalog = ""\n',
        'store = "s3://b"\n',
    ],
)
def test_a_malformed_config_toml_raises_config_error(tmp_path: Path, body: str) -> None:
    _write_config(tmp_path, body)

    with pytest.raises(ConfigError) as info:
        load_store_config(tmp_path)

    assert isinstance(info.value, CairnError)


def test_a_config_toml_marks_a_store_folder_without_catalog_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / ".cairn"
    _write_config(home, '[store]\ncatalog = "postgresql://cairn@db/cairn"\n')
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)

    assert is_home(home)
    assert find_home(below) == (home, True)
    monkeypatch.setenv("CAIRN_HOME", str(home))
    assert find_home() == (home.resolve(), True)


def test_client_open_uses_the_configured_backends(
    tmp_path: Path,
    make_s3_url: Callable[[], str],
    make_postgres_url: Callable[[], str],
) -> None:
    home = tmp_path / "home"
    _write_config(
        home, f'[store]\nobjects = "{make_s3_url()}"\ncatalog = "{make_postgres_url()}"\n'
    )

    client = Client.open(home, auto_run=False)
    client.create_repo("images")
    client.put_files("images", "master", [("/a.txt", io.BytesIO(b"hello"))])

    assert client.data.catalog.engine.dialect.name == "postgresql"
    assert client.data.chunks.objects.url.startswith("s3://")
    assert [f.path for f in client.list_file("images@master:/")] == ["/a.txt"]
    assert not (home / "catalog.db").exists()
    assert not (home / "objects").exists()
    client.data.catalog.dispose()


# -- settings: one object, one precedence, booleans parsed alike (cairn.storage.settings)
@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("CAIRN_AUTO_RUN", "off", "auto_run", False),  # was read as on
        ("CAIRN_AUTO_RUN", "FALSE", "auto_run", False),
        ("CAIRN_AUTO_RUN", "yes", "auto_run", True),
        ("CAIRN_ALLOW_UNCONFINED", "false", "allow_unconfined", False),  # was read as allowed
        ("CAIRN_ALLOW_UNCONFINED", "on", "allow_unconfined", True),
        ("CAIRN_SANDBOX", "none", "sandbox", False),
        ("CAIRN_SANDBOX", "off", "sandbox", False),
        ("CAIRN_SANDBOX", "1", "sandbox", True),
    ],
)
def test_booleans_are_parsed_one_way(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: bool
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(read_settings(), field) is expected


@pytest.mark.parametrize("variable", ["CAIRN_AUTO_RUN", "CAIRN_ALLOW_UNCONFINED", "CAIRN_SANDBOX"])
def test_an_invalid_boolean_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "maybe")
    with pytest.raises(ConfigError) as caught:
        read_settings()
    assert caught.value.field == variable


def test_an_invalid_auto_run_stops_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_AUTO_RUN", "sometimes")
    with pytest.raises(ConfigError):
        Client(tmp_path / ".cairn")


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_AUTO_RUN", "1")
    monkeypatch.setenv("CAIRN_HOME", "/somewhere")
    assert read_settings(auto_run=False).auto_run is False
    assert read_settings(home=None).home == Path("/somewhere")  # an unset flag is no flag


def test_the_executor_comes_from_the_environment_then_config_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAIRN_EXECUTOR", raising=False)
    assert load_store_config(tmp_path).executor == "local"
    _write_config(tmp_path, '[store]\nexecutor = "ray"\n')
    assert load_store_config(tmp_path).executor == "ray"
    monkeypatch.setenv("CAIRN_EXECUTOR", "ray://head:10001")
    assert load_store_config(tmp_path).executor == "ray://head:10001"


def test_a_store_with_an_unknown_executor_does_not_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.pipelines.errors import ExecutorError

    monkeypatch.setenv("CAIRN_EXECUTOR", "dask://scheduler:8786")
    with pytest.raises(ExecutorError):
        Client(tmp_path / ".cairn")
