"""The facade: one Python API over data and pipelines, used by the CLI and by programs.

``Client.open()`` finds the embedded store the way git finds ``.git``: the
``$CAIRN_HOME`` folder if set, else the nearest ``.cairn/`` folder in the
current folder or a parent, else a new ``.cairn/`` in the current folder.
The folder holds ``catalog.db`` (SQLite), ``objects/`` (chunks, trees, logs),
``work/`` (datums' scratch space), ``catalog.db-locks/`` (cairn.catalog.locks) and, once a
secret is created, ``secrets.json`` (cairn.pipelines.secret_store); its ``config.toml`` or
``CAIRN_OBJECTS_URL`` / ``CAIRN_CATALOG_URL`` may put the objects on S3 and the
catalog on PostgreSQL instead (see cairn.storage.config).

Every write that finishes a commit (a put without an open commit, ``finish
commit``, creating or updating a pipeline) then runs the pipelines downstream
of it, in this process, before returning, unless ``auto_run`` is False (set
``CAIRN_AUTO_RUN=0`` when a ``cairn run`` process does that work).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cairn.api.embedded.commits import wait_commit
from cairn.api.embedded.local import LocalFiles, local_items
from cairn.catalog import CatalogChunkIndex, open_catalog
from cairn.data import (
    BranchInfo,
    CommitInfo,
    DataStore,
    FileChange,
    FileInfo,
    Ref,
    RepoInfo,
    RepoInUse,
    parse_ref,
)
from cairn.data.fsck import FsckReport
from cairn.data.gc import DEFAULT_GRACE, GcReport
from cairn.data.subject import about
from cairn.pipelines import (
    JobInfo,
    PipelineInfo,
    Pipelines,
    Reporter,
    commit_lineage,
    file_lineage,
)
from cairn.pipelines.secret_store import SecretInfo, SecretStore
from cairn.storage import ChunkStore, open_object_store
from cairn.storage.config import is_home, load_store_config
from cairn.storage.settings import read_settings

if TYPE_CHECKING:
    from cairn.api.embedded.branches import EmbeddedBranches
    from cairn.api.embedded.commits import EmbeddedCommits
    from cairn.api.embedded.deployments import EmbeddedDeployments
    from cairn.api.embedded.events import EmbeddedEvents
    from cairn.api.embedded.files import EmbeddedFiles
    from cairn.api.embedded.jobs import EmbeddedJobs
    from cairn.api.embedded.models import EmbeddedModels
    from cairn.api.embedded.monitors import EmbeddedMonitors
    from cairn.api.embedded.pipelines import EmbeddedPipelines
    from cairn.api.embedded.repos import EmbeddedRepos
    from cairn.api.embedded.runs import EmbeddedRuns
    from cairn.api.embedded.secrets import EmbeddedSecrets
    from cairn.api.embedded.store import EmbeddedStore
    from cairn.api.protocol import ClientProtocol
    from cairn.ml.registry import Registry
    from cairn.ml.runs import Runs
    from cairn.monitoring.loop import Monitors
    from cairn.pipelines.daemons import Daemons
    from cairn.pipelines.transactions import TransactionInfo, Transactions
    from cairn.serving.policy import Deployments

__all__ = ["Client", "connect", "find_home", "local_items"]

HOME_DIR = ".cairn"


def find_home(start: Path | None = None) -> tuple[Path, bool]:
    """The store folder to use and whether it exists already (see the module doc)."""
    env = read_settings().home
    if env:
        path = env.expanduser().resolve()
        return path, is_home(path)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_home(folder / HOME_DIR):
            return folder / HOME_DIR, True
    return here / HOME_DIR, False


def connect(
    url: str | None = None,
    *,
    home: str | Path | None = None,
    token: str | None = None,
    reporter: Reporter | None = None,
    auto_run: bool | None = None,
) -> ClientProtocol:
    """A cairn client, as the CLI picks one: remote over the ``cairn server`` at ``url``
    (``http(s)://host:port``), else the embedded store at ``home``, else as the settings
    say (cairn.storage.settings): ``$CAIRN_URL``, then ``$CAIRN_HOME``, then the active
    saved context (``cairn config use context``), then the store ``find_home`` finds.
    ``token`` (else ``$CAIRN_TOKEN`` or the context's) is sent to a server; ``reporter``
    reports the jobs an embedded client runs. Both kinds satisfy
    cairn.api.protocol.ClientProtocol. Raises ConfigError (a bad URL, an unknown context).
    """
    from cairn.storage.contexts import check_url

    if url is None and home is None:
        settings = read_settings()
        url, token = settings.url, token or settings.token
    elif url is not None:
        url = check_url(url, "url")
        token = token or read_settings(url=url).token
    if url is not None:
        from cairn.api.remote.client import RemoteClient

        return RemoteClient(url, token, auto_run=auto_run)
    return Client.open(home, reporter=reporter, auto_run=auto_run)


class Client:
    """cairn's Python API, embedded: the face of cairn.api.protocol (``ClientProtocol``)
    over the store in ``home``. Its sub-clients, ``repos``, ``branches``, ``commits``,
    ``files``, ``pipelines``, ``jobs``, ``runs``, ``models``, ``deployments``,
    ``monitors``, ``events``, ``secrets`` and ``store``, take the strings users type and
    return value objects; writes through them trigger pipelines.

    The layers below the face, for their own functions and for adapters in this
    process (the model server): ``data`` (the DataStore), ``registry`` (the Registry),
    ``tracking`` (Runs), ``traffic`` (Deployments) and ``loop`` (Monitors). A remote
    client has none of them.
    """

    def __init__(
        self, home: Path, *, reporter: Reporter | None = None, auto_run: bool | None = None
    ) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        backends = load_store_config(self.home)  # env, then config.toml, then embedded
        catalog = open_catalog(backends.catalog)
        objects = open_object_store(backends.objects)
        self.data = DataStore(catalog, ChunkStore(objects, index=CatalogChunkIndex(catalog)))
        self._secret_store = SecretStore(self.home / "secrets.json")
        self._pipelines = Pipelines(
            self.data,
            catalog,
            work_dir=self.home / "work",
            private_paths=(self.home,),
            # cairn server unpacks pipelines' code there (cairn.server.team.specs): a
            # transform may run in one of those folders, bound alone into its sandbox
            shared_paths=(self.home / "code",),
            secrets=self._secret_store,
            executor=backends.executor,
        )
        self.reporter = reporter or Reporter()
        if auto_run is None:
            auto_run = read_settings().auto_run
        self.auto_run = auto_run

    @classmethod
    def open(cls, home: str | Path | None = None, **kwargs: object) -> Client:
        """Open the store at ``home`` or the one ``find_home`` picks."""
        path = Path(home) if home else find_home()[0]
        return cls(path, **kwargs)  # type: ignore[arg-type]

    # -- the face (cairn.api): one sub-client per kind of thing -------------------------
    @cached_property
    def repos(self) -> EmbeddedRepos:
        """Repos (cairn.api.protocol.ReposProtocol)."""
        from cairn.api.embedded.repos import EmbeddedRepos

        return EmbeddedRepos(self.data, delete=self.delete_repo)

    @cached_property
    def branches(self) -> EmbeddedBranches:
        """Branches, ``repo@branch`` (BranchesProtocol)."""
        from cairn.api.embedded.branches import EmbeddedBranches

        return EmbeddedBranches(self.data, self.run_pipelines if self.auto_run else None)

    @cached_property
    def commits(self) -> EmbeddedCommits:
        """Commits, ``repo@commit`` (CommitsProtocol)."""
        from cairn.api.embedded.commits import EmbeddedCommits

        run = self.run_pipelines if self.auto_run else None
        return EmbeddedCommits(self.data, self._pipelines, finish=self.finish_commit, run=run)

    @cached_property
    def files(self) -> EmbeddedFiles:
        """Files, ``repo@commit:/path`` (FilesProtocol)."""
        from cairn.api.embedded.files import EmbeddedFiles

        return EmbeddedFiles(
            self.data,
            self._pipelines,
            after=self._after,
            upload=self._local.put_local,
            download=self._local.get_local,
        )

    @cached_property
    def _local(self) -> LocalFiles:
        return LocalFiles(self.data, self.home, self._after)

    @cached_property
    def pipelines(self) -> EmbeddedPipelines:
        """Pipelines (PipelinesProtocol); names of cairn.pipelines.Pipelines it does not
        define are forwarded to the service, for callers written before the face."""
        from cairn.api.embedded.pipelines import EmbeddedPipelines

        run = self.run_pipelines if self.auto_run else None
        return EmbeddedPipelines(
            self._pipelines, run=run, start=self.start_pipeline, stop=self.stop_pipeline
        )

    @cached_property
    def jobs(self) -> EmbeddedJobs:
        """Jobs, ``pipeline@job`` (JobsProtocol)."""
        from cairn.api.embedded.jobs import EmbeddedJobs

        return EmbeddedJobs(self._pipelines)

    @cached_property
    def secrets(self) -> EmbeddedSecrets:
        """Secrets for ``transform.secrets`` (SecretsProtocol); the SecretStore's own
        names (``masker``, ``resolve``) are forwarded to it."""
        from cairn.api.embedded.secrets import EmbeddedSecrets

        return EmbeddedSecrets(self._secret_store)

    @cached_property
    def store(self) -> EmbeddedStore:
        """The store as a whole: ``gc`` and ``fsck`` (StoreProtocol)."""
        from cairn.api.bundles import CODE_DIR
        from cairn.api.embedded.store import EmbeddedStore

        return EmbeddedStore(self.data, code=self.home / CODE_DIR)

    # The ML stages load on first use: data and pipeline commands never import them.
    @cached_property
    def runs(self) -> EmbeddedRuns:
        """Runs of pipeline jobs and of SDK calls (RunsProtocol)."""
        from cairn.api.embedded.runs import EmbeddedRuns

        return EmbeddedRuns(self.tracking)

    @cached_property
    def models(self) -> EmbeddedModels:
        """The model registry, ``cancer@champion``, ``cancer/3`` (ModelsProtocol)."""
        from cairn.api.embedded.models import EmbeddedModels

        return EmbeddedModels(self.registry, self._local.get_local)

    @cached_property
    def deployments(self) -> EmbeddedDeployments:
        """Served endpoints and their traffic policies (DeploymentsProtocol)."""
        from cairn.api.embedded.deployments import EmbeddedDeployments

        return EmbeddedDeployments(self.traffic)

    @cached_property
    def monitors(self) -> EmbeddedMonitors:
        """Drift checks and monitoring rules with their loop (MonitorsProtocol); when this
        Client runs pipelines, the loop's training jobs run inside ``tick()``."""
        from cairn.api.embedded.monitors import EmbeddedMonitors

        return EmbeddedMonitors(self.loop, self.data, self.registry)

    @cached_property
    def events(self) -> EmbeddedEvents:
        """The lifecycle's event log (EventsProtocol)."""
        from cairn.api.embedded.events import EmbeddedEvents

        return EmbeddedEvents(self.data.catalog)

    # -- the layers below the face ------------------------------------------------------
    @cached_property
    def tracking(self) -> Runs:
        """Runs (cairn.ml.runs), for the layers above it."""
        from cairn.ml.runs import Runs

        return Runs(self.data, self._pipelines)

    @cached_property
    def registry(self) -> Registry:
        """Models, versions and aliases (cairn.ml.registry), for the layers above it."""
        from cairn.ml.registry import Registry

        return Registry(self.data, self._pipelines, self.tracking)

    @cached_property
    def traffic(self) -> Deployments:
        """Deployments and their policies (cairn.serving.policy), for the model server."""
        from cairn.serving.policy import Deployments

        return Deployments(self.data.catalog, self.registry)

    @cached_property
    def loop(self) -> Monitors:
        """The monitoring loop (cairn.monitoring.loop)."""
        from cairn.monitoring.loop import Monitors

        runner = self.run_pipelines if self.auto_run else None
        return Monitors(self.data, self._pipelines, self.registry, self.traffic, runner=runner)

    @cached_property
    def daemons(self) -> Daemons:
        """The processes of spout and service pipelines (cairn.pipelines.daemons), which
        ``run_forever`` keeps running; they reach this store through ``CAIRN_HOME``."""
        from cairn.pipelines.daemons import Daemons

        return Daemons(self._pipelines, {"CAIRN_HOME": str(self.home)})

    @cached_property
    def transactions(self) -> Transactions:
        """Transactions (cairn.pipelines.transactions): ``create branch``, ``delete
        branch`` and ``finish commit`` recorded, then made at once by
        :meth:`finish_transaction`."""
        from cairn.pipelines.transactions import Transactions

        return Transactions(self._pipelines)

    def finish_transaction(self, tid: str | None = None) -> TransactionInfo:
        """Make the changes of the open transaction (or ``tid``) at once, then run the
        pipelines they trigger (with ``auto_run``). Raises NotFound, and what a change
        raises (CommitStateError...)."""
        info = self.transactions.finish(tid)
        if self.auto_run:
            self.run_pipelines()
        return info

    def tick_monitors(self) -> None:
        """Advance every monitoring rule's loop (``Monitors.tick``) if there is any rule;
        a store without rules does not load the monitoring layer."""
        from sqlalchemy import select

        from cairn.catalog.schema import monitors

        with self.data.catalog.read() as conn:
            if conn.execute(select(monitors.c.name).limit(1)).first() is None:
                return
        self.loop.tick()

    def run_pipelines(self) -> list[JobInfo]:
        """Run every stale pipeline to the end of the DAG; return the jobs. The run files
        that successful jobs committed are then indexed as runs."""
        jobs = self._pipelines.propagate(self.reporter)
        if any(job.state == "success" for job in jobs):
            self.tracking.sync()
        return jobs

    def run_cron(self, name: str) -> list[JobInfo]:
        """Tick every cron input of pipeline ``name`` once now, whatever its schedule, and
        run what that makes stale (``cairn run cron``). Raises NotFound, SpecError (no cron
        input)."""
        jobs = self._pipelines.run_cron(name, self.reporter)
        if any(job.state == "success" for job in jobs):
            self.tracking.sync()
        return jobs

    def run_forever(
        self,
        *,
        once: bool = False,
        interval: float = 1.0,
        allow_unconfined: bool = False,
        on_error: Callable[[Exception], None] | None = None,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        """What ``cairn run`` does: keep pipelines current as commits arrive from other
        processes, and tick the monitoring rules, every ``interval`` seconds until
        interrupted (``once``: one round, then return). ``allow_unconfined`` also runs,
        without a sandbox, pipelines another OS user created. An error of the monitors'
        tick goes to ``on_error`` (default: raised) and the loop goes on: the step stays,
        so the next tick retries it. Errors of the pipelines' run are raised.
        ``on_round()`` runs after each round (``cairn run`` prints the new events).
        Each round also starts, restarts or stops the processes of spout and service
        pipelines (``daemons``); they stop when the loop ends, except with ``once``,
        whose caller calls it round after round and stops ``daemons`` itself."""
        if allow_unconfined:
            self._pipelines.allow_unconfined = True
        try:
            while True:
                self.daemons.sync()
                self.run_pipelines()
                try:
                    self.tick_monitors()
                except Exception as exc:
                    if on_error is None:
                        raise
                    on_error(exc)
                if on_round is not None:
                    on_round()
                if once:
                    return
                time.sleep(interval)
        finally:
            if not once:
                self.daemons.stop()

    def _after(self, commit: CommitInfo) -> CommitInfo:
        if self.auto_run and commit.state == "finished":
            self.run_pipelines()
        return commit

    # -- repos and branches ----------------------------------------------------------
    def create_repo(self, name: str, description: str = "") -> RepoInfo:
        """Deprecated: ``repos.create``."""
        _deprecated("create_repo", "client.repos.create")
        return self.repos.create(name, description)

    def delete_repo(self, name: str, *, force: bool = False) -> None:
        """Delete a user repo. Raises RepoInUse while a pipeline reads it, unless ``force``;
        a pipeline's output repo goes with ``delete_pipeline``."""
        readers = self._pipelines.readers_of(name)
        if readers and not force:
            in_use = RepoInUse(f"repo {name!r} is read by pipeline {', '.join(readers)}")
            raise about(in_use, "repo.in_use", name=name)
        if self.data.inspect_repo(name).type in ("pipeline", "spout"):
            self._pipelines.delete_pipeline(name, force=force)
        else:
            self.data.delete_repo(name)

    def create_branch(self, repo: str, name: str, head: str | None = None) -> BranchInfo:
        """Create or move branch ``name`` of ``repo`` to ``head`` (a commitish). Raises NotFound."""
        return self.data.create_branch(repo, name, head)

    # -- commits and files -----------------------------------------------------------
    def start_commit(
        self, repo: str, branch: str | None = None, description: str = ""
    ) -> CommitInfo:
        """Open a commit on ``branch`` (default master). Raises CommitStateError if one is open."""
        return self.data.start_commit(repo, branch or "master", description)

    def finish_commit(self, repo: str, commitish: str | None = None) -> CommitInfo:
        """Finish an open commit, then run the pipelines downstream. Raises CommitStateError."""
        return self._after(self.data.finish_commit(repo, commitish))

    def wait_commit(
        self, repo: str, commitish: str | None = None, timeout: float | None = None
    ) -> CommitInfo:
        """Block until a commit is finished (``commits.wait``, with the repo and commitish
        apart; see cairn.api.embedded.commits.wait_commit). Raises TimeoutError,
        PipelineError, NotFound."""
        return wait_commit(self.data, self._pipelines, repo, commitish, timeout)

    def put_local(self, ref: str, sources: list[str], **kwargs: Any) -> CommitInfo:
        """``files.upload``: local files, folders or stdin (``"-"``) at
        ``repo@branch:/path`` in one commit (see cairn.api.embedded.local.LocalFiles).
        Raises InvalidPath, NotFound, NotRegularFile, DataError."""
        return self._local.put_local(ref, sources, **kwargs)

    def get_local(
        self, ref: str, output: str | Path, *, progress: Callable[[int], None] | None = None
    ) -> list[Path]:
        """``files.download``: a file or a folder's files to local ``output``; the paths
        written. Raises NotFound, InvalidPath, OSError."""
        return self._local.get_local(ref, output, progress=progress)

    def put_files(
        self,
        repo: str,
        target: str | None,
        items: Iterable[tuple[str, BinaryIO]],
        *,
        append: bool = False,
        progress: Callable[[int], None] | None = None,
        description: str = "",
    ) -> CommitInfo:
        """Put (path, stream) pairs in one commit (see DataStore.put_files), then run pipelines."""
        return self._after(
            self.data.put_files(
                repo, target, items, append=append, progress=progress, description=description
            )
        )

    def delete_files(self, repo: str, target: str | None, paths: Iterable[str]) -> CommitInfo:
        """Delete files or folders in one commit, then run pipelines. Raises NotFound."""
        return self._after(self.data.delete_files(repo, target, paths))

    def copy_file(self, src: Ref, repo: str, target: str | None, path: str) -> CommitInfo:
        """Copy a file or folder without copying bytes, then run pipelines. Raises NotFound."""
        return self._after(self.data.copy_file(src, repo, target, path))

    def list_file(self, ref: str) -> list[FileInfo]:
        """The children of folder ``repo@commit:/path`` (or the file itself). Raises NotFound."""
        return self.data.list_file(parse_ref(ref))

    def diff_file(self, new: str, old: str | None = None) -> list[FileChange]:
        """Files added, modified, deleted from ``old`` (default: the parent) to ``new``."""
        return self.data.diff_file(parse_ref(new), parse_ref(old) if old else None)

    # -- maintenance -----------------------------------------------------------------
    def gc(self, *, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> GcReport:
        """Delete objects no commit, branch or open job reaches, and the logs of jobs
        that no longer exist (cairn.data.gc). Objects modified less than ``grace``
        seconds ago are kept. Raises StoreDamaged (deleting nothing) if a commit
        cannot be read, ValueError for a negative grace."""
        return self.store.gc(grace, dry_run)

    def fsck(self) -> FsckReport:
        """Verify every hash and reference in the store; change nothing (cairn.data.fsck)."""
        return self.store.fsck()

    # -- pipelines -------------------------------------------------------------------
    def create_pipelines(
        self, spec_file: str | Path, *, update: bool = False, reprocess: bool = False
    ) -> list[PipelineInfo]:
        """Deprecated: ``pipelines.create`` (``pipelines.update`` with ``update``)."""
        _deprecated("create_pipelines", "client.pipelines.create or client.pipelines.update")
        write = self.pipelines.update if update else self.pipelines.create
        return write(spec_file, reprocess=reprocess)

    def delete_pipeline(self, name: str, *, force: bool = False) -> None:
        """Delete a pipeline and its output repo. Raises RepoInUse unless ``force``."""
        self._pipelines.delete_pipeline(name, force=force)

    def start_pipeline(self, name: str) -> PipelineInfo:
        """Resume a paused pipeline and run what it missed. Raises NotFound."""
        info = self._pipelines.set_state(name, "running")
        if self.auto_run:
            self.run_pipelines()
        return info

    def stop_pipeline(self, name: str) -> PipelineInfo:
        """Pause a pipeline: commits to its inputs wait until it starts again."""
        return self._pipelines.set_state(name, "paused")

    # -- secrets -----------------------------------------------------------------------
    def create_secret(self, name: str, values: dict[str, str]) -> SecretInfo:
        """Store secret ``name`` (key -> value) for ``transform.secrets``. Raises
        InvalidReference, AlreadyExists, SecretError."""
        return self._secret_store.create(name, values)

    def list_secrets(self) -> list[SecretInfo]:
        """Every secret's name and keys; values are never returned."""
        return self._secret_store.list()

    def delete_secret(self, name: str) -> None:
        """Remove secret ``name``. Raises NotFound."""
        self._secret_store.delete(name)

    # -- lineage ---------------------------------------------------------------------
    def lineage(self, ref: str) -> dict:
        """Deprecated: ``commits.lineage`` and ``files.lineage``, which return value
        objects. ``{"upstream", "downstream"}`` commit trees for ``repo@commit``, or the
        datum and input files of one output file for ``repo@commit:/path``."""
        _deprecated("lineage", "client.commits.lineage or client.files.lineage")
        parsed = parse_ref(ref)
        if parsed.path:
            return file_lineage(self.data, self._pipelines, parsed)
        return commit_lineage(self.data, parsed)


def _deprecated(old: str, new: str) -> None:
    """Warn that ``Client.<old>``, which the README taught, goes after one release."""
    warnings.warn(f"Client.{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)
