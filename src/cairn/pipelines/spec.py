"""Pipeline specs: parse, validate and hash the document that declares a pipeline.

This module owns the pipeline spec models, the loaders that read them from JSON or YAML
text, and the spec's canonical JSON and hash. Field names and meanings follow Pachyderm's
pipeline specification (https://docs.pachyderm.com, "Pipeline Specification", and the
``CreatePipelineRequest`` message of its ``pps.proto``), so a spec written for ``pachctl
create pipeline`` loads unchanged when it uses only supported fields.

Spelling: every field is accepted by its proto name (``join_on``) and by its JSON name
(``joinOn``), as protobuf's JSON parsing that Pachyderm uses accepts both; the two may mix
in one file, one field set in both spellings is an error. Errors name fields by their
proto name; an unknown field is named by its path as written, with the nearest known name
(in the spelling it used) when there is one. Specs are stored in snake_case.

``join`` without ``join_on`` (and ``group`` without ``group_by``): Pachyderm's docs say a
join "must" have it to work properly, and its proto field is a plain string, so a missing
one is "": every datum of such a child has the empty key and matches every other empty
key. cairn does the same: a join of children without ``join_on`` is their cross product
(datums of a child with a key match only that key), a group without ``group_by`` is one
datum.

Invariants of a valid ``PipelineSpec``:

- every ``Input`` sets exactly one of ``pfs``, ``cron``, ``cross``, ``union``, ``join``,
  ``group``;
- the children of ``join`` and ``group`` are ``pfs`` inputs;
- input names (``/pfs/<name>``) are unique within each datum: two leaves may share a name only
  when they meet under a ``union``; ``out`` is reserved; no input reads the pipeline's own
  output repo;
- ``datum_timeout`` is in seconds, parsed from a duration ("1m30s", see
  ``cairn.pipelines.units``) or a number;
- ``transform.secrets`` name values by reference (secret name and key); the values live in the
  store's secret file (``cairn.pipelines.secret_store``), never in a spec.

Limits, checked by the one parse path that both ``create pipeline`` and every read of a stored
spec take (:func:`load_specs`; :func:`read_spec` for the stored form), so that a spec that was
accepted can always be read back:

- ``MAX_SPEC_BYTES`` (1 MiB): a spec file's text, and each spec as stored (its canonical JSON)
  (this and the next two are checked while decoding, in ``cairn.pipelines.documents``);
- ``MAX_NESTING`` (100): mappings and lists nested in a document, checked while decoding (JSON
  and YAML decoders recurse, so deeper text would end in ``RecursionError``);
- ``MAX_VALUES`` (200,000): values in one document, counted after YAML aliases are expanded
  (a few aliases can stand for billions of values);
- ``MAX_INPUT_DEPTH`` (32): ``cross``/``union``/``join``/``group`` nested in one another.
  Real DAGs nest two or three; the limit keeps the nested models far from pydantic's and
  Python's recursion limits.

A violation is a ``SpecError`` naming the field path where it happens.

Honoured beyond the basics: ``input.cron`` (``cairn.pipelines.cron``), ``input.pfs.trigger``
(``cairn.pipelines.triggers``), ``input.pfs.commit`` (the input is pinned to that commit),
``transform.working_dir``, ``parallelism_spec.coefficient`` (a share of this machine's cores),
``resource_limits`` (``cairn.pipelines.executor.limits_for``), ``resource_requests``
``cpu`` and ``memory`` (no more workers at once than fit the machine:
``cairn.pipelines.executor.workers_for``; ``disk`` and ``gpu`` are recorded only),
``datum_set_spec`` (the Ray executor's tasks: ``cairn.pipelines.ray_executor``).
``project`` fields accept Pachyderm's ``default`` project only: cairn has no projects.

Accepted and recorded, changing nothing (each set one is a note on every job, see
``NO_EFFECT``): ``autoscaling``, ``metadata``, ``pod_patch``, ``pod_spec``,
``scheduling_spec``, ``sidecar_resource_limits``, ``sidecar_resource_requests``,
``spec_commit``, ``tolerations``, ``transform.debug``, ``image_pull_secrets``,
``memory_volume``, ``user``; ``pfs.lazy`` and
``pfs.empty_files`` (inputs are always copied in full).

Recognised but not supported yet, and rejected with an error that names them: at the top
level ``determined``, ``egress``, ``job_timeout``,
``maximum_expected_uptime``, ``s3_out``, ``tf_job``;
``transform.dockerfile``; ``transform.secrets[].mount_path``; ``pfs.repo_type``,
``pfs.s3``. Any other field is an unknown field.

A ``spout`` pipeline has no ``input`` (it is an error to give one); every other pipeline needs
one. ``service`` needs an input. How both run is in ``cairn.pipelines.daemons``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NoReturn

import blake3
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from cairn.data.refs import NAME_RE
from cairn.pipelines.documents import (
    MAX_NESTING,
    MAX_SPEC_BYTES,
    MAX_VALUES,
    Loc,
    decode_documents,
    dotted,
    fail,
    read_document_file,
)
from cairn.pipelines.errors import SpecError
from cairn.pipelines.schedule import check_schedule
from cairn.pipelines.units import Duration, Quantity, parse_duration, parse_quantity

__all__ = [
    "MAX_INPUT_DEPTH",
    "MAX_NESTING",
    "MAX_SPEC_BYTES",
    "MAX_VALUES",
    "DatumSetSpec",
    "Input",
    "PFSInput",
    "ParallelismSpec",
    "PipelineRef",
    "PipelineSpec",
    "ResourceSpec",
    "SecretRef",
    "Transform",
    "load_spec_file",
    "load_specs",
    "parse_duration",
    "parse_quantity",
    "parse_spec",
    "read_spec",
]

MAX_INPUT_DEPTH = 32

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# Input repos and branches follow the data layer's rule for names, so a pipeline can read
# every repo and branch that can be created.
_BRANCH = NAME_RE
_COMBINATORS = ("cross", "union", "join", "group")
_LEAVES = ("pfs", "cron")
_KINDS = (*_LEAVES, *_COMBINATORS)
_RESERVED_INPUT_NAME = "out"  # /pfs/out is where the transform writes its output
_UNKNOWN_HINT = "check its spelling against the pipeline spec"
_MESSAGES = {"extra_forbidden": f"unknown field; {_UNKNOWN_HINT}"}
# Pachyderm's one project on a cluster that has not made others; cairn has no projects.
DEFAULT_PROJECT = "default"
# Kubernetes' rule for secret keys; environment variable names as POSIX shells accept them.
_SECRET_KEY = re.compile(r"[-._A-Za-z0-9]{1,253}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ENV = ("CAIRN_", "PACH_")  # cairn sets these itself for every datum


def _error(loc: Loc, message: str, value: Any, kind: str = "cairn_spec") -> InitErrorDetails:
    # The message goes through the context so braces in it are never read as a template.
    error = PydanticCustomError(kind, "{reason}", {"reason": message})
    return InitErrorDetails(type=error, loc=loc, input=value)


def _raise(title: str, errors: list[Any]) -> NoReturn:
    # A ValidationError raised inside a validator keeps its own locs, nested under the caller's.
    raise ValidationError.from_exception_data(title, errors)


def _check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise PydanticCustomError(
            "cairn_name",
            "must be 1-63 letters, digits, '_' or '-', starting with a letter or digit",
        )
    return value


def _check_branch(value: str) -> str:
    if not _BRANCH.fullmatch(value) or value.endswith(".lock"):
        raise PydanticCustomError(
            "cairn_branch",
            "must be letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Branch = Annotated[str, AfterValidator(_check_branch)]
RepoName = Annotated[str, AfterValidator(_check_branch)]  # any repo the data layer allows


def _check_secret_key(value: str) -> str:
    if not _SECRET_KEY.fullmatch(value):
        raise PydanticCustomError("cairn_secret_key", "must be letters, digits, '-', '_' or '.'")
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise PydanticCustomError(
            "cairn_env_name", "must be letters, digits or '_', not starting with a digit"
        )
    if value.startswith(_RESERVED_ENV):
        raise PydanticCustomError(
            "cairn_env_name", "names starting with CAIRN_ or PACH_ are set by cairn"
        )
    return value


SecretKey = Annotated[str, AfterValidator(_check_secret_key)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]


def _spellings(name: str) -> tuple[str, str]:
    """A field's two accepted keys: Pachyderm's proto name and its JSON (camelCase) name."""
    return name, to_camel(name)


class _Model(BaseModel):
    # Pachyderm reads specs with protobuf's JSON mapping, which takes a field by its proto
    # name (``join_on``) or its JSON name (``joinOn``); errors name fields in snake_case,
    # the form cairn stores and prints.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        loc_by_alias=False,
    )

    _unsupported: ClassVar[frozenset[str]] = frozenset()
    _hints: ClassVar[dict[str, str]] = {}

    @classmethod
    def _known_keys(cls) -> dict[str, str]:
        """Every key this model accepts or recognises, each mapped to its snake_case name."""
        keys: dict[str, str] = {}
        for name in [*cls.model_fields, *cls._unsupported]:
            for key in _spellings(name):
                keys[key] = name
        return keys

    @classmethod
    def _unknown(cls, key: str, data: dict[str, Any]) -> tuple[str, str]:
        """(error type, message) for a key pydantic refused as extra: a field set in both
        spellings, or an unknown one with the nearest known key in the spelling it used."""
        known = cls._known_keys()
        if key in known:
            twin = [k for k in _spellings(known[key]) if k != key and k in data]
            if twin:
                return "cairn_twice", f"set twice, as {twin[0]!r} and {key!r}; keep one"
        near = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else _UNKNOWN_HINT
        return "cairn_unknown_field", f"unknown field; {hint}"

    @model_validator(mode="wrap")
    @classmethod
    def _reject_unsupported(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # Pachyderm fields we know get a clearer error than "unknown field"; an explicit null
        # means "unset" there, so it is dropped rather than rejected.
        if not isinstance(data, dict):
            return handler(data)
        errors: list[Any] = []
        unsupported = {
            key: name for name in cls._unsupported for key in _spellings(name) if key in data
        }
        if unsupported:
            data = dict(data)
            for key in sorted(unsupported):
                value = data.pop(key)
                if value is not None:
                    message = cls._hints.get(
                        unsupported[key],
                        "this Pachyderm field is not supported yet; remove it from the spec",
                    )
                    errors.append(_error((key,), message, value))
        try:
            result = handler(data)
        except ValidationError as exc:
            # Whole-model checks (empty loc) ran without the removed fields, so they only
            # add noise once a removed field has been reported.
            keep_model_errors = not errors
            for error in exc.errors(include_url=False):
                loc, kind, message = error["loc"], error["type"], error["msg"]
                if not loc and not keep_model_errors:
                    continue
                if kind == "extra_forbidden" and len(loc) == 1 and isinstance(loc[0], str):
                    kind, message = cls._unknown(loc[0], data)
                errors.append(_error(loc, message, error["input"], kind))
        if errors:
            _raise(cls.__name__, errors)
        return result


def _check_project(value: str) -> str:
    if value != DEFAULT_PROJECT:
        raise PydanticCustomError(
            "cairn_project",
            "cairn has no projects: only Pachyderm's default project, 'default', is accepted; "
            "remove the field or set it to 'default'",
        )
    return value


Project = Annotated[str, AfterValidator(_check_project)]


class ProjectRef(_Model):
    """``pipeline.project``: ``{"name": "default"}``, the only project cairn has."""

    name: Project = DEFAULT_PROJECT


class PipelineRef(_Model):
    """``pipeline``: the pipeline's name, which is also the name of its output repo.
    ``project`` may name Pachyderm's ``default`` project only (cairn has no others)."""

    name: Name
    project: ProjectRef | None = None


