"""cairn's settings, read in one place (pydantic-settings), in this order of precedence:

1. flags: the keyword arguments given to ``read_settings`` (the CLI passes its options);
2. the environment: ``CAIRN_HOME``, ``CAIRN_OBJECTS_URL``, ``CAIRN_CATALOG_URL``,
   ``CAIRN_AUTO_RUN``, ``CAIRN_SANDBOX``, ``CAIRN_ALLOW_UNCONFINED``;
3. the store folder's ``config.toml``, ``[store]`` table: ``objects`` and ``catalog``
   (cairn.storage.config resolves them against the folder);
4. the defaults below.

Booleans are pydantic's: ``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case); any
other value is a ConfigError naming the variable, never silently true. ``CAIRN_SANDBOX``
also takes ``none`` (no sandbox). The settings live in the lowest layer so that every
layer may read its own without importing an upper one; an upper layer adds its fields by
extending ``Settings`` (cairn.server.settings.ServerSettings: ``CAIRN_SERVE_*``) and reads
them with ``read_settings(ThatClass, **flags)``, with the same precedence and errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cairn.storage.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "read_settings"]

ENV_PREFIX = "CAIRN_"


class Settings(BaseSettings):
    """The settings of one process (see the module doc for where each comes from).

    ``home``: the store folder (None: cairn.client.find_home looks for one);
    ``objects_url`` / ``catalog_url``: the backends (None: config.toml, else embedded);
    ``auto_run``: writes start the pipelines they trigger (``CAIRN_AUTO_RUN``, default on);
    ``sandbox``: run transforms in the bubblewrap sandbox when it works (default on);
    ``allow_unconfined``: run other users' pipelines with no sandbox (default off).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    home: Path | None = None
    objects_url: str | None = None
    catalog_url: str | None = None
    auto_run: bool = True
    sandbox: bool = True
    allow_unconfined: bool = False

    @field_validator("sandbox", mode="before")
    @classmethod
    def _sandbox(cls, value: Any) -> Any:
        return False if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("home", "objects_url", "catalog_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags, then the environment; config.toml is below both (cairn.storage.config reads it
        # for the store URLs this leaves unset), and no .env or secrets directory.
        return init_settings, env_settings


S = TypeVar("S", bound="Settings")


@overload
def read_settings(**flags: Any) -> Settings: ...
@overload
def read_settings(settings_cls: type[S], /, **flags: Any) -> S: ...


def read_settings(settings_cls: type[Settings] = Settings, /, **flags: Any) -> Settings:
    """The settings now: ``flags`` (None values are ignored) over the environment over the
    defaults, as ``settings_cls`` (Settings, or a layer's extension of it such as
    cairn.server.settings.ServerSettings). Raises ConfigError naming the variable
    (``CAIRN_AUTO_RUN``) or flag of a bad or missing value."""
    given = {key: value for key, value in flags.items() if value is not None}
    try:
        return settings_cls(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            if name in given or name.startswith(ENV_PREFIX):  # a flag, or a field's variable
                where = name
            else:
                where = f"{ENV_PREFIX}{name.upper()}"
            if error["type"] == "missing":  # its input is every other setting: not shown
                problems.append((where, "is not set"))
            else:
                problems.append((where, f"{error['msg']} (got {error['input']!r})"))
        text = "; ".join(f"{field}: {message}" for field, message in problems)
        raise ConfigError(text, problems[0][0], problems) from None
