"""The model server over a ``cairn server``: the serving layer's ServingSource and LogSink
(cairn.serving.source) through the public face (cairn.api.protocol), so that ``cairn
serve`` runs on one machine and the store on another.

- ``FaceSource`` reads the deployment (``deployments.get``) and the model's aliases
  (``models.aliases``) each time the endpoint refreshes (every ``CAIRN_SERVE_POLL``
  seconds), so a policy change or a rollback made by any client applies within about
  that long; a version's files come from ``models.download`` (read on the model is
  enough) into the cache, in a folder named by their content hash, once per machine.
- ``FaceSink`` commits each batch of the prediction log with one ``files.put`` into the
  log repo on the server, where ``cairn monitor`` (``monitors.check``) reads it.
- ``FaceAdmin`` checks a caller of the ``/admin/*`` routes with the server: once its auth
  is active, the caller's bearer token must hold repoWriter on the served model (or
  clusterAdmin), as for ``serve.admin`` in cairn.api.access.

The server process acts with the token of whoever runs ``cairn serve`` (``CAIRN_TOKEN``
or the context's): repoReader on the model serves it; logging needs repoWriter on the
log repo (any user may create it, and then owns it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.catalog.auth import Role
from cairn.catalog.errors import PermissionDenied, Unauthenticated
from cairn.data import AlreadyExists, CommitState, NotFound
from cairn.ml import flavors
from cairn.serving.source import open_commit

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol
    from cairn.ml.models import ModelVersion
    from cairn.serving.policy import Deployment

__all__ = ["FaceAdmin", "FaceSink", "FaceSource"]


class FaceSource:
    """ServingSource over a client of the face (remote or embedded)."""

    def __init__(self, client: ClientProtocol) -> None:
        self.client = client

    def deployment(self, name: str) -> Deployment:
        return self.client.deployments.get(name)

    def aliases(self, model: str) -> Mapping[str, int]:
        return self.client.models.aliases(model)

    def version(self, model: str, version: int) -> ModelVersion:
        return self.client.models.get(f"{model}/{version}")

    def fetch(self, version: ModelVersion, cache_dir: Path) -> Path:
        spec = f"{version.name}/{version.version}"
        return flavors.cached(
            version, cache_dir, lambda path: self.client.models.download(spec, path)
        )


class FaceSink:
    """LogSink over a client of the face: one ``files.put`` per batch."""

    def __init__(self, client: ClientProtocol) -> None:
        self.client = client
        self._repos: set[str] = set()

    def commit(
        self, repo: str, branch: str, files: Sequence[tuple[str, bytes]], description: str
    ) -> str:
        client = self.client
        if repo not in self._repos:
            try:
                client.repos.create(repo, "prediction log (cairn.serving.predlog)")
            except AlreadyExists:
                pass
            self._repos.add(repo)
        try:
            head = client.branches.get(f"{repo}@{branch}").head
        except NotFound:
            head = None
        if head is not None and client.commits.get(f"{repo}@{head}").state == CommitState.OPEN:
            raise open_commit(repo, branch, head)
        batch = {path.lstrip("/"): body for path, body in files}
        return client.files.put(f"{repo}@{branch}:/", batch, description=description).id


class FaceAdmin:
    """Who may call ``cairn serve``'s admin routes, asked of the ``cairn server`` at
    ``url``: ``client`` is the model server's own (to learn whether auth is active), and
    each caller's token is checked with a client of its own."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url

    def active(self) -> bool:
        """Whether the server's auth is on. The model server's own calls already pass
        (it loaded its models), so ``whoami`` fails only when auth is off."""
        try:
            self.client.auth.whoami()
        except Unauthenticated:
            return False
        return True

    def check(self, token: str | None, model: str) -> None:
        """Raise Unauthenticated (no valid token) or PermissionDenied (below repoWriter
        on ``model``) while auth is active; nothing while it is off."""
        if not self.active():
            return
        if not token:
            raise Unauthenticated("this server needs a token: send it as a bearer token")
        from cairn.api.remote.client import RemoteClient

        with RemoteClient(self.url, token, auto_run=False) as caller:
            me = caller.auth.whoami()["subject"]
            roles = caller.auth.check("model", model)
        if not any(r.rank >= Role.REPO_WRITER.rank for r in roles):
            raise PermissionDenied(
                f"{me} lacks {Role.REPO_WRITER} on model {model}",
                subject=me,
                role=str(Role.REPO_WRITER),
                kind="model",
                resource=model,
            )