class SecretRef(_Model):
    """``transform.secrets[]``: the value of ``key`` in the secret ``name`` becomes the
    transform's environment variable ``env_var``.

    Only the reference is part of the spec; the value is read from the store's secrets when a
    job starts (``cairn create secret``). Pachyderm's other form, ``mount_path`` (every key as a
    file), is refused: there is no volume to mount it on.
    """

    _unsupported = frozenset({"mount_path"})
    _hints = {
        "mount_path": "not supported yet: cairn passes secrets as environment variables; "
        "set 'key' and 'env_var' instead"
    }

    name: Name
    key: SecretKey
    env_var: EnvName


class Transform(_Model):
    """``transform``: the command run once per datum, with ``/pfs/<input>`` and ``/pfs/out``.

    ``cmd`` is an argv list; ``stdin`` lines are fed to it. ``err_cmd``/``err_stdin`` run on a
    failed datum, and exit codes in ``accept_return_code`` count as success.

    ``datum_batching`` (Pachyderm's field, in ``transform`` as in Pachyderm): each worker starts
    ``cmd`` once and the command asks for datums one after another over
    ``$CAIRN_DATUM_CHANNEL`` (see ``cairn.pipelines.batch``); an exit code in
    ``accept_return_code`` then counts as a clean exit.

    ``env`` values are part of the spec, so ``inspect pipeline`` prints them (as Pachyderm
    does); values that must stay hidden belong in ``secrets``, whose variables may not repeat
    each other or a name in ``env``.

    ``working_dir``: the folder the command starts in, relative to the spec's folder (or
    absolute); it must exist on this machine. ``user``, ``debug``, ``image_pull_secrets``
    and ``memory_volume`` are recorded and change nothing: the command always runs as the
    sandbox's own unprivileged uid (or cairn's user without a sandbox), there is no image to
    pull, and the sandbox's ``/tmp`` and ``/dev/shm`` are memory already.
    """

    _unsupported = frozenset({"dockerfile"})

    cmd: list[str] = Field(min_length=1)
    stdin: list[str] = []
    env: dict[str, str] = {}
    image: str | None = None
    err_cmd: list[str] = []
    err_stdin: list[str] = []
    accept_return_code: list[int] = []
    datum_batching: bool = False
    secrets: list[SecretRef] = []
    working_dir: str | None = Field(default=None, min_length=1)
    user: str | None = None
    debug: bool = False
    image_pull_secrets: list[str] = []
    memory_volume: bool = False

    @model_validator(mode="after")
    def _check_secret_names(self) -> Transform:
        errors = []
        seen: set[str] = set()
        for index, secret in enumerate(self.secrets):
            if secret.env_var in self.env:
                message = f"{secret.env_var!r} is also set in transform.env; keep one of them"
                errors.append(_error(("secrets", index, "env_var"), message, secret.env_var))
            elif secret.env_var in seen:
                message = f"{secret.env_var!r} is set by an earlier secret too"
                errors.append(_error(("secrets", index, "env_var"), message, secret.env_var))
            seen.add(secret.env_var)
        if errors:
            _raise("Transform", errors)
        return self


