"""``client.secrets`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from cairn.api.embedded._compat import forward
from cairn.pipelines.secret_store import SecretInfo, SecretStore

__all__ = ["EmbeddedSecrets"]


class EmbeddedSecrets:
    """SecretsProtocol over the store folder's secrets file. Before the face,
    ``client.secrets`` was the SecretStore itself; its other names (``masker``,
    ``resolve``, ``path``) are forwarded to it."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def list(self) -> builtins.list[SecretInfo]:
        """Every secret, by name, with its keys. Raises SecretError."""
        return self._store.list()

    def create(self, name: str, values: Mapping[str, str]) -> SecretInfo:
        """Store secret ``name``. Raises InvalidReference, AlreadyExists, SecretError."""
        return self._store.create(name, values)

    def delete(self, name: str) -> None:
        """Remove secret ``name``. Raises NotFound, SecretError."""
        self._store.delete(name)

    def mask(self, texts: builtins.list[str]) -> builtins.list[str]:
        """``texts`` with every stored value masked (SecretsProtocol.mask)."""
        masker = self._store.masker()
        return [masker.text(t) for t in texts]

    def __getattr__(self, name: str) -> Any:
        return forward("secrets", self._store, name, {})
