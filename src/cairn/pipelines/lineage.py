"""Lineage: provenance (what a commit came from) and subvenance (what came from it),
as trees of commits, and, for one output file, the datum and exact input files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cairn.data import DataStore, FileEntry, InvalidPath, NotFound, Ref
from cairn.pipelines.service import Pipelines

__all__ = ["CommitNode", "commit_lineage", "file_lineage"]


@dataclass
class CommitNode:
    """A commit in a lineage tree; ``children`` are its inputs (upstream) or its
    consumers (downstream); ``via`` names the input that links them."""

    repo: str
    commit: str
    via: str = ""
    children: list[CommitNode] = field(default_factory=list)
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "repo": self.repo,
            "commit": self.commit,
            "via": self.via,
            "children": [c.to_json() for c in self.children],
        }


def _upstream(data: DataStore, repo: str, commit: str, via: str, depth: int) -> CommitNode:
    node = CommitNode(repo, commit, via)
    if depth > 0:
        try:
            info = data.inspect_commit(repo, commit)
        except NotFound:
            node.deleted = True  # the input repo or commit was deleted since
            return node
        for p in info.provenance:
            node.children.append(_upstream(data, p.repo, p.commit, p.name, depth - 1))
    return node


def _downstream(data: DataStore, repo: str, commit: str, via: str, depth: int) -> CommitNode:
    node = CommitNode(repo, commit, via)
    if depth > 0:
        for child_repo, child_commit, name in sorted(data.subvenance(repo, commit)):
            node.children.append(_downstream(data, child_repo, child_commit, name, depth - 1))
    return node


def commit_lineage(data: DataStore, ref: Ref, depth: int = 64) -> dict[str, CommitNode]:
    """``{"upstream": tree, "downstream": tree}`` rooted at the commit ``ref`` names."""
    commit = data.resolve(ref)
    return {
        "upstream": _upstream(data, commit.repo, commit.id, "", depth),
        "downstream": _downstream(data, commit.repo, commit.id, "", depth),
    }


def file_lineage(data: DataStore, pipelines: Pipelines, ref: Ref) -> dict[str, Any]:
    """Where one output file came from: its pipeline, job, datum and the exact input
    files (repo, commit, path, content hash) of that datum.

    Raises NotFound, InvalidPath (a folder, or a file no datum wrote, e.g. in a user repo).
    """
    commit = data.resolve(ref)
    path = ref.path or ""
    entry = data.trees.lookup(commit.tree, path)
    if entry is None:
        raise NotFound(f"{ref}: no such file")
    if not isinstance(entry, FileEntry):
        raise InvalidPath(f"{ref} is a folder; lineage of a file needs a file path")
    out: dict[str, Any] = {
        "repo": commit.repo,
        "commit": commit.id,
        "path": "/" + path,
        "hash": entry.hash,
        "size": entry.size,
    }
    if entry.datum is None:
        out["origin"] = "put by a user (not written by a pipeline)"
        return out
    datum = pipelines.datum_by_hash(commit.repo, entry.datum, commit.info.get("job"))
    if datum is None:
        raise NotFound(f"{ref}: datum {entry.datum[:12]} has no record (pipeline deleted?)")
    out.update(
        {
            "pipeline": commit.repo,
            "job": datum.job,
            "datum": datum.id,
            "datum_hash": datum.hash,
            "inputs": datum.inputs,
        }
    )
    return out
