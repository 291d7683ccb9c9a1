"""The console inside ``cairn server`` once auth is active: a login form keeps the token in
a cookie, each page calls the face as that user through the server's guard, a
model reader cannot press promote, and pages never show a secret value to a caller the
API would mask it from. Over the server's app in a TestClient (no pipeline runs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("skops")

from fastapi.testclient import TestClient  # noqa: E402

from cairn.catalog.auth import AuthStore  # noqa: E402
from cairn.catalog.errors import PermissionDenied  # noqa: E402
from cairn.client import Client  # noqa: E402
from cairn.console.face import GuardedFace  # noqa: E402

SECRET = "hunter2-is-the-value"


def _skops_model() -> bytes:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], [0, 1, 0, 1])
    return bytes(sio.dumps(model))


@dataclass
class Server:
    http: TestClient
    client: Client
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from cairn.server.team.app import create_api

    client = Client(tmp_path_factory.mktemp("auth") / "home", auto_run=False)
    client.repos.create("models", f"holds the model (not {SECRET})")
    client.repos.create("hidden", "nobody but root reads this")
    client.files.put("models@master:/model.skops", _skops_model())
    client.models.register("cancer", "models@master:/model.skops")
    client.models.register("cancer", "models@master:/model.skops")
    client.models.set_alias("cancer@champion", 1)
    client.models.set_alias("cancer@challenger", 2)
    client.deployments.create("cancer-api", "cancer@champion")
    client.secrets.create("db", {"password": SECRET})
    auth = AuthStore(client.data.catalog)
    tokens = {"root": auth.activate()}
    for who, role in (("reader", "repoReader"), ("writer", "repoWriter")):
        tokens[who] = auth.create_token(who)[1]
        auth.set_role("model", "cancer", who, role)
        auth.set_role("repo", "models", who, "repoReader")
    try:
        with TestClient(create_api(client), base_url="http://cairn.test") as http:
            yield Server(http, client, tokens)
    finally:
        client.data.catalog.dispose()


def login(server: Server, who: str) -> TestClient:
    http = server.http
    http.cookies.clear()
    answer = http.post(
        "/login", data={"token": server.tokens[who], "next": "/models"}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/models"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return http


def test_without_a_token_a_page_is_the_login_form(server: Server) -> None:
    server.http.cookies.clear()
    page = server.http.get("/deployments/cancer-api")
    assert page.status_code == 401 and 'action="/login"' in page.text
    assert 'name="next" value="/deployments/cancer-api"' in page.text
    bad = server.http.post("/login", data={"token": "not-a-token"}, follow_redirects=False)
    assert bad.status_code == 401 and "set-cookie" not in bad.headers


def test_the_api_keeps_its_json_answers_beside_the_console(server: Server) -> None:
    missing = server.http.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    assert server.http.get("/api/v1/health").json() == {"status": "ok"}


def test_pages_show_what_the_user_may_read_and_refuse_the_rest(server: Server) -> None:
    http = login(server, "reader")
    dag = http.get("/")
    assert dag.status_code == 200 and "reader" in dag.text
    assert 'data-id="repo:models"' in dag.text and 'data-id="repo:hidden"' not in dag.text
    refused = http.get("/repos/hidden")
    assert refused.status_code == 403 and "lacks repoReader" in refused.text
    assert http.get("/repos/hidden/raw/master/x").status_code == 403


def test_a_model_reader_cannot_promote_and_a_writer_can(server: Server) -> None:
    before = server.client.deployments.get("cancer-api")
    http = login(server, "reader")
    page = http.get("/deployments/cancer-api")
    assert page.status_code == 200 and 'id="promote"' in page.text
    refused = http.post("/deployments/cancer-api/promote", data={"target": "challenger"})
    assert refused.status_code == 403 and "lacks repoWriter" in refused.text
    assert server.client.deployments.get("cancer-api").revision == before.revision
    http = login(server, "writer")
    done = http.post(
        "/deployments/cancer-api/canary",
        data={"target": "challenger", "percent": "30"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = server.client.deployments.get("cancer-api")
    assert after.revision == before.revision + 1
    assert after.policy.percentages() == {"champion": 70.0, "challenger": 30.0}
    events = server.client.events.list(subject="cancer-api")
    assert events[-1].actor == "writer"  # the change is the user's, as through the API


def test_a_form_from_another_site_is_refused(server: Server) -> None:
    http = login(server, "writer")
    before = server.client.deployments.get("cancer-api").revision
    answer = http.post(
        "/deployments/cancer-api/rollback", headers={"origin": "http://evil.example"}
    )
    assert answer.status_code == 403
    assert server.client.deployments.get("cancer-api").revision == before


def test_secret_values_are_masked_from_pages_as_from_the_api(server: Server) -> None:
    reader = login(server, "reader").get("/repos/models")
    assert SECRET not in reader.text and "(not ***)" in reader.text
    root = login(server, "root").get("/repos/models")
    assert SECRET in root.text  # a clusterAdmin sees values, as through the API


def test_the_guarded_face_checks_each_call_as_the_principal(server: Server) -> None:
    from cairn.server.team.auth import AuthGuard

    guard = AuthGuard(AuthStore(server.client.data.catalog))
    reader = AuthStore(server.client.data.catalog).authenticate(server.tokens["reader"])
    face = GuardedFace(server.client, guard, reader)
    assert [r.name for r in face.repos.list()] == ["models"]
    with pytest.raises(PermissionDenied):
        face.deployments.apply("cancer-api", reset="challenger")
