"""Runs: params, metrics with steps, tags and artifacts of tracked executions (MLflow's
runs), each linked to the data, code and environment that made it.

Two sources, one table (``runs``, with every metric point in ``run_metrics``):

- **Runs of pipeline jobs.** A datum writes a run file under ``/pfs/out/.cairn/runs/``
  (format: ``cairn.ml.runfiles``; ``cairn.sdk`` writes it for Python). ``Runs.sync`` reads
  the run files of every finished output commit of a pipeline repo that it has not read
  yet (``run_sources`` remembers them) and indexes one run per file. A run's id is the
  BLAKE3 of (repo, datum hash, path, content hash), length-framed: a file that a later
  job keeps because it skipped the datum is the same run, not a second one, and a datum
  that reran (a new salt, new input bytes) is a new run. The run links its pipeline, job,
  datum (id and hash), output commit and, in ``info``: ``inputs`` (the commit's
  provenance, input name -> repo/branch/commit), ``input_files`` (the datum's input
  files), ``code`` (path -> BLAKE3 of the transform's files) and ``code_hash`` (BLAKE3 of
  that map as canonical JSON), ``transform_hash``, ``environment`` (the fingerprint
  summary of the output commit) and ``artifacts`` (every output path the same datum
  wrote, plus paths the file names). Its experiment defaults to the pipeline's name.
- **Runs of SDK calls outside a pipeline** (a notebook, a script): ``start`` makes a row
  in state ``running``, ``log`` adds to it, ``finish`` ends it (``finished`` or
  ``failed``). Their ids are random; ``info.environment`` is this machine's fingerprint,
  ``info.artifacts`` the ``repo@commit:/path`` refs of the copies ``cairn.sdk`` stored in
  repo ``run-artifacts`` (``ARTIFACT_REPO``, folder ``/<run id>/``) in logging order, and
  ``info.inputs`` the datasets it read (name -> object; a cairn ref's commit among them).

Run states: ``running`` -> ``finished`` | ``failed`` (pipeline runs are born finished:
a failed datum commits nothing). A run's ``metrics`` are each key's last logged value;
``history`` returns every point in logging order.

Runs of pipelines are derived data: deleting their rows and the ``run_sources`` rows
loses nothing a ``sync`` cannot rebuild from the commits.
"""

from __future__ import annotations

import builtins
import json
import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import blake3
from sqlalchemy import Connection, and_, exists, func, insert, select, update

from cairn.catalog.schema import commits, repos, run_metrics, run_sources, runs
from cairn.data import CommitInfo, DataStore, FileEntry, NotFound
from cairn.data.subject import about
from cairn.ml.errors import MLError, RunFileError
from cairn.ml.models import Comparison, MetricPoint, RunInfo
from cairn.ml.runfiles import RUNS_DIR, RunFile, parse_run_file
from cairn.pipelines import Pipelines
from cairn.pipelines.datums import canonical_hash
from cairn.pipelines.environment import environment_fingerprint

__all__ = ["Comparison", "Runs", "run_id"]

DEFAULT_EXPERIMENT = "default"
# The repo where runs outside pipelines keep their artifacts, one folder per run id
# (cairn.sdk writes it; it holds the same name, importing only the standard library).
ARTIFACT_REPO = "run-artifacts"
_CHUNK = 500  # ids per IN (...) clause, well under SQLite's and PostgreSQL's limits


def run_id(repo: str, datum_hash: str | None, path: str, content_hash: str) -> str:
    """The id of the run in the run file at ``repo:path`` with content ``content_hash``,
    written by datum ``datum_hash``: 32 hex digits of BLAKE3 over the length-framed parts."""
    h = blake3.blake3()
    for part in (repo, datum_hash or "", path, content_hash):
        raw = part.encode()
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return h.hexdigest()[:32]


