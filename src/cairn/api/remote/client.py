"""``RemoteClient``: the face (cairn.api.protocol.ClientProtocol) over ``cairn server``.

Each sub-client is made from its Protocol: a method binds its arguments as the Protocol's
signature does, sends them as one JSON call (cairn.api.wire), and returns the answer as
the same frozen dataclasses the embedded client returns, or raises the same error class.
``files`` moves bytes over the file routes instead (cairn.api.remote.files).
"""

from __future__ import annotations

import inspect
import ssl
import urllib.request
from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import httpx

from cairn.api.remote.reads import large_read_transport
from cairn.api.wire import SPECIAL, ServerUnreachable, method, raise_error
from cairn.data import CommitInfo, CommitState
from cairn.storage.errors import CairnError, ConfigError

__all__ = ["RemoteClient", "ServerUnreachable", "Transport", "trusting"]


TRIGGERS = frozenset(
    {
        ("files", "copy"),
        ("files", "delete"),
        ("commits", "finish"),
        ("pipelines", "create"),
        ("pipelines", "update"),
        ("pipelines", "start"),
        ("pipelines", "rerun"),
    }
)
"""Calls after which an embedded client runs the pipelines downstream (``auto_run``): the
remote client waits for the server's worker to run them (the file puts do too)."""


def trusting(ca_bundle: str | Path) -> ssl.SSLContext:
    """A TLS context that trusts the usual authorities (httpx's: ``SSL_CERT_FILE`` or
    ``SSL_CERT_DIR`` if set, else certifi's) and the PEM certificates in ``ca_bundle``:
    a server's self-signed certificate, or a team's own authority. Raises ConfigError
    (the file cannot be read or holds no certificate)."""
    context = httpx.create_ssl_context()
    try:
        context.load_verify_locations(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"CAIRN_CA_BUNDLE {ca_bundle}: not a readable PEM file of certificates ({exc})"
        ) from None
    return context


