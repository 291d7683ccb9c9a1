"""Local files in and out of the store, for ``client.files.upload`` / ``download`` and
``cairn put file`` / ``get file``: where ``pachctl put file`` puts a local file or folder,
the stat cache and worker processes of a big put, and writing a folder back out."""

from __future__ import annotations

import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.data import CommitInfo, InvalidPath, NotFound, Skipped, parse_ref
from cairn.data.localfiles import LocalFile, OutputFolder, named_file, walk_folder
from cairn.data.statcache import StatCache
from cairn.data.subject import about
from cairn.storage import Content

if TYPE_CHECKING:
    # the store's modules load the catalog (SQLAlchemy), which a remote client's put and
    # get (local_items, OutputFolder) do without
    from cairn.data import DataStore, Source
    from cairn.data.ingest import ProcessIngest

__all__ = ["LocalFiles", "local_items"]


def local_items(
    source: str, dest: str, recursive: bool, count: int = 1
) -> tuple[list[tuple[str, Source]], list[Skipped]]:
    """Where ``pachctl put file`` puts a local file or folder: (repo path, local source)
    pairs, and the folder entries left out.

    A folder needs ``recursive``; its regular files keep their relative paths below
    ``dest``, and links, pipes and devices in it are left out or resolved as
    cairn.data.localfiles says. A file lands at ``dest``, or below it when ``dest`` ends
    with ``/``, is the root, or ``count`` sources share it; a link named here is followed,
    as ``cp`` does, and a pipe or device named here is read as a stream (``-f <(cmd)``),
    opened now. Raises InvalidPath, NotFound.
    """
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise NotFound(f"local file {source!r} does not exist") from None
    if stat.S_ISDIR(st.st_mode):
        if not recursive:
            raise about(InvalidPath(f"{source!r} is a folder"), "put.folder", source=source)
        base = dest.rstrip("/")
        files, skipped = walk_folder(source)
        return [(f"{base}/{rel}", local) for rel, local in files], skipped
    if dest.endswith("/") or not dest.strip("/") or count > 1:
        dest = f"{dest.rstrip('/')}/{os.path.basename(os.path.normpath(source))}"
    named = named_file(source)
    return [(dest, named if named is not None else open(source, "rb"))], []


def _counted(pieces: Iterable[bytes], progress: Callable[[int], None] | None) -> Iterator[bytes]:
    for piece in pieces:
        if progress:
            progress(len(piece))
        yield piece