class ParallelismSpec(_Model):
    """``parallelism_spec``: ``constant`` workers (>= 1) process datums concurrently, or
    ``coefficient`` times this machine's cores (rounded up; Pachyderm multiplies the
    cluster's nodes, and here the one machine's cores are what can run workers)."""

    constant: int | None = Field(default=None, ge=1)
    coefficient: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_of(self) -> ParallelismSpec:
        if (self.constant is None) == (self.coefficient is None):
            _raise("ParallelismSpec", [_error((), "set one of constant or coefficient", None)])
        return self

    def workers(self, cores: int) -> int:
        """Workers for a machine with ``cores`` cores: ``constant``, or at least 1."""
        if self.constant is not None:
            return self.constant
        return max(1, math.ceil((self.coefficient or 0) * cores))


class Trigger(_Model):
    """``input.pfs.trigger``: when to move the input's ``branch`` to the head of
    ``branch`` here (Pachyderm's branch triggers). ``size`` (a quantity, "1M") of data added,
    ``commits`` commits made, or a ``cron_spec`` tick passed since the input branch last
    moved; with ``all``, every condition set must hold, else any one. With no condition,
    every new commit moves it. ``rate_limit_spec`` is a cron spec: at most one move per tick.
    """

    branch: Branch
    all: bool = False
    cron_spec: str | None = None
    rate_limit_spec: str | None = None
    size: Quantity = None
    commits: int | None = Field(default=None, ge=1)

    @field_validator("cron_spec", "rate_limit_spec")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        if value is not None:
            check_schedule(value)
        return value


