"""cairn's settings, read in one place (pydantic-settings), in this order of precedence:

1. flags: the keyword arguments given to ``read_settings`` (the CLI passes its options);
2. the environment: ``CAIRN_URL``, ``CAIRN_TOKEN``, ``CAIRN_CONTEXT``, ``CAIRN_CONFIG_DIR``,
   ``CAIRN_HOME``, ``CAIRN_OBJECTS_URL``, ``CAIRN_CATALOG_URL``, ``CAIRN_AUTO_RUN``,
   ``CAIRN_SANDBOX``, ``CAIRN_ALLOW_UNCONFINED``, ``CAIRN_CA_BUNDLE``, ``CAIRN_EXECUTOR``;
3. the saved context (cairn.storage.contexts): ``url`` and ``token`` of the context
   ``CAIRN_CONTEXT`` names, else of the active one, unless 1 or 2 gave a ``url`` or a
   ``home`` (a store named on the command line or in the environment beats a saved one,
   and a context's token never goes to a URL that did not come from that context);
4. the store folder's ``config.toml``, ``[store]`` table: ``objects``, ``catalog`` and
   ``executor``
   (cairn.storage.config resolves them against the folder);
5. the defaults below.

Which store a client opens follows: a ``url`` (from 1, 2 or 3) is a ``cairn server``;
without one, the embedded store in ``home`` or the one cairn.client.find_home finds.

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

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cairn.storage.contexts import check_url, config_dir, read_contexts
from cairn.storage.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "read_settings"]

ENV_PREFIX = "CAIRN_"


class Settings(BaseSettings):
    """The settings of one process (see the module doc for where each comes from).

    ``url``: the ``cairn server`` to talk to (None: an embedded store); ``token``: the
    bearer token sent to it; ``context``: the saved context to use instead of the active
    one; ``config_dir``: the folder of ``contexts.toml`` (cairn.storage.contexts);
    ``home``: the store folder (None: cairn.client.find_home looks for one);
    ``objects_url`` / ``catalog_url``: the backends (None: config.toml, else embedded);
    ``auto_run``: writes start the pipelines they trigger (``CAIRN_AUTO_RUN``, default on);
    ``sandbox``: run transforms in the bubblewrap sandbox when it works (default on);
    ``allow_unconfined``: run other users' pipelines with no sandbox (default off);
    ``ca_bundle``: a PEM file of certificates a remote client trusts besides the usual
    authorities (a server's self-signed certificate, or a team's own authority);
    ``executor``: where datums run, ``local`` or a Ray cluster (``ray``, ``ray://HOST:PORT``;
    cairn.pipelines.ray_executor); None: config.toml's, else local.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    url: str | None = None
    token: str | None = Field(default=None, repr=False)
    context: str | None = None
    config_dir: Path | None = None
    home: Path | None = None
    objects_url: str | None = None
    catalog_url: str | None = None
    auto_run: bool = True
    sandbox: bool = True
    allow_unconfined: bool = False
    ca_bundle: Path | None = None
    executor: str | None = None

    @field_validator("sandbox", mode="before")
    @classmethod
    def _sandbox(cls, value: Any) -> Any:
        return False if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator(
        "url",
        "token",
        "context",
        "config_dir",
        "home",
        "objects_url",
        "catalog_url",
        "ca_bundle",
        "executor",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, "url")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags, then the environment, then the saved context; config.toml is below them all
        # (cairn.storage.config reads it for the store URLs this leaves unset), and no .env
        # or secrets directory.
        context = _ContextSource(settings_cls, init_settings, env_settings)
        return init_settings, env_settings, context


class _ContextSource(PydanticBaseSettingsSource):
    """``url`` and ``token`` of the saved context (see the module doc, step 3)."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *given: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._given = given

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ gives the values at once

    def __call__(self) -> dict[str, Any]:
        above: dict[str, Any] = {}
        for source in self._given:
            above = {**source(), **above}
        if above.get("url") or above.get("home"):
            return {}
        saved = read_contexts(config_dir(above.get("config_dir")))
        name = above.get("context") or saved.active
        if not name:
            return {}
        context = saved.get(name)
        return {"url": context.url, "token": context.token}


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
