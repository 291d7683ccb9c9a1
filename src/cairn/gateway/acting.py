"""Who an S3 request is, and the face it acts through: with auth active on the store
(cairn.catalog.auth), a request must carry a SigV4 signature (cairn.gateway.sigv4) made
with an S3 key cairn issued, and every face call the gateway makes for it passes the
guard a ``cairn server`` route passes (cairn.server.team.auth.AuthGuard: the checks of
cairn.api.access before, what the user may see and own after, inside ``acting_as``, and
the event of a data change naming the user). With auth off any key, or none, is
accepted and calls go to the client unchecked."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from cairn.api.protocol import SUB_CLIENTS
from cairn.catalog.errors import UnknownToken
from cairn.gateway import sigv4
from cairn.gateway.errors import S3Error

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol
    from cairn.catalog.auth import AuthStore, Principal
    from cairn.gateway.sigv4 import ChunkChain
    from cairn.server.team.auth import AuthGuard

__all__ = ["Acting", "identify"]


def identify(request: Request, store: AuthStore) -> tuple[Principal | None, ChunkChain | None]:
    """The user whose S3 key signed ``request`` (None while auth is off), and the chain
    that checks its body's chunk signatures (None: not signed by chunk). Raises S3Error
    AccessDenied (unsigned), InvalidAccessKeyId, SignatureDoesNotMatch and the other
    errors of cairn.gateway.sigv4."""
    if not store.is_active():
        return None, None
    query = sigv4.decoded_query(request.scope.get("query_string", b"").decode("latin-1"))
    signed = sigv4.parse(request.headers, query)
    if signed is None:
        raise S3Error("AccessDenied", "auth is on: sign requests with an S3 key cairn issued")
    try:
        principal, secret = store.s3_secret(signed.key_id)
    except UnknownToken:
        raise S3Error(
            "InvalidAccessKeyId", "the access key id is not one cairn issued, or revoked"
        ) from None
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    chain = sigv4.verify(
        signed,
        secret,
        method=request.method,
        raw_path=request.scope.get("raw_path", b"").decode("latin-1").partition("?")[0],
        query=query,
        headers=headers,
        now=dt.datetime.now(dt.UTC),
    )
    return principal, chain


class Acting:
    """``client`` as ``principal``: its sub-clients' methods checked by ``guard`` as a
    server's routes are. Only the sub-clients of cairn.api.protocol.SUB_CLIENTS are
    reachable."""

    def __init__(self, client: ClientProtocol, guard: AuthGuard, principal: Principal) -> None:
        self._client, self._guard, self._principal = client, guard, principal

    def require(self, sub: str, name: str, **kwargs: Any) -> None:
        """Raise PermissionDenied unless the principal may call ``sub.name(**kwargs)``:
        for refusing a write before its body is read."""
        self._guard.check(self._principal, sub, name, kwargs)

    def __getattr__(self, sub: str) -> _ActingSub:
        if sub not in SUB_CLIENTS:
            raise AttributeError(sub)
        return _ActingSub(getattr(self._client, sub), sub, self._guard, self._principal)


class _ActingSub:
    def __init__(self, target: Any, sub: str, guard: AuthGuard, principal: Principal) -> None:
        self._target, self._sub, self._guard, self._principal = target, sub, guard, principal

    def __getattr__(self, name: str) -> Any:
        function = vars(SUB_CLIENTS[self._sub]).get(name)
        if function is None or name.startswith("_"):
            raise AttributeError(name)
        signature = inspect.signature(function)
        method = getattr(self._target, name)
        sub, guard, principal = self._sub, self._guard, self._principal
        variadic = next(
            (p.name for p in signature.parameters.values() if p.kind is p.VAR_POSITIONAL), None
        )

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(None, *args, **kwargs).arguments
            bound.pop(next(iter(signature.parameters)))  # self
            named = {k: list(v) if k == variadic else v for k, v in bound.items()}
            guard.check(principal, sub, name, named)
            with guard.acting(principal):
                result = method(*args, **kwargs)
            return guard.after(principal, sub, name, named, result)

        return call