class CronInput(_Model):
    """``input.cron``: a repo (``repo``, by default ``<pipeline>_<name>``) that gets one
    commit per tick of ``spec``, adding a file named by the tick's RFC 3339 time (replacing
    the earlier ones with ``overwrite``); ticks before ``start`` are skipped, and ticks from
    a ``start`` in the past are backfilled. The pipeline sees the repo at ``/pfs/<name>``,
    all of it one datum (glob ``/``), as in Pachyderm. ``spec``: cron syntax (five fields,
    or six with seconds first), ``@daily``-style names, ``@every <duration>`` or ``never``
    (see ``cairn.pipelines.cron``).
    """

    name: Name
    spec: str
    repo: RepoName | None = None
    overwrite: bool = False
    start: datetime | None = None
    project: Project | None = None

    @field_validator("spec")
    @classmethod
    def _valid_spec(cls, value: str) -> str:
        check_schedule(value)
        return value

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise PydanticCustomError(
                "cairn_time", "must be an RFC 3339 time with its offset, e.g. 2024-01-01T00:00:00Z"
            )
        return value

    def as_pfs(self) -> PFSInput:
        """The cron repo as the ``pfs`` input the datums and jobs read."""
        return PFSInput(repo=self.repo or self.name, branch="master", glob="/", name=self.name)


