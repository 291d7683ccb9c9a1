"""Searching runs with MLflow's filter and order-by grammar (``mlflow.search_runs``).

A filter is comparisons joined by ``AND`` (MLflow has no ``OR``; neither has this)::

    filter     := comparison ("AND" comparison)*
    comparison := entity "." key op value
    entity     := metric(s) | param(s) | parameter(s) | tag(s) | attribute(s) | attr | run
    key        := name ("." name)* | `quoted` | "quoted"     (tags.mlflow.parentRunId works)
    op         := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value      := 'string' | "string" | number | "(" string ("," string)* ")"

Which operators each entity takes, as MLflow's documentation gives them:

- ``metrics.<key>``: ``= != < <= > >=`` against a number; a run without the metric does
  not match.
- ``params.<key>``, ``tags.<key>``: ``= != LIKE ILIKE IN NOT IN`` against strings. Values
  are compared as MLflow stores them, as text (cairn keeps JSON scalars: ``0.1`` compares
  as ``'0.1'``, ``True`` as ``'True'``). ``LIKE`` is SQL's (``%`` any run of characters,
  ``_`` one), case-sensitive; ``ILIKE`` ignores case.
- attributes: ``run_id``, ``run_name``, ``status`` (``RUNNING``, ``FINISHED``,
  ``FAILED``), ``experiment_id`` (cairn's experiment name), ``artifact_uri`` take the
  string operators; ``start_time``, ``end_time`` (milliseconds since the epoch) the
  numeric ones.

An order-by clause is ``entity.key [ASC|DESC]`` (default ASC); runs missing the key sort
last either way, and ties fall back to newest first, then run id, as MLflow's.

Errors: MLError naming the clause and what was expected (e.g. a metric compared with a
string, ``OR``, an unknown attribute, an unterminated string).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.ml.errors import MLError
from cairn.ml.models import RunInfo

__all__ = ["Comparison", "Order", "matches", "parse_filter", "parse_order_by", "search"]

_ENTITIES = {
    **dict.fromkeys(("metric", "metrics"), "metrics"),
    **dict.fromkeys(("param", "params", "parameter", "parameters"), "params"),
    **dict.fromkeys(("tag", "tags"), "tags"),
    **dict.fromkeys(("attribute", "attributes", "attr", "run"), "attributes"),
}
_STRING_ATTRIBUTES = {"run_id", "run_name", "status", "experiment_id", "artifact_uri"}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
_NUMERIC_OPS = {"=", "!=", "<", "<=", ">", ">="}
_STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<backtick>`[^`]*`)
  | (?P<word>[A-Za-z_][\w.:/-]*)
  | (?P<dot>\.)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out, at = [], 0
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None:
            quote = text[at] in "'\"`"
            problem = "an unterminated quote" if quote else f"unexpected {text[at]!r}"
            raise MLError(f"filter {text!r}: {problem} at character {at + 1}")
        if m.lastgroup != "space":
            out.append(_Token(m.lastgroup or "", m.group(), at))
        at = m.end()
    return out


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    if token.text[0] == "'":
        return re.sub(r"\\(.)|''", lambda m: m.group(1) or "'", body)
    return re.sub(r"\\(.)", lambda m: m.group(1), body)


@dataclass(frozen=True)
class Comparison:
    """One clause: ``entity`` is metrics, params, tags or attributes; ``value`` a float, a
    string, or a tuple of strings for IN."""

    entity: str
    key: str
    op: str
    value: Any


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, problem: str) -> MLError:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        where = f"at {tok.text!r} (character {tok.at + 1})" if tok else "at the end"
        return MLError(f"filter {self.text!r}: {problem} {where}")

    def peek(self) -> _Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        self.i += 1
        return tok

    def word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def identifier(self) -> tuple[str, str]:
        tok = self.take()
        if tok.kind != "word":
            raise self.fail_at(
                tok, "expected metrics.<key>, params.<key>, tags.<key> or attributes.<name>"
            )
        head, dot, rest = tok.text.partition(".")
        entity = _ENTITIES.get(head.lower())
        if entity is None:
            raise self.fail_at(
                tok, "expected an entity (metrics, params, tags, attributes) before the key"
            )
        if rest:
            key = rest
        else:
            if not dot:
                nxt = self.take()
                if nxt.kind != "dot":
                    raise self.fail_at(nxt, f"expected '.' and a key after {head!r}")
            quoted = self.take()
            if quoted.kind == "backtick" or (quoted.kind == "string" and quoted.text[0] == '"'):
                key = _unquote(quoted)
            elif quoted.kind == "word":
                key = quoted.text
            else:
                raise self.fail_at(quoted, 'expected a key (quote it with `...` or "...")')
        if not key:
            raise self.fail_at(tok, "an empty key")
        if entity == "attributes" and key not in _STRING_ATTRIBUTES | _NUMERIC_ATTRIBUTES:
            known = ", ".join(sorted(_STRING_ATTRIBUTES | _NUMERIC_ATTRIBUTES))
            raise self.fail_at(tok, f"unknown attribute {key!r} (one of {known})")
        return entity, key

    def fail_at(self, tok: _Token, problem: str) -> MLError:
        return MLError(f"filter {self.text!r}: {problem}, at {tok.text!r} (character {tok.at + 1})")

    def op(self) -> str:
        tok = self.take()
        if tok.kind == "op":
            return "!=" if tok.text == "<>" else tok.text
        if tok.kind == "word":
            upper = tok.text.upper()
            if upper in ("LIKE", "ILIKE", "IN"):
                return upper
            if upper == "NOT" and self.word("IN"):
                self.take()
                return "NOT IN"
        raise self.fail_at(tok, "expected a comparison (= != < <= > >= LIKE ILIKE IN NOT IN)")

    def value(self, entity: str, key: str, op: str) -> Any:
        numeric = entity == "metrics" or (entity == "attributes" and key in _NUMERIC_ATTRIBUTES)
        allowed = _NUMERIC_OPS if numeric else _STRING_OPS
        if op not in allowed:
            raise self.fail(f"{entity}.{key} takes {' '.join(sorted(allowed))}, not {op};")
        if op in ("IN", "NOT IN"):
            tok = self.take()
            if tok.kind != "lparen":
                raise self.fail_at(tok, f"{op} takes a list: ('a', 'b')")
            items = []
            while True:
                item = self.take()
                if item.kind != "string":
                    raise self.fail_at(item, f"{op} lists quoted strings")
                items.append(_unquote(item))
                sep = self.take()
                if sep.kind == "rparen":
                    return tuple(items)
                if sep.kind != "comma":
                    raise self.fail_at(sep, "expected ',' or ')'")
        tok = self.take()
        if numeric:
            if tok.kind != "number":
                raise self.fail_at(tok, f"{entity}.{key} compares with a number")
            return float(tok.text)
        if tok.kind != "string":
            raise self.fail_at(tok, f"{entity}.{key} compares with a quoted string")
        return _unquote(tok)

    def parse(self) -> list[Comparison]:
        out: list[Comparison] = []
        if not self.toks:
            return out
        while True:
            entity, key = self.identifier()
            op = self.op()
            out.append(Comparison(entity, key, op, self.value(entity, key, op)))
            if self.peek() is None:
                return out
            if self.word("OR"):
                raise self.fail("OR is not supported (MLflow's grammar joins clauses with AND)")
            if not self.word("AND"):
                raise self.fail("expected AND")
            self.take()


def parse_filter(text: str | None) -> list[Comparison]:
    """The clauses of filter ``text`` (empty or None: none). Raises MLError."""
    return _Parser(text or "").parse()


def field(run: RunInfo, entity: str, key: str) -> Any:
    """The value a clause on ``entity.key`` sees for ``run``: a float for metrics and
    times, MLflow's text form for params and tags, None when the run has none."""
    if entity == "metrics":
        return run.metrics.get(key)
    if entity in ("params", "tags"):
        values = run.params if entity == "params" else run.tags
        if entity == "tags" and key == "mlflow.runName" and key not in values:
            return run.name
        return None if key not in values else _text(values[key])
    return attribute(run, key)


