"""Pipelines as stored: reading ``pipelines`` rows back into PipelineInfo.

Free functions over a catalog, shared by Pipelines (cairn.pipelines.service) and the job
history (cairn.pipelines.history). A row whose spec does not read back (stored by an
older cairn) is a *broken* pipeline: ``inspect_pipeline`` raises UnreadableSpec for it,
``load_pipelines`` lists it apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cairn.catalog import Catalog
from cairn.catalog.schema import pipelines
from cairn.data import NotFound
from cairn.data.subject import about
from cairn.pipelines.errors import SpecError, UnreadableSpec
from cairn.pipelines.models import BrokenPipeline, PipelineInfo
from cairn.pipelines.spec import read_spec

__all__ = [
    "inspect_pipeline",
    "load_pipelines",
    "pipeline_info",
    "pipeline_missing",
    "pipeline_names",
    "pipeline_row",
]


def pipeline_row(catalog: Catalog, name: str) -> Any:
    """The ``pipelines`` row of ``name``, or None."""
    with catalog.read() as conn:
        return conn.execute(select(pipelines).where(pipelines.c.name == name)).first()


def pipeline_names(catalog: Catalog) -> set[str]:
    """The names of every pipeline, broken ones too."""
    with catalog.read() as conn:
        return set(conn.execute(select(pipelines.c.name)).scalars())


def pipeline_missing(name: str) -> NotFound:
    """The NotFound for a pipeline that does not exist, to be raised."""
    return about(NotFound(f"pipeline {name!r} not found"), "pipeline.missing", name=name)


def pipeline_info(row: Any) -> PipelineInfo:
    """The PipelineInfo of a ``pipelines`` row. Raises UnreadableSpec."""
    try:
        spec = read_spec(row.spec, source=f"pipeline {row.name!r}")
    except SpecError as exc:
        first = exc.problems[0] if exc.problems else ("", str(exc))
        what = f"{first[0]}: {first[1]}" if first[0] else first[1]
        unreadable = UnreadableSpec(
            f"pipeline {row.name!r}: its stored spec cannot be read ({what[:300]})",
            exc.field,
            exc.problems,
        )
        raise about(unreadable, "pipeline.unreadable", name=row.name) from None
    return PipelineInfo(
        row.name, row.version, spec, row.spec_dir, row.salt, row.state, row.created, row.updated
    )


def inspect_pipeline(catalog: Catalog, name: str) -> PipelineInfo:
    """Raises NotFound, UnreadableSpec (a broken pipeline)."""
    row = pipeline_row(catalog, name)
    if row is None:
        raise pipeline_missing(name)
    return pipeline_info(row)


def load_pipelines(catalog: Catalog) -> tuple[list[PipelineInfo], list[BrokenPipeline]]:
    """Every pipeline by name: those whose spec reads back, and the broken ones."""
    with catalog.read() as conn:
        rows = list(conn.execute(select(pipelines).order_by(pipelines.c.name)))
    good: list[PipelineInfo] = []
    broken: list[BrokenPipeline] = []
    for row in rows:
        try:
            good.append(pipeline_info(row))
        except UnreadableSpec as exc:
            broken.append(BrokenPipeline(row.name, row.version, row.state, str(exc)))
    return good, broken
