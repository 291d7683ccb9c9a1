"""The face as one caller sees it on ``cairn server``: every call of the console passes the
server's guard (identify once per request, then check, act as, filter, record), exactly as
a call of the HTTP API does in cairn.server.team.app.call; the console itself decides
nothing about access."""

from __future__ import annotations

import inspect
from typing import Any

from cairn.api.protocol import SUB_CLIENTS

__all__ = ["GuardedFace"]


class GuardedFace:
    """``client`` (the server's embedded Client) as ``principal`` may use it through
    ``guard`` (cairn.server.team.app.Guard): ``face.models.list()`` is checked, run as the
    principal, and filtered as ``POST /api/v1/models/list`` would be. Raises what the
    guard raises (PermissionDenied) and what the call raises."""

    def __init__(self, client: Any, guard: Any, principal: Any) -> None:
        self._client, self._guard, self._principal = client, guard, principal

    def __getattr__(self, sub: str) -> _GuardedSub:
        if sub not in SUB_CLIENTS:
            raise AttributeError(sub)
        return _GuardedSub(self, sub)


class _GuardedSub:
    def __init__(self, face: GuardedFace, sub: str) -> None:
        self._face, self._sub = face, sub

    def __getattr__(self, name: str) -> Any:
        face, sub = self._face, self._sub
        declared = getattr(SUB_CLIENTS[sub], name, None)
        if declared is None or name.startswith("_"):
            raise AttributeError(name)
        signature = inspect.signature(declared)
        target = getattr(getattr(face._client, sub), name)

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(None, *args, **kwargs)
            named = {k: v for k, v in bound.arguments.items() if k != "self"}
            guard, principal = face._guard, face._principal
            guard.check(principal, sub, name, named)
            with guard.acting(principal):
                result = target(*args, **kwargs)
            return guard.after(principal, sub, name, named, result)

        return call
