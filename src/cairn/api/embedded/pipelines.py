"""``client.pipelines`` in this process."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.api.embedded._compat import forward
from cairn.pipelines.models import BrokenPipeline, DatumPreview, PipelineInfo
from cairn.pipelines.spec import PipelineSpec, load_spec_file, parse_spec

if TYPE_CHECKING:
    # the service loads the catalog and executors, which a remote client's local_specs
    # does without
    from cairn.pipelines.service import Pipelines

__all__ = ["EmbeddedPipelines", "local_specs"]

SpecLike = str | Path | PipelineSpec | Mapping[str, Any] | Iterable[Any]


class EmbeddedPipelines:
    """PipelinesProtocol over the Pipelines service ``engine``. ``run`` runs every stale
    pipeline (the Client's ``run_pipelines``; None when a ``cairn run`` process does);
    ``start``/``stop`` are the Client's.

    Names of the service this does not define (``list_jobs``, ``inspect_pipeline``, ...)
    are forwarded to it, for callers written before the face."""

    def __init__(
        self,
        engine: Pipelines,
        *,
        run: Callable[[], Any] | None,
        start: Callable[[str], PipelineInfo],
        stop: Callable[[str], PipelineInfo],
    ) -> None:
        self._engine = engine
        self._run = run
        self._start = start
        self._stop = stop

    def __getattr__(self, name: str) -> Any:
        return forward("pipelines", self._engine, name, {})

    def list(self) -> builtins.list[PipelineInfo]:
        """Every pipeline, by name."""
        return self._engine.list_pipelines()

    def get(self, name: str) -> PipelineInfo:
        """The pipeline and its current spec. Raises NotFound."""
        return self._engine.inspect_pipeline(name)

    def create(
        self, spec: SpecLike, *, spec_dir: str | Path | None = None, reprocess: bool = False
    ) -> builtins.list[PipelineInfo]:
        """Create every pipeline of a spec file or of specs given as values, all or none,
        then run them. Raises SpecError, NotFound, AlreadyExists."""
        return self._write(spec, spec_dir, update=False, reprocess=reprocess)

    def update(
        self, spec: SpecLike, *, spec_dir: str | Path | None = None, reprocess: bool = False
    ) -> builtins.list[PipelineInfo]:
        """Replace existing pipelines' specs, then run them. Raises SpecError, NotFound."""
        return self._write(spec, spec_dir, update=True, reprocess=reprocess)

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete a pipeline and its output repo. Raises NotFound, RepoInUse."""
        self._engine.delete_pipeline(name, force=force)

    def broken(self) -> builtins.list[BrokenPipeline]:
        """Pipelines whose stored spec cannot be read back, by name, with the error."""
        return self._engine.broken_pipelines()

    def start(self, name: str) -> PipelineInfo:
        """Resume a stopped pipeline and run what it missed. Raises NotFound."""
        return self._start(name)

    def stop(self, name: str) -> PipelineInfo:
        """Pause a pipeline. Raises NotFound."""
        return self._stop(name)

    def rerun(self, name: str) -> PipelineInfo:
        """Run a pipeline again for its current inputs although its last job failed
        (Pipelines.rerun), then what is stale when this client runs pipelines. Raises
        NotFound."""
        info = self._engine.rerun(name)
        if self._run is not None:
            self._run()
        return info

    def datums(self, spec: Mapping[str, Any]) -> builtins.list[DatumPreview]:
        """The datums ``spec`` would make over its inputs' current heads
        (Pipelines.preview_datums). Raises SpecError, NotFound."""
        return self._engine.preview_datums(parse_spec(dict(spec)))

    def _write(
        self, spec: SpecLike, spec_dir: str | Path | None, *, update: bool, reprocess: bool
    ) -> builtins.list[PipelineInfo]:
        specs, folder = local_specs(spec, spec_dir)
        done = self._engine.create_pipelines(specs, folder, update=update, reprocess=reprocess)
        if self._run is not None:
            self._run()
        return done


def local_specs(spec: SpecLike, spec_dir: str | Path | None) -> tuple[list[PipelineSpec], Path]:
    """The specs and the folder their transforms run in: a spec file's own folder (the
    transform finds ``edges.py`` beside ``pipelines.yaml``), else ``spec_dir`` or the
    current folder. The remote client reads them here too (cairn.api.remote.pipelines).
    Raises SpecError, OSError (a spec file that cannot be read)."""
    if isinstance(spec, str | Path):
        path = Path(spec)
        return load_spec_file(path), Path(spec_dir) if spec_dir else path.parent
    folder = Path(spec_dir) if spec_dir else Path.cwd()
    items = [spec] if isinstance(spec, PipelineSpec | Mapping) else list(spec)
    return [s if isinstance(s, PipelineSpec) else parse_spec(s) for s in items], folder
