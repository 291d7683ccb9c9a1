"""Fixtures of the end-to-end CLI tests: the real ``cairn`` console script in a subprocess.

Every test gets its own store (``$CAIRN_HOME`` under ``tmp_path``) and runs the
command with ``cwd=tmp_path``, so spec files, transform scripts and local files the
test writes there are found the way a user's would be.

Every test runs twice (``cairn_mode``): ``embedded``, the CLI opening the store itself,
and ``remote``, the CLI talking to a real ``cairn server`` (tests/team_server.py: uvicorn
on a free loopback port and the real pipeline worker) over that same store, through
``$CAIRN_URL``. The store folder is the same, so a test may set up or inspect it directly
either way. A test about the embedded store itself says so with
``@pytest.mark.embedded_only("why")``; its remote run is skipped with that reason.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cairn.client import Client

CAIRN = shutil.which("cairn") or "cairn"
# Each command is a new Python process; letting them share compiled bytecode (outside the
# source tree) saves a fifth of every start-up. Behaviour does not change.
PYCACHE = Path(tempfile.gettempdir()) / f"cairn-tests-pycache-{os.getuid()}"


class Cairn:
    """Runs ``cairn`` against one store, from one working folder.

    Call it like the fixture the tests use: ``cairn("list", "repo")`` returns the
    CompletedProcess (text, or bytes when ``input`` is bytes or ``binary`` is set) and
    fails the test on a non-zero exit unless ``check=False``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "store"
        self.env = {
            **os.environ,
            "CAIRN_HOME": str(self.home),
            # no saved context of the user's leaks in
            "CAIRN_CONFIG_DIR": str(root / "config"),
            "PYTHONPYCACHEPREFIX": str(PYCACHE),
        }
        for name in ("PYTHONDONTWRITEBYTECODE", "CAIRN_URL", "CAIRN_TOKEN", "CAIRN_CONTEXT"):
            self.env.pop(name, None)
        self.url: str | None = None  # the server's, in remote mode

    @contextmanager
    def serving(self, mode: str, *, worker: bool = True) -> Iterator[Cairn]:
        """In ``remote`` mode, a ``cairn server`` over this store for the block, named by
        ``$CAIRN_URL`` in the commands' environment (``worker``: it runs pipelines)."""
        if mode == "embedded":
            yield self
            return
        from tests.team_server import team_server

        with team_server(self.home, worker=worker) as url:
            self.url = self.env["CAIRN_URL"] = url
            try:
                yield self
            finally:
                self.url = None
                del self.env["CAIRN_URL"]

    def __call__(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        binary: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[Any]:
        text = not (binary or isinstance(input, bytes))
        proc = subprocess.run(
            [CAIRN, *args],
            input=input,
            capture_output=True,
            text=text,
            cwd=self.root,
            env={**self.env, **(env or {})},
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
            pytest.fail(f"cairn {' '.join(args)} exited {proc.returncode}:\n{stderr}")
        return proc

    def raw(self, *args: str, **kwargs: Any) -> Any:
        """The parsed JSON of ``cairn ARGS --raw``."""
        return json.loads(self(*args, "--raw", **kwargs).stdout)

    def fails(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run a command that must be refused: exit 1 with one ``error:`` line."""
        proc = self(*args, check=False, **kwargs)
        assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
        stderr = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
        assert "error:" in stderr
        return proc

    def put(self, ref: str, data: bytes | str) -> str:
        """Put ``data`` at ``ref`` (``repo@branch:/path``) from stdin; return the commit id."""
        payload = data.encode() if isinstance(data, str) else data
        out = self("put", "file", ref, "-f", "-", input=payload).stdout.decode()
        return out.strip().rpartition("@")[2]

    def get(self, ref: str) -> bytes:
        return self("get", "file", ref, binary=True).stdout

    def write(self, name: str, content: str | bytes) -> Path:
        """Write a file under the working folder (scripts, specs, local data)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def spec(self, *specs: Mapping[str, Any], name: str = "spec.json") -> Path:
        """Write pipeline specs as a JSON file (an array when there are several)."""
        body: Any = specs[0] if len(specs) == 1 else list(specs)
        return self.write(name, json.dumps(body, indent=2))

    def jobs(self, pipeline: str) -> list[dict[str, Any]]:
        """``list job -p PIPELINE --raw``, newest first."""
        return self.raw("list", "job", "-p", pipeline)


def seed(
    cairn: Cairn, repo: str, *commits: Mapping[str, str | bytes | None], branch: str = "master"
) -> list[str]:
    """Create ``repo`` (if new) and write ``commits`` to ``branch`` through the Python API;
    in each, path -> content puts a file and path -> None deletes it. Returns the ids.

    For tests whose subject is not the put itself (the CLI's puts have their own tests,
    and each command costs a Python start-up). Pipelines do not run.
    """
    from cairn.client import Client
    from cairn.data import NotFound

    client = Client(cairn.home, auto_run=False)
    try:
        try:
            client.data.inspect_repo(repo)
        except NotFound:
            client.create_repo(repo)
        ids = []
        for files in commits:
            puts = [
                (path, io.BytesIO(data.encode() if isinstance(data, str) else data))
                for path, data in files.items()
                if data is not None
            ]
            gone = [path for path, data in files.items() if data is None]
            client.start_commit(repo, branch)
            if puts:
                client.put_files(repo, branch, puts)
            if gone:
                client.delete_files(repo, branch, gone)
            ids.append(client.finish_commit(repo, branch).id)
        return ids
    finally:
        client.data.catalog.dispose()


def seed_repo(cairn: Cairn, repo: str, files: Mapping[str, str | bytes]) -> str:
    """Create ``repo`` holding ``files`` in one commit (see ``seed``); return its id."""
    return seed(cairn, repo, files)[0]


@contextmanager
def api(cairn: Cairn) -> Iterator[Client]:
    """The store's Python API, pipelines off (for setting up what a test does not test)."""
    from cairn.client import Client

    client = Client(cairn.home, auto_run=False)
    try:
        yield client
    finally:
        client.data.catalog.dispose()


def single_error(proc: subprocess.CompletedProcess[Any]) -> None:
    """A refusal as users should see it: one ``error:`` line and no traceback."""
    assert proc.stderr.count("error:") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def pipeline(name: str, input: Mapping[str, Any], cmd: list[str], **extra: Any) -> dict[str, Any]:
    """A pipeline spec as a dict."""
    return {"pipeline": {"name": name}, "transform": {"cmd": cmd}, "input": dict(input), **extra}


def pfs(repo: str, glob: str = "/*", **extra: Any) -> dict[str, Any]:
    """A ``pfs`` input."""
    return {"pfs": {"repo": repo, "glob": glob, **extra}}


MODES = ("embedded", "remote")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_only(reason): a CLI test about the embedded store itself; its remote run "
        "is skipped with the reason",
    )


@pytest.fixture(scope="module", params=MODES)
def cairn_mode(request: pytest.FixtureRequest) -> str:
    """``embedded`` or ``remote``: how the CLI reaches the store (see the module doc)."""
    return str(request.param)


def _skip_embedded_only(request: pytest.FixtureRequest, mode: str) -> None:
    marker = request.node.get_closest_marker("embedded_only")
    if mode == "remote" and marker is not None:
        pytest.skip(f"embedded only: {marker.args[0] if marker.args else ''}")


@pytest.fixture(scope="module")
def module_cairn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, cairn_mode: str
) -> Iterator[Cairn]:
    """One store shared by a module's tests, for scenarios that are costly to set up and
    that the tests only read."""
    root = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with Cairn(root).serving(cairn_mode) as shared:
        yield shared


@pytest.fixture
def cairn(tmp_path: Path, cairn_mode: str, request: pytest.FixtureRequest) -> Iterator[Cairn]:
    """``cairn(*args, input=None, check=True)`` against a fresh store in ``tmp_path``,
    embedded or through a server (``cairn_mode``)."""
    _skip_embedded_only(request, cairn_mode)
    # The working folder is the spec folder of the tests' pipelines; pytest makes it 0700,
    # and as root the sandbox runs transforms as an unprivileged uid that must enter it.
    tmp_path.chmod(0o755)
    with Cairn(tmp_path).serving(cairn_mode) as fresh:
        yield fresh


@contextmanager
def shared_scenario(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    build: Callable[[Cairn], Any],
    mode: str = "embedded",
) -> Iterator[tuple[Cairn, Any]]:
    """Build a costly scenario once per test run, even across pytest-xdist workers and
    both modes; the block reads it embedded or through a server (``mode``).

    ``build(cairn)`` runs against a fresh store and returns JSON-able facts; the first
    worker to get here builds, under a file lock, and the others reuse the store (for
    reading only) and the facts. This is pytest-xdist's documented pattern for
    session data. The server of ``remote`` runs no pipeline worker: nothing is written.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    root, facts = base / name, base / f"{name}.json"
    with open(base / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not facts.exists():
            root.mkdir(exist_ok=True)
            facts.write_text(json.dumps(build(Cairn(root))))
    with Cairn(root).serving(mode, worker=False) as shared:
        yield shared, json.loads(facts.read_text())
