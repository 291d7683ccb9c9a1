"""What a job leaves behind: its output commit (with provenance, code and environment)
and the records and logs of its datums.

Free functions of the JobRunner (cairn.pipelines.jobs), which calls them once every datum
of a job has run.
"""

from __future__ import annotations

import json

import blake3
from sqlalchemy import insert

from cairn.catalog import Catalog
from cairn.catalog.schema import datums
from cairn.data import CommitInfo, DataStore, FileEntry, NotFound, Provenance, Ref
from cairn.pipelines.datums import Datum, canonical_hash
from cairn.pipelines.environment import environment_fingerprint, transform_runtime
from cairn.pipelines.errors import PipelineError
from cairn.pipelines.executor import DatumResult
from cairn.pipelines.models import DatumInfo, DatumState, PipelineInfo
from cairn.pipelines.spec import PipelineSpec

__all__ = ["Heads", "datum_info", "describe", "provenance", "store_datums", "write_output"]

# The finished head commit of each input (repo, branch) of a job.
Heads = dict[tuple[str, str], CommitInfo]


def provenance(spec: PipelineSpec, heads: Heads) -> list[Provenance]:
    """One entry per distinct input; the input name labels it, qualified by repo and
    branch when a union gives two inputs one name."""
    leaves = {(p.input_name, p.repo, p.branch) for p in spec.pfs_inputs()}
    names = [name for name, _, _ in leaves]
    return [
        Provenance(
            name if names.count(name) == 1 else f"{name}:{repo}@{branch}",
            repo,
            branch,
            heads[(repo, branch)].id,
        )
        for name, repo, branch in sorted(leaves)
    ]


def describe(datum: Datum) -> str:
    """A datum named by its inputs, for people: ``input:path, …``."""
    return ", ".join(f"{name}:{path}" for name, _repo, _branch, path in datum.roots)


def write_output(
    data: DataStore,
    info: PipelineInfo,
    spec: PipelineSpec,
    job_id: str,
    heads: Heads,
    results: list[DatumResult],
    skipped: list[Datum],
    hashes: dict[str, str],
    code: dict[str, str],
) -> CommitInfo:
    """Write job ``job_id``'s output commit: the previous output less what changed or
    vanished, plus the ``results``' outputs, each file marked with its datum's hash; with
    provenance, code hashes and the environment fingerprint. Raises PipelineError (two
    datums wrote one path), CommitStateError (the output branch moved meanwhile)."""
    try:
        previous = data.resolve(Ref(info.name, spec.output_branch))
    except NotFound:
        previous = None
    kept_hashes = {hashes[d.id] for d in skipped}
    owners: dict[str, str] = {}
    changes: dict[str, FileEntry | None] = {}
    # Both datums of a clash are named by their inputs, kept or processed alike.
    by_hash = {hashes[d.id]: d for d in [*skipped, *(r.datum for r in results)]}
    old_tree = previous.tree if previous else None
    for path, entry in data.trees.walk(old_tree):
        if entry.datum in kept_hashes:
            owners[path] = entry.datum
        else:
            changes[path] = None
    for result in sorted(results, key=lambda r: r.datum.id):
        if result.state != "success":
            continue
        for path, content in result.outputs.items():
            other = owners.get(path)
            if other is not None and other != result.hash:
                other_datum = by_hash.get(other)
                other_desc = describe(other_datum) if other_datum else other[:12]
                raise PipelineError(
                    f"datums {describe(result.datum)} and {other_desc} both wrote "
                    f"/{path}; each output path must come from one datum"
                )
            owners[path] = result.hash
            changes[path] = FileEntry(content, result.hash)
    tree = data.trees.apply(old_tree, changes)
    env = environment_fingerprint()
    runtime = transform_runtime(spec.transform)
    for body in (env, runtime):
        if body is not None:
            key = f"env/{body['hash'][:2]}/{body['hash']}"
            data.chunks.objects.put(key, json.dumps(body, sort_keys=True).encode())
    commit_info = {
        "job": job_id,
        "pipeline": {"name": info.name, "version": info.version, "spec_hash": spec.spec_hash()},
        "transform_hash": canonical_hash(spec.transform.model_dump(mode="json")),
        "code": code,
        "image": spec.transform.image,
        "environment": {
            **{k: env[k] for k in ("hash", "python", "platform", "cpu", "accelerator")},
            # The interpreter the transform ran, when it is a Python on PATH.
            "transform": None
            if runtime is None
            else {k: runtime[k] for k in ("hash", "python", "executable")},
        },
    }
    return data.write_commit(
        info.name,
        spec.output_branch,
        tree,
        expected_head=previous.id if previous else None,
        commit_id=job_id,
        origin="pipeline",
        provenance=provenance(spec, heads),
        info=commit_info,
    )


def datum_info(pipeline: str, job_id: str, r: DatumResult) -> DatumInfo:
    """The record of a datum that ran (not a skipped one) in job ``job_id``."""
    return DatumInfo(
        pipeline,
        job_id,
        r.datum.id,
        r.hash,
        DatumState(r.state),
        [f.to_json() for f in r.datum.files],
        r.attempts,
        r.exit_code,
        r.duration,
        r.datum.size,
        r.bytes_out,
        r.error,
        r.node,
        r.environment,
    )


def store_datums(
    data: DataStore,
    catalog: Catalog,
    pipeline: str,
    job_id: str,
    results: list[DatumResult],
    skipped: list[Datum],
    hashes: dict[str, str],
) -> None:
    """Record every datum of job ``job_id`` (run or skipped) in ``catalog``, and their logs
    in ``data``'s object store."""
    records: list[tuple[DatumInfo, str | None]] = []
    # The datums' logs go into one object per job (an fsynced write per datum cost
    # 20,000 writes for 20,000 datums); each row names its slice as key@offset+length.
    # The key carries the logs' hash: a rerun of a killed job keeps the job id.
    blob = b"".join(r.log for r in results)
    key = f"logs/{pipeline}/{job_id}/datums-{blake3.blake3(blob).hexdigest()[:16]}"
    offset = 0
    for r in results:
        ref = f"{key}@{offset}+{len(r.log)}" if r.log else None
        offset += len(r.log)
        records.append((datum_info(pipeline, job_id, r), ref))
    if blob:
        data.chunks.objects.put(key, blob)
    for skip in skipped:
        inputs = [f.to_json() for f in skip.files]
        records.append(
            (
                DatumInfo(pipeline, job_id, skip.id, hashes[skip.id], DatumState.SKIPPED, inputs),
                None,
            )
        )
    rows = [
        dict(
            pipeline=pipeline,
            job=job_id,
            id=d.id,
            hash=d.hash,
            state=d.state,
            inputs=json.dumps(d.inputs),
            attempts=d.attempts,
            exit_code=d.exit_code,
            duration=d.duration,
            bytes_in=d.bytes_in,
            bytes_out=d.bytes_out,
            log=log,
            error=d.error,
            node=d.node,
            environment=d.environment,
        )
        for d, log in records
    ]
    if rows:
        with catalog.write() as conn:
            conn.execute(insert(datums), rows)
