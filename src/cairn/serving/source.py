"""Where a model server reads and writes: ``ServingSource`` (the deployment, its model's
aliases and versions, a version's files) and ``LogSink`` (the prediction log's commits),
as Protocols, so that the serving layer works the same over the store in this process
(``StoreSource``, ``StoreSink``, here) and over a ``cairn server`` through the public
face (cairn.server.remote adapts a remote client to both; the serving layer never
imports it).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cairn.data import AlreadyExists, DataStore, NotFound
from cairn.data.subject import about
from cairn.serving.errors import ServingError

if TYPE_CHECKING:
    from cairn.ml.models import ModelVersion
    from cairn.ml.registry import Registry
    from cairn.serving.policy import Deployment, Deployments

__all__ = ["LogSink", "ServingSource", "StoreSink", "StoreSource"]


@runtime_checkable
class ServingSource(Protocol):
    """What an Endpoint reads. Each call may cross a network: an Endpoint calls them off
    the request path only (refreshing, preparing)."""

    def deployment(self, name: str) -> Deployment:
        """The deployment and its current policy. Raises NotFound."""
        ...

    def aliases(self, model: str) -> Mapping[str, int]:
        """Alias -> version of ``model``. Raises NotFound."""
        ...

    def version(self, model: str, version: int) -> ModelVersion:
        """Version ``version`` of ``model``. Raises NotFound."""
        ...

    def fetch(self, version: ModelVersion, cache_dir: Path) -> Path:
        """The version's file or folder on local disk, below ``cache_dir`` in a folder
        named by its content hash (fetched once, atomically, then reused). Raises
        NotFound (its files are gone)."""
        ...


@runtime_checkable
class LogSink(Protocol):
    """Where a PredictionLog commits its batches."""

    def commit(
        self, repo: str, branch: str, files: Sequence[tuple[str, bytes]], description: str
    ) -> str:
        """Write ``files`` ((absolute path, bytes), new paths) to ``repo@branch`` in one
        new commit, creating the repo if missing; return the commit's id. Raises
        ServingError (the branch has an open commit, which the files would join), or
        what the store raised (the log retries)."""
        ...


class StoreSource:
    """ServingSource over the store in this process: its DataStore, Registry and
    Deployments."""

    def __init__(self, data: DataStore, registry: Registry, deployments: Deployments) -> None:
        self.data = data
        self.registry = registry
        self.deployments = deployments

    def deployment(self, name: str) -> Deployment:
        return self.deployments.get(name)

    def aliases(self, model: str) -> Mapping[str, int]:
        return self.registry.aliases(model)

    def version(self, model: str, version: int) -> ModelVersion:
        return self.registry.resolve(f"{model}/{version}")

    def fetch(self, version: ModelVersion, cache_dir: Path) -> Path:
        from cairn.ml import flavors

        return flavors.fetch(self.data, version, cache_dir)


class StoreSink:
    """LogSink over a DataStore: ``put_files`` directly, so logging never runs pipelines
    in the server's process."""

    def __init__(self, data: DataStore) -> None:
        self.data = data
        self._repos: set[str] = set()

    def commit(
        self, repo: str, branch: str, files: Sequence[tuple[str, bytes]], description: str
    ) -> str:
        if repo not in self._repos:
            try:
                self.data.create_repo(repo, "prediction log (cairn.serving.predlog)")
            except AlreadyExists:
                pass
            self._repos.add(repo)
        try:
            head = self.data.inspect_branch(repo, branch).head
        except NotFound:
            head = None
        if head is not None and self.data.inspect_commit(repo, head).state == "open":
            raise open_commit(repo, branch, head)
        commit = self.data.put_files(
            repo,
            branch,
            [(path, io.BytesIO(body)) for path, body in files],
            description=description,
        )
        return commit.id


def open_commit(repo: str, branch: str, head: str) -> ServingError:
    """The error of a log that cannot commit while ``repo@branch`` has open commit
    ``head``: files put now would join someone's open commit."""
    error = ServingError(
        f"{repo}@{branch} has an open commit {head}; finish it so the log can commit"
    )
    return about(error, "commit.open", ref=f"{repo}@{branch}")
