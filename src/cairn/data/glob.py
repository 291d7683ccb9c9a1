"""Pachyderm's glob patterns, translated to regular expressions.

Syntax (Pachyderm's docs, "Glob Pattern"): ``*`` matches within one path
component, ``**`` across components, ``?`` one character, ``[abc]`` / ``[!a]``
classes, ``{a,b}`` alternatives, and ``( … )`` capture groups, which ``join_on``
and ``group_by`` refer to as ``$1``, ``$2``… Patterns start at the repo root
(``/*`` = each top-level file or folder).
"""

from __future__ import annotations

import re
from functools import lru_cache

from cairn.data.errors import InvalidPath

__all__ = ["compile_glob", "expand_groups"]

# A group's opening character -> the regex that opens it; each closes with ")". Braces
# are alternatives (not captured), parentheses the capture groups ``$N`` refers to.
_OPENS = {"{": "(?:", "(": "("}
_CLOSES = {"}": "{", ")": "("}


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regex matching normalized paths (no leading slash) that ``pattern`` selects.

    ``/`` alone matches the root (the empty path). Raises InvalidPath for an
    unbalanced ``[``, ``{`` or ``(``.
    """
    body = pattern.strip("/")
    out: list[str] = []
    i = 0
    depth = dict.fromkeys(_OPENS, 0)
    while i < len(body):
        c = body[i]
        if c == "*":
            if body.startswith("**", i):
                i += 2
                if body.startswith("/", i):  # "**/" also matches zero folders
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = body.find("]", i + 2 if body.startswith(("[!", "[^"), i) else i + 1)
            if end < 0:
                raise InvalidPath(f"glob {pattern!r}: '[' without ']'")
            inner = body[i + 1 : end]
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            out.append("[" + inner.replace("\\", "\\\\") + "]")
            i = end
        elif c in _OPENS:
            depth[c] += 1
            out.append(_OPENS[c])
        elif c in _CLOSES and depth[_CLOSES[c]]:
            depth[_CLOSES[c]] -= 1
            out.append(")")
        elif c == "," and depth["{"]:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if any(depth.values()):
        raise InvalidPath(f"glob {pattern!r}: unbalanced '{{' or '('")
    try:
        return re.compile("".join(out) + r"\Z", re.S)
    except re.error as exc:
        raise InvalidPath(f"glob {pattern!r}: {exc}") from None


def expand_groups(template: str, match: re.Match[str]) -> str:
    """Replace ``$1``…``$9`` in a ``join_on`` / ``group_by`` template with capture groups."""

    def group(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return (match.group(n) or "") if n <= (match.re.groups or 0) else ""

    return re.sub(r"\$(\d)", group, template)
