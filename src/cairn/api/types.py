"""Value objects that only the face returns (the layers return dicts or mutable trees for
these today). Frozen dataclasses of plain fields: ``to_json()`` gives the JSON-able dict
(the CLI's ``--raw`` shape) and ``from_json()`` reads it back, which is what a remote
client does with a server's answer. Times are UTC seconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "AliasMove",
    "CommitLineage",
    "FileLineage",
    "InputCommit",
    "InputFile",
    "LineageNode",
    "LogEntry",
    "ModelLineage",
    "RunSummary",
    "TrainingLineage",
]


def _json(obj: Any) -> dict[str, Any]:
    return asdict(obj)


@dataclass(frozen=True)
class InputFile:
    """One input file of a datum: input ``input`` read ``repo@branch`` at ``commit``;
    ``path`` is absolute (``/a.png``), ``hash`` its BLAKE3 content hash, ``size`` bytes."""

    input: str
    repo: str
    branch: str
    commit: str
    path: str
    hash: str
    size: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InputFile:
        return cls(d["input"], d["repo"], d["branch"], d["commit"], d["path"], d["hash"], d["size"])


@dataclass(frozen=True)
class InputCommit:
    """The commit one input of a job read: ``repo@branch`` at ``commit``."""

    repo: str
    branch: str
    commit: str


@dataclass(frozen=True)
class LineageNode:
    """A commit in a lineage tree. ``children`` are its inputs (upstream tree) or the
    commits that read it (downstream tree); ``via`` names the input that links it to its
    parent node (empty at the root); ``deleted``: the commit is gone since."""

    repo: str
    commit: str
    via: str = ""
    deleted: bool = False
    children: tuple[LineageNode, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _json(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LineageNode:
        kids = tuple(cls.from_json(c) for c in d.get("children", ()))
        return cls(d["repo"], d["commit"], d.get("via", ""), bool(d.get("deleted")), kids)


@dataclass(frozen=True)
class CommitLineage:
    """Provenance (``upstream``: what the commit came from) and subvenance
    (``downstream``: what came from it) of one commit, as trees rooted at it."""

    upstream: LineageNode
    downstream: LineageNode

    def to_json(self) -> dict[str, Any]:
        return _json(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CommitLineage:
        return cls(LineageNode.from_json(d["upstream"]), LineageNode.from_json(d["downstream"]))


@dataclass(frozen=True)
class FileLineage:
    """Where one file came from. For a file a pipeline wrote: its ``pipeline``, ``job``,
    ``datum`` (id and hash) and that datum's exact ``inputs``; for a file a user put,
    those are None/empty and ``origin`` says so."""

    repo: str
    commit: str
    path: str
    hash: str
    size: int
    origin: str | None = None
    pipeline: str | None = None
    job: str | None = None
    datum: str | None = None
    datum_hash: str | None = None
    inputs: tuple[InputFile, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _json(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FileLineage:
        return cls(
            d["repo"],
            d["commit"],
            d["path"],
            d["hash"],
            d["size"],
            d.get("origin"),
            d.get("pipeline"),
            d.get("job"),
            d.get("datum"),
            d.get("datum_hash"),
            tuple(InputFile.from_json(i) for i in d.get("inputs", ())),
        )


@dataclass(frozen=True)
class LogEntry:
    """One log of a job: ``heading`` names the job (``edges@<id>``) or the datum
    (``edges@<id> datum <id> (<state>)``); ``text`` is what it printed."""

    heading: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class AliasMove:
    """One move of a model alias: ``seq`` (1, 2, ... per alias), ``version`` it then named
    (None: deleted), ``kind`` (set, delete or rollback), ``time``, ``reason``."""

    seq: int
    version: int | None
    kind: str
    time: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class RunSummary:
    """The run that trained a model version (see ``RunInfo`` for the whole run)."""

    id: str
    name: str
    experiment: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, Any]
    created: float


@dataclass(frozen=True)
class TrainingLineage:
    """How a pipeline made a model version: the ``pipeline``, ``job`` (its ``spec_version``
    and ``job_state``, None once the pipeline is deleted), the ``datum`` that wrote the
    file, the job's ``input_commits`` (input name -> commit), the datum's ``input_files``,
    ``code`` (path -> BLAKE3 of the transform's files) and ``code_hash``,
    ``transform_hash``, ``environment`` (the fingerprint summary: hash, python, platform,
    cpu, accelerator, transform) and the container ``image``, if any."""

    pipeline: str
    job: str
    spec_version: int | None
    job_state: str | None
    datum: str
    datum_hash: str
    input_commits: dict[str, InputCommit]
    input_files: tuple[InputFile, ...]
    code: dict[str, str] | None
    code_hash: str | None
    transform_hash: str | None
    environment: dict[str, Any] | None
    image: str | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TrainingLineage:
        return cls(
            d["pipeline"],
            d["job"],
            d.get("spec_version"),
            d.get("job_state"),
            d["datum"],
            d["datum_hash"],
            {k: InputCommit(**v) for k, v in (d.get("input_commits") or {}).items()},
            tuple(InputFile.from_json(f) for f in d.get("input_files") or ()),
            d.get("code"),
            d.get("code_hash"),
            d.get("transform_hash"),
            d.get("environment"),
            d.get("image"),
        )


@dataclass(frozen=True)
class ModelLineage:
    """Where a model version came from: the version (``model``, ``version``, ``aliases``
    now, ``ref`` = ``repo@commit:/path``, ``flavor``, content ``hash``, ``created``), how
    a pipeline trained it (``training``; None for a file a user put) and the ``run`` its
    datum recorded (None if none)."""

    model: str
    version: int
    aliases: tuple[str, ...]
    ref: str
    repo: str
    commit: str
    path: str
    flavor: str
    hash: str | None
    created: float
    training: TrainingLineage | None
    run: RunSummary | None

    def to_json(self) -> dict[str, Any]:
        return _json(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModelLineage:
        training, run = d.get("training"), d.get("run")
        return cls(
            d["model"],
            d["version"],
            tuple(d.get("aliases") or ()),
            d["ref"],
            d["repo"],
            d["commit"],
            d["path"],
            d["flavor"],
            d.get("hash"),
            d["created"],
            TrainingLineage.from_json(training) if training else None,
            RunSummary(**run) if run else None,
        )
