"""Identity and roles at the edge of ``cairn server``: the Guard every route passes
(cairn.server.team.app.call), and the routes of ``cairn auth``.

Auth is off until ``POST /api/v1/auth/activate`` (``cairn auth activate``), which answers
the root token once. From then on every request carries ``Authorization: Bearer TOKEN``:
a missing, unknown, expired or revoked token is a 401 at once (tokens are looked up on
every request, no cache), and a call the token's subject may not make is a 403 naming
the role it lacks (cairn.api.access holds the one table of what each call needs).

Every change through the server is an event with who made it: the call runs inside
``acting_as(subject)``, so the events the layers write (alias moves, policy changes,
monitor steps, tokens, roles) name the actor, and the guard records one event per data
or pipeline change (``data.files.put``, ``data.pipelines.create``...) that the layers do
not record themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from pydantic import TypeAdapter

from cairn.api import access
from cairn.catalog.actor import acting_as
from cairn.catalog.auth import AuthStore, Principal, ResourceKind, Role
from cairn.catalog.errors import Unauthenticated
from cairn.storage.errors import FieldError

__all__ = ["AuthGuard", "add_auth_routes"]

# Calls that change data or pipelines; the layers below record no event for them.
_DATA_CHANGES = {
    "repos": {"create", "delete"},
    "branches": {"create", "delete"},
    "commits": {"start", "finish"},
    "files": {"put", "upload", "copy", "delete"},
    "pipelines": {"create", "update", "delete", "start", "stop", "rerun"},
}


class AuthGuard:
    """The Guard of cairn.server.team.app over the catalog's AuthStore."""

    def __init__(self, store: AuthStore) -> None:
        self.store = store

    def identify(self, request: Request) -> Principal | None:
        """The principal of the request's bearer token; None while auth is off. Raises
        Unauthenticated (no token, or one that is unknown, expired or revoked)."""
        if not self.store.is_active():
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "this server needs a token: log in (CAIRN_TOKEN, or the context's token)"
            )
        return self.store.authenticate(token.strip())

    def check(self, principal: Any, sub: str, name: str, kwargs: dict[str, Any]) -> None:
        access.authorize(self.store, principal, sub, name, kwargs)

    def reveals_secrets(self, principal: Principal | None) -> bool:
        """Whether answers to ``principal`` may hold secret values: everyone's while auth
        is off, then a clusterAdmin's only (they may create and mask secrets anyway)."""
        if not self.store.is_active():
            return True
        if principal is None:
            return False
        held = self.store.bindings_of(principal).get((ResourceKind.CLUSTER, ""))
        return held is not None and held.implies(Role.CLUSTER_ADMIN)

    @contextmanager
    def acting(self, principal: Any) -> Iterator[None]:
        with acting_as(principal.subject if principal is not None else None):
            yield

    def after(
        self, principal: Any, sub: str, name: str, kwargs: dict[str, Any], result: Any
    ) -> Any:
        """``result`` as the principal may see it; what it created is theirs; a data or
        pipeline change is recorded as an event naming them."""
        shown = access.visible(self.store, principal, sub, name, result)
        access.on_created(self.store, principal, sub, name, kwargs, result)
        if name in _DATA_CHANGES.get(sub, ()):
            self._record(principal, sub, name, kwargs, result)
        return shown

    def _record(
        self, principal: Any, sub: str, name: str, kwargs: dict[str, Any], result: Any
    ) -> None:
        from cairn.ml.events import record_event

        subject = str(kwargs.get("ref") or kwargs.get("name") or kwargs.get("src") or "")
        subjects = [subject.split(":", 1)[0]]
        if sub == "pipelines" and isinstance(result, list):
            # specs sent as values name their pipelines only inside: one event for each,
            # about its output repo (whose readers may see it)
            subjects = [str(p.name) for p in result]
        info: dict[str, Any] = {}
        commit = getattr(result, "id", None)
        if isinstance(commit, str) and getattr(result, "repo", None):
            info["commit"] = f"{result.repo}@{commit}"
        actor = principal.subject if principal is not None else None
        with self.store.catalog.write() as conn, acting_as(actor):
            for about in subjects:
                record_event(conn, f"data.{sub}.{name}", about, info)


def _plain(value: Any) -> Any:
    return TypeAdapter(Any).dump_python(value, mode="json")


def add_auth_routes(app: FastAPI, store: AuthStore) -> None:
    """``/api/v1/auth/*``: activate, whoami, check, and the token and role verbs of
    AuthStore, each through the guard (cairn.api.access.EXTRA says who may)."""
    from cairn.server.team.app import call

    @app.post("/api/v1/auth/activate", tags=["auth"])
    def activate(request: Request) -> dict[str, str]:
        # Open while auth is off (so the first caller becomes root, as with pachctl);
        # refused once active (AuthStateError, 409).
        token = call(request, "auth", "activate", {}, run=store.activate)
        return {"token": token, "subject": "root"}

    def principal_of(request: Request) -> Principal:
        found = request.app.state.guard.identify(request)
        if found is None:
            raise Unauthenticated("auth is not active on this server")
        return found

    @app.get("/api/v1/auth/whoami", tags=["auth"])
    def whoami(request: Request) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            me = principal_of(request)
            roles = store.bindings_of(me)
            return {
                "subject": me.subject,
                "token_id": me.token_id,
                "roles": [
                    {"kind": str(k), "resource": r, "role": str(role)}
                    for (k, r), role in sorted(roles.items())
                ],
            }

        return call(request, "auth", "whoami", {}, run=run)

    operations: dict[str, Callable[..., Any]] = {
        "create_token": lambda **kw: dict(
            zip(("info", "token"), store.create_token(**kw), strict=True)
        ),
        "create_s3_key": lambda **kw: dict(
            zip(("key", "secret"), store.create_s3_key(**kw), strict=True)
        ),
        "list_s3_keys": store.list_s3_keys,
        "revoke_s3_key": store.revoke_s3_key,
        "revoke_token": store.revoke_token,
        "list_tokens": store.list_tokens,
        "set_role": store.set_role,
        "get_roles": store.get_roles,
    }

    def route(op: str, fn: Callable[..., Any]) -> None:
        def handler(request: Request, body: dict[str, Any]) -> dict[str, Any]:
            if not isinstance(body, dict):
                raise FieldError("the body must be a JSON object of arguments")
            try:
                result = call(request, "auth", op, dict(body), run=lambda: fn(**body))
            except TypeError as exc:  # an argument the verb does not take
                raise FieldError(f"auth.{op}: {exc}") from None
            return {"result": _plain(result)}

        handler.__name__ = f"auth_{op}"
        handler.__annotations__ = {"request": Request, "body": dict[str, Any], "return": dict}
        app.post(f"/api/v1/auth/{op}", tags=["auth"], summary=f"auth.{op}")(handler)

    for op, fn in operations.items():
        route(op, fn)

    @app.post("/api/v1/auth/check", tags=["auth"])
    def check(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        def run() -> list[str]:
            me = principal_of(request)
            return [str(r) for r in store.roles_of(me, body["kind"], body.get("resource", ""))]

        return {"result": call(request, "auth", "check", dict(body), run=run)}
