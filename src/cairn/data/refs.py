"""Parsing ``repo@branch^N:/path`` references, the syntax of pachctl.

images                     the repo (for commands that take a repo)
images@master              the head of branch master
images@master^ / ^2 / ~2   the parent / grandparent of that head
images@3f2a…               a commit by id (32 hex digits)
images@master:/a/b.png     a path in that commit
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cairn.data.errors import InvalidReference
from cairn.data.paths import normalize

__all__ = ["NAME_RE", "Ref", "check_name", "parse_ref"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_REF = re.compile(
    r"^(?P<repo>[^@:]+)(?:@(?P<commit>[^:^~]+)(?P<anc>(?:[\^~]\d*)*))?(?::(?P<path>.*))?$", re.S
)
_ANC = re.compile(r"[\^~](\d*)")


def check_name(name: str, what: str = "repo") -> str:
    """Return ``name`` if it is a valid repo or branch name; raise InvalidReference."""
    if not NAME_RE.match(name) or name.endswith(".lock"):
        raise InvalidReference(
            f"{what} name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``commit`` is a branch name or commit id (None = default branch),
    ``ancestry`` how many parents to step back, ``path`` a normalized path or None."""

    repo: str
    commit: str | None = None
    ancestry: int = 0
    path: str | None = None

    @classmethod
    def parse(cls, repo: str, commitish: str | None) -> Ref:
        """A Ref from a repo and a ``branch^N`` / id string (None = the default branch)."""
        return parse_ref(repo if commitish is None else f"{repo}@{commitish}")

    def __str__(self) -> str:
        out = self.repo
        if self.commit:
            out += f"@{self.commit}" + (f"^{self.ancestry}" if self.ancestry else "")
        if self.path is not None:
            out += ":/" + self.path
        return out


def parse_ref(text: str) -> Ref:
    """Parse ``repo[@branch-or-commit[^N]][:path]``. Raises InvalidReference / InvalidPath."""
    m = _REF.match(text)
    if not m:
        raise InvalidReference(f"cannot parse {text!r}; expected repo@branch:/path")
    repo = check_name(m.group("repo"))
    commit = m.group("commit")
    ancestry = 0
    for step in _ANC.findall(m.group("anc") or ""):
        ancestry += int(step) if step else 1
    path = m.group("path")
    return Ref(repo, commit, ancestry, None if path is None else normalize(path))
