"""Who may call which route: every state-changing route is an admin route (or a
prediction); admin routes answer 404 unless ``cairn serve --admin``, and then only to
loopback clients (403 to others). The routes are listed from the app itself, so a new one
is covered (or fails the first test) without editing this file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.server.conftest import Models

from cairn.client import Client
from cairn.server.app import ServerSettings, create_app

# POST routes that predict: they change nothing but the prediction log, and answer anyone
PREDICTIONS = {
    "/invocations",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
}
READS = {"GET", "HEAD"}


def _routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves."""
    app = create_app(ServerSettings(deployment="any"))  # builds routes; starts nothing
    return sorted((m, r.path) for r in app.routes for m in getattr(r, "methods", None) or ())


ADMIN = [(m, p) for m, p in _routes() if p.startswith("/admin/")]


def test_every_state_changing_route_is_an_admin_route_or_a_prediction() -> None:
    assert ADMIN, "no admin routes found: the listing is broken"
    writes = {(m, p) for m, p in _routes() if m not in READS}
    unguarded = {(m, p) for m, p in writes if not p.startswith("/admin/")}
    assert {p for _, p in unguarded} <= PREDICTIONS, (
        f"a state-changing route outside /admin/ (where the guard applies): {sorted(unguarded)}"
    )


def _call(app, method: str, path: str, host: str) -> httpx.Response:
    """One request to ``app`` from ``host``, with the app's lifespan (models loaded)."""

    async def run() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(host, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as http:
                return await http.request(method, path.replace("{", "").replace("}", ""))

    return asyncio.run(run())


@pytest.fixture(scope="module")
def make_app(models: Models, tmp_path_factory: pytest.TempPathFactory):
    client = Client.open(models.home, auto_run=False)
    try:
        client.deployments.ensure("digits-admin", "digits", "champion")
    finally:
        client.data.catalog.dispose()
    cache: Path = tmp_path_factory.mktemp("admin-cache")

    def make(admin: bool):
        settings = ServerSettings(
            deployment="digits-admin", home=models.home, log_repo=None, cache_dir=cache, admin=admin
        )
        return create_app(settings)

    return make


@pytest.mark.parametrize(("method", "path"), ADMIN)
def test_admin_routes_are_off_without_the_option(make_app, method: str, path: str) -> None:
    # before: POST /admin/log/flush answered anyone
    r = _call(make_app(admin=False), method, path, "127.0.0.1")
    assert r.status_code == 404
    assert "--admin" in r.json()["error"]


@pytest.mark.parametrize("host", ["192.0.2.10", "::ffff:192.0.2.10", "2001:db8::1", "testclient"])
@pytest.mark.parametrize(("method", "path"), ADMIN)
def test_admin_routes_refuse_clients_off_this_machine(
    make_app, method: str, path: str, host: str
) -> None:
    assert _call(make_app(admin=True), method, path, host).status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
@pytest.mark.parametrize(("method", "path"), ADMIN)
def test_admin_routes_answer_loopback_clients(make_app, method: str, path: str, host: str) -> None:
    r = _call(make_app(admin=True), method, path, host)
    assert r.status_code not in (403, 404), r.text
    assert r.status_code < 500, r.text
