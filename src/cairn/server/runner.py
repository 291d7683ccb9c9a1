"""``serve``: start the HTTP server of one deployment, as ``cairn serve`` does."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from cairn.api.refs import model_ref
from cairn.catalog.auth import AuthStore
from cairn.data import NotFound
from cairn.server.settings import ServerSettings
from cairn.server.worker import Store, open_store
from cairn.serving.endpoint import Endpoint
from cairn.serving.policy import Deployment

__all__ = ["serve"]


def serve(
    settings: ServerSettings,
    *,
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    on_ready: Callable[[Deployment], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> None:
    """Serve ``settings.deployment`` over HTTP on ``host``:``port`` with ``workers``
    processes (each loads the models) until interrupted, from the store in this process
    or, when ``settings.url`` names one, a ``cairn server``'s (cairn.server.worker).

    With ``model`` (``cancer@champion`` or ``cancer/3``), a missing deployment is created
    first with all traffic to it. Before any worker starts, the policy's versions are
    fetched here, so a version whose files are gone raises once instead of failing every
    worker; ``on_ready(deployment)`` is then called, before the server listens. The
    settings reach the workers through the environment (ServerSettings.to_env). Before
    ``on_ready``, ``on_warning(message)`` says when the admin routes are open to anyone
    who reaches them (``settings.admin`` while the store's auth is off). With several
    workers, the Prometheus values go through a fresh temporary folder, removed
    when the server stops. Raises NotFound (no such deployment, without ``model``),
    InvalidReference, PolicyError, ServingError (the deployment serves another model),
    MLError (a version cannot be fetched), OSError (the port is taken)."""
    import uvicorn

    store = open_store(settings)
    try:
        found = _deployment(store, settings.deployment, model)
        home = None if store.url is not None else store.client.home
        settings = settings.model_copy(update={"deployment": found.name, "home": home})
        check = Endpoint(store.source, found.name, cache_dir=store.cache_dir)
        try:
            check.prepare()
            if settings.admin and on_warning is not None and not _auth_active(store):
                on_warning(
                    f"admin routes (/admin/*) are open to anyone who can reach "
                    f"http://{host}:{port} from this machine: the store's auth is off "
                    "(`cairn auth activate` on its server turns it on, and then they need a "
                    "token with repoWriter on the model)"
                )
        finally:
            check.close()
    finally:
        store.close()  # each worker opens the store itself
    metrics_dir = None
    if workers > 1:
        # prometheus_client's multiprocess mode: every worker writes its values there and
        # /metrics adds them up; a fresh folder so no earlier server's values count.
        metrics_dir = tempfile.mkdtemp(prefix="cairn-serve-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ.update(settings.to_env())
    try:
        if on_ready is not None:
            on_ready(found)
        uvicorn.run(
            "cairn.server.app:create_app",
            factory=True,
            # uvicorn's protocol plus deadlines for a request's headers and body
            http="cairn.server.deadlines:DeadlineProtocol",
            ws="none",  # no websocket routes; an upgrade would escape the deadlines
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _auth_active(store: Store) -> bool:
    if store.url is None:
        return AuthStore(store.client.data.catalog).is_active()
    from cairn.server.remote_store import FaceAdmin

    return FaceAdmin(store.client, store.url).active()


def _deployment(store: Store, name: str, model: str | None) -> Deployment:
    """Deployment ``name``, created for ``model`` if missing. One that exists and serves
    that model is only read, so a user who may read the model (repoReader, on a server
    with auth) serves it; creating one needs repoWriter. Raises as ``serve``."""
    deployments = store.client.deployments
    try:
        found: Deployment = deployments.get(name)
    except NotFound:
        if model is None:
            raise
        return deployments.create(name, model)  # type: ignore[no-any-return]
    if model is not None and found.model != model_ref(model).name:
        return deployments.create(name, model)  # type: ignore[no-any-return]  # ServingError
    return found
