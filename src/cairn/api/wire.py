"""The face on the wire: how a call of a Protocol method (cairn.api.protocol) and its
answer travel as JSON between the remote client and ``cairn server``.

One call is ``POST /api/v1/<sub-client>/<method>`` with a JSON object of the method's
keyword arguments; the answer is ``{"result": <value>}`` (200), or ``{"error": {...}}``
with the status ``status_of`` gives. Arguments and results are converted by pydantic
from the method's own annotations (``TypeAdapter``): frozen dataclasses become objects
of their fields, StrEnums their values, datetimes ISO 8601 text, bytes base64 (pydantic's
``ser_json_bytes="base64"``). So the Protocols are the schema: a method added to one is
on the wire, in OpenAPI and in the remote client without another line.

Methods that move bytes or local files are not generic calls; they are named in
``SPECIAL``: ``files.put``/``upload``/``download``/``read``/``open`` and
``models.download`` (cairn.server.team.files and cairn.api.remote.files: chunks,
streams), and ``pipelines.create``/``update``, whose
transform runs in a folder of the client's machine (cairn.server.team.specs and
cairn.api.remote.pipelines: the folder travels as a code bundle). ``files.read_range``
answers raw bytes, not base64 in JSON.

A path given for a document (a monitoring rule file) names a file on the client's
machine: the client reads it and sends its values, and the server's route refuses a path
(``ON_THE_WIRE`` narrows the parameter), since on the server it would name the server's
files. Values pydantic cannot convert from their annotation have a wire form of their own
(``MonitorReport``: cairn.api.report_wire).

Errors cross as ``{"type": class name, "message": text, "field", "problems", "about"}``;
``raise_error`` rebuilds the same class (any CairnError, or TimeoutError) on the client,
so ``except NotFound`` works the same embedded and remote.
"""

from __future__ import annotations

import builtins
import collections.abc
import functools
import inspect
import operator
import struct
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from cairn.storage.errors import CairnError, FieldError

__all__ = [
    "API_PREFIX",
    "ARCHIVE_HEADER",
    "FRAME_HEADER",
    "Method",
    "ON_THE_WIRE",
    "SPECIAL",
    "ServerUnreachable",
    "error_body",
    "face_methods",
    "method",
    "raise_error",
    "status_of",
]

API_PREFIX = "/api/v1"

FRAME_HEADER = struct.Struct(">32sI")
"""A chunk frame's header in an upload: the raw 32-byte BLAKE3 digest, the length."""

ARCHIVE_HEADER = struct.Struct(">IQ")
"""A file's header in a download archive: the length of its path in bytes, its size."""

SPECIAL: frozenset[tuple[str, str]] = frozenset(
    {
        ("files", "put"),
        ("files", "upload"),
        ("files", "download"),
        ("files", "read"),
        ("files", "open"),
        ("files", "read_range"),
        ("models", "download"),
        ("pipelines", "create"),
        ("pipelines", "update"),
    }
)
"""Methods whose arguments or results are bytes, streams, local paths or callbacks: the
remote client implements them over their own routes, not over one JSON call."""

ON_THE_WIRE: dict[tuple[str, str], dict[str, Any]] = {
    ("monitors", "create"): {"rule": Mapping[str, Any]},
    ("monitors", "update"): {"rule": Mapping[str, Any]},
}
"""Parameters that travel narrower than the Protocol declares them: a local file path
(``rule="drift.yaml"``) is read on the client (cairn.api.remote.monitors), so the route
takes values only and refuses a path (422), which would name a file of the server."""

_CONFIG = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64", arbitrary_types_allowed=True)


_ANNOTATION_HOMES = {
    "cairn.api.refs": "RefLike",
    "cairn.data": "BranchInfo CommitInfo FileChange FileInfo RepoInfo Skipped",
    "cairn.data.fsck": "FsckReport",
    "cairn.data.gc": "GcReport",
    "cairn.ml.events": "Event",
    "cairn.ml.models": "MetricPoint ModelInfo ModelVersion RunInfo Signature",
    "cairn.ml.runs": "Comparison",
    "cairn.monitoring.drift": "DriftConfig",
    "cairn.monitoring.monitor": "MonitorReport",
    "cairn.monitoring.rules": "MonitorInfo MonitorRule",
    # where it is defined: cairn.monitoring.loop, which re-exports it, loads pandas
    "cairn.monitoring.state": "MonitorState",
    "cairn.pipelines": "DatumInfo JobInfo PipelineInfo PipelineSpec",
    "cairn.pipelines.models": "BrokenPipeline DatumPreview Reproduction",
    "cairn.pipelines.secret_store": "SecretInfo",
    "cairn.serving.policy": "Deployment DeploymentRevision TrafficPolicy",
}
"""Where the names the Protocols import under TYPE_CHECKING live (and cairn.api.types)."""


class _Names(dict[str, Any]):
    """The names the Protocols' annotations use, each module imported on first use: a
    call of ``repos.list`` must not import the monitoring layer (SciPy, pandas)."""

    def __missing__(self, name: str) -> Any:
        import importlib

        for module, found in _ANNOTATION_HOMES.items():
            if name in found.split():
                value = self[name] = getattr(importlib.import_module(module), name)
                return value
        raise KeyError(name)


