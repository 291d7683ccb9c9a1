"""ServerSettings: cairn's settings object with the server's fields, one precedence (flags,
then the environment, then the defaults), booleans and bad values read as every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.server.settings import MAX_BODY, ServerSettings
from cairn.storage.errors import ConfigError
from cairn.storage.settings import read_settings


@pytest.fixture(autouse=True)
def _no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ServerSettings(deployment="d").to_env():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("CAIRN_HOME", raising=False)
    monkeypatch.delenv("CAIRN_SERVE_CACHE", raising=False)


def test_settings_travel_to_a_worker_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sent = ServerSettings(
        deployment="cancer",
        home=tmp_path,
        log_repo=None,
        poll_interval=2.5,
        cache_dir=tmp_path / "cache",
        max_body=1024,
        allow_any_version=True,
        admin=True,
        header_timeout=1.5,
        body_timeout=4.0,
    )
    for variable, value in sent.to_env().items():
        monkeypatch.setenv(variable, value)
    assert ServerSettings.from_env() == sent


def test_unset_variables_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_SERVE_DEPLOYMENT", "cancer")
    got = ServerSettings.from_env()
    assert (got.home, got.log_repo, got.cache_dir, got.max_body) == (
        None,
        "predictions",
        None,
        MAX_BODY,
    )
    assert not got.admin and not got.allow_any_version


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("on", True), ("0", False)])
def test_server_booleans_are_parsed_like_every_boolean(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    # before: only "1" was on; "true" silently left the admin routes off
    monkeypatch.setenv("CAIRN_SERVE_DEPLOYMENT", "cancer")
    monkeypatch.setenv("CAIRN_SERVE_ADMIN", value)
    assert ServerSettings.from_env().admin is expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CAIRN_SERVE_POLL", "soon"),  # before: a bare ValueError from float()
        ("CAIRN_SERVE_MAX_BODY", "big"),
        ("CAIRN_SERVE_ADMIN", "maybe"),  # before: silently off
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("CAIRN_SERVE_DEPLOYMENT", "cancer")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env()
    assert caught.value.field == variable


def test_no_deployment_is_a_config_error_that_shows_no_other_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # before: RuntimeError; the error must not print the other settings (a catalog URL
    # may hold a password)
    monkeypatch.setenv("CAIRN_CATALOG_URL", "postgresql://cairn:hunter2@db/cairn")
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env()
    assert caught.value.field == "CAIRN_SERVE_DEPLOYMENT"
    assert "hunter2" not in str(caught.value)


def test_flags_override_the_environment_and_unset_flags_leave_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAIRN_SERVE_POLL", "2")
    monkeypatch.setenv("CAIRN_SERVE_LOG_REPO", "audit")
    got = read_settings(ServerSettings, deployment="cancer", poll_interval=None, log_repo="x")
    assert (got.deployment, got.poll_interval, got.log_repo) == ("cancer", 2.0, "x")


def test_an_empty_log_repo_means_no_log() -> None:
    assert read_settings(ServerSettings, deployment="cancer", log_repo="").log_repo is None
