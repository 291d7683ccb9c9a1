"""``client.files`` in this process."""

from __future__ import annotations

import builtins
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from cairn.api.refs import RefLike, data_ref
from cairn.api.types import FileLineage
from cairn.data import (
    CommitInfo,
    DataStore,
    FileChange,
    FileInfo,
    InvalidPath,
    InvalidReference,
    Ref,
    Skipped,
)
from cairn.data.paths import normalize
from cairn.pipelines import Pipelines, file_lineage

__all__ = ["EmbeddedFiles"]

FileData = bytes | IO[bytes]


class _ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (the chunk store's reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            piece = next(self._chunks, None)
            if piece is None:
                return 0
            self._left = piece
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


class EmbeddedFiles:
    """FilesProtocol over ``data``. Writes go through ``after`` (the Client's: a finished
    commit runs the pipelines downstream); ``upload`` and ``download`` are the Client's
    ``put_local`` and ``get_local``; ``pipelines`` answers file lineage."""

    def __init__(
        self,
        data: DataStore,
        pipelines: Pipelines,
        *,
        after: Callable[[CommitInfo], CommitInfo],
        upload: Callable[..., CommitInfo],
        download: Callable[..., list[Path]],
    ) -> None:
        self._data = data
        self._pipelines = pipelines
        self._after = after
        self._upload = upload
        self._download = download

    # -- writing -----------------------------------------------------------------------
    def put(
        self,
        ref: RefLike,
        data: FileData | Mapping[str, FileData],
        *,
        append: bool = False,
        description: str = "",
    ) -> CommitInfo:
        """Write ``data`` at ``repo@branch:/path`` (or each ``{relative path: data}``
        below it) in one commit. Raises InvalidPath, NotFound, CommitStateError, DataError."""
        parsed = self._writable(ref)
        base = parsed.path or ""
        if isinstance(data, Mapping):
            items = [(_join(base, rel), _stream(body)) for rel, body in data.items()]
        else:
            if not base:
                raise InvalidPath(f"{ref}: name the file to write, repo@branch:/path")
            items = [("/" + base, _stream(data))]
        commit = self._data.put_files(
            parsed.repo, parsed.commit, items, append=append, description=description
        )
        return self._after(commit)

    def upload(
        self,
        ref: RefLike,
        sources: Sequence[str | Path],
        *,
        recursive: bool = False,
        append: bool = False,
        description: str = "",
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[int | None, int], None] | None = None,
        on_stored: Callable[[], None] | None = None,
        on_skipped: Callable[[builtins.list[Skipped]], None] | None = None,
    ) -> CommitInfo:
        """Put local files or folders (or stdin, ``["-"]``) at ``repo@branch:/path`` in
        one commit, as ``cairn put file`` does; the callbacks are FilesProtocol.upload's.
        Raises InvalidPath, NotFound, NotRegularFile, DataError."""
        return self._upload(
            str(ref),
            [str(s) for s in sources],
            recursive=recursive,
            append=append,
            description=description,
            progress=progress,
            on_plan=on_plan,
            on_stored=on_stored,
            on_skipped=on_skipped,
        )

    def copy(self, src: RefLike, dst: RefLike) -> CommitInfo:
        """Copy a file or folder to ``repo@branch:/path`` without copying bytes. Raises
        NotFound, InvalidPath."""
        target = self._writable(dst)
        commit = self._data.copy_file(
            data_ref(src), target.repo, target.commit, "/" + (target.path or "")
        )
        return self._after(commit)

    def delete(self, ref: RefLike, *more: RefLike) -> CommitInfo:
        """Delete files or folders of one ``repo@branch`` in one commit. Raises NotFound,
        InvalidReference, InvalidPath."""
        refs = [self._writable(r) for r in (ref, *more)]
        first = refs[0]
        if any((r.repo, r.commit) != (first.repo, first.commit) for r in refs):
            raise InvalidReference("delete the paths of one repo@branch at a time")
        if any(not r.path for r in refs):
            raise InvalidPath(f"{ref}: name the file or folder to delete, repo@branch:/path")
        commit = self._data.delete_files(
            first.repo, first.commit, ["/" + (r.path or "") for r in refs]
        )
        return self._after(commit)

    # -- reading -----------------------------------------------------------------------
    def download(
        self,
        ref: RefLike,
        output: str | Path,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[Path]:
        """Write a file or a folder's files to local ``output``; return the paths written;
        ``progress(bytes)`` per piece. Raises NotFound, InvalidPath."""
        return self._download(str(ref), output, progress=progress)

    def read(self, ref: RefLike) -> bytes:
        """One file's content. Raises NotFound, InvalidPath (a folder)."""
        return b"".join(self._data.read_file(data_ref(ref)))

    def open(self, ref: RefLike) -> IO[bytes]:
        """A binary stream over one file, read chunk by chunk. Raises NotFound,
        InvalidPath (a folder)."""
        return io.BufferedReader(_ChunkStream(iter(self._data.read_file(data_ref(ref)))))

    def read_range(self, ref: RefLike, start: int, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive; None: to the end) of one file, from the
        chunks that hold them. Raises NotFound, InvalidPath (a folder), FieldError."""
        return b"".join(self._data.read_file_range(data_ref(ref), start, end))

    def get(self, ref: RefLike) -> FileInfo:
        """The file or folder at the path. Raises NotFound."""
        return self._data.inspect_file(data_ref(ref))

    def list(self, ref: RefLike) -> builtins.list[FileInfo]:
        """A folder's children (or the file itself). Raises NotFound."""
        return self._data.list_file(data_ref(ref))

    def glob(self, ref: RefLike, pattern: str) -> builtins.list[FileInfo]:
        """Paths of the commit matching a Pachyderm glob. Raises NotFound."""
        return self._data.glob_file(data_ref(ref), pattern)

    def diff(self, new: RefLike, old: RefLike | None = None) -> builtins.list[FileChange]:
        """Changes from ``old`` (default: the parent) to ``new``. Raises NotFound."""
        return self._data.diff_file(data_ref(new), data_ref(old) if old is not None else None)

    def lineage(self, ref: RefLike) -> FileLineage:
        """The datum and input files that wrote one file. Raises NotFound, InvalidPath."""
        return FileLineage.from_json(file_lineage(self._data, self._pipelines, data_ref(ref)))

    @staticmethod
    def _writable(ref: RefLike) -> Ref:
        parsed = data_ref(ref)
        if parsed.ancestry:
            raise InvalidPath(f"{ref}: cannot write to an ancestor; name a branch or commit")
        return parsed


def _join(base: str, rel: str) -> str:
    return "/" + "/".join(p for p in (base, normalize(rel)) if p)


def _stream(data: FileData) -> BinaryIO:
    # A Content (chunks a remote client sent to cairn server) passes as it is: the data
    # layer takes it as a source (cairn.data.files.Source).
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(data)
    return cast(BinaryIO, data)
