"""The face as Protocols: what every cairn client offers, embedded (``cairn.Client``, in
this process over the store's folder) or remote (over ``cairn server``).

Every method takes plain values (strings users type, numbers, bytes, mappings, lists)
and returns frozen dataclasses of plain fields, StrEnums, bytes or a binary stream, so
each call is one JSON request and one JSON answer; no internal object (DataStore,
Registry, a database connection) crosses it. Strings name things the same way
everywhere (cairn.api.refs): ``images@master:/a.png``, ``edges@<job id>``,
``cancer@champion``, ``cancer/3``. The verbs are ``list``, ``get``, ``create``,
``delete`` wherever they apply, and a domain verb only where the operation is none of
those.

Errors are cairn's (``cairn.CairnError`` and below: NotFound, AlreadyExists,
InvalidReference, InvalidPath, CommitStateError, SpecError, PipelineError, MLError,
PolicyError, MonitoringError, ...), the same on both sides; TimeoutError for waits.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cairn.api.types import (
        AliasMove,
        LogEntry,
        ModelLineage,
    )
    from cairn.data.fsck import FsckReport
    from cairn.data.gc import GcReport
    from cairn.ml.events import Event
    from cairn.ml.models import MetricPoint, ModelInfo, ModelVersion, RunInfo, Signature
    from cairn.ml.runs import Comparison
    from cairn.monitoring.drift import DriftConfig
    from cairn.monitoring.loop import MonitorState
    from cairn.monitoring.monitor import MonitorReport
    from cairn.monitoring.rules import MonitorInfo, MonitorRule
    from cairn.pipelines import DatumInfo, JobInfo, PipelineInfo, PipelineSpec
    from cairn.pipelines.models import BrokenPipeline, DatumPreview, Reproduction
    from cairn.pipelines.secret_store import SecretInfo
    from cairn.serving.policy import Deployment, DeploymentRevision, TrafficPolicy

from cairn.api.data_protocols import (
    BranchesProtocol,
    CommitsProtocol,
    FilesProtocol,
    ReposProtocol,
)

__all__ = [
    "BranchesProtocol",
    "ClientProtocol",
    "CommitsProtocol",
    "DeploymentsProtocol",
    "EventsProtocol",
    "FilesProtocol",
    "JobsProtocol",
    "ModelsProtocol",
    "MonitorsProtocol",
    "PipelinesProtocol",
    "ReposProtocol",
    "RunsProtocol",
    "SUB_CLIENTS",
    "SecretsProtocol",
    "StoreProtocol",
]


@runtime_checkable
class PipelinesProtocol(Protocol):
    """Pipelines: named transforms over inputs that write an output repo of their name."""

    def list(self) -> builtins.list[PipelineInfo]:
        """Every pipeline, by name."""
        ...

    def get(self, name: str) -> PipelineInfo:
        """The pipeline and its current spec. Raises NotFound."""
        ...

    def create(
        self,
        spec: str | Path | PipelineSpec | Mapping[str, Any] | Iterable[Any],
        *,
        spec_dir: str | Path | None = None,
        reprocess: bool = False,
    ) -> builtins.list[PipelineInfo]:
        """Create every pipeline of a spec file (JSON or YAML; the transform runs in its
        folder), or of specs given as values (running in ``spec_dir``, default the
        current folder), all or none; then run them. Raises SpecError, NotFound,
        AlreadyExists."""
        ...

    def update(
        self,
        spec: str | Path | PipelineSpec | Mapping[str, Any] | Iterable[Any],
        *,
        spec_dir: str | Path | None = None,
        reprocess: bool = False,
    ) -> builtins.list[PipelineInfo]:
        """Replace existing pipelines' specs (a new spec version each), then run them;
        ``reprocess`` reuses no earlier datum. Raises as ``create``, NotFound."""
        ...

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete a pipeline and its output repo. Raises NotFound, RepoInUse unless
        ``force``."""
        ...

    def broken(self) -> builtins.list[BrokenPipeline]:
        """Pipelines whose stored spec cannot be read back (an older cairn accepted it),
        by name, with the error; ``list`` leaves them out, ``delete`` and ``update``
        mend them."""
        ...

    def start(self, name: str) -> PipelineInfo:
        """Resume a stopped pipeline and run what it missed. Raises NotFound."""
        ...

    def stop(self, name: str) -> PipelineInfo:
        """Pause a pipeline: commits to its inputs wait until it starts. Raises NotFound."""
        ...

    def rerun(self, name: str) -> PipelineInfo:
        """Run a pipeline again for its current inputs although its last job failed (its
        code was missing and is fixed now); the jobs run as after a write. Raises
        NotFound."""
        ...

    def datums(self, spec: Mapping[str, Any]) -> builtins.list[DatumPreview]:
        """The datums pipeline ``spec`` (one spec's values) would cut from its inputs'
        current heads, by id, before it is created (pachctl list datum -f). Raises
        SpecError, NotFound (an input repo or branch)."""
        ...


