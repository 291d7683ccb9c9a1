"""The HTTP API of ``cairn server``: one route per method of the face, generated from its
Protocols (cairn.api.wire), plus the file routes (cairn.server.team.files).

Handlers are thin: decode the arguments, ask the guard, call the embedded Client's
sub-client, encode the answer. They are plain functions, so FastAPI runs them in its
thread pool and a slow call (a wait, a big diff) never blocks the event loop.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, ValidationError, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from cairn.api.wire import SPECIAL, Method, error_body, face_methods, status_of
from cairn.api.wire import method as face_method
from cairn.client import Client
from cairn.server.team.limits import BodyLimit
from cairn.server.team.masking import PRINCIPAL, SecretMask, Secrets
from cairn.server.team.rounds import Rounds
from cairn.storage.errors import CairnError

__all__ = ["Guard", "create_api", "version_info"]

log = logging.getLogger("cairn.server.team")


class Guard(Protocol):
    """Who is calling and whether they may (cairn.server.team.auth.AuthGuard): ``identify``
    raises Unauthenticated, ``check`` PermissionDenied; the call runs inside
    ``acting(principal)``; ``after`` filters what the caller may see and records what the
    call created (ownership of a new repo) and changed (events); ``reveals_secrets``
    says whether answers to the principal (None: not identified) may hold secret values
    (cairn.server.team.masking). While auth is off it lets everyone do all."""

    def identify(self, request: Request) -> Any: ...
    def check(self, principal: Any, sub: str, name: str, kwargs: dict[str, Any]) -> None: ...
    def acting(self, principal: Any) -> AbstractContextManager[None]: ...
    def after(
        self, principal: Any, sub: str, name: str, kwargs: dict[str, Any], result: Any
    ) -> Any: ...
    def reveals_secrets(self, principal: Any) -> bool: ...


def version_info() -> dict[str, str]:
    """The server's cairn version (``cairn version`` prints it beside the client's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"version": version("cairn")}
    except PackageNotFoundError:  # a source checkout without an install
        import cairn

        return {"version": getattr(cairn, "__version__", "unknown")}


