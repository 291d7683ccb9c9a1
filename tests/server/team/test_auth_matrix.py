"""The authorization matrix of ``cairn server`` (issue 11, section 4): every route x every
kind of caller, the expected answer from one table.

``ROUTES`` maps each route of the app (method and path, as ``app.routes`` lists them) to
the least a caller needs for the route's sample request on the fixture's resources:

- ``OPEN``: no token needed (the API's docs, version, health, chunk size);
- ``ANY``: any valid token;
- a role (``repoReader`` < ``repoWriter`` < ``repoOwner`` < ``clusterAdmin``) on the
  resources the request names (cairn.api.access decides which).

Every caller sends each route's request: ``anonymous`` (no token) and ``revoked`` (a
revoked token) get 401, except on open routes; ``nobody`` (a valid token, no role),
``reader``, ``writer`` and ``owner`` (that role on every fixture repo and on the model)
and ``admin`` (root, clusterAdmin) get 403 naming the first role they lack when below
the route's need, and otherwise what the entry's ``then`` says, never a 401, 403 or 5xx.

A route the app serves without an entry here fails ``test_every_route_is_in_the_table``
(and so does an entry for a route it no longer serves).

Requests run in the table's order, callers from the least to the most privileged, so a
create comes before what reads it and the deletes come last, on throwaway resources
(``trash``...). No pipeline worker runs, so no job runs: the job routes answer 404 once
past the guard, and the run routes use a run made through the SDK (a pipeline's runs come
from jobs).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.team_server import team_server

from cairn.api.remote.client import RemoteClient
from cairn.api.remote.files import cut
from cairn.api.wire import FRAME_HEADER
from cairn.catalog.auth import Role
from cairn.client import Client

OPEN, ANY = "open", "any"
JSON = "application/json"
READ, WRITE, OWN, ADMIN = (
    str(Role.REPO_READER),
    str(Role.REPO_WRITER),
    str(Role.REPO_OWNER),
    str(Role.CLUSTER_ADMIN),
)
LEVELS = [ANY, READ, WRITE, OWN, ADMIN]
"""Needs from the least; a caller at level i may do what needs levels[:i + 1]."""

CALLERS: dict[str, int | None] = {
    "anonymous": None,  # no token
    "revoked": None,  # a revoked token (its subject held repoWriter)
    "nobody": 0,
    "reader": 1,
    "writer": 2,
    "owner": 3,
    "admin": 4,
}
"""Caller -> the index in LEVELS of the most it may do (None: not authenticated)."""

REPOS = ("images", "edges", "trash", "trash-pipe", "predictions")
MODEL = "cancer"
JOB = "edges@0123456789abcdef0123456789abcdef"  # no job runs here: a well-formed id
BUNDLE = "0" * 64

Body = Any  # a JSON value, or a function of the caller's name and the Fixture giving one


@dataclass
class Fixture:
    """The running server, the callers' tokens, and values the requests send."""

    url: str
    tokens: dict[str, str | None]
    frames: bytes  # the chunk frames of one file, what /api/v1/chunks takes
    upload: dict[str, Any]  # that file, as /api/v1/files/commit names it
    bundle: bytes  # a code bundle (tar.gz)
    victim: str  # the id of a token for the admin to revoke
    run: str  # the id of run ``sdk-run``


@dataclass(frozen=True)
class Case:
    """One route's sample request, the least it needs, and what the callers the guard lets
    through get: ``then`` is OK (a 2xx), FIRST (a 2xx for the first of them, then the
    call's own refusal: the first deletes, the next ones find nothing), or a status (the
    call's own answer: 404 for a job that never ran)."""

    need: str
    json: Body = None
    params: Mapping[str, str] | None = None
    content: Callable[[Fixture], bytes] | None = None
    path: str | None = None  # the path to request, for a route with path parameters
    then: int = 200


OK, FIRST = 200, 0


def _post(need: str, json: Body = None, then: int = OK) -> Case:
    return Case(need, json, then=then)


def _per(make: Callable[[str], Any]) -> Callable[[str, Fixture], Any]:
    """A body that differs per caller (each creates its own resource)."""
    return lambda who, f: make(who)