class Runs:
    """Runs in the catalog of ``data``; ``pipelines`` answers which datum wrote a file."""

    def __init__(self, data: DataStore, pipelines: Pipelines) -> None:
        self.data = data
        self.pipelines = pipelines
        self.catalog = data.catalog

    # -- indexing run files ------------------------------------------------------------
    def sync(self) -> list[RunInfo]:
        """Index the run files of finished output commits not read yet, oldest first;
        return the new runs. Idempotent: a second call finds nothing new.

        Every readable run file is indexed. A malformed one raises RunFileError (naming
        the file, line and field) after the others are stored; its commit counts as read,
        so the error is not raised again for it (a later commit keeping the file raises
        it again, until the pipeline reprocesses the datum).
        """
        with self.catalog.read() as conn:
            pending = conn.execute(
                select(commits.c.repo, commits.c.id)
                .select_from(commits.join(repos, repos.c.name == commits.c.repo))
                .where(
                    repos.c.type == "pipeline",
                    commits.c.state == "finished",
                    commits.c.origin == "pipeline",
                    ~exists().where(
                        run_sources.c.repo == commits.c.repo, run_sources.c.commit == commits.c.id
                    ),
                )
                .order_by(commits.c.created, commits.c.repo, commits.c.id)
            ).all()
        if not pending:
            return []
        found: dict[str, tuple[RunInfo, list[MetricPoint]]] = {}
        counts: dict[tuple[str, str], int] = {}
        errors: list[RunFileError] = []
        for repo, commit_id in pending:
            commit = self.data.inspect_commit(repo, commit_id)
            made, bad = self._read_commit(commit, found)
            counts[(repo, commit_id)] = len(made)
            for run, points in made:
                found[run.id] = (run, points)
            errors += bad
        new: list[RunInfo] = []
        with self.catalog.write() as conn:
            done = {
                (r.repo, r.commit)
                for r in conn.execute(
                    select(run_sources.c.repo, run_sources.c.commit).where(
                        run_sources.c.repo.in_({repo for repo, _ in pending})
                    )
                )
            }
            present = self._existing(conn, list(found))
            for run, points in found.values():
                if run.id in present:  # a concurrent sync stored it
                    continue
                self._insert(conn, run, points)
                new.append(run)
            rows = [
                {"repo": repo, "commit": cid, "runs": n}
                for (repo, cid), n in counts.items()
                if (repo, cid) not in done
            ]
            if rows:
                conn.execute(insert(run_sources), rows)
        if errors:
            more = f" ({len(errors) - 1} more malformed run file(s))" if len(errors) > 1 else ""
            raise RunFileError(f"{errors[0]}{more}")
        return new

    def _read_commit(
        self, commit: CommitInfo, seen: Mapping[str, object]
    ) -> tuple[list[tuple[RunInfo, list[MetricPoint]]], list[RunFileError]]:
        files = list(self.data.trees.walk(commit.tree, RUNS_DIR)) if commit.tree else []
        if not files:
            return [], []
        ids = {path: run_id(commit.repo, e.datum, path, e.hash) for path, e in files}
        with self.catalog.read() as conn:
            present = self._existing(conn, list(ids.values()))
        todo = [(p, e) for p, e in files if ids[p] not in present and ids[p] not in seen]
        if not todo:
            return [], []
        written: dict[str | None, list[str]] = {}
        for path, entry in self.data.trees.walk(commit.tree):
            if not path.startswith(RUNS_DIR + "/"):
                written.setdefault(entry.datum, []).append("/" + path)
        made, bad = [], []
        for path, entry in todo:
            try:
                made.append(self._run_of(commit, path, entry, ids[path], written))
            except RunFileError as exc:
                bad.append(exc)
        return made, bad

    def _run_of(
        self,
        commit: CommitInfo,
        path: str,
        entry: FileEntry,
        rid: str,
        written: Mapping[str | None, list[str]],
    ) -> tuple[RunInfo, list[MetricPoint]]:
        repo, job = commit.repo, commit.info.get("job")
        datum = None
        if entry.datum is not None and job:
            try:
                datum = self.pipelines.datum_by_hash(repo, entry.datum, job)
            except NotFound:  # the job's record is gone (pipeline deleted and recreated)
                datum = None
        origin, started = commit, None
        if datum is not None:
            try:
                made_by = self.pipelines.inspect_job(repo, datum.job)
                started = made_by.started
                if datum.job != job and made_by.output_commit:
                    # A file kept from an earlier job that sync never saw: link that job's
                    # output commit, whose inputs and code made it.
                    origin = self.data.inspect_commit(repo, made_by.output_commit)
            except NotFound:
                pass
        content = b"".join(self.data.chunks.read(entry.content))
        parsed: RunFile = parse_run_file(path, content, default_time=origin.created)
        stem = path.rpartition("/")[2].rpartition(".")[0]
        datum_id = datum.id if datum else (stem if _is_hex64(stem) else None)
        code = origin.info.get("code", {})
        declared = ["/" + a.lstrip("/") for a in parsed.artifacts]
        artifacts = sorted({*written.get(entry.datum, []), *declared})
        points = [p for key in parsed.metrics for p in parsed.metrics[key]]
        run = RunInfo(
            id=rid,
            name=parsed.name or f"{repo}-{(datum_id or stem)[:8]}",
            experiment=parsed.experiment or repo,
            state="finished",
            created=started or origin.created,
            finished=origin.finished,
            params=parsed.params,
            metrics={k: v[-1].value for k, v in parsed.metrics.items() if v},
            tags=parsed.tags,
            pipeline=repo,
            job=datum.job if datum else job,
            datum=datum_id,
            datum_hash=entry.datum,
            repo=repo,
            commit=origin.id,
            source="/" + path,
            info={
                "inputs": {
                    p.name: {"repo": p.repo, "branch": p.branch, "commit": p.commit}
                    for p in origin.provenance
                },
                "input_files": datum.inputs if datum else [],
                "code": code,
                "code_hash": canonical_hash(code),
                "transform_hash": origin.info.get("transform_hash"),
                "image": origin.info.get("image"),
                "environment": origin.info.get("environment"),
                "pipeline_version": (origin.info.get("pipeline") or {}).get("version"),
                "artifacts": artifacts,
            },
        )
        return run, points

    @staticmethod
    def _existing(conn: Connection, ids: list[str]) -> set[str]:
        present: set[str] = set()
        for i in range(0, len(ids), _CHUNK):
            present.update(
                conn.execute(select(runs.c.id).where(runs.c.id.in_(ids[i : i + _CHUNK]))).scalars()
            )
        return present

    @staticmethod
    def _insert(conn: Connection, run: RunInfo, points: list[MetricPoint]) -> None:
        conn.execute(
            insert(runs).values(
                id=run.id,
                name=run.name,
                experiment=run.experiment,
                state=run.state,
                pipeline=run.pipeline,
                job=run.job,
                datum=run.datum,
                datum_hash=run.datum_hash,
                repo=run.repo,
                commit=run.commit,
                source=run.source,
                created=run.created,
                finished=run.finished,
                params=_dumps(run.params),
                tags=_dumps(run.tags),
                info=_dumps(run.info),
            )
        )
        seq: dict[str, int] = {}
        rows = []
        for p in points:
            seq[p.key] = seq.get(p.key, -1) + 1
            rows.append(
                {
                    "run": run.id,
                    "key": p.key,
                    "seq": seq[p.key],
                    "step": p.step,
                    "timestamp": p.timestamp,
                    "value": p.value,
                }
            )
        if rows:
            conn.execute(insert(run_metrics), rows)

    # -- reading -----------------------------------------------------------------------
    def list(
        self, experiment: str | None = None, pipeline: str | None = None
    ) -> builtins.list[RunInfo]:
        """Runs newest first, optionally of one experiment and/or one pipeline."""
        query = select(runs)
        if experiment is not None:
            query = query.where(runs.c.experiment == experiment)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        with self.catalog.read() as conn:
            rows = conn.execute(query.order_by(runs.c.created.desc(), runs.c.name)).all()
            return self._infos(conn, rows)

    def get(self, ref: str) -> RunInfo:
        """A run by id, name or id prefix, in that order (a name that looks like a prefix
        of another run's id is the named run). Raises NotFound, also when ``ref`` is
        ambiguous (the message lists the candidates)."""
        with self.catalog.read() as conn:
            rows: Sequence[Any] = []
            for where in (
                runs.c.id == ref,
                runs.c.name == ref,
                runs.c.id.startswith(ref, autoescape=True),
            ):
                rows = conn.execute(select(runs).where(where).limit(5)).all()
                if rows:
                    break
            if len(rows) != 1:
                if not rows:
                    raise about(NotFound(f"run {ref!r} not found"), "run.missing")
                names = ", ".join(f"{r.id[:12]} ({r.name})" for r in rows)
                raise NotFound(f"run {ref!r} is ambiguous: {names}; give more of the id")
            return self._infos(conn, rows)[0]

    def history(self, run: str, key: str) -> builtins.list[MetricPoint]:
        """Every logged point of metric ``key`` of run ``run`` (id, prefix or name), in
        logging order. Raises NotFound for an unknown run or a key the run never logged."""
        info = self.get(run)
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(run_metrics)
                .where(run_metrics.c.run == info.id, run_metrics.c.key == key)
                .order_by(run_metrics.c.seq)
            ).all()
        if not rows:
            raise NotFound(
                f"run {info.id[:12]} ({info.name}) has no metric {key!r}; "
                f"it has: {', '.join(sorted(info.metrics)) or 'none'}"
            )
        return [MetricPoint(key, r.value, r.step, r.timestamp) for r in rows]

    def for_datum(self, repo: str, datum_hash: str) -> RunInfo | None:
        """The newest run that datum ``datum_hash`` of pipeline repo ``repo`` recorded, or
        None. With file lineage (file -> datum hash) this finds the run of a model file."""
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(runs)
                .where(runs.c.repo == repo, runs.c.datum_hash == datum_hash)
                .order_by(runs.c.created.desc(), runs.c.id)
                .limit(1)
            ).all()
            return self._infos(conn, rows)[0] if rows else None

    def compare(
        self,
        refs: Iterable[str] = (),
        *,
        experiment: str | None = None,
        pipeline: str | None = None,
    ) -> Comparison:
        """Runs ``refs`` (ids, prefixes or names) in that order, then the runs of
        ``experiment``/``pipeline`` (newest first) if given, side by side. Raises NotFound;
        MLError when nothing is selected."""
        chosen = [self.get(r) for r in refs]
        if experiment is not None or pipeline is not None:
            ids = {r.id for r in chosen}
            chosen += [r for r in self.list(experiment, pipeline) if r.id not in ids]
        if not chosen:
            raise MLError("no runs to compare: name run ids, or an --experiment or --pipeline")
        params = {
            k: [r.params.get(k) for r in chosen]
            for k in sorted({k for r in chosen for k in r.params})
        }
        metrics = {
            k: [r.metrics.get(k) for r in chosen]
            for k in sorted({k for r in chosen for k in r.metrics})
        }
        differing = [
            k
            for k, values in params.items()
            if any(
                (k in r.params) != (k in chosen[0].params) or v != values[0]
                for r, v in zip(chosen, values, strict=True)
            )
        ]
        return Comparison(chosen, params, metrics, differing)

    def _infos(self, conn: Connection, rows: Sequence[Any]) -> builtins.list[RunInfo]:
        ids = [r.id for r in rows]
        last: dict[str, dict[str, float]] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            newest = (
                select(
                    run_metrics.c.run, run_metrics.c.key, func.max(run_metrics.c.seq).label("seq")
                )
                .where(run_metrics.c.run.in_(chunk))
                .group_by(run_metrics.c.run, run_metrics.c.key)
                .subquery()
            )
            query = select(run_metrics.c.run, run_metrics.c.key, run_metrics.c.value).join(
                newest,
                and_(
                    run_metrics.c.run == newest.c.run,
                    run_metrics.c.key == newest.c.key,
                    run_metrics.c.seq == newest.c.seq,
                ),
            )
            for r in conn.execute(query):
                last.setdefault(r.run, {})[r.key] = r.value
        return [
            RunInfo(
                id=r.id,
                name=r.name,
                experiment=r.experiment,
                state=r.state,
                created=r.created,
                finished=r.finished,
                params=_loads(r.params),
                metrics=dict(sorted(last.get(r.id, {}).items())),
                tags=_loads(r.tags),
                pipeline=r.pipeline,
                job=r.job,
                datum=r.datum,
                datum_hash=r.datum_hash,
                repo=r.repo,
                commit=r.commit,
                source=r.source,
                info=_loads(r.info),
            )
            for r in rows
        ]

    # -- runs outside pipelines (cairn.sdk in a notebook or script) --------------------------
    def start(
        self,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Start a run in state ``running`` in experiment ``experiment`` (default
        ``default``), recording this machine's environment fingerprint. Raises MLError
        for tags that are not JSON scalars."""
        rid = uuid.uuid4().hex
        env = environment_fingerprint()
        key = f"env/{env['hash'][:2]}/{env['hash']}"
        self.data.chunks.objects.put(key, _dumps(env).encode())
        summary = {k: env[k] for k in ("hash", "python", "platform", "cpu", "accelerator")}
        with self.catalog.write() as conn:
            conn.execute(
                insert(runs).values(
                    id=rid,
                    name=name or f"run-{rid[:8]}",
                    experiment=experiment or DEFAULT_EXPERIMENT,
                    state="running",
                    created=time.time(),
                    params="{}",
                    tags=_dumps(_scalars(tags or {}, "tag")),
                    info=_dumps({"environment": summary, "artifacts": []}),
                )
            )
        return self.get(rid)

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
        """Add to running run ``run`` (its exact id): params and tags (a later value of a
        key replaces the earlier), one point per metric at ``step`` (default 0) and
        ``timestamp`` (default now, UTC seconds), artifact paths; then remove the tags
        named in ``delete_tags`` (a missing one is no error). ``inputs`` (name -> a JSON
        object describing a dataset the run read) merge into ``info["inputs"]``.

        Raises NotFound; MLError for a run of a pipeline or one that has ended, a key that
        is not a non-empty string, a param or tag that is not a JSON scalar, a metric that
        is not a finite number.
        """
        new_params = _scalars(params or {}, "param")
        new_tags = _scalars(tags or {}, "tag")
        gone = {_key(k, "tag") for k in delete_tags}
        points = {_key(k, "metric"): _finite(k, v) for k, v in (metrics or {}).items()}
        when = time.time() if timestamp is None else float(timestamp)
        with self.catalog.write() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run)).first()
            if row is None:
                raise NotFound(f"run {run!r} not found")
            if row.pipeline is not None or row.state != "running":
                raise MLError(
                    f"run {run[:12]} is {row.state}"
                    + (f" (recorded by pipeline {row.pipeline})" if row.pipeline else "")
                    + "; start a new run to log more"
                )
            info = _loads(row.info)
            # logging order, each once: a path logged again (a later copy) comes last
            info["artifacts"] = list(dict.fromkeys([*info.get("artifacts", []), *artifacts]))
            if inputs:
                info["inputs"] = {**info.get("inputs", {}), **_datasets(inputs)}
            conn.execute(
                update(runs)
                .where(runs.c.id == run)
                .values(
                    params=_dumps({**_loads(row.params), **new_params}),
                    tags=_dumps(
                        {k: v for k, v in {**_loads(row.tags), **new_tags}.items() if k not in gone}
                    ),
                    info=_dumps(info),
                )
            )
            if points:
                seqs = dict(
                    conn.execute(
                        select(run_metrics.c.key, func.max(run_metrics.c.seq))
                        .where(run_metrics.c.run == run, run_metrics.c.key.in_(list(points)))
                        .group_by(run_metrics.c.key)
                    ).all()
                )
                conn.execute(
                    insert(run_metrics),
                    [
                        {
                            "run": run,
                            "key": k,
                            "seq": seqs.get(k, -1) + 1,
                            "step": step or 0,
                            "timestamp": when,
                            "value": v,
                        }
                        for k, v in points.items()
                    ],
                )

    def finish(self, run: str, state: str = "finished") -> RunInfo:
        """End running run ``run`` (its exact id) as ``finished`` or ``failed``. Ending an
        ended run again is a no-op. Raises NotFound; MLError for another state."""
        if state not in ("finished", "failed"):
            raise MLError(f"a run ends finished or failed, not {state!r}")
        with self.catalog.write() as conn:
            row = conn.execute(select(runs.c.state).where(runs.c.id == run)).first()
            if row is None:
                raise NotFound(f"run {run!r} not found")
            if row.state == "running":
                conn.execute(
                    update(runs).where(runs.c.id == run).values(state=state, finished=time.time())
                )
        return self.get(run)


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _loads(text: str) -> Any:
    return json.loads(text)


def _key(key: Any, kind: str) -> str:
    if not isinstance(key, str) or not key:
        raise MLError(f"a {kind} key must be a non-empty string, not {key!r}")
    return key


def _scalars(values: Mapping[str, Any], kind: str) -> dict[str, Any]:
    out = {}
    for k, v in values.items():
        if not isinstance(v, str | int | float | bool | type(None)) or (
            isinstance(v, float) and not math.isfinite(v)
        ):
            raise MLError(f"{kind} {k!r}: {v!r} is not a JSON scalar (string, number, bool)")
        out[_key(k, kind)] = v
    return out


def _datasets(inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, entry in inputs.items():
        if not isinstance(entry, Mapping):
            raise MLError(f"input {name!r}: {entry!r} is not an object describing a dataset")
        try:
            out[_key(name, "input")] = json.loads(_dumps(dict(entry)))
        except (TypeError, ValueError) as exc:
            raise MLError(f"input {name!r} is not JSON: {exc}") from None
    return out


def _finite(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MLError(f"metric {key!r}: {value!r} is not a finite number")
    return float(value)
