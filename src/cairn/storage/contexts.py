"""Saved contexts: named ``cairn server``s to talk to, as pachctl keeps its contexts.

``cairn config set context NAME --url URL`` saves one, ``cairn config use context NAME``
makes it the active one (every ``cairn`` command and ``cairn.connect()`` then talk to that
server), ``cairn config list context`` lists them, ``cairn config delete context NAME``
removes one (removing the active one goes back to the embedded store).

On disk: ``contexts.toml`` in the user's cairn config folder (``$CAIRN_CONFIG_DIR``, else
``$XDG_CONFIG_HOME/cairn``, else ``~/.config/cairn``), mode 0600 since a context may hold
a bearer token, replaced whole (temporary file, then rename)::

    active = "team"

    [contexts.team]
    url = "https://cairn.internal:8080"
    token = "..."            # only once a token is saved for it

Which store a process uses is decided in cairn.storage.settings; this module only reads
and writes the file. It never imports cairn.storage.settings (which imports it).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.storage.errors import ConfigError

__all__ = [
    "CONTEXTS_FILE",
    "Context",
    "ContextsFile",
    "check_url",
    "config_dir",
    "read_contexts",
    "write_contexts",
]

CONTEXTS_FILE = "contexts.toml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def config_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """The user's cairn config folder: ``given`` (``$CAIRN_CONFIG_DIR``), else
    ``$XDG_CONFIG_HOME/cairn``, else ``~/.config/cairn`` (XDG base directory spec)."""
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cairn"


def check_url(url: str, where: str) -> str:
    """``url`` without a trailing ``/`` if it is ``http(s)://host[:port]``. Raises
    ConfigError naming ``where`` (the variable, flag or context) otherwise."""
    text = url.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", text):
        raise ConfigError(f"{where}: {url!r} is not an http:// or https:// URL", where)
    return text


@dataclass(frozen=True)
class Context:
    """One saved server: its ``name``, ``url`` and bearer ``token`` (None: none saved;
    never shown by ``repr``)."""

    name: str
    url: str
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ContextsFile:
    """The whole file: the contexts by name and the ``active`` one's name (None: none)."""

    contexts: dict[str, Context] = field(default_factory=dict)
    active: str | None = None

    def get(self, name: str) -> Context:
        """The context ``name``. Raises ConfigError listing the saved ones."""
        found = self.contexts.get(name)
        if found is None:
            known = ", ".join(sorted(self.contexts)) or "none saved"
            raise ConfigError(f"no context {name!r} (contexts: {known})", "context")
        return found

    def with_context(self, context: Context) -> ContextsFile:
        if not _NAME.fullmatch(context.name):
            raise ConfigError(
                f"context name {context.name!r}: use 1-63 letters, digits, '_', '.' or '-'",
                "context",
            )
        check_url(context.url, f"context {context.name}")
        return ContextsFile({**self.contexts, context.name: context}, self.active)

    def using(self, name: str | None) -> ContextsFile:
        if name is not None:
            self.get(name)
        return ContextsFile(dict(self.contexts), name)

    def without(self, name: str) -> ContextsFile:
        self.get(name)
        left = {k: v for k, v in self.contexts.items() if k != name}
        return ContextsFile(left, None if self.active == name else self.active)


def read_contexts(folder: Path) -> ContextsFile:
    """The contexts saved in ``folder`` (none when the file does not exist). Raises
    ConfigError for a file cairn cannot read."""
    path = folder / CONTEXTS_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ContextsFile()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}", str(path)) from None
    found: dict[str, Context] = {}
    tables = raw.get("contexts", {})
    if not isinstance(tables, Mapping):
        raise ConfigError(f"{path}: [contexts] must be a table", "contexts")
    for name, body in tables.items():
        if not isinstance(body, Mapping) or not isinstance(body.get("url"), str):
            raise ConfigError(f"{path}: context {name!r} needs a url", f"contexts.{name}.url")
        token = body.get("token")
        found[name] = Context(name, str(body["url"]), token if isinstance(token, str) else None)
    active = raw.get("active")
    return ContextsFile(found, active if isinstance(active, str) and active in found else None)


def write_contexts(folder: Path, contexts: ContextsFile) -> Path:
    """Replace the file in ``folder`` with ``contexts`` (mode 0600); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    if contexts.active is not None:
        lines.append(f"active = {_string(contexts.active)}")
    for name in sorted(contexts.contexts):
        context = contexts.contexts[name]
        lines += ["", f"[contexts.{_string(name)}]", f"url = {_string(context.url)}"]
        if context.token is not None:
            lines.append(f"token = {_string(context.token)}")
    path = folder / CONTEXTS_FILE
    tmp = folder / f".{CONTEXTS_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _string(value: Any) -> str:
    # A JSON string is a TOML basic string: the same quotes and escapes (\\, \", \n, \uXXXX).
    return json.dumps(str(value))
