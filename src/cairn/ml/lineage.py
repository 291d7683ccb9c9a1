"""Lineage of a model version: the pipeline job, datum, input commits and files, code and
environment that wrote it, and the run recorded for it (``Registry.lineage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cairn.data import DataStore, NotFound, Ref
from cairn.ml.models import ModelVersion
from cairn.pipelines import Pipelines, file_lineage
from cairn.pipelines.datums import canonical_hash

if TYPE_CHECKING:
    from cairn.ml.registry import Registry

__all__ = ["model_lineage", "training_lineage", "training_of"]


def training_of(
    data: DataStore, pipelines: Pipelines, ref: Ref, is_dir: bool
) -> dict[str, Any] | None:
    """Pipeline, job, datum and datum hash of the datum that wrote the file (for a
    folder: its ``MLmodel`` file, else its first file), or None (a user's put)."""
    path = ref.path or ""
    if is_dir:
        files = [p for p, _ in data.walk_files(ref)]
        marker = f"{path}/MLmodel"
        path = marker if marker in files else files[0]
    lineage = file_lineage(data, pipelines, Ref(ref.repo, ref.commit, path=path))
    if "datum_hash" not in lineage:
        return None
    return {
        "pipeline": lineage["pipeline"],
        "job": lineage["job"],
        "datum": lineage["datum"],
        "datum_hash": lineage["datum_hash"],
    }


def model_lineage(registry: Registry, spec: str) -> dict[str, Any]:
    """Where the version ``spec`` names came from, as JSON-able data::

        {"model": name, "version": n, "aliases": [...], "ref": "repo@commit:/path",
         "repo", "commit", "path", "flavor", "hash", "created",
         "training": null (a user's put) or
             {"pipeline", "job", "spec_version", "job_state", "datum", "datum_hash",
              "input_commits": {input name: {"repo", "branch", "commit"}},
              "input_files": [{"input", "repo", "branch", "commit", "path", "hash",
                               "size"}],
              "code": {path: blake3}, "code_hash", "transform_hash",
              "environment": {"hash", "python", "platform", "cpu", "accelerator",
                              "transform"}, "image"},
         "run": null or {"id", "name", "experiment", "params", "metrics", "tags",
                         "created"}}

    Raises InvalidReference, NotFound.
    """
    version = registry.resolve(spec)
    out: dict[str, Any] = {
        "model": version.name,
        "version": version.version,
        "aliases": list(version.aliases),
        "ref": version.ref,
        "repo": version.repo,
        "commit": version.commit,
        "path": version.path,
        "flavor": version.flavor,
        "hash": version.info.get("hash"),
        "created": version.created,
        "training": None,
        "run": None,
    }
    training = version.info.get("training")
    if training:
        out["training"] = training_lineage(registry.data, registry.pipelines, version, training)
    if version.run:
        try:
            run = registry.runs.get(version.run)
        except NotFound:
            run = None
        if run is not None:
            out["run"] = {
                "id": run.id,
                "name": run.name,
                "experiment": run.experiment,
                "params": run.params,
                "metrics": run.metrics,
                "tags": run.tags,
                "created": run.created,
            }
    return out


def training_lineage(
    data: DataStore, pipelines: Pipelines, version: ModelVersion, training: dict[str, Any]
) -> dict[str, Any]:
    """``lineage()["training"]``: the job, input commits and files, code and environment
    of the datum that wrote ``version`` (``training``: its ``info["training"]``)."""
    commit = data.inspect_commit(version.repo, version.commit)
    out: dict[str, Any] = dict(training)
    try:
        job = pipelines.inspect_job(training["pipeline"], training["job"])
        out["spec_version"] = job.spec_version
        out["job_state"] = job.state
    except NotFound:  # the pipeline was deleted since; the commit still says a lot
        out["spec_version"] = (commit.info.get("pipeline") or {}).get("version")
        out["job_state"] = None
    out["input_commits"] = {
        p.name: {"repo": p.repo, "branch": p.branch, "commit": p.commit} for p in commit.provenance
    }
    datum = pipelines.datum_by_hash(version.repo, training["datum_hash"], commit.info.get("job"))
    out["input_files"] = datum.inputs if datum is not None else []
    code = commit.info.get("code")
    out["code"] = code
    # BLAKE3 of the code map as canonical JSON: what runs record as ``code_hash``.
    out["code_hash"] = canonical_hash(code) if code is not None else None
    out["transform_hash"] = commit.info.get("transform_hash")
    out["environment"] = commit.info.get("environment")
    out["image"] = commit.info.get("image")
    return out