def _rule(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": f"{MODEL}@champion",
        "window": {"last": 60, "min_rows": 30},
        "action": {"alert": {}},
    }


def _spec(name: str, cmd: str = "true") -> dict[str, Any]:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", cmd]},
    }


_DOCS = {(m, p): Case(OPEN) for p in ("/openapi.json", "/docs", "/redoc") for m in ("GET", "HEAD")}
_DOCS.update({(m, "/docs/oauth2-redirect"): Case(OPEN) for m in ("GET", "HEAD")})


_JOB_PAGE = "/jobs/" + JOB.replace("@", "/")
_CONSOLE: dict[tuple[str, str], Case] = {
    ("GET", "/login"): Case(OPEN),
    ("POST", "/login"): Case(OPEN, content=lambda f: f"token={f.tokens['admin']}".encode()),
    ("GET", "/logout"): Case(OPEN),
    ("GET", "/static/{name}"): Case(OPEN, path="/static/console.css"),
    ("GET", "/"): Case(ANY),
    ("GET", "/repos/{repo}"): Case(READ, path="/repos/images"),
    ("GET", "/repos/{repo}/at/{commit}/{path:path}"): Case(
        READ, path="/repos/images/at/master/a.txt"
    ),
    ("GET", "/repos/{repo}/raw/{commit}/{path:path}"): Case(
        READ, path="/repos/images/raw/master/a.txt"
    ),
    ("GET", "/repos/{repo}/diff"): Case(READ, path="/repos/images/diff"),
    ("GET", "/lineage/file/{repo}/{commit}/{path:path}"): Case(
        READ, path="/lineage/file/images/master/a.txt"
    ),
    ("GET", "/lineage/model/{name}/{version:int}"): Case(READ, path=f"/lineage/model/{MODEL}/1"),
    ("GET", "/pipelines/{name}"): Case(READ, path="/pipelines/edges"),
    ("GET", "/jobs/{pipeline}/{job}"): Case(READ, path=_JOB_PAGE, then=404),
    ("GET", "/jobs/{pipeline}/{job}/datums/{datum}"): Case(
        READ, path=f"{_JOB_PAGE}/datums/00", then=404
    ),
    ("GET", "/jobs/{pipeline}/{job}/logs.txt"): Case(READ, path=f"{_JOB_PAGE}/logs.txt", then=404),
    ("GET", "/runs"): Case(ANY),
    ("GET", "/runs/compare"): Case(ANY, params={"run": "sdk-run"}),
    ("GET", "/runs/{run}"): Case(ANY, path="/runs/sdk-run"),
    ("GET", "/models"): Case(ANY),
    ("GET", "/models/{name}"): Case(READ, path=f"/models/{MODEL}"),
    ("GET", "/deployments/{name}"): Case(READ, path="/deployments/cancer-api"),
    ("POST", "/deployments/{name}/canary"): Case(
        WRITE, path="/deployments/cancer-api/canary", content=lambda f: b"target=1&percent=10"
    ),
    ("POST", "/deployments/{name}/promote"): Case(
        WRITE, path="/deployments/cancer-api/promote", content=lambda f: b"target=champion"
    ),
    ("POST", "/deployments/{name}/rollback"): Case(
        WRITE, path="/deployments/cancer-api/rollback", content=lambda f: b"", then=FIRST
    ),
    ("GET", "/monitors"): Case(ANY),
    ("GET", "/monitors/{name}"): Case(READ, path="/monitors/cancer-drift"),
    ("GET", "/events/{event_id:int}"): Case(ANY, path="/events/999999", then=404),
}
"""The console's pages: HTML, a 401 the login form, a 403 the page naming the role."""


