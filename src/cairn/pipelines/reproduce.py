"""Running a past job's datums again: ``reproduce_job`` and ``restart_datum``.

Reproducing a finished job: its datums run again, into scratch, from what its output
commit recorded (input commits, spec version, code hashes), and each output file is
compared with the recorded one by BLAKE3 hash.

Nothing is committed: the outputs are stored as chunks only (unreferenced, so the next
``gc`` removes them) and the job's records stay as they were. A job is refused
(Irreproducible) when what it ran cannot be had again: its spec version is gone, its
input commits were deleted, its code files' hashes (or its image reference) differ from
the recorded ones, or it did not succeed.

Restarting a failed datum runs it with the pipeline's current code (the fix is usually
there) over the job's input commits and records the new outcome in its row.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy import update as sql_update

from cairn.catalog.schema import datums, pipeline_versions
from cairn.data import NotFound
from cairn.pipelines.datums import build_datums, canonical_hash
from cairn.pipelines.environment import code_files, environment_fingerprint, transform_runtime
from cairn.pipelines.errors import Irreproducible, PipelineError
from cairn.pipelines.jobs import JobRunner
from cairn.pipelines.models import (
    DatumInfo,
    DatumState,
    EnvironmentChange,
    FileCheck,
    JobState,
    PipelineInfo,
    Reproduction,
)
from cairn.pipelines.output import Heads
from cairn.pipelines.rows import inspect_pipeline
from cairn.pipelines.sandbox import sandbox_available
from cairn.pipelines.secret_store import Masker
from cairn.pipelines.spec import read_spec
from cairn.storage import ObjectNotFound

__all__ = ["reproduce_job", "restart_datum"]

_ENV_KEYS = ("python", "implementation", "platform", "machine", "cpu", "cpu_count", "accelerator")


def _recorded_spec(runner: JobRunner, info: PipelineInfo, version: int) -> tuple[Any, str]:
    with runner.catalog.read() as conn:
        row = conn.execute(
            select(pipeline_versions.c.spec, pipeline_versions.c.salt).where(
                pipeline_versions.c.name == info.name, pipeline_versions.c.version == version
            )
        ).first()
    if row is None:
        raise Irreproducible(f"pipeline {info.name!r} no longer has spec version {version}")
    return read_spec(row.spec, source=f"pipeline {info.name!r} version {version}"), row.salt


def _stored_env(runner: JobRunner, digest: str | None) -> dict[str, Any] | None:
    if not digest:
        return None
    try:
        raw = runner.data.chunks.objects.get(f"env/{digest[:2]}/{digest}")
    except ObjectNotFound:
        return None
    body: dict[str, Any] = json.loads(raw)
    return body


def _env_changes(
    prefix: str, recorded: dict[str, Any] | None, present: dict[str, Any] | None
) -> list[EnvironmentChange]:
    """What differs between two fingerprints: each top field, then each package."""
    if recorded is None and present is None:
        return []
    if recorded is None or present is None:
        return [EnvironmentChange(prefix or "environment", _text(recorded), _text(present))]
    if recorded.get("hash") == present.get("hash"):
        return []
    changes = [
        EnvironmentChange(f"{prefix}{key}", _text(recorded.get(key)), _text(present.get(key)))
        # only what was recorded: a commit keeps a short form when the full body is gone
        for key in (*_ENV_KEYS, "executable")
        if key in recorded and recorded.get(key) != present.get(key)
    ]
    old, new = recorded.get("packages"), present.get("packages")
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                changes.append(
                    EnvironmentChange(
                        f"{prefix}packages.{name}", _text(old.get(name)), _text(new.get(name))
                    )
                )
    elif not changes:  # only the short form was recorded: say the hash differs
        changes.append(
            EnvironmentChange(f"{prefix}hash", _text(recorded["hash"]), _text(present["hash"]))
        )
    return changes


def _change(path: str, then: dict[str, str], now: dict[str, str]) -> str:
    return "gone" if path not in now else "new" if path not in then else "edited"


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def reproduce_job(
    runner: JobRunner, pipeline: str, job_id: str, datum: str | None = None
) -> Reproduction:
    """Run the datums of successful job ``pipeline@job_id`` again (only the one whose id
    starts with ``datum`` when given) in scratch folders from the recorded input commits,
    spec version and code, and compare every output file the output commit holds from
    those datums (BLAKE3). Raises NotFound (pipeline, job or datum), Irreproducible."""
    data = runner.data
    info = inspect_pipeline(runner.catalog, pipeline)
    job = runner.history.inspect_job(pipeline, job_id)
    if job.state != JobState.SUCCESS or job.output_commit is None:
        raise Irreproducible(
            f"job {pipeline}@{job.id} is {job.state}: only a job that succeeded left outputs "
            "to compare with"
        )
    try:
        commit = data.inspect_commit(pipeline, job.output_commit)
    except NotFound:
        raise Irreproducible(
            f"job {pipeline}@{job.id}: its output commit {job.output_commit} was deleted"
        ) from None
    recorded = commit.info
    version = int(recorded.get("pipeline", {}).get("version", job.spec_version))
    spec, salt = _recorded_spec(runner, info, version)
    if canonical_hash(spec.transform.model_dump(mode="json")) != recorded.get("transform_hash"):
        raise Irreproducible(
            f"job {pipeline}@{job.id}: spec version {version}'s transform is not the one recorded"
        )
    if spec.transform.image != recorded.get("image"):
        raise Irreproducible(
            f"job {pipeline}@{job.id} ran image {recorded.get('image')!r}, the spec names "
            f"{spec.transform.image!r} now"
        )
    code_then: dict[str, str] = recorded.get("code", {})
    code_now = code_files(spec.transform, Path(info.spec_dir))
    if code_now != code_then:
        changed = sorted(
            f"{path} ({_change(path, code_then, code_now)})"
            for path in set(code_then) | set(code_now)
            if code_then.get(path) != code_now.get(path)
        )
        raise Irreproducible(
            f"job {pipeline}@{job.id}: its code changed since it ran: {', '.join(changed)} "
            f"(in {info.spec_dir})"
        )
    heads: Heads = {}
    for p in commit.provenance:
        try:
            heads[(p.repo, p.branch)] = data.inspect_commit(p.repo, p.commit)
        except NotFound:
            raise Irreproducible(
                f"job {pipeline}@{job.id}: its input commit {p.repo}@{p.commit} was deleted"
            ) from None
    all_datums = build_datums(data, spec.input, heads)
    chosen = [d for d in all_datums if datum is None or d.id.startswith(datum)]
    if datum is not None and len(chosen) != 1:
        raise NotFound(
            f"job {pipeline}@{job.id} has "
            + (f"no datum {datum!r}" if not chosen else f"{len(chosen)} datums {datum}…")
        )
    hashes = {d.id: d.hash(salt) for d in chosen}
    expected = {
        path: entry
        for path, entry in data.trees.walk(commit.tree)
        if entry.datum in set(hashes.values())
    }
    sandbox = sandbox_available()
    notes = runner.check_confinement(info, sandbox)
    secret_env = runner.secret_env(spec)
    masker = Masker(secret_env.values())
    scratch = Path(tempfile.mkdtemp(prefix=f"reproduce-{pipeline}-", dir=_work(runner)))
    produced: dict[str, str] = {}
    failures: list[str] = []
    try:
        ctx = runner.run_context(info, spec, job.id, scratch, sandbox, secret_env)
        workers = spec.parallelism_spec.constant if spec.parallelism_spec else 1
        for result in runner.run_datums(ctx, chosen, hashes, max(1, workers)):
            if result.state != "success":
                failures.append(
                    f"datum {result.datum.id[:12]} {result.state}: "
                    f"{masker.text(result.error) or 'error'}"
                )
            for path, content in result.outputs.items():
                produced[path] = content.hash
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = []
    for path in sorted(set(expected) | set(produced)):
        then = expected[path].hash if path in expected else None
        now = produced.get(path)
        state = (
            "identical"
            if then == now
            else "missing"
            if now is None
            else "extra"
            if then is None
            else "different"
        )
        files.append(FileCheck("/" + path, state, then, now))
    env_recorded = recorded.get("environment", {}) or {}
    changes = _env_changes(
        "",
        _stored_env(runner, env_recorded.get("hash")) or env_recorded or None,
        environment_fingerprint(),
    )
    runtime_then = env_recorded.get("transform")
    runtime_now = transform_runtime(spec.transform)
    if runtime_then or runtime_now:
        changes += _env_changes(
            "transform.",
            _stored_env(runner, (runtime_then or {}).get("hash")) or runtime_then,
            runtime_now,
        )
    return Reproduction(
        pipeline=pipeline,
        job=job.id,
        output_commit=commit.id,
        spec_version=version,
        datums=len(chosen),
        files=files,
        environment=changes,
        failures=failures,
        notes=notes,
    )


def _work(runner: JobRunner) -> Path:
    folder = runner.settings.work_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _job_heads(runner: JobRunner, spec: Any, inputs: dict[str, str]) -> Heads:
    """The input commits job ``inputs`` (input name -> commit id) names, as Heads."""
    leaves = {(p.input_name, p.repo, p.branch) for p in spec.pfs_inputs()}
    heads: Heads = {}
    for name, repo, branch in leaves:
        commit = inputs.get(name) or inputs.get(f"{name}:{repo}@{branch}")
        if commit is None:
            raise Irreproducible(f"the job recorded no commit for input {name!r}")
        try:
            heads[(repo, branch)] = runner.data.inspect_commit(repo, commit)
        except NotFound:
            raise Irreproducible(f"input commit {repo}@{commit} was deleted") from None
    return heads


def restart_datum(runner: JobRunner, pipeline: str, job_id: str, datum: str) -> DatumInfo:
    """Run the failed datum of job ``pipeline@job_id`` whose id starts with ``datum`` once
    more, with the pipeline's current spec and code over the job's input commits, and
    record the outcome in place of the failed one (state, attempts, log). When no datum of
    the job is failed any more, the pipeline is asked to run again (as ``rerun``), so the
    job's inputs get their output at the next run. Raises NotFound, PipelineError (a job
    that did not fail, a datum that did not fail), Irreproducible (inputs gone)."""
    info = inspect_pipeline(runner.catalog, pipeline)
    job = runner.history.inspect_job(pipeline, job_id)
    if job.state != JobState.FAILURE:
        raise PipelineError(
            f"job {pipeline}@{job.id} is {job.state}: only a failed job's datums restart"
        )
    recorded = [d for d in runner.history.list_datums(pipeline, job.id) if d.id.startswith(datum)]
    if len(recorded) != 1:
        raise NotFound(
            f"job {pipeline}@{job.id} has "
            + (f"no datum {datum!r}" if not recorded else f"several datums {datum}…")
        )
    old = recorded[0]
    if old.state != DatumState.FAILED:
        raise PipelineError(
            f"datum {old.id[:12]} of {pipeline}@{job.id} is {old.state}, not failed"
        )
    spec = info.spec
    if spec.input is None:
        raise PipelineError(f"{pipeline} is a spout: it runs no datums")
    heads = _job_heads(runner, spec, job.inputs)
    found = [d for d in build_datums(runner.data, spec.input, heads) if d.id == old.id]
    if not found:
        raise Irreproducible(
            f"the inputs of {pipeline}@{job.id} no longer make datum {old.id[:12]}"
        )
    sandbox = sandbox_available()
    runner.check_confinement(info, sandbox)
    secret_env = runner.secret_env(spec)
    masker = Masker(secret_env.values())
    scratch = Path(tempfile.mkdtemp(prefix=f"restart-{pipeline}-", dir=_work(runner)))
    try:
        ctx = runner.run_context(info, spec, job.id, scratch, sandbox, secret_env)
        (result,) = list(runner.run_datums(ctx, found, {old.id: found[0].hash(info.salt)}, 1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.log, result.error = masker.bytes(result.log), masker.text(result.error)
    key = f"logs/{pipeline}/{job.id}/restart-{old.id[:16]}-{int(time.time() * 1000)}"
    if result.log:
        runner.data.chunks.objects.put(key, result.log)
    with runner.catalog.write() as conn:
        conn.execute(
            sql_update(datums)
            .where(datums.c.pipeline == pipeline, datums.c.job == job.id, datums.c.id == old.id)
            .values(
                state=result.state,
                hash=result.hash,
                attempts=old.attempts + result.attempts,
                exit_code=result.exit_code,
                duration=result.duration,
                bytes_out=result.bytes_out,
                error=result.error,
                log=f"{key}@0+{len(result.log)}" if result.log else None,
            )
        )
    if not any(d.state == DatumState.FAILED for d in runner.history.list_datums(pipeline, job.id)):
        runner.record_rerun(pipeline)
    return next(d for d in runner.history.list_datums(pipeline, job.id) if d.id == old.id)