class DatumSetSpec(_Model):
    """``datum_set_spec``: how datums are grouped into sets, the unit a cluster executor
    hands a worker (cairn.pipelines.ray_executor). A set closes at ``number`` datums or
    ``size_bytes`` input bytes, whichever comes first; with neither, the datums are split
    into ``per_worker`` sets per worker. Zero means unset, as in Pachyderm."""

    number: int = Field(default=0, ge=0)
    size_bytes: int = Field(default=0, ge=0)
    per_worker: int = Field(default=0, ge=0)


class PFSInput(_Model):
    """``input.pfs``: files of ``repo``@``branch`` split into datums by ``glob``.

    The datum's files appear under ``/pfs/<input_name>``. ``join_on``/``outer_join`` apply
    inside a ``join``, ``group_by`` inside a ``group``; both are glob capture groups ("$1").
    ``commit`` pins the input to one commit of ``repo`` (an id, or ``branch^`` style
    ancestry) instead of the head of ``branch``. ``trigger`` moves ``branch`` to the head of
    ``trigger.branch`` when its condition holds (see :class:`Trigger`). ``project`` may be
    ``default`` only.
    """

    _unsupported = frozenset({"repo_type", "s3"})
    _hints = {"s3": "not supported yet: cairn mounts inputs as files; read them under /pfs/<name>"}

    repo: RepoName
    branch: Branch = "master"
    commit: str | None = Field(default=None, min_length=1)
    project: Project | None = None
    trigger: Trigger | None = None
    glob: str
    name: Name | None = None
    join_on: str | None = None
    outer_join: bool = False
    group_by: str | None = None
    lazy: bool = False
    empty_files: bool = False

    @field_validator("glob")
    @classmethod
    def _glob_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise PydanticCustomError("cairn_glob", "must start with '/', e.g. '/*'")
        return value

    @property
    def input_name(self) -> str:
        """The directory name under ``/pfs``: ``name`` if set, else ``repo``."""
        return self.name or self.repo


class Input(_Model):
    """``input``: exactly one of a ``pfs`` or ``cron`` leaf or a
    ``cross``/``union``/``join``/``group``.

    Combinators hold a non-empty list of child inputs. Pachyderm defines the datums each one
    yields: cross = product, union = concatenation, join = matched on ``join_on``, group =
    gathered by ``group_by``. A ``join`` child without ``join_on`` has the empty key, as
    Pachyderm's (an unset proto string is ""), so it matches every datum of the other
    children: a join of such children is their cross product; likewise a ``group`` child
    without ``group_by`` puts all its datums in one group.
    """

    pfs: PFSInput | None = None
    cron: CronInput | None = None
    cross: list[Input] | None = Field(default=None, min_length=1)
    union: list[Input] | None = Field(default=None, min_length=1)
    join: list[Input] | None = Field(default=None, min_length=1)
    group: list[Input] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check_shape(self) -> Input:
        found = [kind for kind in _KINDS if getattr(self, kind) is not None]
        if len(found) != 1:
            message = f"set exactly one of {', '.join(_KINDS)} (found {', '.join(found) or 'none'})"
            _raise("Input", [_error((), message, None)])
        errors = []
        for kind, key in (("join", "join_on"), ("group", "group_by")):
            for index, child in enumerate(getattr(self, kind) or []):
                if child.pfs is None:
                    message = f"a child of {kind} must be a pfs input (with {key})"
                    errors.append(_error((kind, index), message, child.kind))
        if errors:
            _raise("Input", errors)
        return self

    @property
    def kind(self) -> str:
        """Which input this is: "pfs", "cross", "union", "join" or "group"."""
        return next(kind for kind in _KINDS if getattr(self, kind) is not None)

    @property
    def children(self) -> list[Input]:
        """The child inputs of a combinator; empty for a leaf."""
        return [] if self.kind in _LEAVES else list(getattr(self, self.kind))

    def leaf(self) -> PFSInput | None:
        """The ``pfs`` input this leaf reads (a cron input's repo as one), or None."""
        if self.cron is not None:
            return self.cron.as_pfs()
        return self.pfs

    def pfs_inputs(self) -> list[PFSInput]:
        """Every leaf of this input tree as the ``pfs`` input it reads (a cron input reads
        its repo), depth-first, in spec order."""
        return [pfs for _, pfs in _leaves(self, ())]

    def cron_inputs(self) -> list[CronInput]:
        """Every ``cron`` leaf of this input tree, depth-first, in spec order."""
        if self.cron is not None:
            return [self.cron]
        return [cron for child in self.children for cron in child.cron_inputs()]


