"""The console beside the API of ``cairn server``: its pages at ``/`` (the API stays under
``/api/v1``), each request's calls passing the server's guard as the caller. Once the
store's auth is active, the browser logs in with a token (``/login``), kept in an
HttpOnly, SameSite=Strict cookie and sent by the console as the caller's bearer token;
secret values are masked from pages as from the API's answers."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import Request as StarletteRequest

from cairn.catalog.errors import Unauthenticated
from cairn.console.app import COOKIE, Session, _env, add_pages, add_static
from cairn.console.face import GuardedFace

__all__ = ["add_console"]


def _as_bearer(request: Request) -> Request:
    """``request`` with the cookie's token as its Authorization header (a header given
    wins), so the guard identifies a browser as it identifies any client."""
    token = request.cookies.get(COOKIE)
    if not token or request.headers.get("authorization"):
        return request
    scope = dict(request.scope)
    scope["headers"] = [
        *(kv for kv in request.scope["headers"] if kv[0] != b"authorization"),
        (b"authorization", f"Bearer {token}".encode("latin-1", "replace")),
    ]
    return StarletteRequest(scope)


def add_console(app: FastAPI, client: Any, guard: Any, secrets: Any) -> None:
    """Add the console's pages, its static files and ``/login``/``/logout`` to ``app``
    (cairn.server.team.app's), over ``client`` through ``guard``; ``secrets``
    (cairn.server.team.masking.Secrets) gives the values masked from callers the guard
    does not reveal them to."""

    def active() -> bool:
        store = getattr(guard, "store", None)
        return bool(store is not None and store.is_active())

    def open_session(request: Request) -> Session:
        principal = guard.identify(_as_bearer(request))
        mask: Callable[[str], str] = _no_mask
        if not guard.reveals_secrets(principal):
            masker = secrets.current()[0]
            if masker:
                from cairn.pipelines.secret_store import Masker

                # as written in a page: raw, and HTML-escaped by the templates
                escaped = Masker([*masker.needles, *(html.escape(n) for n in masker.needles)])
                mask = escaped.text
        user = getattr(principal, "subject", None)
        return Session(GuardedFace(client, guard, principal), user, mask, active())

    env = _env()

    def login_page(next_url: str, failed: str = "", status: int = 200) -> HTMLResponse:
        body = env.get_template("login.html").render(
            title="log in", next=next_url, failed=failed, user=None, auth=True
        )
        return HTMLResponse(body, status_code=status)

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request) -> Response:
        return login_page(_local(request.query_params.get("next", "/")))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[-1].strip()
        next_url = _local((form.get("next") or ["/"])[-1])
        scope = dict(request.scope)
        scope["headers"] = [(b"authorization", f"Bearer {token}".encode("latin-1", "replace"))]
        try:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(guard.identify, StarletteRequest(scope))
        except Unauthenticated as exc:
            return login_page(next_url, str(exc), 401)
        answer = RedirectResponse(next_url, 303)
        answer.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    @app.get("/logout", include_in_schema=False)
    def logout() -> Response:
        answer = RedirectResponse("/login", 303)
        answer.delete_cookie(COOKIE)
        return answer

    add_pages(app, open_session)
    add_static(app)


def _no_mask(text: str) -> str:
    return text


def _local(url: str) -> str:
    """``url`` if it is a path of this site, else ``/`` (no open redirect after login)."""
    return url if url.startswith("/") and not url.startswith("//") else "/"
