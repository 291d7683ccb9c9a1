"""Value objects of the ML layer: what runs and the registry return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cairn.data import NotFound

__all__ = ["Comparison", "MetricPoint", "ModelInfo", "ModelVersion", "RunInfo", "Signature"]


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric: ``step`` (int, default 0), ``timestamp`` (UTC seconds
    since the epoch), ``value`` (float)."""

    key: str
    value: float
    step: int = 0
    timestamp: float = 0.0


@dataclass(frozen=True)
class RunInfo:
    """A run (MLflow's term): params and tags are str -> JSON scalar; ``metrics`` maps
    each key to its *last* logged value (``history`` has every point). For a run of a
    pipeline job, ``pipeline``/``job``/``datum`` say which datum wrote it, ``repo``/
    ``commit``/``source`` where its run file is, and ``info`` holds ``inputs`` (input name
    -> {repo, branch, commit}), ``code``, ``environment`` and ``artifacts`` (output paths
    the same datum wrote)."""

    id: str
    name: str
    experiment: str
    state: str
    created: float
    finished: float | None
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, Any]
    pipeline: str | None = None
    job: str | None = None
    datum: str | None = None
    datum_hash: str | None = None
    repo: str | None = None
    commit: str | None = None
    source: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# MLflow's column-based signature, as JSON: {"inputs": [{"name": "f0", "type": "double"},
# ...], "outputs": [...] or None}. Types are MLflow's DataType names: boolean, integer,
# long, float, double, string, binary, datetime.
Signature = dict[str, Any]


@dataclass(frozen=True)
class ModelVersion:
    """An immutable model version: the file or folder at ``repo@commit:path`` (a finished
    commit's id, never a branch) and how to load it (``flavor``: ``sklearn``, ``python``,
    ``command`` or ``mlflow``). ``aliases`` are the aliases pointing at it now. ``trusted``:
    the user registered it with ``trust=True`` (``--trust``), consenting that loading it
    may run the code it holds (pickle, joblib, MLflow folders; see ``cairn.ml.flavors``)."""

    name: str
    version: int
    repo: str
    commit: str
    path: str
    flavor: str
    signature: Signature | None
    run: str | None
    created: float
    description: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    trusted: bool = False

    @property
    def ref(self) -> str:
        """``repo@commit:/path``, the form every data command takes."""
        return f"{self.repo}@{self.commit}:{self.path}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        out["ref"] = self.ref
        return out


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its versions' count, latest version and aliases (alias ->
    version)."""

    name: str
    description: str
    created: float
    updated: float
    latest: int | None
    aliases: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Runs side by side: ``params`` and ``metrics`` map each key to one value per run (in
    the order of ``runs``; None where a run lacks it); ``differing`` lists the param keys
    whose values are not all equal. Metrics are final (last logged) values."""

    runs: list[RunInfo]
    params: dict[str, list[Any]]
    metrics: dict[str, list[float | None]]
    differing: list[str]

    def best(self, key: str, *, maximize: bool = True) -> RunInfo:
        """The run with the highest (or, ``maximize=False``, lowest) final ``key``; ties go
        to the earlier run. Raises NotFound when no run logged ``key``."""
        values = self.metrics.get(key, [])
        scored = [(v, i) for i, v in enumerate(values) if v is not None]
        if not scored:
            raise NotFound(
                f"no compared run logged metric {key!r}; metrics: {sorted(self.metrics) or '-'}"
            )
        if maximize:
            return self.runs[max(scored, key=lambda s: (s[0], -s[1]))[1]]
        return self.runs[min(scored)[1]]

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [r.to_json() for r in self.runs],
            "params": self.params,
            "metrics": self.metrics,
            "differing": self.differing,
        }