@runtime_checkable
class JobsProtocol(Protocol):
    """Jobs: one execution of a pipeline over one set of input commits, ``pipeline@id``."""

    def list(self, pipeline: str | None = None) -> builtins.list[JobInfo]:
        """Jobs newest first, of every pipeline or of one. Raises NotFound."""
        ...

    def get(self, ref: str) -> JobInfo:
        """Job ``pipeline@id`` (or a unique id prefix). Raises NotFound, InvalidReference."""
        ...

    def wait(self, ref: str, timeout: float | None = None) -> JobInfo:
        """Block until the job is no longer running (``timeout`` in seconds). Raises
        TimeoutError, NotFound."""
        ...

    def datums(
        self,
        ref: str,
        *,
        state: str | None = None,
        datum: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[DatumInfo]:
        """The job's datums (processed, skipped, failed, recovered), by id: only those in
        ``state`` (``failed``...) and whose ids start with ``datum`` if given, from the
        ``offset``-th, at most ``limit`` (a page of a job of 20,000 datums). Raises
        NotFound, FieldError (an unknown state, a negative offset or limit)."""
        ...

    def logs(self, ref: str, datum: str | None = None) -> builtins.list[LogEntry]:
        """The logs of job ``pipeline@id`` (of the pipeline's latest job for
        ``pipeline``), or of its datums whose ids start with ``datum``. Raises NotFound."""
        ...

    def stop(self, ref: str) -> JobInfo:
        """End running job ``pipeline@id``: it fails as ``stopped``, writes no output and
        starts no more datums. Raises NotFound, PipelineError (not running)."""
        ...

    def delete(self, ref: str) -> None:
        """Delete a finished job's records and its output commit with what was made from
        it (CommitsProtocol.delete's rules). Raises NotFound, PipelineError (running),
        CommitStateError."""
        ...

    def restart_datum(self, ref: str, datum: str) -> DatumInfo:
        """Run failed job ``pipeline@id``'s failed datum (id or unique prefix) once more with
        the pipeline's current code over the job's inputs, recording the new outcome; once
        none of the job's datums is failed, the pipeline runs its inputs again. Raises
        NotFound, PipelineError (not a failed job or datum), Irreproducible (inputs gone)."""
        ...

    def reproduce(self, ref: str, datum: str | None = None) -> Reproduction:
        """Run successful job ``pipeline@id``'s datums again (only the one whose id starts
        with ``datum``) into scratch, from its recorded input commits, spec version and
        code; compare each output file by BLAKE3 and the environment fingerprint with
        today's. Commits nothing. Raises NotFound, Irreproducible (code or image changed,
        inputs or spec version gone, a job that did not succeed)."""
        ...


@runtime_checkable
class RunsProtocol(Protocol):
    """Runs: params, metrics with steps, tags and artifacts of tracked executions."""

    def list(
        self, experiment: str | None = None, pipeline: str | None = None
    ) -> builtins.list[RunInfo]:
        """Runs newest first, of one experiment and/or one pipeline if given."""
        ...

    def get(self, ref: str) -> RunInfo:
        """A run by id, name or id prefix. Raises NotFound (also when ambiguous)."""
        ...

    def create(
        self,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Start a run (state ``running``) outside a pipeline. Raises MLError (tags that
        are not JSON scalars)."""
        ...

    def log(
        self,
        run: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        step: int | None = None,
        timestamp: float | None = None,
        tags: Mapping[str, Any] | None = None,
        artifacts: Iterable[str] = (),
        delete_tags: Iterable[str] = (),
        inputs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Add params, tags, one point per metric (at ``step``, default 0, and
        ``timestamp``, default now) and artifact paths to running run ``run`` (its id),
        then remove the tags named in ``delete_tags``; ``inputs``: name -> JSON object
        of a dataset it read (``info["inputs"]``). Raises NotFound, MLError (an ended
        run, a bad key or value)."""
        ...

    def finish(self, run: str, state: str = "finished") -> RunInfo:
        """End running run ``run`` as ``finished`` or ``failed`` (again: no-op). Raises
        NotFound, MLError."""
        ...

    def history(self, run: str, key: str) -> builtins.list[MetricPoint]:
        """Every logged point of metric ``key``, in logging order. Raises NotFound."""
        ...

    def compare(
        self,
        refs: Iterable[str] = (),
        *,
        experiment: str | None = None,
        pipeline: str | None = None,
    ) -> Comparison:
        """Runs side by side (``.best(key)`` picks one). Raises NotFound, MLError (none)."""
        ...


@runtime_checkable
class ModelsProtocol(Protocol):
    """The model registry: versions (``cancer/3``) and aliases (``cancer@champion``)."""

    def list(self) -> builtins.list[ModelInfo]:
        """Every model, by name, with its latest version and aliases."""
        ...

    def get(self, spec: str) -> ModelVersion:
        """The version ``cancer@champion``, ``cancer/3`` or ``cancer`` (latest) names.
        Raises NotFound (the message lists the aliases), InvalidReference."""
        ...

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        """Every version of model ``name``, oldest (1) first. Raises NotFound."""
        ...

    def register(
        self,
        name: str,
        ref: str,
        *,
        flavor: str | None = None,
        signature: Signature | None = None,
        command: Sequence[str] | None = None,
        description: str = "",
        timeout: float | None = None,
        trust: bool = False,
        input_example: str | None = None,
    ) -> ModelVersion:
        """Register the file or folder at ``repo@commit:/path`` (a finished commit) as the
        next version of ``name``. Formats that run code when loaded (pickle, joblib, MLflow
        folders) need ``trust=True``, recorded on the version; only then is the model
        loaded to infer its signature. ``input_example``: sample inputs (MLflow's
        ``input_example``) in pandas' JSON table format (``DataFrame.to_json(orient=
        "table")``, which keeps the dtypes; ``cairn.ml.signature.example_json``): the
        signature's columns and types come from it. Raises InvalidReference, NotFound,
        CommitStateError, FlavorError (UntrustedModel without trust), SignatureError (also
        for an example that does not read)."""
        ...

    def set_alias(self, spec: str, version: int, *, reason: str = "") -> ModelVersion:
        """Point alias ``cancer@champion`` at ``version``; return that version. Raises
        InvalidReference (a reserved alias), NotFound."""
        ...

    def delete_alias(self, spec: str) -> None:
        """Remove alias ``cancer@challenger`` (its history stays). Raises NotFound."""
        ...

    def rollback(self, spec: str, *, reason: str = "") -> ModelVersion:
        """Move alias ``cancer@champion`` (``cancer``: its champion) back to the version
        it named before its last move not undone yet. Raises NotFound, MLError."""
        ...

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version of model ``name``. Raises NotFound."""
        ...

    def alias_history(self, spec: str) -> builtins.list[AliasMove]:
        """Every move of alias ``cancer@champion``, oldest first. Raises NotFound."""
        ...

    def lineage(self, spec: str) -> ModelLineage:
        """Where the version came from: data, code, environment, run. Raises NotFound."""
        ...

    def diff(self, old: str, new: str, *, code: bool = False) -> dict[str, Any]:
        """What changed from version ``old`` to ``new`` (``cancer/1``, ``cancer@champion``):
        training files added, removed, modified (with sizes and table rows), code, the
        environment, params, metrics, signature; ``code=True`` adds text diffs of the
        code where its contents can be found. The document of
        cairn.ml.model_diff.diff_models. Raises NotFound, InvalidReference."""
        ...

    def download(self, spec: str, output: str | Path) -> builtins.list[Path]:
        """Write the file or folder of the version ``cancer@champion`` or ``cancer/3``
        names to local ``output`` (the file's name, or the folder's), as
        ``files.download`` of its ``ref``; needs read on the model only, not on the repo
        holding it (what serving the model takes). Returns the local paths written.
        Raises NotFound, InvalidReference."""
        ...


@runtime_checkable
class DeploymentsProtocol(Protocol):
    """Deployments: served endpoints and their traffic policies (every change a revision)."""

    def list(self) -> builtins.list[Deployment]:
        """Every deployment, by name."""
        ...

    def get(self, name: str) -> Deployment:
        """The deployment and its policy. Raises NotFound."""
        ...

    def create(self, name: str, model: str) -> Deployment:
        """Deployment ``name`` with all traffic to ``cancer@champion`` or ``cancer/3``;
        an existing one of the same model is returned as it is. Raises PolicyError (no
        such alias or version), ServingError (it serves another model),
        InvalidReference."""
        ...

    def apply(
        self,
        name: str,
        *,
        policy: TrafficPolicy | Mapping[str, Any] | None = None,
        reset: str | None = None,
        split: Mapping[str, float] | None = None,
        canary: tuple[str, float] | None = None,
        shadow: Sequence[str] | None = None,
        sticky_header: str | None = None,
        reason: str = "",
        model: str | None = None,
    ) -> Deployment:
        """One atomic policy change, one revision: a whole ``policy``, or changes applied
        in this order: ``reset`` (all traffic to one target), ``split`` (target ->
        weight), ``canary`` ((target, percent)), ``shadow`` (targets mirrored; empty:
        none), ``sticky_header`` (a header name; ``""``: none; None: keep). Targets are
        aliases (``champion``) or version numbers (``"3"``). With ``model`` (a model
        name), a missing deployment is created for it in the same transaction (revision
        1, all traffic to ``reset``, the first target of ``split``, or ``champion``) and
        the change is revision 2; both or neither. Raises PolicyError, PolicyConflict (it
        keeps changing meanwhile), NotFound (missing, without ``model``), ServingError
        (it serves another model)."""
        ...

    def rollback(self, name: str, *, reason: str = "") -> Deployment:
        """Restore the policy in force before the current one, as a new revision.
        Raises NotFound, PolicyError (nothing to go back to)."""
        ...

    def history(self, name: str) -> builtins.list[DeploymentRevision]:
        """Every revision of the policy, oldest first. Raises NotFound."""
        ...


@runtime_checkable
class MonitorsProtocol(Protocol):
    """Drift checks, and monitoring rules with their retraining loop."""

    def list(self) -> builtins.list[MonitorInfo]:
        """Every monitor, by name."""
        ...

    def get(self, name: str) -> MonitorInfo:
        """The monitor's current rule. Raises NotFound."""
        ...

    def create(self, rule: MonitorRule | Mapping[str, Any] | str | Path) -> MonitorInfo:
        """Store a new rule (a MonitorRule, a mapping, or a YAML/JSON file). Raises
        RuleError, AlreadyExists."""
        ...

    def update(self, rule: MonitorRule | Mapping[str, Any] | str | Path) -> MonitorInfo:
        """Store the next version of a rule. Raises RuleError, NotFound."""
        ...

    def delete(self, name: str) -> None:
        """Delete a monitor and its state (its events stay). Raises NotFound."""
        ...

    def state(self, name: str) -> MonitorState:
        """Where the monitor's loop is (``step``, a MonitorStep). Raises NotFound."""
        ...

    def tick(self) -> builtins.list[MonitorState]:
        """Advance every monitor as far as it can without waiting; return their states."""
        ...

    def check(
        self,
        spec: str,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
        last: int | None = None,
        deployment: str | None = None,
        reference: str | None = None,
        config: DriftConfig | None = None,
        log_repo: str = "predictions",
        labels: str | None = None,
        label_column: str = "label",
        metric: str | None = None,
        freq: str | None = None,
        min_rows: int | None = None,
    ) -> MonitorReport:
        """The drift check of ``cairn monitor``: the live traffic of the version
        ``cancer@champion`` names against its training data. ``since``/``until``: a
        duration ago (``1d``, ``15m``), an ISO 8601 time or UTC epoch seconds; ``last``:
        the newest N rows. Raises NotFound, DriftInputError (too few rows, ...),
        MonitoringError."""
        ...

    def explain(
        self,
        request_id: str | None = None,
        *,
        deployment: str | None = None,
        at: str | float | None = None,
        log_repo: str = "predictions",
    ) -> dict[str, Any]:
        """One logged prediction (by request id, or ``deployment``'s nearest ``at``: an ISO
        8601 time, a duration ago or UTC epoch seconds) with the deployment revision,
        aliases and model version that answered it, that version's recorded lineage, the
        drift verdict of its window and the events around it: the document of
        cairn.monitoring.explain.explain_prediction. Raises NotFound, DriftInputError."""
        ...

    def replay(
        self,
        deployment: str,
        model: str,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
        last: int | None = None,
        log_repo: str = "predictions",
        labels: str | None = None,
        label_column: str = "label",
        metric: str | None = None,
    ) -> dict[str, Any]:
        """``deployment``'s logged traffic (``since``/``until`` as ``check``'s, ``last``
        N rows) answered offline by the version ``model`` names, compared with what
        production answered: agreement, confusion or numeric deltas, and with ``labels``
        the metric of both. The document of cairn.monitoring.replay.replay. Raises
        NotFound, DriftInputError."""
        ...


@runtime_checkable
class EventsProtocol(Protocol):
    """The lifecycle's event log: alias moves, policy changes, monitor steps."""

    def list(
        self,
        *,
        subject: str | None = None,
        kind: str | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> builtins.list[Event]:
        """Events oldest first: of one ``subject`` (a model, deployment or monitor), one
        ``kind`` (or a prefix ending in ``.``, ``monitor.``), with id above ``since``, at
        most the newest ``limit``."""
        ...


@runtime_checkable
class SecretsProtocol(Protocol):
    """Secrets for ``transform.secrets``: named sets of key -> value kept by the store
    (cairn.pipelines.secret_store). Values go in and never come back out."""

    def list(self) -> builtins.list[SecretInfo]:
        """Every secret, by name, with its keys (never its values). Raises SecretError."""
        ...

    def create(self, name: str, values: Mapping[str, str]) -> SecretInfo:
        """Store secret ``name`` with ``values`` (key -> value, at least one). Raises
        InvalidReference (a bad name or key), AlreadyExists, SecretError."""
        ...

    def delete(self, name: str) -> None:
        """Remove secret ``name``; jobs of pipelines that name it fail until it is created
        again. Raises NotFound, SecretError."""
        ...

    def mask(self, texts: builtins.list[str]) -> builtins.list[str]:
        """Each text with every stored value (and each line of a multi-line value) of at
        least 4 characters replaced by ``***``, for output that may hold one (a spec, a
        log written before the secret was created). Raises SecretError."""
        ...


@runtime_checkable
class StoreProtocol(Protocol):
    """The store as a whole: garbage collection and verification (cairn.data.gc, fsck)."""

    def gc(self, grace: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Delete chunks, packs, tree nodes and logs that no commit, branch or open job
        reaches; objects younger than ``grace`` seconds stay. ``dry_run``: count only.
        Raises StoreDamaged (deleting nothing) if a commit cannot be read, ValueError (a
        negative grace)."""
        ...

    def fsck(self) -> FsckReport:
        """Verify every hash and reference in the store, changing nothing; the report
        lists the problems (``ok`` when none)."""
        ...


@runtime_checkable
class ClientProtocol(Protocol):
    """A cairn client: the sub-clients below, embedded or remote alike."""

    @property
    def repos(self) -> ReposProtocol: ...
    @property
    def branches(self) -> BranchesProtocol: ...
    @property
    def commits(self) -> CommitsProtocol: ...
    @property
    def files(self) -> FilesProtocol: ...
    @property
    def pipelines(self) -> PipelinesProtocol: ...
    @property
    def jobs(self) -> JobsProtocol: ...
    @property
    def runs(self) -> RunsProtocol: ...
    @property
    def models(self) -> ModelsProtocol: ...
    @property
    def deployments(self) -> DeploymentsProtocol: ...
    @property
    def monitors(self) -> MonitorsProtocol: ...
    @property
    def events(self) -> EventsProtocol: ...
    @property
    def secrets(self) -> SecretsProtocol: ...
    @property
    def store(self) -> StoreProtocol: ...


SUB_CLIENTS: dict[str, type] = {
    "repos": ReposProtocol,
    "branches": BranchesProtocol,
    "commits": CommitsProtocol,
    "files": FilesProtocol,
    "pipelines": PipelinesProtocol,
    "jobs": JobsProtocol,
    "runs": RunsProtocol,
    "models": ModelsProtocol,
    "deployments": DeploymentsProtocol,
    "monitors": MonitorsProtocol,
    "events": EventsProtocol,
    "secrets": SecretsProtocol,
    "store": StoreProtocol,
}
"""Each attribute of ClientProtocol and the Protocol its value satisfies."""
