"""Where a store keeps its objects and its catalog: the backends, chosen by URL.

For a store folder ``<home>`` (see ``cairn.client.find_home``), each of the two URLs
comes from the first of:

1. the environment: ``CAIRN_OBJECTS_URL``, ``CAIRN_CATALOG_URL``;
2. ``<home>/config.toml``, keys ``objects`` and ``catalog`` of its ``[store]`` table::

       [store]
       objects = "s3://my-bucket/cairn"                   # any open_object_store URL
       catalog = "postgresql://cairn@db.internal/cairn"   # any open_catalog URL
       executor = "ray"                                   # local (default), ray, ray://…

   A relative folder for ``objects`` is taken below ``<home>``;
3. the embedded default: ``<home>/objects`` and ``sqlite:///<home>/catalog.db``.

The executor (where pipelines' datums run) comes the same way: ``CAIRN_EXECUTOR``, then
``executor`` in ``[store]``, then ``local``.

A folder holding ``config.toml`` or ``catalog.db`` is a store folder (a store on
PostgreSQL has no ``catalog.db``). Keep passwords out of the file: psycopg reads
``PGPASSWORD`` and ``~/.pgpass``, and boto3 reads the ``AWS_*`` variables and
``~/.aws``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cairn.storage.errors import ConfigError
from cairn.storage.settings import read_settings

__all__ = [
    "CATALOG_ENV",
    "CONFIG_FILE",
    "OBJECTS_ENV",
    "ConfigError",
    "StoreConfig",
    "is_home",
    "load_store_config",
]

CONFIG_FILE = "config.toml"
OBJECTS_ENV = "CAIRN_OBJECTS_URL"
CATALOG_ENV = "CAIRN_CATALOG_URL"
_KEYS = ("objects", "catalog", "executor")


@dataclass(frozen=True)
class StoreConfig:
    """The URLs of a store's object store and catalog, and where each came from
    (``env``, ``config.toml`` or ``default``), and the executor's URL."""

    objects: str
    catalog: str
    objects_from: str
    catalog_from: str
    executor: str = "local"


def is_home(path: Path) -> bool:
    """Whether ``path`` is a store folder: it holds ``catalog.db`` or ``config.toml``."""
    return (path / "catalog.db").exists() or (path / CONFIG_FILE).exists()


def _read_file(home: Path) -> dict[str, str]:
    path = home / CONFIG_FILE
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    store = document.get("store", {})
    if not isinstance(store, dict):
        raise ConfigError(f"{path}: [store] must be a table")
    for key, value in store.items():
        if key not in _KEYS:
            raise ConfigError(f"{path}: unknown key store.{key}; known: {', '.join(_KEYS)}")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: store.{key} must be a non-empty string (a URL)")
    return store


def load_store_config(home: Path) -> StoreConfig:
    """The object store and catalog URLs of the store at ``home`` (see the module doc).
    Raises ConfigError for an unreadable or malformed ``config.toml``."""
    home = Path(home)
    from_file = _read_file(home)
    chosen: dict[str, tuple[str, str]] = {}
    defaults = {
        "objects": (home / "objects").resolve().as_uri(),
        "catalog": f"sqlite:///{(home / 'catalog.db').resolve()}",
    }
    settings = read_settings()  # the environment (cairn.storage.settings)
    for key, value in (("objects", settings.objects_url), ("catalog", settings.catalog_url)):
        if value:
            chosen[key] = (value, "env")
        elif key in from_file:
            chosen[key] = (from_file[key], CONFIG_FILE)
        else:
            chosen[key] = (defaults[key], "default")
    objects, objects_from = chosen["objects"]
    if objects_from == CONFIG_FILE and not urlparse(objects).scheme:
        objects = (home / Path(objects).expanduser()).resolve().as_uri()
    catalog, catalog_from = chosen["catalog"]
    executor = settings.executor or from_file.get("executor") or "local"
    return StoreConfig(objects, catalog, objects_from, catalog_from, executor)