def create_api(
    client: Client,
    guard: Guard | None = None,
    rounds: Rounds | None = None,
) -> FastAPI:
    """The FastAPI app over ``client`` (embedded, ``auto_run`` off: the server's worker
    runs the pipelines, counting its ``rounds``; None: no worker, nothing to wait for).
    ``guard`` checks every call (default: the catalog's tokens and roles, AuthGuard, which
    lets everyone do all until ``cairn auth activate``). Raises RuntimeError if a method
    of the face has no rule in cairn.api.access (a server must not serve it unchecked)."""
    from cairn.api.access import missing_rules
    from cairn.catalog.auth import AuthStore
    from cairn.server.team.auth import AuthGuard, add_auth_routes

    unchecked = missing_rules()
    if unchecked:
        raise RuntimeError(f"no access rule for {', '.join(unchecked)}")
    store = AuthStore(client.data.catalog)
    if guard is None:
        guard = AuthGuard(store)
    app = FastAPI(
        title="cairn",
        summary="Versioned data, pipelines, models and monitoring, for a team.",
        version=version_info()["version"],
    )
    app.state.client = client
    app.state.guard = guard

    @app.exception_handler(CairnError)
    @app.exception_handler(TimeoutError)
    async def _cairn_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": error_body(exc)}, status_code=status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own answers (no such route, a body over the limit) in the API's shape
        kind = {404: "NotFound", 405: "FieldError", 413: "FieldError"}.get(exc.status_code)
        body = {"type": kind or "CairnError", "message": str(exc.detail)}
        return JSONResponse({"error": body}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if hasattr(exc, "errors") else []
        problems = [
            (".".join(str(p) for p in e.get("loc", ()) if p != "body"), str(e.get("msg", "")))
            for e in errors
        ]
        field = problems[0][0] if problems else ""
        message = "; ".join(f"{f}: {m}" if f else m for f, m in problems) or str(exc)
        body = {"type": "FieldError", "message": message, "field": field, "problems": problems}
        return JSONResponse({"error": body}, status_code=422)

    @app.get("/api/v1/version", tags=["server"])
    def _version() -> dict[str, str]:
        return version_info()

    @app.post("/api/v1/settle", tags=["server"])
    def _settle(request: Request, timeout: float | None = None) -> dict[str, bool]:
        """Wait until the worker has run every pipeline that was stale when this request
        came (what a write through the server waits for, as an embedded write runs them)."""
        settled = call(
            request,
            "server",
            "settle",
            {},
            run=lambda: rounds is None or rounds.settle(timeout),
        )
        return {"settled": settled}

    @app.get("/api/v1/health", tags=["server"])
    def _health() -> dict[str, str]:
        return {"status": "ok"}

    for m in face_methods():
        if (m.sub, m.name) not in SPECIAL:
            _add_route(app, m)
    from cairn.server.team.files import add_file_routes
    from cairn.server.team.specs import add_spec_routes

    add_file_routes(app)
    add_auth_routes(app, store)
    add_spec_routes(app)
    secrets = Secrets(client.secrets.path)
    # The web console at / (cairn.console): pages whose calls pass the same guard.
    from cairn.console.server import add_console

    add_console(app, client, guard, secrets)
    # Secret values leave only for callers the guard names (cairn.server.team.masking).
    app.add_middleware(SecretMask, secrets=secrets, reveals=guard.reveals_secrets)
    app.add_middleware(BodyLimit)
    return app


def call(
    request: Request,
    sub: str,
    name: str,
    kwargs: dict[str, Any],
    run: Callable[[], Any] | None = None,
) -> Any:
    """Run one face call for ``request``: identify, check, call, record. The guard sees
    ``kwargs`` (a variadic parameter as one list under its name); ``run`` replaces the
    call itself for the file routes, which pass the same guard."""
    guard: Guard = request.app.state.guard
    principal = guard.identify(request)
    setattr(request.state, PRINCIPAL, principal)  # whom the answer is for (SecretMask)
    guard.check(principal, sub, name, kwargs)
    with guard.acting(principal):
        if run is None:
            m = face_method(sub, name)
            target = getattr(getattr(request.app.state.client, sub), name)
            if m.variadic is not None:
                ordered = [kwargs[p] for p in m.params if p != m.variadic and p in kwargs]
                result = target(*ordered, *kwargs.get(m.variadic, ()))
            else:
                result = target(**kwargs)
        else:
            result = run()
    return guard.after(principal, sub, name, kwargs, result)


def _add_route(app: FastAPI, m: Method) -> None:
    fields: dict[str, Any] = {}
    for pname, (annotation, default) in m.params.items():
        if pname == m.variadic:
            fields[pname] = (list[annotation], [])  # type: ignore[valid-type]
        elif default is _EMPTY:
            fields[pname] = (Any, ...)
        else:
            fields[pname] = (Any, default)
    # The schema documents names and which are required; values are validated against the
    # Protocol's annotations by cairn.api.wire (one converter for both sides).
    # An unknown argument is refused (422 naming it), not ignored: a misspelt keyword
    # must not silently do the default.
    model = create_model(f"{m.sub}_{m.name}", __config__=ConfigDict(extra="forbid"), **fields)

    def handler(request: Request, body: Any = _NO_BODY) -> JSONResponse:
        raw = body.model_dump(exclude_unset=True) if body is not None else {}
        result = call(request, m.sub, m.name, m.decode_args(raw))
        return JSONResponse({"result": m.encode_result(result)})

    # Annotations are text in this module (PEP 563): FastAPI needs the model itself.
    handler.__annotations__ = {"request": Request, "body": model, "return": JSONResponse}
    handler.__name__ = f"{m.sub}_{m.name}"
    app.post(
        m.path,
        tags=[m.sub],
        summary=f"{m.sub}.{m.name}",
        description=m.doc,
        response_model=None,
    )(handler)


_EMPTY = inspect.Parameter.empty
_NO_BODY = Body(default=None)  # a method without arguments may be called with no body
