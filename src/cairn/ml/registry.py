"""The model registry: models, immutable auto-numbered versions, aliases and their history.

A **model** is a name (the rules of repo names). A **version** (1, 2, ... per model) is a
file or folder at ``repo@commit:/path`` in a *finished* commit, named by id (a branch given
at registration is resolved once), plus its flavor, signature, the run that produced it
and ``info``: ``hash`` (BLAKE3 content hash of the file, or the folder's tree hash),
``size``, ``type`` (file | dir), ``files``, ``ref`` (what was given), ``command`` and
``timeout`` (command flavor) and, when a pipeline wrote the file, ``training``: pipeline,
job, datum, datum hash; and ``trusted``: whether the user consented (``trust=True``) that
loading it may run its code (pickle, joblib, MLflow; see ``flavors``, Trust), without which
such a file is not registered. Versions never change. An **alias** (``champion``,
``challenger``, ...) names one version of a model and moves.

Specs that name a version (``resolve``, MLflow's model URIs without ``models:/``, which
is accepted too): ``NAME@ALIAS``, ``NAME/VERSION``, ``NAME/latest`` or ``NAME`` (latest).

State machine of an alias: absent -set-> v -set-> w -rollback-> v -delete-> absent.
Every move appends a row to ``alias_history`` (``kind`` set | delete | rollback) and an
event (``alias.set``, ``alias.delete``, ``alias.rollback``), in the transaction of the
move. ``rollback`` undoes the last move that is not itself undone, like an undo stack:
two rollbacks from v3 (after v1, v2, v3) land on v1, and a third has nothing left.

Version numbers come from one catalog write transaction (the catalog's single writer
lock), so concurrent registrations, in threads or processes, never share a number.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from cairn.catalog.schema import alias_history, model_aliases, model_versions, models
from cairn.data import (
    CommitStateError,
    DataStore,
    InvalidReference,
    NotFound,
    Ref,
    parse_ref,
)
from cairn.data.refs import check_name
from cairn.data.subject import about
from cairn.ml.errors import FlavorError, MLError
from cairn.ml.events import record_event
from cairn.ml.lineage import model_lineage, training_of
from cairn.ml.models import ModelInfo, ModelVersion, RunInfo, Signature
from cairn.ml.runs import ARTIFACT_REPO, Runs
from cairn.pipelines import Pipelines

__all__ = ["RESERVED_ALIASES", "Registry", "parse_spec"]

RESERVED_ALIASES = ("latest",)
_VERSION = re.compile(r"^[0-9]+$")
_MAX_VERSION = 2**63 - 1  # the catalog's integers are 64-bit: no version is beyond it


def parse_spec(spec: str) -> tuple[str, str | None, int | None]:
    """``(name, alias, version)`` of ``NAME@ALIAS`` / ``NAME/VERSION`` / ``NAME/latest`` /
    ``NAME`` (at most one of alias and version set; neither means the latest version).
    A leading ``models:/`` (MLflow's model URI) is dropped. Raises InvalidReference."""
    text = spec.removeprefix("models:/")
    alias: str | None = None
    version: int | None = None
    if "@" in text:
        text, _, alias = text.partition("@")
        check_name(alias, "alias")
    elif "/" in text:
        text, _, tail = text.partition("/")
        if _VERSION.match(tail):
            version = int(tail)
        elif tail != "latest":
            raise InvalidReference(
                f"{spec!r}: after '/' comes a version number or 'latest'; "
                "use NAME@ALIAS for an alias"
            )
    check_name(text, "model")
    return text, alias, version


class Registry:
    """Models in the catalog of ``data``. ``pipelines`` answers which datum wrote a model
    file, ``runs`` which run that datum recorded."""

    def __init__(self, data: DataStore, pipelines: Pipelines, runs: Runs) -> None:
        self.data = data
        self.pipelines = pipelines
        self.runs = runs
        self.catalog = data.catalog

    # -- registering ----------------------------------------------------------------------
    def register(
        self,
        name: str,
        ref: str,
        *,
        flavor: str | None = None,
        signature: Signature | None = None,
        command: list[str] | None = None,
        description: str = "",
        timeout: float | None = None,
        trust: bool = False,
        input_example: Any = None,
    ) -> ModelVersion:
        """Register the file or folder at ``ref`` (``repo@branch-or-commit:/path``) as the
        next version of model ``name`` (created on first use).

        The commit is resolved to its id and must be finished. The flavor is inferred
        when not given (see ``flavors.infer_flavor``: from a file's content; a joblib/pickle
        file holding a scikit-learn estimator is ``sklearn``, any other object with
        ``predict`` ``python``). ``command`` (argv) and ``timeout`` (seconds per call) are
        for the ``command`` flavor. The signature given wins; else it comes from the
        MLmodel file (mlflow) or from the loaded model (sklearn, python; see
        ``signature.infer_signature``), typed by ``input_example`` when given (a pandas
        DataFrame of sample inputs, MLflow's ``input_example``: its columns and dtypes, and
        the outputs the model predicts for it; for a command model its inputs only). The
        run is the one the datum that wrote the file recorded, if any.

        ``trust``: the user's consent that loading the model may run code it names, needed
        for pickle and joblib files and MLflow folders (``flavors.runs_code``) and recorded
        on the version (``trusted``); only then is such a file loaded here, to infer its
        signature and flavor, and later to serve it. A ``.skops`` file needs none.

        Raises InvalidReference (bad model name or ref, no path), NotFound (repo, commit
        or path), CommitStateError (commit still open), UntrustedModel (a model whose
        loading runs code, without ``trust``: nothing of it was loaded), FlavorError
        (unknown or wrong flavor, a file that does not load, a command without a flavor
        that takes one), SignatureError (a malformed signature). Nothing is written when it
        raises.
        """
        # flavors and signature import pandas and NumPy: only registering needs them, so
        # alias moves and listings from the CLI start fast.
        from cairn.ml import flavors
        from cairn.ml.signature import normalize

        check_name(name, "model")
        parsed = parse_ref(ref)
        if parsed.path is None or not parsed.path:
            raise InvalidReference(
                f"{ref!r} names no file: register REPO@COMMIT:/PATH (a file or a folder)"
            )
        commit = self.data.resolve(parsed)
        if not commit.finished_ok:
            raise CommitStateError(
                f"{commit.repo}@{commit.id} is still open: finish it before registering a "
                "model from it (a model version names a finished commit)"
            )
        exact = Ref(commit.repo, commit.id, path=parsed.path)
        entry = self.data.inspect_file(exact)
        is_dir = entry.type == "dir"
        names = [f.path.rpartition("/")[2] for f in self.data.list_file(exact)] if is_dir else []
        if flavor is not None and flavor not in flavors.FLAVORS:
            raise FlavorError(f"unknown flavor {flavor!r}; use one of {', '.join(flavors.FLAVORS)}")
        if command and flavor not in (None, "command"):
            raise FlavorError(f"a command is for the command flavor, not {flavor}")
        if flavor == "command" and not command:
            raise FlavorError("the command flavor needs the command to run (--cmd ...)")
        sig = normalize(signature)
        info: dict[str, Any] = {
            "ref": ref,
            "hash": entry.hash,
            "size": entry.size,
            "type": entry.type,
            "files": entry.count,
        }
        if command:
            info["command"] = list(command)
            if timeout is not None:
                info["timeout"] = float(timeout)
        draft = ModelVersion(
            name,
            0,
            commit.repo,
            commit.id,
            entry.path,
            flavor or "",
            sig,
            None,
            0.0,
            description,
            info,
            trusted=trust,
        )
        chosen, inferred = self._inspect_model(draft, is_dir, names, command, input_example)
        if sig is None:
            sig = inferred
        training = training_of(self.data, self.pipelines, exact, is_dir)
        run: RunInfo | None = None
        if training is not None:
            info["training"] = training
            run = self._run_for(commit.repo, training["datum_hash"])
        elif commit.repo == ARTIFACT_REPO:  # a model log_model stored: the run that logged it
            run = self._logged_by(entry.path)
        now = time.time()
        with self.catalog.write() as conn:
            if conn.execute(select(models.c.name).where(models.c.name == name)).first() is None:
                conn.execute(
                    insert(models).values(
                        name=name, description=description, created=now, updated=now
                    )
                )
            else:
                conn.execute(update(models).where(models.c.name == name).values(updated=now))
            number = (
                conn.execute(
                    select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
                ).scalar()
                or 0
            ) + 1
            conn.execute(
                insert(model_versions).values(
                    name=name,
                    version=number,
                    repo=commit.repo,
                    commit=commit.id,
                    path=entry.path,
                    flavor=chosen,
                    signature=json.dumps(sig, sort_keys=True),
                    run=run.id if run else None,
                    description=description,
                    created=now,
                    info=json.dumps(info, sort_keys=True),
                    trusted=trust,
                )
            )
            record_event(
                conn,
                "model.register",
                name,
                {
                    "version": number,
                    "ref": f"{commit.repo}@{commit.id}:{entry.path}",
                    "trusted": trust,
                },
            )
        return self.get_version(name, number)

    def _inspect_model(
        self,
        draft: ModelVersion,
        is_dir: bool,
        names: list[str],
        command: list[str] | None,
        sample: Any = None,
    ) -> tuple[str, Signature | None]:
        """The flavor (``draft.flavor`` if given, else inferred; python narrowed to sklearn
        for a scikit-learn object when the user gave none) and the inferred signature, by
        reading the model (and its ``sample`` inputs, a DataFrame, when given). A model
        whose loading runs code is refused unless ``draft.trusted``, before any of it is
        loaded."""
        from cairn.ml import flavors
        from cairn.ml.signature import infer_signature

        given = draft.flavor or None
        if is_dir or command or given in ("mlflow", "command"):
            chosen = given or flavors.infer_flavor(draft.path, is_dir, names, command)
            if chosen == "mlflow":
                reason = flavors.runs_code("mlflow", Path(draft.path))
                if not draft.trusted and reason is not None:
                    raise flavors.untrusted(draft.ref, reason)
                mlmodel = Ref(draft.repo, draft.commit, path=draft.path.strip("/") + "/MLmodel")
                try:
                    text = b"".join(self.data.read_file(mlmodel))
                except NotFound:
                    raise FlavorError(f"{draft.ref} has no MLmodel file") from None
                body = flavors.parse_mlmodel(text, f"{draft.ref}/MLmodel")
                return "mlflow", flavors.mlmodel_signature(body)
            if chosen == "command":
                return "command", None if sample is None else infer_signature(None, sample)
        with tempfile.TemporaryDirectory(prefix="cairn-register-") as tmp:
            local = flavors.fetch(self.data, draft, Path(tmp))
            if given is None:
                given = flavors.infer_flavor(
                    draft.path, False, [], None, flavors.file_format(local)
                )
                narrow = True
            else:
                narrow = False
            reason = flavors.runs_code(given, local)
            if not draft.trusted and reason is not None:
                raise flavors.untrusted(draft.ref, reason)
            obj = flavors.load_object(local, trusted=draft.trusted)
        if not callable(getattr(obj, "predict", None)):
            raise FlavorError(f"{draft.ref} holds an object without a predict method")
        chosen = given
        if flavors.is_sklearn(obj):
            chosen = "sklearn" if narrow else chosen
        elif chosen == "sklearn":
            raise FlavorError(
                f"{draft.ref} holds a {type(obj).__module__}.{type(obj).__qualname__}, not a "
                "scikit-learn estimator; register it with --flavor python"
            )
        return chosen, infer_signature(obj, sample)

    def _logged_by(self, path: str) -> RunInfo | None:
        try:
            return self.runs.get(path.strip("/").split("/", 1)[0])
        except NotFound:
            return None

    def _run_for(self, repo: str, datum_hash: str) -> RunInfo | None:
        run = self.runs.for_datum(repo, datum_hash)
        if run is None:
            # Jobs run outside a Client (cairn run, the Pipelines API) are indexed lazily.
            self.runs.sync()
            run = self.runs.for_datum(repo, datum_hash)
        return run

    # -- reading --------------------------------------------------------------------------
    def _aliases_of(self, conn: Connection, name: str) -> dict[str, int]:
        rows = conn.execute(
            select(model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.name == name)
            .order_by(model_aliases.c.alias)
        ).all()
        return {r.alias: r.version for r in rows}

    @staticmethod
    def _version(row: Any, aliases: dict[str, int]) -> ModelVersion:
        return ModelVersion(
            name=row.name,
            version=row.version,
            repo=row.repo,
            commit=row.commit,
            path=row.path,
            flavor=row.flavor,
            signature=json.loads(row.signature),
            run=row.run,
            created=row.created,
            description=row.description,
            info=json.loads(row.info),
            trusted=bool(row.trusted),
            aliases=tuple(a for a, v in sorted(aliases.items()) if v == row.version),
        )

    def _check_model(self, conn: Connection, name: str) -> None:
        if conn.execute(select(models.c.name).where(models.c.name == name)).first() is None:
            raise about(NotFound(f"model {name!r} not found"), "model.missing")

    def get_version(self, name: str, version: int) -> ModelVersion:
        """Version ``version`` of model ``name``. Raises NotFound."""
        with self.catalog.read() as conn:
            self._check_model(conn, name)
            row = (
                None
                if not 0 <= version <= _MAX_VERSION
                else conn.execute(
                    select(model_versions).where(
                        model_versions.c.name == name, model_versions.c.version == version
                    )
                ).first()
            )
            if row is None:
                latest = conn.execute(
                    select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
                ).scalar()
                raise NotFound(
                    f"model {name!r} has no version {version} (its versions are 1..{latest})"
                )
            return self._version(row, self._aliases_of(conn, name))

    def resolve(self, spec: str) -> ModelVersion:
        """The version ``spec`` names (see ``parse_spec``). Raises InvalidReference,
        NotFound (unknown model, version or alias; the message lists the aliases)."""
        name, alias, version = parse_spec(spec)
        if version is not None:
            return self.get_version(name, version)
        with self.catalog.read() as conn:
            self._check_model(conn, name)
            aliases = self._aliases_of(conn, name)
            if alias is not None:
                if alias not in aliases:
                    known = ", ".join(sorted(aliases)) or "none"
                    missing = NotFound(
                        f"model {name!r} has no alias {alias!r} (its aliases: {known})"
                    )
                    raise about(missing, "alias.unset", model=name, alias=alias)
                number = aliases[alias]
            else:
                latest = conn.execute(
                    select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
                ).scalar()
                if latest is None:
                    raise NotFound(f"model {name!r} has no versions")
                number = int(latest)
        return self.get_version(name, number)

    def list_models(self) -> list[ModelInfo]:
        """Every model, by name, with its latest version and aliases."""
        with self.catalog.read() as conn:
            rows = conn.execute(select(models).order_by(models.c.name)).all()
            latest = dict(
                conn.execute(
                    select(model_versions.c.name, func.max(model_versions.c.version)).group_by(
                        model_versions.c.name
                    )
                ).all()
            )
            out = []
            for r in rows:
                out.append(
                    ModelInfo(
                        r.name,
                        r.description,
                        r.created,
                        r.updated,
                        latest.get(r.name),
                        self._aliases_of(conn, r.name),
                    )
                )
        return out

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Versions of model ``name``, oldest (1) first. Raises NotFound."""
        with self.catalog.read() as conn:
            self._check_model(conn, name)
            aliases = self._aliases_of(conn, name)
            rows = conn.execute(
                select(model_versions)
                .where(model_versions.c.name == name)
                .order_by(model_versions.c.version)
            ).all()
            return [self._version(r, aliases) for r in rows]

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version of model ``name``. Raises NotFound."""
        with self.catalog.read() as conn:
            self._check_model(conn, name)
            return self._aliases_of(conn, name)

    def alias_history(self, name: str, alias: str) -> list[dict[str, Any]]:
        """Every move of an alias, oldest first: ``seq``, ``version`` (None: deleted),
        ``kind`` (set | delete | rollback), ``time``, ``reason``. Raises NotFound."""
        with self.catalog.read() as conn:
            self._check_model(conn, name)
            rows = self._history(conn, name, alias)
        return [
            {"seq": r.seq, "version": r.version, "kind": r.kind, "time": r.time, "reason": r.reason}
            for r in rows
        ]

    # -- aliases --------------------------------------------------------------------------
    @staticmethod
    def _history(conn: Connection, name: str, alias: str) -> list[Any]:
        return list(
            conn.execute(
                select(alias_history)
                .where(alias_history.c.name == name, alias_history.c.alias == alias)
                .order_by(alias_history.c.seq)
            ).all()
        )

    def _move(
        self,
        conn: Connection,
        name: str,
        alias: str,
        version: int | None,
        kind: str,
        reason: str,
        previous: int | None,
    ) -> None:
        now = time.time()
        conn.execute(
            delete(model_aliases).where(
                model_aliases.c.name == name, model_aliases.c.alias == alias
            )
        )
        if version is not None:
            conn.execute(
                insert(model_aliases).values(name=name, alias=alias, version=version, updated=now)
            )
        seq = (
            conn.execute(
                select(func.max(alias_history.c.seq)).where(
                    alias_history.c.name == name, alias_history.c.alias == alias
                )
            ).scalar()
            or 0
        ) + 1
        conn.execute(
            insert(alias_history).values(
                name=name,
                alias=alias,
                seq=seq,
                version=version,
                kind=kind,
                time=now,
                reason=reason,
            )
        )
        record_event(
            conn,
            f"alias.{kind}",
            name,
            {"alias": alias, "version": version, "previous": previous, "reason": reason},
        )

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = "") -> ModelVersion:
        """Point ``alias`` of model ``name`` at ``version`` (creating or moving it); setting
        it to the version it names already changes nothing. Returns that version.

        Raises InvalidReference (a bad alias, ``latest``, or digits only), NotFound."""
        check_name(alias, "alias")
        if alias in RESERVED_ALIASES or _VERSION.match(alias):
            raise InvalidReference(
                f"alias {alias!r} is reserved: NAME/latest and NAME/N name versions already"
            )
        with self.catalog.write() as conn:
            self._check_model(conn, name)
            exists = (
                None
                if not 0 <= version <= _MAX_VERSION
                else conn.execute(
                    select(model_versions.c.version).where(
                        model_versions.c.name == name, model_versions.c.version == version
                    )
                ).first()
            )
            if exists is None:
                raise NotFound(f"model {name!r} has no version {version}")
            previous = self._aliases_of(conn, name).get(alias)
            if previous != version:
                self._move(conn, name, alias, version, "set", reason, previous)
        return self.get_version(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from model ``name`` (its history stays). Raises NotFound."""
        with self.catalog.write() as conn:
            self._check_model(conn, name)
            previous = self._aliases_of(conn, name).get(alias)
            if previous is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            self._move(conn, name, alias, None, "delete", "", previous)

    def rollback_alias(
        self, name: str, alias: str = "champion", *, reason: str = ""
    ) -> ModelVersion:
        """Move ``alias`` back to the version it named before its last move that is not
        undone yet (see the module doc); a deleted alias comes back. Returns that version.

        Raises NotFound (model), MLError when the alias has no earlier version."""
        with self.catalog.write() as conn:
            self._check_model(conn, name)
            stack: list[int | None] = []
            for row in self._history(conn, name, alias):
                if row.kind == "rollback":
                    while stack and stack[-1] != row.version:
                        stack.pop()
                    if not stack:
                        stack.append(row.version)
                else:
                    stack.append(row.version)
            current = stack[-1] if stack else None
            target = next((v for v in reversed(stack[:-1]) if v is not None and v != current), None)
            if target is None:
                stuck = MLError(
                    f"alias {alias!r} of model {name!r} has no earlier version to roll back to"
                )
                raise about(stuck, "alias.unset", model=name, alias=alias)
            self._move(conn, name, alias, target, "rollback", reason, current)
        return self.get_version(name, target)

    # -- lineage --------------------------------------------------------------------------
    def lineage(self, spec: str) -> dict[str, Any]:
        """Where the version ``spec`` names came from, as JSON-able data (the format is
        ``cairn.ml.lineage.model_lineage``'s). Raises InvalidReference, NotFound."""
        return model_lineage(self, spec)
