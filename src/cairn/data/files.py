"""File operations on commits: put, get, list, glob, inspect, diff, delete, copy.

A mixin of DataStore (cairn.data.store), kept apart so each module stays one
concern. Puts stream: each file is cut into chunks as it is read, so memory
does not grow with file size, and every chunk is stored before the commit's
tree moves, so a put killed half way leaves the commit as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from cairn.data.errors import InvalidPath, NotFound
from cairn.data.glob import compile_glob
from cairn.data.models import CommitInfo, FileChange, FileInfo
from cairn.data.paths import display, join, normalize
from cairn.data.refs import Ref
from cairn.data.tree import DirEntry, Entry, FileEntry
from cairn.storage import Content

if TYPE_CHECKING:
    from cairn.data.tree import TreeStore
    from cairn.storage import ChunkStore

__all__ = ["FileOps"]


class FileOps:
    """File verbs; needs ``chunks``, ``trees``, ``resolve`` and ``_update_tree`` from DataStore."""

    chunks: ChunkStore
    trees: TreeStore

    if TYPE_CHECKING:

        def resolve(self, ref: Ref) -> CommitInfo: ...
        def _update_tree(
            self,
            repo: str,
            target: str | None,
            change: Callable[[str | None], str | None],
            description: str = "",
        ) -> CommitInfo: ...

    # -- writing -------------------------------------------------------------
    def put_files(
        self,
        repo: str,
        target: str | None,
        items: Iterable[tuple[str, BinaryIO]],
        *,
        append: bool = False,
        progress: Callable[[int], None] | None = None,
        description: str = "",
    ) -> CommitInfo:
        """Store each (path, stream) and add them to one commit.

        ``target`` is a branch (default master) or an open commit id. Into an open
        commit the files are added to it; otherwise one new finished commit holds them
        all. Existing files are overwritten, or with ``append`` extended. Raises
        InvalidPath, PathConflict, NotFound, CommitStateError.
        """
        contents: dict[str, Content] = {}
        for path, stream in items:
            norm = normalize(path, allow_root=False)
            new = self.chunks.write(stream, progress=progress)
            if norm in contents and append:
                new = self.chunks.concat([contents[norm], new])
            contents[norm] = new

        def change(root: str | None) -> str | None:
            updates: dict[str, FileEntry | None] = {}
            for path, content in contents.items():
                old = self.trees.lookup(root, path) if append else None
                if isinstance(old, FileEntry):
                    content = self.chunks.concat([old.content, content])
                updates[path] = FileEntry(content)
            return self.trees.apply(root, updates)

        return self._update_tree(repo, target, change, description)

    def put_bytes(self, repo: str, target: str | None, path: str, data: bytes) -> CommitInfo:
        """Convenience: put one file held in memory."""
        import io

        return self.put_files(repo, target, [(path, io.BytesIO(data))])

    def delete_files(self, repo: str, target: str | None, paths: Iterable[str]) -> CommitInfo:
        """Remove files or whole folders. Raises NotFound if a path does not exist."""
        norms = [normalize(p, allow_root=True) for p in paths]

        def change(root: str | None) -> str | None:
            for p in norms:
                if p and self.trees.lookup(root, p) is None:
                    raise NotFound(f"{repo}@{target or 'master'}: no file {display(p)}")
            if "" in norms:
                return None
            return self.trees.apply(root, dict.fromkeys(norms))

        return self._update_tree(repo, target, change)

    def copy_file(self, src: Ref, repo: str, target: str | None, dst_path: str) -> CommitInfo:
        """Copy a file or folder from ``src`` to ``repo@target:dst_path`` without copying
        bytes (the new entries share chunks). Raises NotFound."""
        commit = self.resolve(src)
        base = src.path or ""
        found = list(self.trees.walk(commit.tree, base))
        if not found:
            raise NotFound(f"{src}: no such file or folder")
        dst = normalize(dst_path)
        entry = self.trees.lookup(commit.tree, base)
        updates: dict[str, FileEntry | None] = {}
        for path, fe in found:
            rel = path[len(base) :].lstrip("/") if isinstance(entry, DirEntry) else ""
            name = join(dst, rel) if rel or dst else path.rpartition("/")[2]
            updates[normalize(name, allow_root=False)] = FileEntry(fe.content)
        return self._update_tree(repo, target, lambda root: self.trees.apply(root, updates))

    # -- reading -------------------------------------------------------------
    def _entry(self, ref: Ref) -> tuple[CommitInfo, str, Entry]:
        commit = self.resolve(ref)
        path = ref.path or ""
        entry = self.trees.lookup(commit.tree, path)
        if entry is None:
            if not path:
                return commit, path, DirEntry("", 0, 0)
            raise NotFound(f"{ref.repo}@{commit.id}: no file {display(path)}")
        return commit, path, entry

    def _info(self, commit: CommitInfo, path: str, entry: Entry) -> FileInfo:
        if isinstance(entry, DirEntry):
            return FileInfo(
                commit.repo, commit.id, display(path), "dir", entry.size, entry.hash, entry.count
            )
        return FileInfo(
            commit.repo,
            commit.id,
            display(path),
            "file",
            entry.size,
            entry.hash,
            1,
            entry.datum,
            len(entry.content.chunks),
        )

    def inspect_file(self, ref: Ref) -> FileInfo:
        """The file or folder ``ref`` names. Raises NotFound."""
        return self._info(*self._entry(ref))

    def list_file(self, ref: Ref) -> list[FileInfo]:
        """A folder's direct children, or the file itself. Raises NotFound."""
        commit, path, entry = self._entry(ref)
        if isinstance(entry, FileEntry):
            return [self._info(commit, path, entry)]
        return [self._info(commit, p, e) for p, e in self.trees.children(commit.tree, path)]

    def glob_file(self, ref: Ref, pattern: str) -> list[FileInfo]:
        """Files and folders matching a Pachyderm glob, in path order."""
        commit = self.resolve(ref)
        regex = compile_glob(pattern)
        return [
            self._info(commit, p, e) for p, e in self.trees.walk_all(commit.tree) if regex.match(p)
        ]

    def walk_files(self, ref: Ref) -> Iterator[tuple[str, FileEntry]]:
        """Every file at or under ``ref.path`` as (stored path, entry). Raises NotFound."""
        commit, path, _entry = self._entry(ref)
        return self.trees.walk(commit.tree, path)

    def read_file(self, ref: Ref) -> Iterator[bytes]:
        """A file's bytes, chunk by chunk. Raises NotFound, InvalidPath (for a folder)."""
        commit, path, entry = self._entry(ref)
        if not isinstance(entry, FileEntry):
            raise InvalidPath(f"{ref.repo}@{commit.id}:{display(path)} is a folder; use -r")
        return self.chunks.read(entry.content)

    def diff_file(self, new: Ref, old: Ref | None = None) -> list[FileChange]:
        """Files added, modified or deleted from ``old`` (default: the parent of ``new``)
        to ``new``: ``new.path`` against ``old.path`` (default: the same path), as
        ``pachctl diff file new-commit:path old-commit:path`` compares them."""
        new_commit = self.resolve(new)
        if old is None:
            old_tree = (
                self.resolve(Ref(new.repo, new_commit.parent)).tree if new_commit.parent else None
            )
        else:
            old_tree = self.resolve(old).tree
        out = []
        old_path = old.path if old is not None and old.path is not None else None
        for path, a, b in self.trees.diff(old_tree, new_commit.tree, new.path or "", old_path):
            status = "added" if a is None else "deleted" if b is None else "modified"
            out.append(
                FileChange(
                    display(path),
                    status,
                    a.hash if a else None,
                    b.hash if b else None,
                    a.size if a else None,
                    b.size if b else None,
                )
            )
        return out
