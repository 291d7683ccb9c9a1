"""Servers for the backends that are not embedded: an S3 store (moto) and PostgreSQL.

One of each per test session (per pytest-xdist worker), started on first use and
stopped at the end; each test gets a fresh bucket or database on it. PostgreSQL comes
from Debian's ``postgresql`` package (``initdb`` / ``pg_ctl`` under
``/usr/lib/postgresql/*/bin``), started in a temporary folder on a free loopback port;
as root it runs as the ``postgres`` user, since PostgreSQL refuses to run as root.

A missing backend skips its tests, unless ``CAIRN_REQUIRE_BACKENDS=1`` (CI sets it):
then it fails them, so CI never passes by skipping a backend.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Credentials and region for the moto server only: dummy values, never a real account.
S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "cairn-test-key",
    "AWS_SECRET_ACCESS_KEY": "cairn-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
S3_UNSET_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def missing_backend(reason: str) -> None:
    """Skip the test, or fail it when CI requires every backend."""
    if os.environ.get("CAIRN_REQUIRE_BACKENDS") == "1":
        pytest.fail(f"{reason} (CAIRN_REQUIRE_BACKENDS=1 forbids skipping it)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- S3 (moto) --------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    client: Any  # a boto3 S3 client with the dummy credentials, for setting up tests


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1, one per session."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing_backend("S3 tests need boto3 and moto[server]: pip install -e '.[dev]'")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_TEST_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        yield S3Server(endpoint, client)
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials for this test, and no ~/.aws files or endpoint from outside."""
    for name, value in S3_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    for name in S3_UNSET_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_s3_url(s3_server: S3Server, s3_env: None) -> Callable[[], str]:
    """A factory of ``s3://`` URLs, each a fresh bucket on the session's moto server."""

    def make() -> str:
        bucket = f"cairn-{uuid.uuid4().hex[:20]}"
        s3_server.client.create_bucket(Bucket=bucket)
        return f"s3://{bucket}/store?endpoint_url={s3_server.endpoint}"

    return make


# -- PostgreSQL -------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name or 0)
    )
    for d in reversed(dirs):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


@dataclass(frozen=True)
class PostgresServer:
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://cairn@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster in a temporary folder on a free loopback port, one per
    session; user ``cairn`` with trust authentication, C collation (SQLite's order)."""
    bindir = _postgres_bin()
    if bindir is None:
        missing_backend("PostgreSQL tests need initdb and pg_ctl: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing_backend("PostgreSQL tests need psycopg: pip install -e '.[dev]'")
    as_postgres: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="cairn-pg-"))
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root; Debian's package creates the postgres user.
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_postgres, *args], capture_output=True, text=True)
        if done.returncode:
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{args[0]} failed: {done.stdout}{done.stderr}{tail}", pytrace=False)

    run(
        str(bindir / "initdb"),
        *("-D", str(data), "-U", "cairn", "--auth=trust", "--locale=C", "-E", "UTF8"),
        "--no-sync",
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    try:
        yield PostgresServer(port)
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_postgres_url(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """A factory of ``postgresql://`` URLs, each a fresh database dropped after the test."""
    import psycopg

    made: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return postgres_server.url(name)

    yield make
    if made:
        with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _enterable_tmp_path(request: pytest.FixtureRequest) -> None:
    """pytest makes ``tmp_path`` mode 0700; as root, the sandbox runs transforms as an
    unprivileged uid that must enter the spec folder (README, Security), as it can in a
    folder made with the usual umask. Tests whose specs live in ``tmp_path`` get that."""
    if "tmp_path" in request.fixturenames:
        request.getfixturevalue("tmp_path").chmod(0o755)
