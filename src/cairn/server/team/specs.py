"""The pipeline routes of ``cairn server``: ``pipelines.create``/``update`` with the code
their transform runs beside, as a code bundle (cairn.api.bundles).

A transform runs in its spec's folder (``bash copy.sh`` finds ``copy.sh`` beside the spec),
and that folder is on the client's machine. So the client (cairn.api.remote.pipelines):

1. packs the folder (the spec file's, or ``spec_dir``, or the current folder for specs
   given as values) and asks ``GET /api/v1/code/{id}`` whether the server holds it (the id
   is BLAKE3 of the bundle's bytes, which name its content);
2. if not, sends it: ``POST /api/v1/code``, the tar.gz as the body (at most
   MAX_BUNDLE_BYTES). The server hashes what it receives (the id is the server's, never
   the client's word), and unpacks it once, safely, into ``<home>/code/<id>/`` (a
   temporary folder renamed into place, so a folder there is complete);
3. ``POST /api/v1/pipelines/create`` (or ``update``) ``{"spec": {...} | [{...}, ...],
   "code": id, "reprocess": false}``: the specs as values (the client parsed them with
   cairn's one loader, so errors name the field as embedded ones do; the server checks
   them again) and the bundle they run in.

Invariant: a client never names a folder of the server. These routes take no
``spec_dir`` and no spec path (422), and the generic route of the face does not exist for
these two methods (cairn.api.wire.SPECIAL); only a bundle's folder, or an empty folder
when no bundle is named, becomes the pipelines' ``spec_dir``. The guard sees the calls as
``pipelines.create``/``update`` (with the specs and that folder) and the bundle routes as
``pipelines.code``. ``store.gc`` removes the bundles no pipeline uses (cairn.api.bundles
``collect``); a bundle a request finds or takes into use is touched, so a collection
running meanwhile spares it, and so is the one an update stops using (a job may still run
in it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import blake3
from fastapi import FastAPI, Request
from fastapi import Path as InPath
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cairn.api.bundles import CODE_DIR, EMPTY_BUNDLE, MAX_BUNDLE_BYTES, BundleError, touch, unpack
from cairn.api.wire import API_PREFIX, method
from cairn.pipelines.spec import parse_spec
from cairn.server.team.app import call
from cairn.storage.errors import CairnError

__all__ = ["add_spec_routes", "code_folder"]

_ID = r"^[0-9a-f]{64}$"


class SpecCall(BaseModel):
    """The body of ``pipelines.create``/``update`` on the wire."""

    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] | list[dict[str, Any]] = Field(
        description="one spec or a list of specs, as values (never a path)"
    )
    code: str | None = Field(
        default=None, pattern=_ID, description="the code bundle the transforms run in"
    )
    reprocess: bool = False


def code_folder(home: Path, bundle: str | None) -> Path:
    """The folder of code bundle ``bundle`` under ``home`` (an empty folder for None).
    Touches it (it is being taken into use). Raises BundleError when the server does not
    hold that bundle."""
    root = Path(home) / CODE_DIR
    if bundle is None:
        folder = root / EMPTY_BUNDLE
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        return folder
    folder = root / bundle
    if not folder.is_dir():
        raise BundleError(f"code bundle {bundle} is not on the server; send it first")
    touch(folder)
    return folder


def _present(folder: Path) -> bool:
    """Whether bundle ``folder`` is there, touched if so: the client will not send it."""
    try:
        touch(folder)
    except BundleError:
        return False
    return folder.is_dir()


def _store(home: Path, spooled: Path, bundle: str) -> bool:
    """Unpack the bundle at ``spooled`` into ``<home>/code/<bundle>`` unless it is there;
    whether it was unpacked now."""
    root = Path(home) / CODE_DIR
    dest = root / bundle
    if dest.is_dir():
        return False
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        with open(spooled, "rb") as f:
            unpack(f, work)
        work.chmod(0o755)  # a sandboxed transform runs as another uid and must enter it
        try:
            os.rename(work, dest)
        except OSError:
            if not dest.is_dir():
                raise
            return False  # another request unpacked the same bundle meanwhile
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _touch_replaced(client: Any, home: Path, specs: list[Any]) -> None:
    """Touch the bundles the pipelines of ``specs`` run in now: an update may stop using
    one while a job still runs in it, and gc spares what changed after the oldest open
    job began."""
    root = (Path(home) / CODE_DIR).resolve()
    for spec in specs:
        try:
            folder = Path(client.pipelines.get(spec.name).spec_dir)
        except CairnError:  # a new pipeline, or one the update is to repair
            continue
        if folder.parent == root:
            with contextlib.suppress(BundleError):
                touch(folder)


def add_spec_routes(app: FastAPI) -> None:
    """Add the routes of the module doc to ``app`` (cairn.server.team.app.create_api)."""

    def home() -> Path:
        return Path(app.state.client.home)

    @app.get(f"{API_PREFIX}/code/{{bundle}}", tags=["pipelines"])
    def has_code(request: Request, bundle: Annotated[str, InPath(pattern=_ID)]) -> dict[str, Any]:
        """Whether the server holds code bundle ``bundle`` (its id)."""
        present = call(
            request,
            "pipelines",
            "code",
            {"code": bundle},
            run=lambda: _present(home() / CODE_DIR / bundle),
        )
        return {"id": bundle, "present": bool(present)}

    @app.post(f"{API_PREFIX}/code", tags=["pipelines"])
    async def send_code(request: Request) -> dict[str, Any]:
        """Store a code bundle (the body: a tar.gz, cairn.api.bundles); its id."""
        await run_in_threadpool(call, request, "pipelines", "code", {}, run=lambda: None)
        root = home() / CODE_DIR
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        digest = blake3.blake3()
        size = 0
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=root)
        spooled = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                async for piece in request.stream():
                    size += len(piece)
                    if size > MAX_BUNDLE_BYTES:
                        raise BundleError(f"a code bundle is at most {MAX_BUNDLE_BYTES >> 20} MiB")
                    digest.update(piece)
                    f.write(piece)
            bundle = digest.hexdigest()
            stored = await run_in_threadpool(_store, home(), spooled, bundle)
        finally:
            spooled.unlink(missing_ok=True)
        return {"id": bundle, "stored": stored}

    for name in ("create", "update"):
        _add_write(app, name, home)


def _add_write(app: FastAPI, name: str, home: Any) -> None:
    m = method("pipelines", name)

    def write(request: Request, body: SpecCall) -> JSONResponse:
        items = body.spec if isinstance(body.spec, list) else [body.spec]
        specs = [parse_spec(s, source=f"spec {i + 1}") for i, s in enumerate(items)]
        folder = code_folder(home(), body.code)
        if name == "update":
            _touch_replaced(request.app.state.client, home(), specs)
        # The guard sees the specs, not the folder: the server chose it, not the caller.
        result = call(
            request,
            "pipelines",
            name,
            {"spec": specs, "reprocess": body.reprocess},
            run=lambda: getattr(request.app.state.client.pipelines, name)(
                specs, spec_dir=folder, reprocess=body.reprocess
            ),
        )
        return JSONResponse({"result": m.encode_result(result)})

    write.__name__ = f"pipelines_{name}"
    app.post(m.path, tags=["pipelines"], summary=f"pipelines.{name}", description=m.doc)(write)
