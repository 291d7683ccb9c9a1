"""Who may call which route: every state-changing route is an admin route (or a
prediction); admin routes answer 404 unless ``cairn serve --admin``, and then only to
loopback clients (403 to others); once the store's auth is active, only with a token whose
user holds repoWriter on the served model (401 without, 403 below), and the server says
at start-up when they are open. The routes are listed from the app itself, so a new one
is covered (or fails the first test) without editing this file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.server.conftest import Models, Server

from cairn.catalog.auth import AuthStore, Role
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


# -- with tokens: once the store's auth is active ------------------------------------------
@pytest.fixture(scope="module")
def guarded(
    start_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Server, dict[str, str]]:
    """``cairn serve tiny@champion --admin`` over a store whose auth is active, and the
    tokens of: root (clusterAdmin), ``walt`` (repoWriter on model tiny), ``rita``
    (repoReader on it), ``nina`` (no role) and ``rex`` (repoWriter, token revoked)."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("guarded") / "store"
    client = Client.open(home, auto_run=False)
    try:
        model = LogisticRegression().fit(
            [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], [0, 1, 0, 1]
        )
        client.repos.create("models")
        client.files.put("models@master:/tiny.skops", sio.dumps(model))
        client.models.register("tiny", "models@master:/tiny.skops")
        client.models.set_alias("tiny@champion", 1)
        store = AuthStore(client.data.catalog)
        tokens = {"root": store.activate()}
        for user, role in (
            ("walt", Role.REPO_WRITER),
            ("rita", Role.REPO_READER),
            ("rex", Role.REPO_WRITER),
        ):
            tokens[user] = store.create_token(user)[1]
            store.set_role("model", "tiny", user, role)
        tokens["nina"] = store.create_token("nina")[1]
        store.revoke_token(tokens["rex"])
    finally:
        client.data.catalog.dispose()
    return start_server("tiny@champion", "--admin", env={"CAIRN_HOME": str(home)}), tokens


def test_admin_routes_need_a_token_with_repo_writer_once_auth_is_active(
    guarded: tuple[Server, dict[str, str]],
) -> None:
    # before: with auth active, anyone on the machine flushed the log without a token
    server, tokens = guarded

    def send(method: str, path: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return server.http.request(method, path.replace("{", "").replace("}", ""), headers=headers)

    for method, path in ADMIN:
        for token in (None, "cairn_not_a_token", tokens["rex"]):
            r = send(method, path, token)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["type"] == "Unauthenticated"
        for user in ("nina", "rita"):
            r = send(method, path, tokens[user])
            assert r.status_code == 403, r.text
            assert r.json()["error"]["type"] == "PermissionDenied"
            assert f"lacks {Role.REPO_WRITER} on model tiny" in r.json()["error"]["message"]
        for user in ("walt", "root"):
            r = send(method, path, tokens[user])
            assert 200 <= r.status_code < 300, r.text


def _start_up_lines(server: Server) -> str:
    return (server.home.parent / f"serve-{server.port}.log").read_text()


def test_serve_says_at_start_up_when_admin_routes_are_open(
    digits: Server, cancer: Server, guarded: tuple[Server, dict[str, str]]
) -> None:
    warning = "admin routes (/admin/*) are open to anyone who can reach"
    assert f"{warning} http://127.0.0.1:{digits.port}" in _start_up_lines(digits)  # --admin
    assert warning not in _start_up_lines(cancer)  # no --admin
    assert warning not in _start_up_lines(guarded[0])  # --admin, auth active
