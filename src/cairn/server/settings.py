"""``ServerSettings``: what one ``cairn serve`` worker serves: cairn's settings
(cairn.storage.settings, the same sources and precedence: flags, then the environment,
then the defaults) with the server's own. The process that starts the server
(cairn.server.runner.serve) hands them to each uvicorn worker in the environment
(``to_env``), where ``from_env`` reads them back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from cairn.storage.settings import Settings, read_settings

__all__ = ["BODY_TIMEOUT", "HEADER_TIMEOUT", "MAX_BODY", "ServerSettings"]

MAX_BODY = 64 * 1024 * 1024  # bytes: the default largest request body
HEADER_TIMEOUT = 10.0  # seconds a request's line and headers may take to arrive
BODY_TIMEOUT = 30.0  # seconds its body may take to arrive after them


class ServerSettings(Settings):
    """What a server worker serves; each field is set by its keyword, else by its variable:

    - ``home`` (``CAIRN_HOME``): the store folder (else the one ``cairn.client.find_home``
      picks);
    - ``deployment`` (``CAIRN_SERVE_DEPLOYMENT``): the deployment to serve (it must exist);
    - ``log_repo`` (``CAIRN_SERVE_LOG_REPO``): the prediction log's repo (``predictions``);
      None or empty: no log;
    - ``poll_interval`` (``CAIRN_SERVE_POLL``): seconds between checks for a policy or alias
      change (0.5);
    - ``cache_dir`` (``CAIRN_SERVE_CACHE``): where model files are unpacked
      (``<home>/work/serving``; against a ``cairn server``, ``url``,
      ``$XDG_CACHE_HOME/cairn/serving``);
    - ``max_body`` (``CAIRN_SERVE_MAX_BODY``): the largest request body in bytes (64 MiB);
      a larger one is refused with 413 before it is read into memory;
    - ``allow_any_version`` (``CAIRN_SERVE_ALLOW_ANY_VERSION``): answer a path naming any
      registered version, loaded on demand (default: only the versions of the policy);
    - ``admin`` (``CAIRN_SERVE_ADMIN``): answer ``/admin/*`` routes (to loopback clients);
    - ``strict_schema`` (``CAIRN_SERVE_STRICT_SCHEMA``): enforce cairn flavors' signatures
      strictly (unknown columns, strings in numeric columns and fractions in integer ones
      are refused; default: MLflow's rules, ``cairn.ml.signature.enforce``);
    - ``header_timeout``, ``body_timeout`` (``CAIRN_SERVE_HEADER_TIMEOUT``,
      ``CAIRN_SERVE_BODY_TIMEOUT``): seconds a request's head (10) and then its body (30)
      may take to arrive (cairn.server.deadlines).

    Booleans and bad values are read as in cairn.storage.settings: ``from_env`` raises
    ConfigError naming the variable.
    """

    # Fields are set by name; the variables are the aliases (the CAIRN_ prefix is theirs).
    model_config = SettingsConfigDict(populate_by_name=True)

    deployment: str = Field(validation_alias="CAIRN_SERVE_DEPLOYMENT")
    log_repo: str | None = Field("predictions", validation_alias="CAIRN_SERVE_LOG_REPO")
    poll_interval: float = Field(0.5, validation_alias="CAIRN_SERVE_POLL")
    cache_dir: Path | None = Field(None, validation_alias="CAIRN_SERVE_CACHE")
    max_body: int = Field(MAX_BODY, validation_alias="CAIRN_SERVE_MAX_BODY")
    allow_any_version: bool = Field(False, validation_alias="CAIRN_SERVE_ALLOW_ANY_VERSION")
    admin: bool = Field(False, validation_alias="CAIRN_SERVE_ADMIN")
    strict_schema: bool = Field(False, validation_alias="CAIRN_SERVE_STRICT_SCHEMA")
    header_timeout: float = Field(HEADER_TIMEOUT, validation_alias="CAIRN_SERVE_HEADER_TIMEOUT")
    body_timeout: float = Field(BODY_TIMEOUT, validation_alias="CAIRN_SERVE_BODY_TIMEOUT")

    @field_validator("log_repo", "cache_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def from_env(cls) -> ServerSettings:
        """The settings ``cairn serve`` put in this process's environment. Raises
        ConfigError naming the variable that is unset (``CAIRN_SERVE_DEPLOYMENT``: start
        the server with ``cairn serve``) or cannot be read."""
        return read_settings(cls)

    def to_env(self) -> dict[str, str]:
        """The environment ``from_env`` reads these settings back from."""
        env = {}
        for name in _SERVED:
            value = getattr(self, name)
            if name in ("home", "cache_dir") and value is None:
                continue  # unset: the worker picks the same default
            if isinstance(value, bool):
                value = int(value)
            env[_variable(name)] = "" if value is None else str(value)
        return env


def _variable(name: str) -> str:
    alias = ServerSettings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else f"CAIRN_{name.upper()}"


# What a worker needs from the process that starts it (the other settings it reads itself).
_SERVED = ("home", *(n for n in ServerSettings.model_fields if n not in Settings.model_fields))