def _leaves(node: Input, loc: Loc) -> Iterator[tuple[Loc, PFSInput]]:
    leaf = node.leaf()
    if leaf is not None:
        yield (*loc, node.kind), leaf
        return
    for index, child in enumerate(node.children):
        yield from _leaves(child, (*loc, node.kind, index))


def _names(node: Input, loc: Loc, errors: list[Any]) -> dict[str, Loc]:
    """Input names visible in one datum of ``node``, each with the loc that set it."""
    if node.cron is not None:
        return {node.cron.name: (*loc, "cron", "name")}
    if node.pfs is not None:
        field = "name" if node.pfs.name is not None else "repo"
        return {node.pfs.input_name: (*loc, "pfs", field)}
    seen: dict[str, Loc] = {}
    for index, child in enumerate(node.children):
        for name, where in _names(child, (*loc, node.kind, index), errors).items():
            # Union children never meet in one datum, so they may reuse a name.
            if name in seen and node.kind != "union":
                message = (
                    f"input name {name!r} is also used by {dotted(seen[name])}; "
                    "give one of them a distinct 'name'"
                )
                errors.append(_error(where, message, name))
            seen.setdefault(name, where)
    return seen


def _too_deep(node: Any) -> Loc | None:
    """The loc of the first combinator nested more than MAX_INPUT_DEPTH deep in a raw input
    (as decoded from JSON/YAML), or None. Iterative, so any depth is safe to look at."""
    stack: list[tuple[Any, Loc, int]] = [(node, ("input",), 0)]
    while stack:
        current, loc, depth = stack.pop()
        if not isinstance(current, dict):
            continue
        for kind in _COMBINATORS:
            children = current.get(kind)
            if not isinstance(children, list):
                continue
            if depth == MAX_INPUT_DEPTH:
                return (*loc, kind)
            stack.extend(
                (child, (*loc, kind, index), depth + 1) for index, child in enumerate(children)
            )
    return None


class GPUSpec(_Model):
    """``resource_limits.gpu``: accepted and recorded; cairn does not schedule GPUs."""

    type: str = ""
    number: int = Field(default=0, ge=0)


class ResourceSpec(_Model):
    """``resource_requests`` / ``resource_limits``: ``cpu`` in cores, ``memory`` and
    ``disk`` in bytes, written as Kubernetes quantities ("2Gi", "500m"). ``processes``
    is cairn's own: the most tasks (processes and threads) a datum may run. How limits
    are enforced is in ``cairn.pipelines.sandbox``; requests of ``cpu`` and ``memory``
    bound how many workers run at once (``cairn.pipelines.executor.workers_for``)."""

    cpu: Quantity = None
    memory: Quantity = None
    disk: Quantity = None
    gpu: GPUSpec | None = None
    processes: int | None = Field(default=None, ge=1)


class SchedulingSpec(_Model):
    """``scheduling_spec``: Kubernetes node selection; recorded, no effect (no nodes)."""

    node_selector: dict[str, str] = {}
    priority_class_name: str = ""


class Toleration(_Model):
    """``tolerations[]``: a Kubernetes toleration; recorded, no effect (no taints)."""

    key: str = ""
    operator: str = ""
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None


class Metadata(_Model):
    """``metadata``: Kubernetes annotations and labels for the pipeline's pods; recorded,
    shown by ``inspect pipeline``, no effect (no pods)."""

    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}


# Accepted fields that change nothing here, and why; each set one is a note on every job.
NO_EFFECT = {
    "autoscaling": "workers start per job and stop after it already",
    "metadata": "there are no pods to annotate or label",
    "pod_patch": "there are no pods",
    "pod_spec": "there are no pods",
    "scheduling_spec": "there are no nodes to select",
    "sidecar_resource_limits": "there is no sidecar",
    "sidecar_resource_requests": "there is no sidecar",
    "spec_commit": "cairn versions specs itself",
    "tolerations": "there are no taints to tolerate",
    "transform.debug": "logs are always kept in full",
    "transform.image_pull_secrets": "no image is pulled",
    "transform.memory_volume": "the sandbox's /tmp and /dev/shm are memory already",
    "transform.user": "the command runs as the sandbox's own unprivileged uid",
}


class ServiceSpec(_Model):
    """``service``: the long-lived process listens on ``internal_port`` (TCP); cairn
    exposes it on ``127.0.0.1:external_port``. ``type``, ``ip`` and ``annotations``
    (Kubernetes Service settings) are accepted and recorded; there is no Kubernetes."""

    internal_port: int = Field(ge=1, le=65535)
    external_port: int = Field(ge=1, le=65535)
    type: str = ""
    ip: str = ""
    annotations: dict[str, str] = Field(default_factory=dict)