class Transport:
    """One HTTP connection pool to the server at ``url`` (``http(s)://host:port``), with
    the bearer ``token`` on every request when given. Waits may take as long as the call
    says, so reads have no timeout; connecting gives up after ``connect_timeout`` s."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        connect_timeout: float = 10.0,
        verify: bool | ssl.SSLContext = True,
        auto_run: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.auto_run = auto_run
        headers = {"User-Agent": "cairn-remote"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Proxies from the environment apply only to httpx's own transport.
        transport = None if urllib.request.getproxies() else large_read_transport(verify)
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(None, connect=connect_timeout),
            verify=verify,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def request(self, verb: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; raise the server's error as its own class."""
        try:
            response = self.http.request(verb, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach cairn server at {self.url}: {exc}") from None
        check(response)
        return response

    def call(self, sub: str, name: str, kwargs: dict[str, Any]) -> Any:
        """Call face method ``sub.name`` with keyword arguments; its decoded result. After
        a write that may trigger pipelines, wait for them as an embedded write does
        (``settle``), when ``auto_run``."""
        m = method(sub, name)
        response = self.request("POST", m.path, json=m.encode_args(kwargs))
        result = m.decode_result(response.json()["result"])
        if (sub, name) in TRIGGERS:
            self.settled(result)
        return result

    def settled(self, result: Any = None) -> None:
        """Wait until the server's worker has run the pipelines a write made stale (a
        write into an open commit triggers nothing). No-op unless ``auto_run``."""
        if not self.auto_run:
            return
        if isinstance(result, CommitInfo) and result.state is not CommitState.FINISHED:
            return
        self.request("POST", "/api/v1/settle")


def check(response: httpx.Response) -> None:
    """Raise the error a non-2xx ``response`` carries (read first if it was streamed)."""
    if response.is_success:
        return
    if not response.is_closed and not hasattr(response, "_content"):
        response.read()
    try:
        body = response.json().get("error")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text[:200]
        raise CairnError(f"server answered {response.status_code}: {text}")
    raise_error(body, response.status_code, CairnError)


class RemoteSub:
    """Base of the generated sub-clients: holds the transport and the sub-client name."""

    def __init__(self, transport: Transport, sub: str) -> None:
        self._transport = transport
        self._sub = sub

    def __repr__(self) -> str:
        return f"<remote {self._sub} at {self._transport.url}>"


class RemoteCommitsBase(RemoteSub):
    """``commits.wait_jobs`` over the wire: the server's worker starts the jobs, so it is
    asked to run what is stale (``settle``) between the commit and its jobs."""

    def wait_jobs(self, ref: Any, timeout: float | None = None) -> Any:
        """CommitsProtocol.wait_jobs against the server."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        self._transport.call("commits", "wait", {"ref": ref, "timeout": timeout})
        params = {} if deadline is None else {"timeout": left()}
        answer = self._transport.request("POST", "/api/v1/settle", params=params).json()
        if not answer.get("settled", True):
            raise TimeoutError(f"the server's worker did not run {ref}'s jobs in {timeout}s")
        return self._transport.call("commits", "wait_jobs", {"ref": ref, "timeout": left()})


def _remote_method(sub: str, name: str, proto: type) -> Callable[..., Any]:
    signature = inspect.signature(getattr(proto, name))

    def call(self: RemoteSub, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        given = dict(list(bound.arguments.items())[1:])
        # resolved on the first call, not when the class is built: the annotations of
        # monitors.check name drift's types, whose module loads SciPy and pandas
        m = method(sub, name)
        if m.variadic is not None:
            given[m.variadic] = list(given.get(m.variadic, ()))
        return self._transport.call(sub, name, given)

    call.__name__ = name
    call.__qualname__ = f"Remote{proto.__name__.removesuffix('Protocol')}.{name}"
    call.__doc__ = getattr(proto, name).__doc__
    call.__signature__ = signature  # type: ignore[attr-defined]
    return call


@cache
def remote_class(sub: str, base: type = RemoteSub) -> type:
    """The sub-client class of ``sub``: one method per method of its Protocol, generated,
    but those ``base`` defines itself (cairn.api.remote.files, ``pipelines``,
    ``monitors``). The class holds every method itself, so it lists exactly what its
    Protocol declares."""
    from cairn.api.protocol import SUB_CLIENTS

    proto = SUB_CLIENTS[sub]
    own = {k: v for k, v in vars(base).items() if not k.startswith("_") and callable(v)}
    declared = [n for n, fn in vars(proto).items() if not n.startswith("_") and callable(fn)]
    missing = [n for n in declared if (sub, n) in SPECIAL and n not in own]
    if missing:
        raise TypeError(f"{base.__name__} does not define {sub}.{', '.join(missing)}")
    methods = {n: own[n] if n in own else _remote_method(sub, n, proto) for n in declared}
    name = f"Remote{proto.__name__.removesuffix('Protocol')}"
    return type(name, (base,), {**methods, "__doc__": proto.__doc__, "__module__": __name__})


class RemoteClient:
    """The face of cairn.api.protocol over a ``cairn server`` at ``url``; ``token`` is the
    bearer token (``cairn auth login``) when the server's auth is active. Sub-clients as
    the embedded Client's, same values, same errors; no layer objects (``data``,
    ``registry``), since the store is the server's. Over https, the server's certificate
    must be signed by an authority the process trusts, or by one in ``CAIRN_CA_BUNDLE``
    (``trusting``); ``verify`` (Transport's) replaces that choice. Raises ConfigError (a
    CA bundle that cannot be read)."""

    def __init__(
        self, url: str, token: str | None = None, *, auto_run: bool | None = None, **transport: Any
    ) -> None:
        if auto_run is None or "verify" not in transport:
            from cairn.storage.settings import read_settings

            settings = read_settings()
            if auto_run is None:
                auto_run = settings.auto_run
            if "verify" not in transport and settings.ca_bundle is not None:
                transport["verify"] = trusting(settings.ca_bundle)
        self.url = url
        self.transport = Transport(url, token, auto_run=auto_run, **transport)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def server_version(self) -> str:
        """The server's cairn version. Raises ServerUnreachable."""
        return str(self.transport.request("GET", "/api/v1/version").json()["version"])

    def _sub(self, sub: str, base: type = RemoteSub) -> Any:
        return remote_class(sub, base)(self.transport, sub)

    @cached_property
    def auth(self) -> Any:
        """Tokens and roles (cairn.api.remote.auth.RemoteAuth): a server's, not the face's."""
        from cairn.api.remote.auth import RemoteAuth

        return RemoteAuth(self.transport)

    @cached_property
    def repos(self) -> Any:
        return self._sub("repos")

    @cached_property
    def branches(self) -> Any:
        return self._sub("branches")

    @cached_property
    def commits(self) -> Any:
        return self._sub("commits", RemoteCommitsBase)

    @cached_property
    def files(self) -> Any:
        from cairn.api.remote.files import RemoteFilesBase

        return self._sub("files", RemoteFilesBase)

    @cached_property
    def pipelines(self) -> Any:
        from cairn.api.remote.pipelines import RemotePipelinesBase

        return self._sub("pipelines", RemotePipelinesBase)

    @cached_property
    def jobs(self) -> Any:
        return self._sub("jobs")

    @cached_property
    def runs(self) -> Any:
        return self._sub("runs")

    @cached_property
    def models(self) -> Any:
        from cairn.api.remote.files import RemoteModelsBase

        return self._sub("models", RemoteModelsBase)

    @cached_property
    def deployments(self) -> Any:
        return self._sub("deployments")

    @cached_property
    def monitors(self) -> Any:
        from cairn.api.remote.monitors import RemoteMonitorsBase

        return self._sub("monitors", RemoteMonitorsBase)

    @cached_property
    def events(self) -> Any:
        return self._sub("events")

    @cached_property
    def secrets(self) -> Any:
        return self._sub("secrets")

    @cached_property
    def store(self) -> Any:
        return self._sub("store")
