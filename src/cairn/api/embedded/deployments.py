"""``client.deployments`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.api.embedded._compat import forward
from cairn.api.refs import model_ref
from cairn.data import InvalidReference
from cairn.serving.errors import PolicyError
from cairn.serving.policy import (
    KEEP,
    Deployment,
    DeploymentRevision,
    Deployments,
    TrafficPolicy,
)

__all__ = ["EmbeddedDeployments"]


class EmbeddedDeployments:
    """DeploymentsProtocol over the store's Deployments (``engine``). Names of
    Deployments this does not define (``ensure``, ``canary``, ``revision``, ...) are
    forwarded to it, for callers written before the face."""

    def __init__(self, engine: Deployments) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return forward("deployments", self._engine, name, {})

    def list(self) -> builtins.list[Deployment]:
        """Every deployment, by name."""
        return self._engine.list_deployments()

    def get(self, name: str) -> Deployment:
        """The deployment. Raises NotFound."""
        return self._engine.get(name)

    def create(self, name: str, model: str) -> Deployment:
        """Deployment ``name``, all traffic to ``cancer@champion`` or ``cancer/3``; an
        existing one of that model is returned as it is. Raises PolicyError,
        ServingError, InvalidReference."""
        ref = model_ref(model)
        target = ref.alias if ref.alias is not None else ref.version
        if target is None:
            raise InvalidReference(f"{model!r}: serve MODEL@ALIAS or MODEL/VERSION")
        return self._engine.ensure(name, ref.name, str(target))

    def apply(
        self,
        name: str,
        *,
        policy: TrafficPolicy | Mapping[str, Any] | None = None,
        reset: str | None = None,
        split: Mapping[str, float] | None = None,
        canary: tuple[str, float] | None = None,
        shadow: Sequence[str] | None = None,
        sticky_header: str | None = None,
        reason: str = "",
        model: str | None = None,
    ) -> Deployment:
        """One policy change, one revision, one transaction (see
        DeploymentsProtocol.apply). Raises PolicyError, PolicyConflict, NotFound,
        ServingError."""
        changes = (reset, split, canary, shadow, sticky_header)
        if policy is not None:
            if any(c is not None for c in changes):
                raise PolicyError("give a whole policy or changes to the current one, not both")
            return self._engine.set_policy(name, policy, reason=reason, model=model)
        if all(c is None for c in changes):
            raise PolicyError("nothing to change: give a policy, reset, split, canary, ...")
        return self._engine.update(
            name,
            reset=reset,
            split=split,
            canary=(canary[0], float(canary[1])) if canary is not None else None,
            shadow=shadow,
            sticky_header=KEEP if sticky_header is None else (sticky_header or None),
            reason=reason,
            model=model,
        )

    def rollback(self, name: str, *, reason: str = "") -> Deployment:
        """Restore the previous policy as a new revision. Raises NotFound, PolicyError."""
        return self._engine.rollback(name, reason=reason)

    def history(self, name: str) -> builtins.list[DeploymentRevision]:
        """Every revision, oldest first. Raises NotFound."""
        return self._engine.history(name)
