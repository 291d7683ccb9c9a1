"""Datums: the units of work a pipeline's input cuts out of its input commits.

Follows Pachyderm's datum semantics:

* ``pfs``: each path (file or folder) the glob matches is one datum holding
  every file at or under that path.
* ``cross``: every combination of one datum from each child.
* ``union``: the datums of every child, one after another.
* ``join``: datums of the children whose ``join_on`` templates (``$1``… over
  the glob's capture groups) render to the same key are crossed; a child with
  ``outer_join`` also yields its unmatched datums. A child without ``join_on`` has
  the empty key, which matches only other empty keys (so a join of such children is
  their cross product).
* ``group``: all datums of all children whose ``group_by`` keys are equal
  become one datum (without ``group_by``: one group of all).
* ``cron``: its repo, read as a ``pfs`` input with glob ``/`` (one datum).

Identity versus change (DESIGN.md, Pipelines): ``Datum.id`` names *which*
paths a datum holds (input names and matched paths); ``Datum.hash`` adds the
content hash of every file and the pipeline's salt, and says whether it
changed. Both are BLAKE3 over canonical JSON (sorted keys, no spaces).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import blake3

from cairn.data import CommitInfo, DataStore, FileEntry
from cairn.data.glob import compile_glob, expand_groups
from cairn.pipelines.spec import Input, PFSInput

__all__ = ["Datum", "DatumFile", "build_datums", "canonical_hash"]


def canonical_hash(value: object) -> str:
    """BLAKE3 hex digest of ``value`` as canonical JSON."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return blake3.blake3(raw.encode()).hexdigest()


@dataclass(frozen=True)
class DatumFile:
    """One input file of a datum; it appears at ``<pfs>/<input>/<path>``."""

    input: str
    repo: str
    branch: str
    commit: str
    path: str
    entry: FileEntry

    def to_json(self) -> dict[str, object]:
        return {
            "input": self.input,
            "repo": self.repo,
            "branch": self.branch,
            "commit": self.commit,
            "path": "/" + self.path,
            "hash": self.entry.hash,
            "size": self.entry.size,
        }


@dataclass(frozen=True)
class Datum:
    """A unit of work: ``roots`` are the (input name, repo, branch, matched path) it was cut
    from, ``files`` every input file it holds, ``key`` the join/group key that formed it,
    ``keys`` each input's own (input name, ``"JOIN_ON"`` or ``"GROUP_BY"``, key), which
    the transform sees as ``PACH_DATUM_<input>_JOIN_ON`` / ``_GROUP_BY``."""

    roots: tuple[tuple[str, str, str, str], ...]
    files: tuple[DatumFile, ...]
    key: str = ""
    keys: tuple[tuple[str, str, str], ...] = ()

    @cached_property
    def id(self) -> str:
        # Asked many times per datum by the planner; computed once.
        return canonical_hash(sorted(self.roots))

    def hash(self, salt: str) -> str:
        """The datum id plus every file's content hash plus the pipeline salt."""
        contents = sorted((f.input, f.path, f.entry.hash) for f in self.files)
        return canonical_hash([self.id, contents, salt])

    @property
    def size(self) -> int:
        return sum(f.entry.size for f in self.files)

    def merge(self, other: Datum) -> Datum:
        keys = self.keys + tuple(k for k in other.keys if k not in self.keys)
        return Datum(self.roots + other.roots, self.files + other.files, self.key, keys)


def _pfs_datums(data: DataStore, pfs: PFSInput, commit: CommitInfo) -> list[Datum]:
    regex = compile_glob(pfs.glob)
    template = pfs.join_on or pfs.group_by
    name = pfs.input_name
    out = []
    matched = [("", None)] if pfs.glob.strip("/") == "" else data.trees.walk_all(commit.tree)
    for path, _entry in matched:
        m = regex.match(path)
        if not m:
            continue
        files = tuple(
            DatumFile(name, pfs.repo, pfs.branch, commit.id, p, e)
            for p, e in data.trees.walk(commit.tree, path)
        )
        if not files:
            continue
        key = expand_groups(template, m) if template else ""
        kind = "JOIN_ON" if pfs.join_on else "GROUP_BY" if pfs.group_by else ""
        out.append(
            Datum(
                ((name, pfs.repo, pfs.branch, "/" + path),),
                files,
                key,
                ((name, kind, key),) if kind else (),
            )
        )
    return out


def build_datums(
    data: DataStore, spec_input: Input, commits: Mapping[tuple[str, str], CommitInfo]
) -> list[Datum]:
    """Every datum of ``spec_input`` given the commit of each input (repo, branch), in a
    stable order, without duplicate ids."""
    datums = _build(data, spec_input, commits)
    seen: set[str] = set()
    unique = []
    for d in datums:
        if d.id not in seen:
            seen.add(d.id)
            unique.append(d)
    return unique


def _build(
    data: DataStore, node: Input, commits: Mapping[tuple[str, str], CommitInfo]
) -> list[Datum]:
    leaf = node.leaf()
    if leaf is not None:
        return _pfs_datums(data, leaf, commits[(leaf.repo, leaf.branch)])
    children = [_build(data, c, commits) for c in node.children]
    if node.cross is not None:
        out = []
        for combo in itertools.product(*children):
            merged = combo[0]
            for d in combo[1:]:
                merged = merged.merge(d)
            out.append(merged)
        return out
    if node.union is not None:
        return [d for child in children for d in child]
    if node.join is not None:
        return _join(node, children)
    return _group(children)


def _by_key(datums: list[Datum]) -> dict[str, list[Datum]]:
    keyed: dict[str, list[Datum]] = {}
    for d in datums:
        keyed.setdefault(d.key, []).append(d)
    return keyed


def _join(node: Input, children: list[list[Datum]]) -> list[Datum]:
    outer = [bool(c.pfs and c.pfs.outer_join) for c in node.children]
    keyed = [_by_key(c) for c in children]
    out = []
    for key in sorted(set().union(*keyed)):
        present = [i for i, k in enumerate(keyed) if key in k]
        if len(present) < len(keyed) and not any(outer[i] for i in present):
            continue
        for combo in itertools.product(*(keyed[i][key] for i in present)):
            merged = combo[0]
            for d in combo[1:]:
                merged = merged.merge(d)
            out.append(Datum(merged.roots, merged.files, key, merged.keys))
    return out


def _group(children: list[list[Datum]]) -> list[Datum]:
    groups: dict[str, Datum] = {}
    for child in children:
        for d in child:
            groups[d.key] = groups[d.key].merge(d) if d.key in groups else d
    return [groups[k] for k in sorted(groups)]