def attribute(run: RunInfo, key: str) -> Any:
    """Attribute ``key`` of ``run`` as MLflow names it (times in ms)."""
    if key == "run_id":
        return run.id
    if key == "run_name":
        return run.name
    if key == "status":
        return str(run.state).upper()
    if key == "experiment_id":
        return run.experiment
    if key == "artifact_uri":
        return f"runs:/{run.id}"
    if key == "start_time":
        return run.created * 1000
    if key == "end_time":
        return None if run.finished is None else run.finished * 1000
    raise MLError(f"unknown attribute {key!r}")


def _text(value: Any) -> str:
    return str(value)  # MLflow keeps params and tags as str(value)


def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = ["." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "LIKE": lambda a, b: _like(b, False).fullmatch(a) is not None,
    "ILIKE": lambda a, b: _like(b, True).fullmatch(a) is not None,
    "IN": lambda a, b: a in b,
    "NOT IN": lambda a, b: a not in b,
}


def matches(run: RunInfo, clauses: Iterable[Comparison]) -> bool:
    """Whether ``run`` satisfies every clause (a missing value satisfies none)."""
    for c in clauses:
        value = field(run, c.entity, c.key)
        if value is None or not _COMPARE[c.op](value, c.value):
            return False
    return True


@dataclass(frozen=True)
class Order:
    """One order-by clause."""

    entity: str
    key: str
    descending: bool


def parse_order_by(clauses: Sequence[str] | None) -> list[Order]:
    """``["metrics.acc DESC", "params.lr"]`` as Orders. Raises MLError."""
    out = []
    for clause in clauses or ():
        parser = _Parser(clause)
        entity, key = parser.identifier()
        descending = False
        if parser.word("ASC", "DESC"):
            descending = parser.take().text.upper() == "DESC"
        if parser.peek() is not None:
            raise MLError(
                f"order_by {clause!r}: expected 'entity.key [ASC|DESC]', "
                f"not {parser.peek().text!r} after the key"  # type: ignore[union-attr]
            )
        out.append(Order(entity, key, descending))
    return out


def _sort_key(order: Order, run: RunInfo) -> Any:
    return field(run, order.entity, order.key)


def search(
    runs: Iterable[RunInfo],
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
) -> list[RunInfo]:
    """The runs matching ``filter_string``, sorted by ``order_by`` then newest first and by
    id, at most ``max_results``. Raises MLError for a malformed filter or order."""
    clauses = parse_filter(filter_string)
    orders = parse_order_by(order_by)
    found = [r for r in runs if matches(r, clauses)]
    found.sort(key=lambda r: r.id)
    found.sort(key=lambda r: r.created, reverse=True)
    for order in reversed(orders):
        present = [r for r in found if field(r, order.entity, order.key) is not None]
        missing = [r for r in found if field(r, order.entity, order.key) is None]
        present.sort(key=functools.partial(_sort_key, order), reverse=order.descending)
        found = present + missing
    return found if max_results is None else found[:max_results]