ROUTES: dict[tuple[str, str], Case] = {
    **_DOCS,
    ("GET", "/api/v1/version"): Case(OPEN),
    ("GET", "/api/v1/health"): Case(OPEN),
    ("GET", "/api/v1/chunking"): Case(OPEN),  # the server's chunk size: no data
    ("POST", "/api/v1/settle"): Case(ANY),
    # -- auth
    ("GET", "/api/v1/auth/whoami"): Case(ANY),
    ("POST", "/api/v1/auth/check"): _post(ANY, {"kind": "repo", "resource": "images"}),
    ("POST", "/api/v1/auth/get_roles"): _post(READ, {"kind": "repo", "resource": "images"}),
    ("POST", "/api/v1/auth/list_tokens"): _post(ADMIN, {}),  # everyone's
    ("POST", "/api/v1/auth/set_role"): _post(
        OWN, {"kind": "repo", "resource": "images", "subject": "frank", "role": "repoReader"}
    ),
    ("POST", "/api/v1/auth/create_token"): _post(ADMIN, {"subject": "eve"}),
    ("POST", "/api/v1/auth/create_s3_key"): _post(ADMIN, {"subject": "eve"}),
    ("POST", "/api/v1/auth/list_s3_keys"): _post(ADMIN, {}),
    # no such key: the admin passes the guard and gets UnknownToken's answer
    ("POST", "/api/v1/auth/revoke_s3_key"): _post(
        ADMIN, {"key_id": "CAIRN000000000000000"}, then=400
    ),
    ("POST", "/api/v1/auth/activate"): _post(ADMIN, then=409),  # active already
    # -- repos, branches, commits
    ("POST", "/api/v1/repos/list"): _post(ANY),
    ("POST", "/api/v1/repos/get"): _post(READ, {"name": "images"}),
    ("POST", "/api/v1/repos/create"): _post(ANY, _per(lambda who: {"name": f"new-{who}"})),
    ("POST", "/api/v1/branches/list"): _post(READ, {"repo": "images"}),
    ("POST", "/api/v1/branches/get"): _post(READ, {"ref": "images@master"}),
    ("POST", "/api/v1/branches/create"): _post(WRITE, {"ref": "images@feature"}),
    ("POST", "/api/v1/commits/list"): _post(READ, {"ref": "images@master"}),
    ("POST", "/api/v1/commits/get"): _post(READ, {"ref": "images@master"}),
    ("POST", "/api/v1/commits/wait"): _post(READ, {"ref": "images@master", "timeout": 5}),
    ("POST", "/api/v1/commits/wait_jobs"): _post(READ, {"ref": "images@master", "timeout": 5}),
    # the store's maintenance and the secrets: the admin's (fsck reads every object; gc
    # as a dry run changes nothing)
    ("POST", "/api/v1/store/fsck"): _post(ADMIN),
    ("POST", "/api/v1/store/gc"): _post(ADMIN, {"dry_run": True}),
    ("POST", "/api/v1/secrets/list"): _post(ADMIN),
    ("POST", "/api/v1/secrets/mask"): _post(ADMIN, {"texts": ["a"]}),
    ("POST", "/api/v1/secrets/create"): _post(
        ADMIN, lambda who, f: {"name": f"s-{who}", "values": {"k": "v"}}
    ),
    ("POST", "/api/v1/commits/lineage"): _post(READ, {"ref": "images@master"}),
    ("POST", "/api/v1/commits/delete"): _post(WRITE, {"ref": f"images@{JOB[6:]}"}, 404),
    ("POST", "/api/v1/commits/squash"): _post(WRITE, {"ref": f"images@{JOB[6:]}"}, 404),
    ("POST", "/api/v1/commits/start"): _post(WRITE, {"ref": "images@scratch"}, FIRST),
    ("POST", "/api/v1/commits/finish"): _post(WRITE, {"ref": "images@scratch"}, FIRST),
    # -- files
    ("GET", "/api/v1/files/content"): Case(READ, params={"ref": "images@master:/a.txt"}),
    ("GET", "/api/v1/files/range"): Case(
        READ, params={"ref": "images@master:/a.txt", "start": 0, "end": 2}
    ),
    ("GET", "/api/v1/files/archive"): Case(READ, params={"ref": "images@master:/"}),
    ("GET", "/api/v1/store/extract"): Case(ADMIN),
    # the server's store holds data: the admin passes the guard, restore refuses
    ("POST", "/api/v1/store/restore"): Case(ADMIN, then=400),
    ("POST", "/api/v1/files/get"): _post(READ, {"ref": "images@master:/a.txt"}),
    ("POST", "/api/v1/files/list"): _post(READ, {"ref": "images@master:/"}),
    ("POST", "/api/v1/files/glob"): _post(READ, {"ref": "images@master", "pattern": "/*.txt"}),
    ("POST", "/api/v1/files/diff"): _post(READ, {"new": "images@master", "old": "images@master^"}),
    ("POST", "/api/v1/files/lineage"): _post(READ, {"ref": "images@master:/a.txt"}),
    ("POST", "/api/v1/chunks/missing"): Case(
        WRITE, {"hashes": ["0" * 64]}, params={"ref": "images@master:/up.txt"}
    ),
    ("POST", "/api/v1/chunks"): Case(
        WRITE, params={"ref": "images@master:/up.txt"}, content=lambda f: f.frames
    ),
    ("POST", "/api/v1/files/commit"): _post(
        WRITE, lambda who, f: {"ref": f"images@master:/up-{who}.txt", "files": [f.upload]}
    ),
    ("POST", "/api/v1/files/copy"): _post(
        WRITE, {"src": "images@master:/a.txt", "dst": "images@master:/copy.txt"}
    ),
    # -- pipelines, jobs (the fixture's pipeline ``edges`` never ran)
    ("POST", "/api/v1/pipelines/list"): _post(ANY),
    ("POST", "/api/v1/pipelines/broken"): _post(ANY),
    ("POST", "/api/v1/pipelines/get"): _post(READ, {"name": "edges"}),
    # creating one needs read on its inputs; its creator owns its output repo
    ("POST", "/api/v1/pipelines/create"): _post(
        READ, _per(lambda who: {"spec": _spec(f"edges-{who}")})
    ),
    ("POST", "/api/v1/pipelines/update"): _post(WRITE, {"spec": _spec("edges", "echo updated")}),
    ("POST", "/api/v1/pipelines/stop"): _post(WRITE, {"name": "edges"}),
    ("POST", "/api/v1/pipelines/start"): _post(WRITE, {"name": "edges"}),
    ("POST", "/api/v1/pipelines/rerun"): _post(WRITE, {"name": "edges"}),
    ("GET", "/api/v1/code/{bundle}"): Case(ANY, path=f"/api/v1/code/{BUNDLE}"),
    ("POST", "/api/v1/code"): Case(ANY, content=lambda f: f.bundle),
    ("POST", "/api/v1/jobs/list"): _post(READ, {"pipeline": "edges"}),
    ("POST", "/api/v1/jobs/get"): _post(READ, {"ref": JOB}, 404),
    ("POST", "/api/v1/jobs/wait"): _post(READ, {"ref": JOB, "timeout": 1}, 404),
    ("POST", "/api/v1/jobs/datums"): _post(READ, {"ref": JOB}, 404),
    ("POST", "/api/v1/jobs/logs"): _post(READ, {"ref": JOB}, 404),
    ("POST", "/api/v1/jobs/reproduce"): _post(WRITE, {"ref": JOB}, 404),
    ("POST", "/api/v1/jobs/stop"): _post(WRITE, {"ref": JOB}, 404),
    ("POST", "/api/v1/jobs/restart_datum"): _post(WRITE, {"ref": JOB, "datum": "ab"}, 404),
    ("POST", "/api/v1/jobs/delete"): _post(WRITE, {"ref": JOB}, 404),
    ("POST", "/api/v1/pipelines/datums"): _post(READ, {"spec": _spec("preview")}),
    # -- runs (one made through the SDK: any user's, as on MLflow's tracking server)
    ("POST", "/api/v1/runs/list"): _post(ANY),
    ("POST", "/api/v1/runs/get"): _post(ANY, {"ref": "sdk-run"}),
    ("POST", "/api/v1/runs/create"): _post(ANY, _per(lambda who: {"name": f"run-{who}"})),
    ("POST", "/api/v1/runs/log"): _post(
        ANY, lambda who, f: {"run": f.run, "metrics": {"loss": 0.5}}
    ),
    ("POST", "/api/v1/runs/history"): _post(ANY, lambda who, f: {"run": f.run, "key": "loss"}),
    # (the guard reads ``refs`` too: it once used up the iterator the call then found empty)
    ("POST", "/api/v1/runs/compare"): _post(ANY, lambda who, f: {"refs": [f.run]}),
    ("POST", "/api/v1/runs/finish"): _post(ANY, lambda who, f: {"run": f.run}),
    # -- models (``cancer``: version 1 from images@master:/model.skops, champion -> 1)
    ("POST", "/api/v1/models/list"): _post(ANY),
    ("POST", "/api/v1/models/get"): _post(READ, {"spec": f"{MODEL}@champion"}),
    ("POST", "/api/v1/models/versions"): _post(READ, {"name": MODEL}),
    ("POST", "/api/v1/models/aliases"): _post(READ, {"name": MODEL}),
    ("POST", "/api/v1/models/alias_history"): _post(READ, {"spec": f"{MODEL}@champion"}),
    ("POST", "/api/v1/models/lineage"): _post(READ, {"spec": f"{MODEL}/1"}),
    ("POST", "/api/v1/models/diff"): _post(READ, {"old": f"{MODEL}/1", "new": f"{MODEL}@champion"}),
    # a version's files: read on the model only (what `cairn serve` needs)
    ("GET", "/api/v1/models/archive"): Case(READ, params={"spec": f"{MODEL}/1"}),
    # an existing name: a new version needs repoWriter (and read on the source repo)
    ("POST", "/api/v1/models/register"): _post(
        WRITE, {"name": MODEL, "ref": "images@master:/model.skops"}
    ),
    ("POST", "/api/v1/models/set_alias"): _post(
        WRITE, {"spec": f"{MODEL}@challenger", "version": 1}
    ),
    ("POST", "/api/v1/models/rollback"): _post(WRITE, {"spec": f"{MODEL}@challenger"}, FIRST),
    # -- deployments (``cancer-api`` serves cancer@champion)
    ("POST", "/api/v1/deployments/list"): _post(ANY),
    ("POST", "/api/v1/deployments/get"): _post(READ, {"name": "cancer-api"}),
    ("POST", "/api/v1/deployments/history"): _post(READ, {"name": "cancer-api"}),
    ("POST", "/api/v1/deployments/create"): _post(
        WRITE, {"name": "cancer-api", "model": f"{MODEL}@champion"}
    ),
    ("POST", "/api/v1/deployments/apply"): _post(
        WRITE, {"name": "cancer-api", "canary": ["1", 10]}
    ),
    ("POST", "/api/v1/deployments/rollback"): _post(WRITE, {"name": "cancer-api"}, FIRST),
    # -- monitors (``cancer-drift`` watches cancer@champion; no prediction was logged)
    ("POST", "/api/v1/monitors/list"): _post(ANY),
    ("POST", "/api/v1/monitors/get"): _post(READ, {"name": "cancer-drift"}),
    ("POST", "/api/v1/monitors/state"): _post(READ, {"name": "cancer-drift"}),
    ("POST", "/api/v1/monitors/check"): _post(
        READ, {"spec": f"{MODEL}@champion", "last": 10}, 404
    ),  # no prediction log yet
    ("POST", "/api/v1/monitors/explain"): _post(
        READ, {"request_id": "r-1", "deployment": "cancer-api"}, 404
    ),  # no prediction log yet
    ("POST", "/api/v1/monitors/replay"): _post(
        READ, {"deployment": "cancer-api", "model": f"{MODEL}@champion", "last": 10}, 404
    ),
    ("POST", "/api/v1/monitors/create"): _post(
        WRITE, _per(lambda who: {"rule": _rule(f"drift-{who}")})
    ),
    ("POST", "/api/v1/monitors/update"): _post(WRITE, {"rule": _rule("cancer-drift")}),
    ("POST", "/api/v1/monitors/tick"): _post(ADMIN),
    ("POST", "/api/v1/secrets/delete"): _post(ADMIN, lambda who, f: {"name": f"s-{who}"}),
    ("POST", "/api/v1/events/list"): _post(ANY, {"limit": 5}),
    # -- the web console's pages (cairn.console): each calls the face through the guard;
    # its forms answer 303 (back to the page) once done
    **_CONSOLE,
    # -- destructive, last, on throwaway resources
    ("POST", "/api/v1/monitors/delete"): _post(WRITE, {"name": "trash-monitor"}, FIRST),
    ("POST", "/api/v1/models/delete_alias"): _post(WRITE, {"spec": f"{MODEL}@old"}, FIRST),
    ("POST", "/api/v1/files/delete"): _post(WRITE, {"ref": "images@master:/trash.txt"}, FIRST),
    ("POST", "/api/v1/branches/delete"): _post(WRITE, {"ref": "images@gone"}, FIRST),
    ("POST", "/api/v1/pipelines/delete"): _post(OWN, {"name": "trash-pipe"}, FIRST),
    ("POST", "/api/v1/repos/delete"): _post(OWN, {"name": "trash"}, FIRST),
    ("POST", "/api/v1/auth/revoke_token"): _post(ADMIN, lambda who, f: {"token_or_id": f.victim}),
}
"""(method, path) -> what the route's sample request needs, in the order they run."""


