"""``cairn server --tls-cert/--tls-key``: the real command in its own process, serving
HTTPS with a self-signed certificate for 127.0.0.1, and clients that trust it through
``CAIRN_CA_BUNDLE`` (the CLI and ``cairn.connect()``), or refuse it without."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.team_server import free_port

import cairn
from cairn.api.remote.client import RemoteClient, ServerUnreachable, trusting
from cairn.storage.errors import ConfigError

CAIRN = (
    str(Path(sys.executable).with_name("cairn"))
    if Path(sys.executable).with_name("cairn").exists()
    else (shutil.which("cairn") or "cairn")
)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 signed by its own key: (cert.pem, key.pem)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:  # the openssl command instead
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
            + ["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
            + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@dataclass
class TlsServer:
    url: str  # https://127.0.0.1:PORT
    cert: Path
    env: dict[str, str]  # the environment of a client process (no CAIRN_URL)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """``cairn server --tls-cert --tls-key --no-worker`` over a fresh store."""
    root = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(root)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CAIRN_", "SSL_CERT_")) or k == "CAIRN_SANDBOX"
    }
    env.update(CAIRN_HOME=str(root / "home"), CAIRN_CONFIG_DIR=str(root / "config"))
    port = free_port()
    proc = subprocess.Popen(
        [CAIRN, "server", "--port", str(port), "--no-worker"]
        + ["--tls-cert", str(cert), "--tls-key", str(key)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"https://127.0.0.1:{port}", url
        trust = httpx.create_ssl_context()
        trust.load_verify_locations(cafile=str(cert))
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", verify=trust, timeout=5).is_success:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the TLS server did not answer"
            time.sleep(0.1)
        client_env = {k: v for k, v in env.items() if k != "CAIRN_HOME"}
        yield TlsServer(url, cert, client_env)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_the_cli_talks_https_to_a_server_whose_certificate_it_is_given(
    tls_server: TlsServer,
) -> None:
    env = {**tls_server.env, "CAIRN_URL": tls_server.url, "CAIRN_CA_BUNDLE": str(tls_server.cert)}
    made = subprocess.run(
        [CAIRN, "create", "repo", "secure"], env=env, capture_output=True, text=True, timeout=60
    )

    assert made.returncode == 0, made.stderr
    with RemoteClient(tls_server.url, auto_run=False, verify=trusting(tls_server.cert)) as check:
        assert "secure" in [r.name for r in check.repos.list()]


def test_connect_trusts_the_ca_bundle_setting(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAIRN_HOME", raising=False)
    monkeypatch.setenv("CAIRN_CONFIG_DIR", tls_server.env["CAIRN_CONFIG_DIR"])
    monkeypatch.setenv("CAIRN_CA_BUNDLE", str(tls_server.cert))
    with cairn.connect(tls_server.url) as client:
        assert isinstance(client, RemoteClient)
        client.repos.create("sdk")
        client.files.put("sdk@master:/b.txt", b"bytes over tls")
        assert client.files.read("sdk@master:/b.txt") == b"bytes over tls"


def test_a_certificate_nobody_vouches_for_is_refused(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAIRN_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with RemoteClient(tls_server.url, auto_run=False) as client, pytest.raises(ServerUnreachable):
        client.repos.list()


def test_a_ca_bundle_that_is_no_certificate_is_a_config_error(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("CAIRN_CA_BUNDLE", str(bogus))
    with pytest.raises(ConfigError):
        RemoteClient(tls_server.url, auto_run=False)


def test_plain_http_to_the_tls_port_fails_at_once(tls_server: TlsServer) -> None:
    plain = tls_server.url.replace("https://", "http://")
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/api/v1/health", timeout=10)
    with RemoteClient(plain, auto_run=False) as client, pytest.raises(ServerUnreachable):
        client.repos.list()
    assert time.monotonic() - started < 10
