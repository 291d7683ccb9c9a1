"""Names a package exports but imports only on first use (PEP 562 module ``__getattr__``).

A shared leaf, importing nothing of cairn: packages use it so that, for example, a remote
CLI command can import an error class of ``cairn.data`` without SQLAlchemy and the store.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    homes: Mapping[str, str],
    namespace: dict[str, Any],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: a name of ``homes`` (name ->
    module holding it) is imported from its module when first read and then kept in the
    package's ``namespace`` (its ``globals()``); a name of ``submodules`` is the package's
    submodule of that name. Any other name raises AttributeError, as a module does."""
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes, *subs})

    return __getattr__, __dir__
