"""``client.models`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cairn.api.refs import ModelRef, model_ref
from cairn.api.types import AliasMove, ModelLineage
from cairn.data import InvalidReference
from cairn.ml.models import ModelInfo, ModelVersion, Signature
from cairn.ml.registry import Registry

__all__ = ["EmbeddedModels"]


def _alias(spec: str, default: str | None = None) -> ModelRef:
    ref = model_ref(spec)
    if ref.alias is None and default is not None and ref.version is None:
        return ModelRef(ref.name, default)
    if ref.alias is None:
        raise InvalidReference(f"{spec!r}: name an alias as MODEL@ALIAS")
    return ref


class EmbeddedModels:
    """ModelsProtocol over the store's Registry."""

    def __init__(
        self, registry: Registry, download: Callable[[str, str | Path], builtins.list[Path]]
    ) -> None:
        self._registry = registry
        self._download = download

    def list(self) -> builtins.list[ModelInfo]:
        """Every model, by name, with its latest version and aliases."""
        return self._registry.list_models()

    def get(self, spec: str) -> ModelVersion:
        """The version ``cancer@champion``, ``cancer/3`` or ``cancer`` names. Raises
        NotFound, InvalidReference."""
        return self._registry.resolve(spec)

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        """Every version of ``name``, oldest first. Raises NotFound."""
        return self._registry.list_versions(name)

    def register(
        self,
        name: str,
        ref: str,
        *,
        flavor: str | None = None,
        signature: Signature | None = None,
        command: Sequence[str] | None = None,
        description: str = "",
        timeout: float | None = None,
        trust: bool = False,
        input_example: str | None = None,
    ) -> ModelVersion:
        """The next version of ``name``: the file or folder at ``repo@commit:/path``.
        ``trust`` consents to formats that run code when loaded (pickle, joblib, MLflow
        folders). ``input_example``: sample inputs in pandas' JSON table format, which type
        the inferred signature. Raises InvalidReference, NotFound, CommitStateError,
        FlavorError (UntrustedModel without ``trust`` for those formats), SignatureError."""
        sample = None
        if input_example is not None:
            from cairn.ml.signature import read_example

            sample = read_example(input_example)
        return self._registry.register(
            name,
            ref,
            flavor=flavor,
            signature=signature,
            command=list(command) if command is not None else None,
            description=description,
            timeout=timeout,
            trust=trust,
            input_example=sample,
        )

    def set_alias(self, spec: str, version: int, *, reason: str = "") -> ModelVersion:
        """Point ``cancer@champion`` at ``version``. Raises InvalidReference, NotFound."""
        ref = _alias(spec)
        return self._registry.set_alias(ref.name, ref.alias or "", version, reason=reason)

    def delete_alias(self, spec: str) -> None:
        """Remove alias ``cancer@challenger``. Raises NotFound, InvalidReference."""
        ref = _alias(spec)
        self._registry.delete_alias(ref.name, ref.alias or "")

    def rollback(self, spec: str, *, reason: str = "") -> ModelVersion:
        """Move ``cancer@champion`` (``cancer``: champion) back one move. Raises NotFound,
        MLError."""
        ref = _alias(spec, "champion")
        return self._registry.rollback_alias(ref.name, ref.alias or "", reason=reason)

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version of ``name``. Raises NotFound."""
        return self._registry.aliases(name)

    def alias_history(self, spec: str) -> builtins.list[AliasMove]:
        """Every move of ``cancer@champion``, oldest first. Raises NotFound."""
        ref = _alias(spec)
        return [AliasMove(**m) for m in self._registry.alias_history(ref.name, ref.alias or "")]

    def lineage(self, spec: str) -> ModelLineage:
        """Where the version came from. Raises NotFound, InvalidReference."""
        return ModelLineage.from_json(self._registry.lineage(spec))

    def diff(self, old: str, new: str, *, code: bool = False) -> dict[str, Any]:
        """What changed between two versions (cairn.ml.model_diff). Raises NotFound,
        InvalidReference."""
        from cairn.ml.model_diff import diff_models

        return diff_models(self._registry, old, new, code=code)

    def download(self, spec: str, output: str | Path) -> builtins.list[Path]:
        """Write the version's file or folder to local ``output``; return the paths
        written. Raises NotFound, InvalidReference."""
        return self._download(self._registry.resolve(spec).ref, output)
