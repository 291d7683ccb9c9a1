"""Decoding documents (JSON or YAML text) within limits, so that no text can make a
decoder recurse without bound or expand past what a spec can hold. The one loader of the
documents users write: pipeline specs, monitoring rules (cairn.monitoring.rules) and
traffic policy files (cairn.serving.policy).

- ``MAX_SPEC_BYTES`` (1 MiB): the text;
- ``MAX_NESTING`` (100): mappings and lists nested in a document, checked while decoding:
  ``json`` and PyYAML's composer recurse once per level, so deeper text would end in
  ``RecursionError``;
- ``MAX_VALUES`` (200,000): values in one document once YAML aliases are expanded (a few
  aliases can stand for billions of values).

Every violation is an ``error`` (a FieldError subclass; ``SpecError`` unless the caller
names its own, such as ``RuleError``) whose message starts with the file or source and
names, where there is one, the path of the mapping or list that went too deep
(``input.cross[0].cross[0]...``). ``cairn.pipelines.spec`` adds the limits of the spec
itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NoReturn

import yaml

from cairn.pipelines.errors import SpecError
from cairn.storage.errors import FieldError

__all__ = [
    "MAX_NESTING",
    "MAX_SPEC_BYTES",
    "MAX_VALUES",
    "Loc",
    "decode_documents",
    "dotted",
    "fail",
    "load_document",
    "read_document_file",
]

MAX_SPEC_BYTES = 1 << 20
MAX_NESTING = 100
MAX_VALUES = 200_000

Loc = tuple[str | int, ...]

_SPACE = re.compile(r"\s*")
_SEPARATOR = "---"
# Segments pydantic adds for union members or validator wrappers, e.g. "function-after[...]".
_PYDANTIC_TAG = re.compile(r"[a-z][a-z-]*\[.*\]|\[key\]")
# One JSON token that matters for nesting: a string (skipped whole) or a punctuation mark.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}:,]')


def dotted(loc: Loc) -> str:
    """``("input", "cross", 1, "pfs", "repo")`` -> ``"input.cross[1].pfs.repo"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PYDANTIC_TAG.fullmatch(part):
            out += f".{part}" if out else part
    return out


def fail(
    where: str, message: str, field: str = "", *, error: type[FieldError] = SpecError
) -> NoReturn:
    """Raise ``error``: ``where``: ``message``, with ``field`` as its dotted path."""
    raise error(f"{where}: {message}", field=field, problems=[(field, message)])


def _too_nested(where: str, path: Loc, error: type[FieldError]) -> NoReturn:
    field = dotted(path)
    at = f" at {field}" if field else ""
    message = f"nested more than {MAX_NESTING} mappings/lists deep{at}; flatten the document"
    fail(where, message, field, error=error)