class SpoutSpec(_Model):
    """``spout``: the transform runs as one long-lived process that writes its output repo
    itself; ``service`` also exposes a port of it, as for a service pipeline."""

    service: ServiceSpec | None = None


class PipelineSpec(_Model):
    """A whole pipeline spec, as written for ``pachctl create pipeline`` (Pachyderm 2.x).

    Build one with :func:`load_specs`, :func:`load_spec_file` or :func:`parse_spec`, which raise
    ``SpecError``; ``PipelineSpec.model_validate`` raises pydantic's ``ValidationError``.
    """

    _unsupported = frozenset(
        "determined egress maximum_expected_uptime s3_out tf_job job_timeout".split()
    )

    pipeline: PipelineRef
    description: str = ""
    transform: Transform
    input: Input | None = None
    spout: SpoutSpec | None = None
    service: ServiceSpec | None = None
    parallelism_spec: ParallelismSpec | None = None
    datum_set_spec: DatumSetSpec | None = None
    datum_tries: int = Field(default=3, ge=1)
    datum_timeout: Duration | None = Field(default=None, gt=0, allow_inf_nan=False)
    output_branch: Branch = "master"
    reprocess_spec: Literal["until_success", "every_job"] = "until_success"
    salt: str | None = None
    resource_requests: ResourceSpec | None = None
    resource_limits: ResourceSpec | None = None
    sidecar_resource_requests: ResourceSpec | None = None
    sidecar_resource_limits: ResourceSpec | None = None
    autoscaling: bool = False
    scheduling_spec: SchedulingSpec | None = None
    tolerations: list[Toleration] = []
    metadata: Metadata | None = None
    pod_spec: str | None = None
    pod_patch: str | None = None
    spec_commit: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bound_input_depth(cls, data: Any) -> Any:
        # Before the nested models are built: pydantic builds them recursively.
        if not isinstance(data, dict):
            return data
        loc = _too_deep(data.get("input"))
        if loc is not None:
            message = (
                f"inputs nest more than {MAX_INPUT_DEPTH} cross/union/join/group levels deep; "
                "flatten them"
            )
            _raise("PipelineSpec", [_error(loc, message, None)])
        return _name_cron_repos(data)

    @model_validator(mode="after")
    def _check_inputs(self) -> PipelineSpec:
        errors: list[Any] = []
        if self.spout is not None and self.input is not None:
            errors.append(_error(("input",), "a spout pipeline has no input; remove it", None))
        if self.spout is not None and self.service is not None:
            message = "a spout's port goes in spout.service; remove the top-level service"
            errors.append(_error(("service",), message, None))
        if self.spout is None and self.input is None:
            errors.append(
                _error(("input",), "a pipeline needs an input (only a spout has none)", None)
            )
        if errors or self.input is None:
            if errors:
                _raise("PipelineSpec", errors)
            return self
        for loc, pfs in _leaves(self.input, ("input",)):
            if pfs.input_name == _RESERVED_INPUT_NAME:
                field = "name" if pfs.name is not None else "repo"
                message = (
                    f"input name {_RESERVED_INPUT_NAME!r} is reserved for the output; set 'name'"
                )
                errors.append(_error((*loc, field), message, pfs.input_name))
            if pfs.repo == self.pipeline.name:
                message = "a pipeline cannot read its own output repo"
                errors.append(_error((*loc, "repo"), message, pfs.repo))
        _names(self.input, ("input",), errors)
        if errors:
            _raise("PipelineSpec", errors)
        return self

    @property
    def name(self) -> str:
        """The pipeline's name, also its output repo's name."""
        return self.pipeline.name

    def no_effect(self) -> list[str]:
        """Notes for the set fields that change nothing here (``NO_EFFECT``), in order."""
        values = {
            **{k: getattr(self, k) for k in NO_EFFECT if "." not in k},
            **{f"transform.{k}": getattr(self.transform, k) for k in _TRANSFORM_NO_EFFECT},
        }
        return [
            f"{field} is recorded and has no effect: {NO_EFFECT[field]}"
            for field, value in values.items()
            if value not in (None, False, [], {}, "")
        ]

    def pfs_inputs(self) -> list[PFSInput]:
        """Every pfs input leaf, in order; none for a spout."""
        return [] if self.input is None else self.input.pfs_inputs()

    def cron_inputs(self) -> list[CronInput]:
        """Every cron input leaf, in order; none for a spout."""
        return [] if self.input is None else self.input.cron_inputs()

    @property
    def long_lived(self) -> bool:
        """A spout or a service: one long-lived process instead of jobs."""
        return self.spout is not None or self.service is not None

    def canonical_json(self) -> str:
        """Every field, defaults included, as JSON with sorted keys and no whitespace."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """BLAKE3 hex digest (64 chars) of :meth:`canonical_json` encoded as UTF-8."""
        return blake3.blake3(self.canonical_json().encode("utf-8")).hexdigest()


_TRANSFORM_NO_EFFECT = [k.split(".", 1)[1] for k in NO_EFFECT if k.startswith("transform.")]


def _name_cron_repos(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each cron input's ``repo`` defaulted to ``<pipeline>_<name>``, as
    Pachyderm names it (raw dicts, before validation: the default needs the pipeline)."""
    pipeline = data.get("pipeline")
    name = pipeline.get("name") if isinstance(pipeline, dict) else None
    if not isinstance(name, str):
        return data

    def fill(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = dict(node)
        cron = out.get("cron")
        if (
            isinstance(cron, dict)
            and cron.get("repo") is None
            and isinstance(cron.get("name"), str)
        ):
            out["cron"] = {**cron, "repo": f"{name}_{cron['name']}"}
        for kind in _COMBINATORS:
            if isinstance(out.get(kind), list):
                out[kind] = [fill(child) for child in out[kind]]
        return out

    return {**data, "input": fill(data.get("input"))}


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [
        (dotted(error["loc"]), _MESSAGES.get(error["type"], error["msg"]))
        for error in exc.errors(include_url=False)
    ]


def _describe(data: Any, index: int, count: int) -> str:
    pipeline = data.get("pipeline") if isinstance(data, dict) else None
    name = pipeline.get("name") if isinstance(pipeline, dict) else None
    label = f"pipeline #{index + 1}" if count > 1 else "pipeline"
    return f"{label} {name!r}" if isinstance(name, str) else label


def parse_spec(data: Any, *, source: str = "<spec>", label: str = "pipeline") -> PipelineSpec:
    """Validate one decoded spec (a mapping, as from ``json.loads``) into a ``PipelineSpec``.

    Raises ``SpecError`` naming ``source``, ``label`` and every bad field's dotted path.
    """
    if not isinstance(data, dict):
        fail(
            f"{source}: {label}", f"expected a mapping (a pipeline spec), got {type(data).__name__}"
        )
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc)
        lines = [f"{field}: {message}" if field else message for field, message in problems]
        text = f"{source}: {label}: " + "\n  ".join(lines)
        raise SpecError(text, field=problems[0][0], problems=problems) from None