class LocalFiles:
    """Puts and gets between local files and the store ``data`` whose folder is ``home``
    (its stat cache lives there); a put's finished commit goes through ``after`` (the
    Client's: the pipelines downstream run)."""

    def __init__(
        self, data: DataStore, home: Path, after: Callable[[CommitInfo], CommitInfo]
    ) -> None:
        self._data = data
        self._home = home
        self._after = after

    def put_local(
        self,
        ref: str,
        sources: list[str],
        *,
        recursive: bool = False,
        append: bool = False,
        description: str = "",
        on_plan: Callable[[int | None, int], None] | None = None,
        progress: Callable[[int], None] | None = None,
        on_stored: Callable[[], None] | None = None,
        on_skipped: Callable[[list[Skipped]], None] | None = None,
    ) -> CommitInfo:
        """Put local files, folders (with ``recursive``) or standard input (``"-"``) at
        ``repo@branch:/path``, in one commit, as ``pachctl put file`` does.

        A folder's files go below the path; a file goes to the path itself, or below it
        when the path ends with ``/`` or is the root. Only regular files inside a folder
        are read: a link in it is stored as its target's content when that is a file in
        the same folder, and other links, pipes, sockets and devices are left out
        (cairn.data.localfiles); ``on_skipped(entries)`` hears which, before the first
        byte is read. ``on_stored`` runs once the bytes are stored, before triggered
        pipelines run; ``on_plan(total bytes or None for a stream, file count)`` before the
        first byte. Raises InvalidPath, NotFound, NotRegularFile (a file was replaced by
        a link or another file while the put ran; nothing is committed), DataError.
        """
        parsed = parse_ref(ref)
        if parsed.ancestry:
            raise InvalidPath(f"{ref}: cannot write to an ancestor; name a branch or commit")
        dest = "/" + (parsed.path or "")
        if ref.endswith("/") and not dest.endswith("/"):
            dest += "/"
        todo: list[tuple[str, Source]] = []
        skipped: list[Skipped] = []
        try:
            if sources == ["-"]:
                if not parsed.path:
                    raise InvalidPath("name the file to write from stdin: repo@branch:/path")
                todo.append((dest, sys.stdin.buffer))
            else:
                for source in sources:
                    found, left_out = local_items(source, dest, recursive, len(sources))
                    todo += found
                    skipped += left_out
            if on_skipped and skipped:
                on_skipped(skipped)
            if on_plan:
                sizes = [s.stat.st_size for _, s in todo if isinstance(s, LocalFile)]
                on_plan(sum(sizes) if len(sizes) == len(todo) else None, len(todo))
            cache = None if append else self._stat_cache(todo)
            try:
                commit = self._data.put_files(
                    parsed.repo,
                    parsed.commit,
                    todo,
                    append=append,
                    progress=progress,
                    description=description,
                    cache=cache,
                    bulk=self._bulk(len(todo)),
                )
            finally:
                if cache is not None:
                    cache.close()
        finally:
            for _, opened in todo:  # pipes named on the command line, opened by local_items
                if (
                    not isinstance(opened, str | os.PathLike | Content)
                    and opened is not sys.stdin.buffer
                ):
                    opened.close()
        if on_stored:
            on_stored()
        return self._after(commit)

    def _bulk(self, files: int) -> ProcessIngest | None:
        """Worker processes for a put of many local files, where they are safe and pay."""
        from cairn.data.ingest import ProcessIngest
        from cairn.data.ingest import usable as ingest_usable

        url = self._data.catalog.engine.url.render_as_string(hide_password=False)
        if not ingest_usable(self._data.chunks, url, files):
            return None
        return ProcessIngest(self._data.chunks, url)

    def _stat_cache(self, sources: list[tuple[str, Source]]) -> StatCache | None:
        """The home's stat cache, preloaded for the folders of local ``sources`` (so a put
        again of a folder reads no file whose stat is unchanged), or None for stdin."""
        folders = {
            os.path.dirname(os.path.abspath(src))
            for _, src in sources
            if isinstance(src, str | os.PathLike)
        }
        if not folders:
            return None
        cache = StatCache(self._home / "statcache.db")
        for folder in sorted(folders):
            if not any(folder.startswith(os.path.join(f, "")) for f in folders if f != folder):
                cache.preload(folder)
        return cache

    def get_local(
        self, ref: str, output: str | Path, *, progress: Callable[[int], None] | None = None
    ) -> list[Path]:
        """Write a file, or every file below a folder, from ``repo@commit:/path`` to the
        local ``output`` (a file name, or a folder for a folder). Returns the paths written.

        Each file is written to a temporary name beside it, then renamed into place: an
        existing file or link there is replaced, never written through. ``output`` and its
        parents are followed if they are links (the user named them); links inside a
        folder being written are not (cairn.data.localfiles). Raises NotFound,
        InvalidPath (a stored path with ``..``, or a link where a folder goes), OSError.
        Memory stays one chunk whatever the file sizes."""
        parsed = parse_ref(ref)
        base = parsed.path or ""
        entry = self._data.inspect_file(parsed)
        name = Path(output).name
        folder = OutputFolder(output if entry.type == "dir" else Path(output).parent)
        written = []
        files = self._data.walk_files(parsed)
        with folder:
            while batch := list(itertools.islice(files, 1000)):
                # One index query tells where the chunks of a thousand files are.
                self._data.chunks.prefetch(ref for _, file in batch for ref in file.content.chunks)
                for path, file in batch:
                    rel = path[len(base) :].lstrip("/") if entry.type == "dir" else name
                    pieces = self._data.chunks.read(file.content)
                    written.append(folder.write(rel, _counted(pieces, progress)))
        return written
