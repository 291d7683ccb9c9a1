"""Bad input to ``cairn server`` is a 4xx with a message, never a 500 or a traceback:
malformed JSON, wrong types, unknown or missing arguments, ``..`` paths, unknown repos,
server paths where the client's values belong, malformed chunk uploads."""

from __future__ import annotations

import pytest

from cairn.api.wire import SPECIAL, face_methods

from .conftest import Server


def _error(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["message"] and "Traceback" not in body["message"]
    return body


def test_every_generic_route_answers_malformed_input_with_a_4xx(server: Server) -> None:
    server.call("repos", "create", name="r")
    bodies = {
        "malformed json": {
            "content": b'{"name": ',
            "headers": {"content-type": "application/json"},
        },
        "not an object": {"json": [1, 2]},
        "unknown argument": {"json": {"no_such_argument": 1}},
        "object for every argument": None,
    }
    for m in face_methods():
        if (m.sub, m.name) in SPECIAL:
            continue
        for what, body in bodies.items():
            if body is None:
                if not m.params:
                    continue
                body = {"json": {p: {"a": [1]} for p in m.params}}
            response = server.http.post(m.path, **body)
            assert 400 <= response.status_code < 500, (m.path, what, response.text)
            assert response.json()["error"]["message"], (m.path, what)


def test_wrong_types_and_missing_arguments_name_the_field(server: Server) -> None:
    assert _error(server.call("repos", "create", name=5), 422)["field"] == "name"
    assert _error(server.call("repos", "create"), 422)["field"] == "name"
    assert _error(server.call("files", "list", ref=["r"]), 422)["field"].startswith("ref")


def test_an_unknown_argument_is_refused_not_ignored(server: Server) -> None:
    server.call("repos", "create", name="r")
    body = _error(server.call("repos", "delete", name="r", forse=True), 422)
    assert body["type"] == "FieldError" and body["field"] == "forse"
    assert server.call("repos", "get", name="r").status_code == 200  # not deleted


def test_dotdot_paths_and_unknown_repos(server: Server) -> None:
    server.call("repos", "create", name="r")
    for ref in ("r@master:/../etc/passwd", "r@master:/a/../../b"):
        assert _error(server.call("files", "get", ref=ref), 400)["type"] == "InvalidPath"
        read = server.http.get("/api/v1/files/content", params={"ref": ref})
        assert _error(read, 400)["type"] == "InvalidPath"
    escape = {
        "ref": "r@master:/",
        "files": [{"path": "../x", "hash": "0" * 64, "size": 0, "chunks": []}],
    }
    assert (
        _error(server.http.post("/api/v1/files/commit", json=escape), 400)["type"] == "InvalidPath"
    )
    assert _error(server.call("repos", "get", name="nope"), 404)["type"] == "NotFound"


def test_chunk_uploads_the_server_cannot_use_are_400(server: Server) -> None:
    server.call("repos", "create", name="r")
    params = {"ref": "r@master"}
    data = b"hello"
    wrong = bytes(32) + len(data).to_bytes(4, "big") + data  # the digest of other bytes
    body = _error(server.http.post("/api/v1/chunks", params=params, content=wrong), 400)
    assert body["type"] == "FieldError"
    cut = wrong[:20]  # ends inside a frame's header
    assert _error(server.http.post("/api/v1/chunks", params=params, content=cut), 400)
    huge = bytes(32) + (1 << 30).to_bytes(4, "big")
    assert _error(server.http.post("/api/v1/chunks", params=params, content=huge), 400)
    unknown_chunk = {
        "ref": "r@master:/",
        "files": [{"path": "a", "hash": "1" * 64, "size": 3, "chunks": [["2" * 64, 3]]}],
    }
    response = server.http.post("/api/v1/files/commit", json=unknown_chunk)
    assert 400 <= response.status_code < 500, response.text


def test_a_client_never_names_a_folder_of_the_server(server: Server) -> None:
    spec = {
        "pipeline": {"name": "p"},
        "transform": {"cmd": ["true"]},
        "input": {"pfs": {"repo": "r", "glob": "/*"}},
    }
    create = "/api/v1/pipelines/create"
    body = _error(server.http.post(create, json={"spec": spec, "spec_dir": "/"}), 422)
    assert body["field"] == "spec_dir"
    assert _error(server.http.post(create, json={"spec": "/etc/pipeline.yaml"}), 422)[
        "field"
    ].startswith("spec")
    assert (
        _error(server.http.post(create, json={"spec": spec, "code": "../../etc"}), 422)["field"]
        == "code"
    )
    unknown = server.http.post(create, json={"spec": spec, "code": "a" * 64})
    assert _error(unknown, 400)["type"] == "BundleError"
    rule = _error(server.call("monitors", "create", rule="/etc/rule.yaml"), 422)
    assert rule["field"].startswith("rule")
    assert _error(server.http.get("/api/v1/code/%2E%2E"), 422)["field"] == "path.bundle"


@pytest.mark.parametrize("method", ["create", "update"])
def test_the_pipeline_routes_take_only_specs_as_values(server: Server, method: str) -> None:
    response = server.http.post(f"/api/v1/pipelines/{method}", json={"spec": 3})
    assert _error(response, 422)["field"].startswith("spec")


def test_an_oversized_body_is_413_whether_declared_or_streamed(server: Server) -> None:
    from cairn.server.team.limits import MAX_BODY

    huge = b'{"name": "' + b"x" * (MAX_BODY + 1) + b'"}'
    declared = server.http.post(
        "/api/v1/repos/create", content=huge, headers={"content-type": "application/json"}
    )
    _error(declared, 413)

    def pieces():  # no Content-Length: sent chunked, counted as it arrives
        yield b'{"name": "'
        for _ in range(MAX_BODY // (1 << 20) + 1):
            yield b"x" * (1 << 20)
        yield b'"}'

    streamed = server.http.post(
        "/api/v1/repos/create", content=pieces(), headers={"content-type": "application/json"}
    )
    _error(streamed, 413)
    # An unknown route answers in the API's shape too.
    _error(server.http.post("/api/v1/nothing/here", json={}), 404)
    assert server.call("repos", "list").status_code == 200
