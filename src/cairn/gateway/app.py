"""The S3 gateway as an ASGI app: routes, who each request acts as, errors as S3's
documents, virtual hosts, and ``serve`` (uvicorn). The operations are in
cairn.gateway.handlers and cairn.gateway.uploading."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cairn.api.errors import CairnError
from cairn.gateway.acting import Acting, identify
from cairn.gateway.errors import S3Error
from cairn.gateway.handlers import Gateway, branch_bucket
from cairn.gateway.replies import error_response

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol
    from cairn.catalog.auth import AuthStore
    from cairn.server.team.auth import AuthGuard

__all__ = ["create_app", "serve"]

log = logging.getLogger("cairn.gateway")

Handler = Callable[[Request], Awaitable[Response]]
Method = Callable[[Gateway, Request], Awaitable[Response]]


def create_app(
    client: ClientProtocol,
    *,
    keys: AuthStore | None = None,
    domains: tuple[str, ...] = ("localhost",),
) -> Any:
    """The S3 REST API over ``client`` as an ASGI app: path-style (``/BUCKET/KEY``), and
    virtual-host-style for a Host ``BUCKET.D`` where D is one of ``domains``.
    ``keys``: the store's tokens and roles (cairn.catalog.auth), whose S3 keys sign
    requests once auth is active there (None: nothing is checked here, as over a remote
    client, whose server checks the gateway's own token). Multipart uploads wait in the
    store (cairn.gateway.multipart), so the app keeps no state of its own."""
    guard: AuthGuard | None = None
    if keys is not None:
        from cairn.server.team.auth import AuthGuard

        guard = AuthGuard(keys)

    def answers(handler: Method) -> Handler:
        """``handler`` for the request's user (cairn.gateway.acting), answering its
        errors as S3 does: an S3Error as its document, a cairn error as the S3 code that
        means the same, anything else as InternalError."""

        async def endpoint(request: Request) -> Response:
            bucket = request.path_params.get("bucket")
            key = request.path_params.get("key") or None
            gateway = Gateway(client)
            try:
                if guard is not None:
                    principal, request.state.chunks = await run_in_threadpool(
                        identify, request, guard.store
                    )
                    if principal is not None:
                        acting = Acting(client, guard, principal)
                        gateway = Gateway(acting)  # type: ignore[arg-type]
                return await handler(gateway, request)
            except S3Error as exc:
                error = exc
            except CairnError as exc:
                error = await run_in_threadpool(gateway._translate, exc, bucket, key)
            except Exception:
                log.exception("S3 gateway: %s %s failed", request.method, request.url.path)
                error = S3Error("InternalError", "the gateway failed; see its log")
            return error_response(request, error, bucket, key)

        return endpoint

    methods = ["GET", "HEAD", "PUT", "DELETE", "POST"]
    app = Starlette(
        routes=[
            Route("/", answers(Gateway.list_buckets), methods=["GET"]),
            Route("/{bucket}", answers(Gateway.bucket), methods=methods),
            Route("/{bucket}/{key:path}", answers(Gateway.object), methods=methods),
        ],
    )
    app.router.redirect_slashes = False  # "/bucket/" is the bucket, not a redirect
    named = _BranchBuckets(app, client)
    return _VirtualHosts(named, tuple(d.lower().strip(".") for d in domains))


class _BranchBuckets:
    """Pachyderm's bucket names: ``/BRANCH.REPO/PATH`` routed as ``/REPO/BRANCH/PATH``,
    with BRANCH kept in the scope (``cairn.branch``) for the handlers that answer keys
    (listings, DeleteObjects) to answer them without it. A bucket that is a repo is
    left alone (cairn.gateway.handlers.branch_bucket)."""

    def __init__(self, app: Any, client: ClientProtocol) -> None:
        self.app, self.client = app, client

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            first, _, rest = scope["path"][1:].partition("/")
            if "." in first:
                named = await run_in_threadpool(branch_bucket, self.client, first)
                if named is not None:
                    repo, branch = named
                    path = f"/{repo}/{branch}/{rest}" if rest else f"/{repo}"
                    scope = {**scope, "path": path, "cairn.branch": branch}
        await self.app(scope, receive, send)


class _VirtualHosts:
    """Virtual-host-style requests (``Host: REPO.DOMAIN``) routed as path-style ones
    (``/REPO/...``) when DOMAIN is one of ``domains``; every other Host is path-style. The
    path is rewritten for routing only: the path as sent (``raw_path``) stays what SigV4
    signed."""

    def __init__(self, app: Any, domains: tuple[str, ...]) -> None:
        self.app, self.domains = app, domains

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
            name = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host
            for domain in self.domains:
                if name.endswith(f".{domain}"):
                    bucket = name[: -len(domain) - 1]
                    scope = {**scope, "path": f"/{bucket}{scope['path']}"}
                    break
        await self.app(scope, receive, send)


def serve(
    client: ClientProtocol,
    *,
    host: str = "127.0.0.1",
    port: int,
    keys: AuthStore | None = None,
    domains: tuple[str, ...] = ("localhost",),
    on_ready: Callable[[str], Any] | None = None,
) -> None:
    """Serve the gateway over ``client`` (``keys`` and ``domains`` as ``create_app``)
    until interrupted; ``on_ready(url)`` before it listens."""
    import uvicorn

    config = uvicorn.Config(
        create_app(client, keys=keys, domains=domains),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(f"http://{host}:{port}")
    server.run()