def _check_json_nesting(text: str, source: str, error: type[FieldError]) -> None:
    """Refuse JSON nested more than MAX_NESTING deep before ``json`` decodes it (its decoder
    recurses once per level). Malformed text is left for the decoder to report."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return  # cannot nest deeper than it has openers: most specs, without the token scan
    frames: list[list[Any]] = []  # [opener, key token or index], one per open container
    last_string = ""
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token[0] == '"':
            last_string = token
        elif token in "[{":
            if len(frames) == MAX_NESTING:
                _too_nested(source, tuple(_json_part(part) for _, part in frames), error)
            frames.append([token, 0 if token == "[" else None])
        elif token in "]}":
            if frames:
                frames.pop()
        elif frames and frames[-1][0] == "{" and token == ":":
            frames[-1][1] = last_string
        elif frames and frames[-1][0] == "[" and token == ",":
            frames[-1][1] += 1


def _json_part(part: Any) -> str | int:
    if not isinstance(part, str):
        return part if part is not None else "?"
    try:
        return str(json.loads(part))
    except ValueError:
        return part


def _json_documents(text: str, source: str, error: type[FieldError]) -> list[Any]:
    _check_json_nesting(text, source, error)
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    position = 0
    while True:
        position = _SPACE.match(text, position).end()  # type: ignore[union-attr]
        if text.startswith(_SEPARATOR, position):
            # pachctl reads spec files with a YAML decoder, so JSON documents may be
            # separated by YAML's document marker
            position += len(_SEPARATOR)
            continue
        if position == len(text):
            return documents
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            fail(source, f"invalid JSON at {where}: {exc.msg}", error=error)
        documents.append(value)


class _TooNested(Exception):
    def __init__(self, path: Loc) -> None:
        super().__init__(path)
        self.path = path


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing collections nested more than MAX_NESTING deep while it
    composes them (its composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        # ``index`` is the key node under a mapping, the position in a sequence, and None
        # for a document's root and for a key that is itself a collection.
        part = index.value if isinstance(index, yaml.ScalarNode) else index
        self._path.append("?" if part is None else part)
        try:
            if len(self._path) > MAX_NESTING:
                raise _TooNested(tuple(self._path[1:]))
            return super().compose_node(parent, index)
        finally:
            self._path.pop()


def _yaml_documents(text: str, source: str, error: type[FieldError]) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_SpecLoader))  # noqa: S506 - a SafeLoader
    except _TooNested as exc:
        _too_nested(source, exc.path, error)
    except yaml.YAMLError as exc:
        fail(source, f"invalid YAML: {exc}", error=error)


def _count_values(document: Any, source: str, error: type[FieldError]) -> None:
    """Refuse a decoded document with more than MAX_VALUES values once YAML aliases are
    followed (each alias counts in full, as the spec's models would see it). Iterative and
    bounded, so a self-referencing alias ends here too."""
    count = 0
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_VALUES:
            message = f"more than {MAX_VALUES} values (after YAML aliases are expanded)"
            fail(source, message, error=error)
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_size(text: str, source: str, error: type[FieldError]) -> None:
    # A character is at most 4 bytes in UTF-8, so most texts need no encoding to be measured.
    if len(text) * 4 > MAX_SPEC_BYTES and len(text.encode("utf-8", "surrogatepass")) > (
        MAX_SPEC_BYTES
    ):
        fail(source, f"the text is larger than {MAX_SPEC_BYTES} bytes, the limit", error=error)


def decode_documents(text: str, source: str, *, error: type[FieldError] = SpecError) -> list[Any]:
    """The documents in ``text``: JSON (one value, or values one after another, optionally
    separated by ``---`` lines) when it starts with ``{`` or ``[``, else YAML
    (``---``-separated documents). Raises ``error`` (``source`` starts its message) for
    invalid text or a limit it breaks."""
    _check_size(text, source, error)
    is_json = text.lstrip().startswith(("{", "["))
    if is_json:
        documents = _json_documents(text, source, error)
    else:
        documents = _yaml_documents(text, source, error)
    # Each JSON value takes at least one character; only YAML aliases can multiply them.
    if not is_json or len(text) > MAX_VALUES:
        for document in documents:
            _count_values(document, source, error)
    return documents


def load_document(
    text: str, source: str, *, what: str, error: type[FieldError] = SpecError
) -> dict[str, Any]:
    """The one mapping ``text`` holds (JSON or YAML, within the limits above); ``what``
    names it in errors ("a monitoring rule"). Raises ``error`` for invalid text, a broken
    limit, no document, several, or one that is not a mapping."""
    documents = [d for d in decode_documents(text, source, error=error) if d is not None]
    if len(documents) != 1:
        fail(source, f"expected one document ({what}), found {len(documents)}", error=error)
    if not isinstance(documents[0], dict):
        kind = type(documents[0]).__name__
        fail(source, f"expected a mapping ({what}), got {kind}", error=error)
    return documents[0]


def read_document_file(path: str | Path, *, error: type[FieldError] = SpecError) -> str:
    """The UTF-8 text of a document file (a BOM is dropped). Raises OSError if it cannot be
    read, ``error`` naming the file if it is larger than MAX_SPEC_BYTES or not UTF-8."""
    if Path(path).stat().st_size > MAX_SPEC_BYTES:
        fail(str(path), f"the file is larger than {MAX_SPEC_BYTES} bytes, the limit", error=error)
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})", error=error)
