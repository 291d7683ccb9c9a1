"""``client.runs`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

from cairn.api.embedded._compat import forward
from cairn.ml.models import MetricPoint, RunInfo
from cairn.ml.runs import Comparison, Runs

__all__ = ["EmbeddedRuns"]

# Names of Runs that the README taught as ``client.runs.<name>`` and the face does not keep.
_TAUGHT = {
    "for_datum": "client.models.lineage(spec).run, or client.runs.list(pipeline=...)",
    "sync": "nothing: the client indexes run files after every job it runs",
}


class EmbeddedRuns:
    """RunsProtocol over the Runs of the store (``engine``). Names of Runs this does not
    define are forwarded to it, for callers written before the face (``for_datum`` and
    ``sync`` warn)."""

    def __init__(self, engine: Runs) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return forward("runs", self._engine, name, _TAUGHT)

    def list(
        self, experiment: str | None = None, pipeline: str | None = None
    ) -> builtins.list[RunInfo]:
        """Runs newest first, of one experiment and/or pipeline if given."""
        return self._engine.list(experiment, pipeline)

    def get(self, ref: str) -> RunInfo:
        """A run by id, name or id prefix. Raises NotFound (also when ambiguous)."""
        return self._engine.get(ref)

    def create(
        self,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Start a run outside a pipeline, state ``running``. Raises MLError."""
        return self._engine.start(name, experiment, tags)

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
        """Add to running run ``run`` (its id), then remove ``delete_tags``; ``inputs``
        name datasets it read. Raises NotFound, MLError."""
        self._engine.log(
            run,
            params=params,
            metrics=metrics,
            step=step,
            timestamp=timestamp,
            tags=tags,
            artifacts=artifacts,
            delete_tags=delete_tags,
            inputs=inputs,
        )

    def finish(self, run: str, state: str = "finished") -> RunInfo:
        """End running run ``run`` as finished or failed. Raises NotFound, MLError."""
        return self._engine.finish(run, state)

    def history(self, run: str, key: str) -> builtins.list[MetricPoint]:
        """Every point of metric ``key``, in logging order. Raises NotFound."""
        return self._engine.history(run, key)

    def compare(
        self,
        refs: Iterable[str] = (),
        *,
        experiment: str | None = None,
        pipeline: str | None = None,
    ) -> Comparison:
        """Runs side by side. Raises NotFound, MLError (nothing selected)."""
        return self._engine.compare(refs, experiment=experiment, pipeline=pipeline)