def load_specs(text: str, *, source: str = "<spec>") -> list[PipelineSpec]:
    """Parse every pipeline spec in ``text``, in order.

    Accepts what ``pachctl create pipeline -f`` accepts: JSON (one object, an array of objects,
    or objects one after another) when the text starts with ``{`` or ``[``, otherwise YAML (one
    document, ``---``-separated documents, or a top-level list). Empty YAML documents, such as
    one after a trailing ``---``, are skipped. Raises ``SpecError`` if the text holds no spec,
    is not valid JSON/YAML, breaks a limit (see the module doc), or any spec is invalid;
    ``source`` (a path) starts the message.
    """
    raw: list[Any] = []
    for document in decode_documents(text, source):
        if isinstance(document, list):
            raw.extend(document)
        elif document is not None:
            raw.append(document)
    if not raw:
        fail(source, "no pipeline spec found; the document is empty")
    return [
        parse_spec(data, source=source, label=_describe(data, index, len(raw)))
        for index, data in enumerate(raw)
    ]


def read_spec(text: str, *, source: str = "<stored spec>") -> PipelineSpec:
    """Parse one spec in its stored form (:meth:`PipelineSpec.canonical_json`).

    The same path and limits as :func:`load_specs`, which ``create pipeline`` also runs on the
    form it stores, so what was stored reads back. Raises ``SpecError``.
    """
    specs = load_specs(text, source=source)
    if len(specs) != 1:
        fail(source, f"expected one pipeline spec, found {len(specs)}")
    return specs[0]


def load_spec_file(path: str | Path) -> list[PipelineSpec]:
    """Read a UTF-8 JSON or YAML file and return its specs (see :func:`load_specs`).

    Raises ``OSError`` if the file cannot be read, ``SpecError`` if it is not valid or larger
    than ``MAX_SPEC_BYTES``.
    """
    return load_specs(read_document_file(path), source=str(path))
