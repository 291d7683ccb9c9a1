"""The FastAPI app of ``cairn serve``: one deployment, both protocols, metrics, and the
prediction log. ``create_app()`` is the factory uvicorn imports in each worker.

Routes (details in the protocol modules and the README's "Serving" section):

- MLflow: ``POST /invocations``, ``GET /ping``, ``GET /health``, ``GET /version``.
- Open Inference Protocol V2: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
  ``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``POST .../infer``.
- ``GET /metrics`` (Prometheus text format), ``POST /admin/log/flush`` (commit the
  prediction log; answers ``{"commit": id | null, "stats": {...}}``).

Predictions run off the event loop, in worker threads bounded by ``PREDICT_THREADS`` per
server process (requests beyond it wait their turn), so a slow model never holds
``/ping``, ``/health``, ``/metrics``, the V2 health routes or ``/admin/*``: those answer
while every prediction thread is busy.

Every prediction answers with the headers ``x-cairn-model-version`` (the version that
answered) and ``x-request-id`` (the caller's, or a new one).

A path that names a version answers only for a version in the deployment's current
policy (a route with weight > 0 or a shadow: the versions the endpoint has loaded), else
404, unless ``allow_any_version`` (then such a version is loaded on its first request and
kept). ``/admin/*`` routes answer 404 unless ``admin`` is on, and then 403 to a client
that is not on a loopback address; once the store's auth is active they also need a
bearer token whose user holds repoWriter on the served model (or clusterAdmin): 401
without a valid one, 403 naming the role lacked, as ``cairn server`` answers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cairn.api.wire import error_body, status_of
from cairn.catalog.errors import PermissionDenied, Unauthenticated
from cairn.data import NotFound
from cairn.ml.errors import MLError, SignatureError
from cairn.ml.models import ModelVersion
from cairn.server import mlflow_protocol as mlp
from cairn.server import v2_protocol as v2
from cairn.server.metrics import CONTENT_TYPE_LATEST
from cairn.server.settings import ServerSettings
from cairn.server.worker import State as _State
from cairn.server.worker import start as _start
from cairn.server.worker import stop as _stop
from cairn.server.worker import sync as _sync
from cairn.serving.endpoint import Prediction, predict_logged
from cairn.serving.errors import InputRefused, NotReady

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("cairn.server")

JSON = "application/json"
OCTETS = "application/octet-stream"
FLUSH_TIMEOUT = 60.0  # seconds a flush may wait for the log's commit
# Threads predicting at once per server process: concurrent.futures' default pool size.
# Their own limiter, not starlette's shared one, so that busy predictions never hold the
# threads the health, metrics and admin routes use.
PREDICT_THREADS = min(32, (os.cpu_count() or 1) + 4)
VERSION_HEADER = "x-cairn-model-version"
REQUEST_ID_HEADER = "x-request-id"


class _TooLarge(Exception):
    """A request body beyond ``ServerSettings.max_body`` (answered 413)."""


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, read in chunks; raises _TooLarge as soon as it passes ``limit``
    bytes (by its Content-Length or, for a chunked body, by what has arrived), so a 2 GB
    POST never sits in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(
            f"the request body of {declared} bytes exceeds the server's limit of {limit}"
        )
    parts: list[bytes] = []
    size = 0
    # raises ClientDisconnect when the client leaves or its body misses its deadline
    # (cairn.server.deadlines)
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"the request body exceeds the server's limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


# HTTP status -> MLflow's error_code (mlflow.protos.databricks_pb2) for errors that carry none
_MLFLOW_CODES = {400: "BAD_REQUEST", 413: "REQUEST_LIMIT_EXCEEDED", 404: "RESOURCE_DOES_NOT_EXIST"}


def _json(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The app serving ``settings.deployment`` (settings from the environment when None,
    as under ``uvicorn --factory``). The store is opened and the models loaded when the
    app starts (its lifespan), not here; the app answers once they are loaded."""
    settings = settings or ServerSettings.from_env()
    holder: dict[str, _State] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(_start, settings)
        holder["state"] = state
        routes.predicting = anyio.CapacityLimiter(PREDICT_THREADS)
        task = asyncio.create_task(_follow(state))
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(_stop, state)

    routes = _Routes(holder, settings)
    app = FastAPI(
        title=f"cairn serve {settings.deployment}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # Plain Starlette routes: each handler parses its own body, so FastAPI's parameter
    # machinery would only cost time on the request path.
    add = app.router.add_route
    add("/invocations", routes.invocations, methods=["POST"])
    add("/ping", routes.ping, methods=["GET"])
    add("/health", routes.ping, methods=["GET"])
    add("/version", routes.version, methods=["GET"])
    add("/v2", routes.server_metadata, methods=["GET"])
    add("/v2/", routes.server_metadata, methods=["GET"])  # answered, not redirected
    add("/v2/health/live", routes.live, methods=["GET"])
    add("/v2/health/ready", routes.ready, methods=["GET"])
    add("/v2/models/{name}", routes.model_metadata, methods=["GET"])
    add("/v2/models/{name}/ready", routes.model_ready, methods=["GET"])
    add("/v2/models/{name}/infer", routes.infer, methods=["POST"])
    add("/v2/models/{name}/versions/{version}", routes.model_metadata, methods=["GET"])
    add("/v2/models/{name}/versions/{version}/ready", routes.model_ready, methods=["GET"])
    add("/v2/models/{name}/versions/{version}/infer", routes.infer, methods=["POST"])
    add("/metrics", routes.metrics, methods=["GET"])
    # every /admin route goes through the guard (tests/server/test_admin.py lists them)
    add("/admin/log/flush", routes.admin(routes.flush), methods=["POST"])
    return app


async def _follow(state: _State) -> None:
    while True:
        await asyncio.sleep(min(1.0, state.settings.poll_interval))
        try:
            _sync(state)
        except Exception:  # following must never stop the server
            log.exception("following the endpoint failed")


# -- handlers ------------------------------------------------------------------------------
_Handler = Callable[[Request], Awaitable[Response]]


def _loopback(client: Any) -> bool:
    """Whether a request's peer (starlette's ``request.client``) is a loopback address;
    False when unknown or not an IP address."""
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return address.is_loopback


class _Routes:
    def __init__(self, holder: dict[str, _State], settings: ServerSettings) -> None:
        self.holder = holder
        self.settings = settings
        self.predicting: anyio.CapacityLimiter | None = None  # made in the app's lifespan

    async def _predict_off_loop(
        self,
        frame: Any,
        headers: Mapping[str, str],
        params: dict[str, Any] | None,
        version: int | None,
        protocol: str,
        request_id: str,
    ) -> Prediction:
        """``_predict`` in a prediction thread (see the module doc); raises what it raises."""
        return await anyio.to_thread.run_sync(
            self._predict,
            frame,
            headers,
            params,
            version,
            protocol,
            request_id,
            limiter=self.predicting,
        )

    @property
    def state(self) -> _State:
        return self.holder["state"]

    # -- the request path shared by both protocols ---------------------------------------
    def _predict(
        self,
        frame: Any,
        headers: Mapping[str, str],
        params: dict[str, Any] | None,
        version: int | None,
        protocol: str,
        request_id: str,
    ) -> Prediction:
        """Route and predict through the endpoint; a version the policy does not route to
        (only a V2 path names one) is answered by a pinned model, loaded before."""
        state = self.state
        if version is None or version not in state.pinned:
            return state.endpoint.predict(
                frame,
                headers=headers,
                params=params,
                version=version,
                protocol=protocol,
                request_id=request_id,
            )
        return _predict_pinned(state, state.pinned[version], frame, params, protocol, request_id)

    def _pin(self, version: int) -> None:
        """Load ``version`` beside the endpoint if the policy does not route to it (only
        with allow_any_version). Raises NotFound (no such version), FlavorError."""
        state = self.state
        if version in state.endpoint.versions or version in state.pinned:
            return
        from cairn.ml import flavors

        source = state.store.source
        mv = source.version(state.model, version)
        local = source.fetch(mv, state.cache_dir)
        state.pinned.setdefault(version, flavors.load(mv, local))

    # -- MLflow ----------------------------------------------------------------------------
    async def invocations(self, request: Request) -> Response:
        t0 = time.perf_counter()
        state = self.state
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        ids = {REQUEST_ID_HEADER: request_id}
        try:
            body = await _read_body(request, state.settings.max_body)
        except _TooLarge as exc:
            return self._mlflow_error("", str(exc), "too_large", ids, status=413)
        except ClientDisconnect:
            return self._gone("mlflow")
        try:
            parsed = mlp.parse_invocation(body, request.headers.get("content-type"), state.schema)
        except mlp.ProtocolError as exc:
            if exc.status == 415:
                state.metrics.error("mlflow", "unsupported_media_type", 415)
                state.metrics.observe("", "mlflow", 415, 0.0)
                return Response(exc.message, 415, headers=ids, media_type="text/plain")
            return self._mlflow_error("", exc.message, "bad_request", ids)
        try:
            prediction = await self._predict_off_loop(
                parsed.frame, request.headers, parsed.params, None, "mlflow", request_id
            )
        except SignatureError as exc:
            return self._mlflow_error("", str(exc), "signature", ids, code=exc.error_code)
        except InputRefused as exc:
            return self._mlflow_error("", str(exc), "refused", ids)
        except NotReady as exc:
            return self._unavailable("mlflow", str(exc), ids)
        except Exception as exc:
            log.exception("request %s: the model failed", request_id)
            message = f"the model failed on these inputs: {type(exc).__name__}: {exc}"
            return self._mlflow_error("", message, "model", ids, status=500)
        version = str(prediction.version.version)
        try:
            payload = mlp.predictions_body(prediction.outputs)
        except TypeError as exc:
            return self._mlflow_error(version, str(exc), "model", ids, status=500)
        state.metrics.observe(version, "mlflow", 200, time.perf_counter() - t0)
        return _json(payload, 200, {VERSION_HEADER: version, **ids})

    def _mlflow_error(
        self,
        version: str,
        message: str,
        kind: str,
        ids: dict[str, str],
        status: int = 400,
        code: str | None = None,
    ) -> Response:
        """MLflow's error answer: ``{"error_code": ..., "message": ...}`` with ``code`` (else
        the one MLflow gives ``status``)."""
        state = self.state
        state.metrics.error("mlflow", kind, status)
        state.metrics.observe(version, "mlflow", status, 0.0)
        if code is None:
            code = _MLFLOW_CODES.get(status, "INTERNAL_ERROR")
        return _json(orjson.dumps({"error_code": code, "message": message}), status, ids)

    def _gone(self, protocol: str) -> Response:
        """The client left (or missed its body deadline) before its body arrived: counted;
        the answer reaches nobody."""
        self.state.metrics.error(protocol, "disconnected", 408)
        return Response(status_code=408)

    def _unavailable(self, protocol: str, message: str, ids: dict[str, str]) -> Response:
        state = self.state
        state.metrics.error(protocol, "not_ready", 503)
        state.metrics.observe("", protocol, 503, 0.0)
        if protocol == "v2":
            body = {"error": message}
        else:
            body = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": message}
        return _json(orjson.dumps(body), 503, ids)

    async def ping(self, request: Request) -> Response:
        ready = self.state.endpoint.ready
        return Response("\n", 200 if ready else 503, media_type=JSON)

    async def version(self, request: Request) -> Response:
        return Response(_cairn_version(), 200, media_type=JSON)

    # -- Open Inference Protocol V2 ---------------------------------------------------------
    async def server_metadata(self, request: Request) -> Response:
        body = {
            "name": "cairn",
            "version": _cairn_version(),
            "extensions": ["binary_tensor_data"],
        }
        return _json(orjson.dumps(body))

    async def live(self, request: Request) -> Response:
        return _json(b'{"live":true}')

    async def ready(self, request: Request) -> Response:
        ready = self.state.endpoint.ready
        return _json(orjson.dumps({"ready": ready}), 200 if ready else 503)

    def _name(self, request: Request) -> tuple[str, int | None]:
        """The model name and version a V2 path gives. Raises V2Error (404)."""
        state = self.state
        name = request.path_params["name"]
        if name not in (state.settings.deployment, state.model):
            raise v2.V2Error(
                f"model {name!r} is not served here; this server serves "
                f"{state.settings.deployment!r}",
                404,
            )
        text = request.path_params.get("version")
        if text is None:
            return name, None
        if not text.isdigit():
            raise v2.V2Error(f"version {text!r} is not a version number", 404)
        return name, int(text)

    def _check_policy(self, version: int) -> None:
        """Raises V2Error (404) unless ``version`` may be answered: it is in the
        deployment's current policy (the versions the endpoint has loaded, so a policy
        change applies here when it applies to routed requests), or any version may be."""
        state = self.state
        if self.settings.allow_any_version or version in state.endpoint.versions:
            return
        deployment = self.settings.deployment
        raise v2.V2Error(
            f"version {version} of model {state.model!r} is not in deployment "
            f"{deployment!r}'s traffic policy (it serves {sorted(state.endpoint.versions)}); "
            f"route to it (`cairn set traffic {deployment} --canary {version}=PERCENT` or "
            f"`--shadow {version}`), or start the server with "
            "`cairn serve --allow-any-version` to answer any registered version",
            404,
        )

    async def model_metadata(self, request: Request) -> Response:
        state = self.state
        try:
            name, version = self._name(request)
            if version is None:
                served = state.endpoint.versions
                shown = state.endpoint.primary
                if shown is None:
                    raise v2.V2Error("no model version is loaded yet", 503)
                numbers = [str(v) for v in sorted(served)]
            else:
                self._check_policy(version)
                shown = await run_in_threadpool(self._version, version)
                numbers = [str(version)]
        except v2.V2Error as exc:
            return _json(orjson.dumps({"error": exc.message}), exc.status)
        body = {
            "name": name,
            "versions": numbers,
            "platform": f"cairn-{shown.flavor}",
            "inputs": v2.metadata_tensors(shown.signature, "inputs"),
            "outputs": v2.metadata_tensors(shown.signature, "outputs"),
        }
        return _json(orjson.dumps(body))

    def _version(self, version: int) -> ModelVersion:
        """A version's registry entry (served ones without a catalog query). Raises
        V2Error (404)."""
        state = self.state
        found = state.endpoint.versions.get(version)
        if found is not None:
            return found
        if version in state.pinned:
            return state.pinned[version].version  # type: ignore[no-any-return]
        try:
            return state.store.source.version(state.model, version)
        except NotFound as exc:
            raise v2.V2Error(str(exc), 404) from exc

    async def model_ready(self, request: Request) -> Response:
        state = self.state
        try:
            name, version = self._name(request)
            if version is not None:
                self._check_policy(version)
        except v2.V2Error as exc:
            return _json(orjson.dumps({"error": exc.message}), exc.status)
        if version is None:
            ready = state.endpoint.ready
        else:
            ready = version in state.endpoint.versions or version in state.pinned
        return _json(orjson.dumps({"name": name, "ready": ready}), 200 if ready else 400)

    async def infer(self, request: Request) -> Response:
        t0 = time.perf_counter()
        state = self.state
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        ids = {REQUEST_ID_HEADER: request_id}
        try:
            body = await _read_body(request, state.settings.max_body)
        except _TooLarge as exc:
            return self._v2_error("", v2.V2Error(str(exc), 413), "too_large", ids)
        except ClientDisconnect:
            return self._gone("v2")
        try:
            name, version = self._name(request)
            if version is not None:
                self._check_policy(version)
            schema = state.schema
            parsed = v2.parse_infer(body, request.headers.get(v2.HEADER), schema)
        except v2.V2Error as exc:
            kind = "not_found" if exc.status == 404 else "bad_request"
            return self._v2_error("", exc, kind, ids)
        request_id = request.headers.get(REQUEST_ID_HEADER) or parsed.id or request_id
        ids = {REQUEST_ID_HEADER: request_id}
        try:
            if (
                version is not None
                and self.settings.allow_any_version
                and version not in state.endpoint.versions
            ):
                await run_in_threadpool(self._pin, version)  # loading takes time
            prediction = await self._predict_off_loop(
                parsed.frame,
                request.headers,
                parsed.params,
                version,
                "v2",
                request_id,
            )
        except SignatureError as exc:
            return self._v2_error("", v2.V2Error(str(exc)), "signature", ids)
        except InputRefused as exc:
            return self._v2_error("", v2.V2Error(str(exc)), "refused", ids)
        except NotFound as exc:
            return self._v2_error("", v2.V2Error(str(exc), 404), "not_found", ids)
        except NotReady as exc:
            return self._unavailable("v2", str(exc), ids)
        except MLError as exc:
            return self._v2_error("", v2.V2Error(str(exc), 500), "model", ids)
        except Exception as exc:
            log.exception("request %s: the model failed", request_id)
            message = f"the model failed on these inputs: {type(exc).__name__}: {exc}"
            return self._v2_error("", v2.V2Error(message, 500), "model", ids)
        answered = prediction.version
        number = str(answered.version)
        try:
            tensors = v2.output_tensors(prediction.outputs, answered.signature)
            outputs, chunks = v2.encode_outputs(tensors, parsed.outputs, parsed.binary_default)
        except v2.V2Error as exc:
            return self._v2_error(number, exc, "bad_request", ids)
        doc: dict[str, Any] = {"model_name": name, "model_version": number, "outputs": outputs}
        if parsed.id is not None:
            doc["id"] = parsed.id
        headers = {VERSION_HEADER: number, **ids}
        header = mlp.dumps(doc)
        if chunks:
            headers[v2.HEADER] = str(len(header))
            response = Response(
                b"".join([header, *chunks]), 200, headers=headers, media_type=OCTETS
            )
        else:
            response = _json(header, 200, headers)
        state.metrics.observe(number, "v2", 200, time.perf_counter() - t0)
        return response

    def _v2_error(self, version: str, exc: v2.V2Error, kind: str, ids: dict[str, str]) -> Response:
        state = self.state
        state.metrics.error("v2", kind, exc.status)
        state.metrics.observe(version, "v2", exc.status, 0.0)
        return _json(orjson.dumps({"error": exc.message}), exc.status, ids)

    # -- operations ------------------------------------------------------------------------
    def admin(self, handler: _Handler) -> _Handler:
        """``handler`` behind the admin guard: 404 unless the server runs with ``--admin``,
        403 to a client not on a loopback address; and once the store's auth is active
        (``cairn auth activate``), 401 without a valid bearer token and 403 unless its
        subject holds repoWriter on the served model (cairn.api.access, ``serve.admin``),
        with the team server's error body."""

        async def guarded(request: Request) -> Response:
            if not self.settings.admin:
                message = "admin routes are off; start the server with `cairn serve --admin`"
                return _json(orjson.dumps({"error": message}), 404)
            if not _loopback(request.client):
                message = "admin routes answer only to clients on this machine (loopback)"
                return _json(orjson.dumps({"error": message}), 403)
            try:
                await run_in_threadpool(self._authorize, request)
            except (Unauthenticated, PermissionDenied) as exc:
                return _json(orjson.dumps({"error": error_body(exc)}), status_of(exc))
            return await handler(request)

        return guarded

    def _authorize(self, request: Request) -> None:
        """Raise Unauthenticated or PermissionDenied unless the request may call an admin
        route; nothing while auth is off. Tokens are looked up on every call, so a revoked
        one is refused at once, as by ``cairn server``. Against a ``cairn server`` the
        server decides (cairn.server.remote_store.FaceAdmin)."""
        from cairn.server.team.auth import AuthGuard

        state = self.state
        if state.store.url is not None:
            from cairn.server.remote_store import FaceAdmin

            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            bearer = token.strip() if scheme.lower() == "bearer" else None
            FaceAdmin(state.store.client, state.store.url).check(bearer, state.model)
            return
        if state.guard is None:
            from cairn.catalog.auth import AuthStore

            state.guard = AuthGuard(AuthStore(state.store.client.data.catalog))
        principal = state.guard.identify(request)
        state.guard.check(principal, "serve", "admin", {"model": state.model})

    async def metrics(self, request: Request) -> Response:
        state = self.state
        await run_in_threadpool(_sync, state)
        body = await run_in_threadpool(state.metrics.render)
        return Response(body, 200, media_type=CONTENT_TYPE_LATEST)

    async def flush(self, request: Request) -> Response:
        state = self.state
        if state.log is None:
            return _json(orjson.dumps({"logging": False, "commit": None, "stats": {}}))
        commit = await run_in_threadpool(state.log.flush, FLUSH_TIMEOUT)
        stats = state.log.stats
        state.metrics.set_log_stats(stats)
        body = {"logging": True, "repo": state.log.repo, "commit": commit, "stats": stats}
        return _json(orjson.dumps(body))


def _predict_pinned(
    state: _State,
    model: Any,
    frame: Any,
    params: dict[str, Any] | None,
    protocol: str,
    request_id: str,
) -> Prediction:
    """What Endpoint.predict does, for a pinned version: enforce, predict, log."""
    mv: ModelVersion = model.version
    outputs, latency = predict_logged(
        model,
        frame,
        params,
        predlog=state.log,
        request_id=request_id,
        deployment=state.settings.deployment,
        protocol=protocol,
        target=str(mv.version),
        strict=state.settings.strict_schema,
    )
    return Prediction(request_id, str(mv.version), mv, outputs, latency)


def _cairn_version() -> str:
    from cairn import __version__

    return str(__version__)