def _routes_of(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of ``app``; a route without HTTP methods (a
    websocket, a mounted app) as (its class name, path), so that it needs an entry too."""
    found: set[tuple[str, str]] = set()
    for r in app.routes:
        methods = getattr(r, "methods", None)
        if methods:
            found |= {(m, r.path) for m in methods}
        else:
            found.add((type(r).__name__, getattr(r, "path", "")))
    return found


@contextmanager
def _app() -> Iterator[Any]:
    """The app of ``cairn server`` over a throwaway store."""
    import tempfile

    from cairn.server.team.app import create_api

    with tempfile.TemporaryDirectory() as home:
        client = Client(Path(home), auto_run=False)
        try:
            yield create_api(client)
        finally:
            client.data.catalog.dispose()


def test_every_route_is_in_the_table() -> None:
    with _app() as app:
        served = _routes_of(app)
    missing = sorted(served - ROUTES.keys())
    assert not missing, f"routes without an entry in ROUTES (what may call them?): {missing}"
    stale = sorted(ROUTES.keys() - served)
    assert not stale, f"entries in ROUTES for routes the app does not serve: {stale}"


def test_a_route_added_without_an_entry_is_found() -> None:
    with _app() as app:
        app.get("/api/v1/new")(lambda: {})
        app.websocket("/api/v1/stream")(lambda websocket: None)
        app.mount("/static", app=lambda scope, receive, send: None)
        missing = _routes_of(app) - ROUTES.keys()
    assert missing == {
        ("GET", "/api/v1/new"),
        ("APIWebSocketRoute", "/api/v1/stream"),
        ("Mount", "/static"),
    }


def _skops_model() -> bytes:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], [0, 1, 0, 1])
    return bytes(sio.dumps(model))


def _bundle() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"echo hi\n"
        info = tarfile.TarInfo("run.sh")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """A server (no worker) with auth active and the resources the table names; the
    callers' tokens."""
    home = tmp_path_factory.mktemp("matrix") / "home"
    with team_server(home, worker=False) as url:
        with RemoteClient(url, auto_run=False) as anyone:
            root_token = anyone.auth.activate()
        with RemoteClient(url, root_token, auto_run=False) as root:
            for repo in ("images", "trash"):
                root.repos.create(repo)
            root.files.put("images@master:/a.txt", b"hello")
            root.files.put("images@master:/trash.txt", b"bye")
            root.files.put("images@master:/model.skops", _skops_model())
            root.branches.create("images@scratch", "images@master")
            root.branches.create("images@gone", "images@master")
            headers = {"Authorization": f"Bearer {root_token}"}
            for name in ("edges", "trash-pipe"):
                answer = httpx.post(
                    f"{url}/api/v1/pipelines/create",
                    json={"spec": _spec(name)},
                    headers=headers,
                )
                assert answer.status_code == 200, answer.text
            root.models.register(MODEL, "images@master:/model.skops")
            root.models.register(MODEL, "images@master:/model.skops")
            for alias in ("champion", "challenger", "old"):
                root.models.set_alias(f"{MODEL}@{alias}", 1)
            root.models.set_alias(f"{MODEL}@challenger", 2)  # set_alias moves it back
            root.deployments.create("cancer-api", f"{MODEL}@champion")
            for name in ("cancer-drift", "trash-monitor"):
                root.monitors.create(_rule(name))
            run = root.runs.create("sdk-run").id
            tokens: dict[str, str | None] = {"anonymous": None, "admin": root_token}
            for who, role in (("reader", READ), ("writer", WRITE), ("owner", OWN)):
                tokens[who] = root.auth.create_token(who)[1]
                for repo in REPOS:
                    root.auth.set_role("repo", repo, who, role)
                root.auth.set_role("model", MODEL, who, role)
            tokens["nobody"] = root.auth.create_token("nobody")[1]
            revoked, tokens["revoked"] = root.auth.create_token("dave")
            root.auth.set_role("repo", "images", "dave", WRITE)
            root.auth.revoke_token(revoked.id)
            victim, _ = root.auth.create_token("victim")
        avg = httpx.get(f"{url}/api/v1/chunking").json()["avg_size"]
        data = b"uploaded through the chunk routes"
        content = cut(io.BytesIO(data), avg, None)
        [chunk] = content.chunks  # a small file is one chunk
        upload = {
            "path": "",
            "hash": content.hash,
            "size": content.size,
            "chunks": [[chunk.hash, chunk.size]],
        }
        frames = FRAME_HEADER.pack(bytes.fromhex(chunk.hash), chunk.size) + data
        yield Fixture(url, tokens, frames, upload, _bundle(), victim.id, run)


def _send(http: httpx.Client, key: tuple[str, str], case: Case, f: Fixture, who: str) -> Any:
    method, path = key
    body = case.json(who, f) if callable(case.json) else case.json
    headers = {}
    token = f.tokens.get(who)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http.request(
        method,
        case.path or path,
        json=body if case.content is None and method == "POST" else None,
        content=case.content(f) if case.content is not None else None,
        params=dict(case.params or {}),
        headers=headers,
    )


def _done(status: int) -> bool:
    """A 2xx, or the 303 of a console form sending the browser back to its page."""
    return 200 <= status < 300 or status == 303


def test_every_route_answers_each_caller_as_the_table_says(fixture: Fixture) -> None:
    wrong: list[str] = []
    with httpx.Client(base_url=fixture.url, timeout=60) as http:
        for key, case in ROUTES.items():
            done = False  # whether the first caller let through did it (FIRST)
            for who, level in CALLERS.items():
                answer = _send(http, key, case, fixture, who)
                got = answer.status_code
                where = f"{key[0]} {key[1]} as {who} ({case.need}): {got} {answer.text[:200]}"
                if got >= 500:
                    wrong.append(f"server error: {where}")
                elif case.need == OPEN:
                    if got >= 400:
                        wrong.append(f"an open route refused: {where}")
                elif level is None:
                    if got != 401:
                        wrong.append(f"expected 401: {where}")
                elif level < LEVELS.index(case.need):
                    # the first role lacked: the route's need, or one below it the caller
                    # lacks too (nobody lacks repoReader before repoWriter)
                    lacked = LEVELS[level + 1 : LEVELS.index(case.need) + 1]
                    message = ""
                    if got == 403:  # the API's JSON error, or a console page naming it
                        json_body = answer.headers.get("content-type", "").startswith(JSON)
                        message = answer.json()["error"]["message"] if json_body else answer.text
                    if not any(f"lacks {role} " in message for role in lacked):
                        wrong.append(f"expected 403 naming one of {lacked}: {where}")
                elif got in (401, 403):
                    wrong.append(f"expected to pass the guard: {where}")
                elif case.then in (OK, FIRST) and not _done(got) and not done:
                    wrong.append(f"expected a 2xx: {where}")
                elif case.then not in (OK, FIRST, got):
                    wrong.append(f"expected {case.then}: {where}")
                else:
                    done = case.then == FIRST
    assert not wrong, "\n".join(wrong)
