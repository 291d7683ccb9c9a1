"""Hostile input, fuzzed with hypothesis (derandomized, bounded): file paths, pipeline
specs, local folders with links out of them, transform outputs that are links. Target:
no exception outside cairn's error tree, nothing acknowledged lost."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.client import Client
from cairn.data import NotFound, parse_ref
from cairn.pipelines.spec import parse_spec
from cairn.storage import CairnError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CAIRN = str(Path(sys.executable).with_name("cairn"))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    found = Client(tmp_path_factory.mktemp("hostile") / "store", auto_run=False)
    found.data.create_repo("p")
    found.data.put_files("p", None, [("seed", io.BytesIO(b"seed"))])
    yield found
    found.data.catalog.dispose()


def twins(text: str) -> list[str]:
    return [
        text,
        unicodedata.normalize("NFC", text),
        unicodedata.normalize("NFD", text),
        text.upper(),
        text.lower(),
    ]


SEGMENT = st.one_of(
    st.sampled_from(["..", ".", "", "é", "e\u0301", "A", "a", "\n", "\x00", "/", "\\", "~"]),
    st.text(min_size=1, max_size=20),
    st.text(min_size=250, max_size=300, alphabet="xé"),
)
PATHS = st.lists(SEGMENT, min_size=1, max_size=6).map("/".join)


@FUZZ
@given(paths=st.lists(PATHS, min_size=1, max_size=4), absolute=st.booleans())
def test_any_path_is_stored_and_read_back_or_refused(
    client: Client, paths: list[str], absolute: bool
) -> None:
    data = client.data
    written: dict[str, bytes] = {}
    for n, raw in enumerate(p for path in paths for p in twins(path)):
        path = ("/" + raw) if absolute else raw
        body = f"{n}:{raw!r}".encode(errors="surrogatepass")
        try:
            data.put_files("p", None, [(path, io.BytesIO(body))])
        except CairnError:
            continue  # refused, with a cairn error: InvalidPath, PathConflict...
        written[path] = body
    head = data.inspect_commit("p", "master").id
    for path, body in written.items():
        ref = parse_ref(f"p@{head}:/{path.lstrip('/')}")
        assert b"".join(data.read_file(ref)) == body  # a twin never overwrote it


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=50),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
FIELDS = [
    "pipeline",
    "transform",
    "input",
    "parallelism_spec",
    "datum_tries",
    "datum_timeout",
    "output_branch",
    "reprocess_spec",
    "salt",
    "resource_limits",
    "description",
]
GOOD = {
    "pipeline": {"name": "p"},
    "transform": {"cmd": ["true"]},
    "input": {"pfs": {"repo": "in", "glob": "/*"}},
}


def deep(depth: int) -> object:
    value: object = {"pfs": {"repo": "in", "glob": "/*"}}
    for _ in range(depth):
        value = {"cross": [value, value]} if depth < 20 else {"union": [value]}
    return value


@FUZZ
@given(
    field=st.sampled_from(FIELDS),
    value=JSON,
    where=st.sampled_from(["replace", "inner", "top"]),
)
def test_any_spec_parses_or_fails_with_a_spec_error(field: str, value: object, where: str) -> None:
    spec = json.loads(json.dumps(GOOD))
    if where == "replace":
        spec[field] = value
    elif where == "inner" and isinstance(spec.get(field), dict):
        spec[field] = {
            **spec[field],
            "x" if not isinstance(value, str) else value[:5] or "y": value,
        }
    else:
        spec = value
    try:
        parse_spec(spec)
    except CairnError:
        pass


@pytest.mark.parametrize("depth", [1, 30, 200, 2000])
def test_deep_and_huge_specs_fail_cleanly(depth: int) -> None:
    spec = {**GOOD, "input": deep(depth)}
    try:
        parse_spec(spec)
    except CairnError:
        pass
    huge = {**GOOD, "transform": {"cmd": ["echo", "x" * 5_000_000]}}
    try:
        parse_spec(huge)
    except CairnError:
        pass


def test_put_recursive_never_follows_a_link_out_of_the_folder(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "store"
    (work / "data" / "sub").mkdir(parents=True)
    (work / "data" / "ok.txt").write_text("ok")
    secret = tmp_path / "outside.txt"
    secret.write_text("host secret")
    (work / "data" / "to_file").symlink_to(secret)
    (work / "data" / "to_dir").symlink_to(tmp_path)
    (work / "data" / "sub" / "up").symlink_to("../..")
    (work / "data" / "to_root").symlink_to("/")
    (work / "data" / "dangling").symlink_to(tmp_path / "nope")
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_CONFIG_DIR": str(tmp_path / "c")}
    for args in (("init",), ("create", "repo", "r")):
        subprocess.run([CAIRN, *args], cwd=work, env=env, check=True, capture_output=True)
    done = subprocess.run(
        [CAIRN, "put", "file", "-r", "r@master:/", "-f", "data"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in done.stderr
    client = Client(home, auto_run=False)
    try:
        stored = (
            {
                path: client.data.chunks.read_bytes(e.content)
                for path, e in client.data.walk_files(parse_ref("r@master"))
            }
            if done.returncode == 0
            else {}
        )
    finally:
        client.data.catalog.dispose()
    assert all(b"host secret" not in body for body in stored.values())
    assert not [p for p in stored if p.startswith(("to_dir/", "sub/up/", "to_root/"))]
    if done.returncode == 0:
        assert stored["ok.txt"] == b"ok"


def test_transform_outputs_that_are_links_never_copy_host_files(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "store"
    work.mkdir()
    work.chmod(0o755)
    host = tmp_path / "host.txt"
    host.write_text("host bytes")
    host.chmod(0o644)
    tmp_path.chmod(0o755)
    links = (
        f'ln -s {host} "$CAIRN_PFS/out/file"; ln -s /etc/passwd "$CAIRN_PFS/out/passwd"; '
        'ln -s /dev/zero "$CAIRN_PFS/out/zero"; ln -s / "$CAIRN_PFS/out/root"; '
        'mkdir "$CAIRN_PFS/out/d"; ln -s /dev/urandom "$CAIRN_PFS/out/d/rand"; true'
    )
    spec = {
        "pipeline": {"name": "links"},
        "transform": {"cmd": ["sh", "-c", links]},
        "input": {"pfs": {"repo": "in", "glob": "/"}},
        "datum_timeout": "30s",
    }
    (work / "links.json").write_text(json.dumps(spec))
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_CONFIG_DIR": str(tmp_path / "c")}
    outs = []
    for args in (
        ("init",),
        ("create", "repo", "in"),
        ("put", "file", "in@master:/a", "-f", "links.json"),
        ("create", "pipeline", "-f", "links.json"),
    ):
        done = subprocess.run(
            [CAIRN, *args], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        outs.append(done)
        assert "Traceback" not in done.stderr
    client = Client(home, auto_run=False)
    try:
        try:
            head = client.data.inspect_branch("links", "master").head
        except NotFound:  # the job failed before the first output commit
            head = None
        stored = (
            {
                p: client.data.chunks.read_bytes(e.content)
                for p, e in client.data.walk_files(parse_ref(f"links@{head}"))
            }
            if head
            else {}
        )
        [job] = client.jobs.list("links")
    finally:
        client.data.catalog.dispose()
    passwd = Path("/etc/passwd").read_bytes()
    for body in stored.values():
        assert b"host bytes" not in body and body != passwd and body[:64] != bytes(64)
    # refused (the job says why) or stored as links' text, never the host's bytes
    assert job.state in ("failure", "success")