@cache
def _namespace() -> _Names:
    """The names the Protocols' annotations use, for ``typing.get_type_hints``."""
    import cairn.api.types as api_types

    names = _Names({k: getattr(api_types, k) for k in api_types.__all__})
    names["builtins"] = builtins
    return names


@dataclass(frozen=True)
class Method:
    """One method of the face: its sub-client, name, parameters (name -> (annotation,
    default or ``inspect.Parameter.empty``), keyword names as the Protocol spells them),
    the annotation of its result, and the converters for both."""

    sub: str
    name: str
    doc: str
    params: dict[str, tuple[Any, Any]]
    returns: Any
    variadic: str | None  # the name of a ``*more`` parameter (files.delete), if any

    @property
    def path(self) -> str:
        return f"{API_PREFIX}/{self.sub}/{self.name}"

    def adapter(self, name: str) -> TypeAdapter[Any]:
        return _adapter(self.sub, self.name, name)

    def encode_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments -> JSON-able values (client side)."""
        return {
            k: self.adapter(k).dump_python(self._listed(k, v), mode="json")
            for k, v in kwargs.items()
        }

    def _listed(self, name: str, value: Any) -> Any:
        # An Iterable argument (a tuple, a generator) travels as the list its adapter takes.
        iterable = typing.get_origin(self.params[name][0]) is collections.abc.Iterable
        return list(value) if iterable and not isinstance(value, list) else value

    def decode_args(self, body: dict[str, Any]) -> dict[str, Any]:
        """JSON values -> validated keyword arguments (server side). Raises
        pydantic.ValidationError (the server answers 422 naming the field) or FieldError
        for an unknown argument."""
        unknown = sorted(set(body) - set(self.params))
        if unknown:
            raise FieldError(
                f"{self.sub}.{self.name}: unknown argument(s) {', '.join(unknown)}", unknown[0]
            )
        decoded = {}
        for k, v in body.items():
            try:
                value = self.adapter(k).validate_python(v)
                if isinstance(value, Iterator):
                    # pydantic validates an Iterable lazily, as a one-shot iterator: the
                    # server's guard would use it up before the call saw an item
                    value = list(value)
                decoded[k] = value
            except ValidationError as exc:  # again, with the argument's name in each place
                raise ValidationError.from_exception_data(
                    f"{self.sub}.{self.name}",
                    [_located(e, k) for e in exc.errors()],
                ) from None
        return decoded

    def encode_result(self, value: Any) -> Any:
        return self.adapter("return").dump_python(value, mode="json")

    def decode_result(self, value: Any) -> Any:
        return self.adapter("return").validate_python(value)


def _located(error: Any, name: str) -> Any:
    """A pydantic error detail placed under argument ``name``."""
    detail = {"type": error["type"], "loc": (name, *error["loc"]), "input": error["input"]}
    if "ctx" in error:
        detail["ctx"] = error["ctx"]
    return detail


@cache
def _adapter(sub: str, name: str, param: str) -> TypeAdapter[Any]:
    m = method(sub, name)
    annotation = m.returns if param == "return" else m.params[param][0]
    annotation = _with_wire_forms(annotation)
    if m.variadic == param:
        annotation = list[annotation]  # type: ignore[valid-type]
    return TypeAdapter(annotation, config=_adapter_config(annotation))


@cache
def _wire_forms() -> dict[Any, Any]:
    """Types with a wire form of their own, as pydantic annotations that use it: a
    MonitorReport (frames: cairn.api.report_wire), a DriftConfig (its ``to_dict``; its
    ``kinds`` is a read-only mapping pydantic cannot serialize)."""
    from pydantic import PlainSerializer, PlainValidator

    from cairn.api.report_wire import report_from_wire, report_to_wire
    from cairn.monitoring.drift import DriftConfig
    from cairn.monitoring.model_report import MonitorReport

    def config_from_wire(value: Any) -> DriftConfig:
        if isinstance(value, DriftConfig):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"drift settings are a JSON object, not {type(value).__name__}")
        return DriftConfig.from_dict(value)

    return {
        MonitorReport: typing.Annotated[
            MonitorReport, PlainValidator(report_from_wire), PlainSerializer(report_to_wire)
        ],
        DriftConfig: typing.Annotated[
            DriftConfig, PlainValidator(config_from_wire), PlainSerializer(DriftConfig.to_dict)
        ],
    }


# The modules of the types in ``_wire_forms``: importing them loads scipy and pandas, a
# second of every remote command's start-up, so an annotation from elsewhere skips them.
_WIRE_FORM_MODULES = frozenset({"cairn.monitoring.drift", "cairn.monitoring.model_report"})


def _with_wire_forms(annotation: Any) -> Any:
    """``annotation`` with each type of ``_wire_forms`` replaced, also inside a union."""
    if getattr(annotation, "__module__", None) in _WIRE_FORM_MODULES:
        forms = _wire_forms()
        if annotation in forms:
            return forms[annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, map(_with_wire_forms, typing.get_args(annotation)))
    if typing.get_origin(annotation) is collections.abc.Iterable:
        # An Iterable goes over the wire as a list: pydantic serializes an Iterable as a
        # generator and warns when handed the list callers pass.
        return list[_with_wire_forms(typing.get_args(annotation)[0])]  # type: ignore[misc]
    return annotation


def _adapter_config(annotation: Any) -> ConfigDict | None:
    # pydantic refuses a config for types that carry their own (BaseModel, dataclasses
    # with a config); those need none.
    try:
        TypeAdapter(annotation, config=_CONFIG)
    except Exception:
        return None
    return _CONFIG


@cache
def method(sub: str, name: str) -> Method:
    """The face's method ``sub.name``. Raises KeyError if the face has none."""
    from cairn.api.protocol import SUB_CLIENTS

    proto = SUB_CLIENTS[sub]
    fn = getattr(proto, name, None)
    if fn is None or name.startswith("_") or not callable(fn):
        raise KeyError(f"{sub}.{name}")
    module = inspect.getmodule(fn)
    # Local names come first, as the merged namespace did; a mapping is looked up lazily.
    hints = typing.get_type_hints(fn, globalns=vars(module), localns=_namespace())
    params: dict[str, tuple[Any, Any]] = {}
    variadic = None
    for p in list(inspect.signature(fn).parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            variadic = p.name
        params[p.name] = (hints.get(p.name, Any), p.default)
    for pname, narrower in ON_THE_WIRE.get((sub, name), {}).items():
        params[pname] = (narrower, params[pname][1])
    doc = inspect.getdoc(fn) or ""
    return Method(sub, name, doc, params, hints.get("return", Any), variadic)


def face_methods() -> list[Method]:
    """Every method of every sub-client of the face, in a stable order."""
    from cairn.api.protocol import SUB_CLIENTS

    found = []
    for sub, proto in SUB_CLIENTS.items():
        for name, fn in sorted(vars(proto).items()):
            if not name.startswith("_") and callable(fn):
                found.append(method(sub, name))
    return found


# -- errors --------------------------------------------------------------------------
class ServerUnreachable(CairnError):
    """No cairn server answers at the URL (refused, timed out, or not cairn)."""


_STATUS: list[tuple[str, int]] = [
    # most specific first: the first class in an error's MRO with an entry wins
    ("Unauthenticated", 401),
    ("PermissionDenied", 403),
    ("AuthStateError", 409),
    ("NotFound", 404),
    ("ObjectNotFound", 404),
    ("AlreadyExists", 409),
    ("CommitStateError", 409),
    ("RepoInUse", 409),
    ("PathConflict", 409),
    ("PolicyConflict", 409),
    ("StoreDamaged", 500),
    ("CorruptObject", 500),
    ("StorageError", 500),
    ("CatalogError", 500),
    ("TimeoutError", 504),
    ("CairnError", 400),
]


def status_of(exc: BaseException) -> int:
    """The HTTP status of an error the facade raised: 4xx for the caller's mistakes,
    5xx for the store's trouble (see ``_STATUS``)."""
    table = dict(_STATUS)
    for cls in type(exc).__mro__:
        if cls.__name__ in table:
            return table[cls.__name__]
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    """What the client needs to raise ``exc`` again: its class name, message, the field
    it names (FieldError), and what it is about (cairn.data.subject)."""
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for attr in ("field", "problems"):
        if hasattr(exc, attr):
            body[attr] = getattr(exc, attr)
    about = getattr(exc, "about", None)
    if about is not None:
        body["about"] = [about[0], dict(about[1])]
    return body


@cache
def _error_classes() -> dict[str, type[BaseException]]:
    import cairn.api.errors as tree

    del tree
    return _loaded_errors()


def _loaded_errors() -> dict[str, type[BaseException]]:
    """Every error class imported so far, by name."""
    from cairn.storage.errors import CairnError

    found: dict[str, type[BaseException]] = {"TimeoutError": TimeoutError}
    todo: list[type[BaseException]] = [CairnError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found


def raise_error(
    body: dict[str, Any], status: int, fallback: Callable[[str], BaseException]
) -> None:
    """Raise the error ``body`` describes as its own class (any CairnError or TimeoutError;
    an unknown name, from a newer server, as ``fallback(message)``)."""
    message = str(body.get("message", f"server answered {status}"))
    name = str(body.get("type", ""))
    # The classes loaded already, before the whole tree (which imports every layer).
    cls = _loaded_errors().get(name) or _error_classes().get(name)
    if cls is None:
        raise fallback(message)
    exc = cls.__new__(cls)
    BaseException.__init__(exc, message)
    if "field" in body:
        exc.field = body["field"]  # type: ignore[attr-defined]
        exc.problems = [tuple(p) for p in body.get("problems", [])]  # type: ignore[attr-defined]
    if body.get("about"):
        kind, names = body["about"]
        exc.about = (kind, dict(names))  # type: ignore[attr-defined]
    raise exc
