"""Local files on the way in (a put) and on the way out (a get), never through a link.

A put of a folder reads only regular files inside that folder. The walk lists
each folder through a descriptor opened relative to its parent with
``O_NOFOLLOW`` (so a folder swapped for a link during the walk is not entered)
and records each regular file's lstat. A symbolic link is stored as the
content of its target when the target is a regular file the same walk found
inside the folder (``latest.csv -> v3.csv``: chunks are shared, so the copy
costs nothing); a link that leaves the folder, a link to a folder (it could
loop), a broken link, a named pipe, a socket or a device is skipped and
reported (``Skipped``), never opened: opening a pipe blocks until something
writes to it. A file is later read only if the file opened at its path,
without following a final link, is still the file the walk saw (same device
and inode): a file replaced by a link, or read through a parent folder swapped
for a link after the walk, is refused (``NotRegularFile``), so no byte from
outside the folder reaches a commit.

A get writes each file to a temporary name in its folder and renames it over
the file's name: an existing file or link there is replaced, never written
through. Folders inside the output folder are created or entered relative to
their parent's descriptor without following links; a link where a folder is
needed is refused (InvalidPath). Stored paths are checked again (no ``..``),
so no stored path names anything outside the output folder.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cairn.data.errors import InvalidPath
from cairn.data.paths import normalize

__all__ = ["LocalFile", "OutputFolder", "SkipReason", "Skipped", "named_file", "walk_folder"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# What opening a folder with O_NOFOLLOW gives when the name is a link or not a folder.
_NOT_A_FOLDER = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class SkipReason(StrEnum):
    """Why a put of a folder left an entry out."""

    OUTSIDE = "link out of the folder"
    FOLDER_LINK = "link to a folder"
    BROKEN = "broken link"
    FIFO = "named pipe"
    SOCKET = "socket"
    DEVICE = "device"


@dataclass(frozen=True)
class Skipped:
    """A local entry a put left out: ``path`` as the walk reached it (the folder given
    joined with the entry's relative path) and why."""

    path: str
    reason: SkipReason


@dataclass(frozen=True)
class LocalFile:
    """A regular local file a put will read: its absolute ``path`` and the ``stat`` taken
    when it was found. A path-like object (``os.fspath`` gives ``path``); the put reads it
    only while the file at ``path`` is that same file (see the module doc)."""

    path: str
    stat: os.stat_result

    def __fspath__(self) -> str:
        return self.path

    @property
    def identity(self) -> tuple[int, int]:
        """(device, inode): what the file opened at read time must match."""
        return self.stat.st_dev, self.stat.st_ino


def _special(mode: int) -> SkipReason:
    if stat.S_ISFIFO(mode):
        return SkipReason.FIFO
    if stat.S_ISSOCK(mode):
        return SkipReason.SOCKET
    return SkipReason.DEVICE


def _scan(fd: int) -> list[os.DirEntry[str]]:
    with os.scandir(fd) as entries:  # scandir works on a duplicate; ``fd`` stays ours
        return list(entries)


def walk_folder(root: str | os.PathLike[str]) -> tuple[list[tuple[str, LocalFile]], list[Skipped]]:
    """The regular files below local folder ``root`` as (relative ``a/b`` path, LocalFile)
    sorted by path, and what was skipped (see the module doc), sorted by path.

    ``root`` itself is followed if it is a link (the user named it); nothing inside is.
    Open descriptors stay bounded by the folder depth. Raises OSError (NotADirectoryError
    when ``root`` is not a folder)."""
    given = os.fspath(root)
    base = os.path.abspath(given)
    real_base = os.path.realpath(base)
    files: dict[str, LocalFile] = {}
    links: list[str] = []
    skipped: list[Skipped] = []
    top = os.open(base, _DIR_FLAGS)
    stack: list[tuple[int, str, list[os.DirEntry[str]]]] = []
    try:
        stack.append((top, "", _scan(top)))
        while stack:
            fd, prefix, entries = stack[-1]
            if not entries:
                stack.pop()
                os.close(fd)
                continue
            entry = entries.pop()
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(entry.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in _NOT_A_FOLDER:
                        raise
                    links.append(rel)  # swapped for a link since the scan: judged as one
                    continue
                stack.append((child, rel + "/", []))
                stack[-1][2].extend(_scan(child))
            elif stat.S_ISREG(st.st_mode):
                files[rel] = LocalFile(os.path.join(base, rel), st)
            elif stat.S_ISLNK(st.st_mode):
                links.append(rel)
            else:
                skipped.append(Skipped(os.path.join(given, rel), _special(st.st_mode)))
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    for rel in links:
        found = _resolve_link(os.path.join(base, rel), real_base, files)
        if isinstance(found, LocalFile):
            files[rel] = found
        else:
            skipped.append(Skipped(os.path.join(given, rel), found))
    skipped.sort(key=lambda s: s.path)
    return sorted(files.items()), skipped


def _resolve_link(link: str, real_base: str, files: dict[str, LocalFile]) -> LocalFile | SkipReason:
    """The walked file a link inside the folder ends at, or why it is skipped. The target
    must be a file the walk itself found, so its identity was taken without links."""
    target = os.path.realpath(link)
    try:
        mode = os.lstat(target).st_mode
    except OSError:
        return SkipReason.BROKEN
    if target == real_base or os.path.commonpath([real_base, target]) != real_base:
        return SkipReason.OUTSIDE
    if stat.S_ISDIR(mode):
        return SkipReason.FOLDER_LINK
    if stat.S_ISLNK(mode):  # a loop: realpath stops at the link it met twice
        return SkipReason.BROKEN
    found = files.get(os.path.relpath(target, real_base).replace(os.sep, "/"))
    if found is not None:
        return found
    return SkipReason.BROKEN if stat.S_ISREG(mode) else _special(mode)


def named_file(path: str | os.PathLike[str]) -> LocalFile | None:
    """A file named on the command line, followed if it is a link (as ``cp`` does): the
    LocalFile of the regular file it ends at, or None when it is a pipe or a device (read
    it as a stream, as ``-f <(command)`` needs). Raises OSError (FileNotFoundError)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return None
    return LocalFile(os.path.realpath(path), st)


class OutputFolder:
    """Writes files below local folder ``root`` (created if missing, followed if it is a
    link: the user named it), as the module doc says. Use as a context manager."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_fd = os.open(self.root, _DIR_FLAGS)
        self._current: tuple[tuple[str, ...], int] | None = None

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._current is not None:
            os.close(self._current[1])
            self._current = None
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def write(self, rel: str, pieces: Iterable[bytes]) -> Path:
        """Write ``pieces`` to ``rel`` (an ``a/b`` path below the root), replacing what is
        there; return the local path. Raises InvalidPath (``..``, or a link or file where a
        folder is needed), OSError (a folder where the file goes, a full disk)."""
        parts = normalize(rel, allow_root=False).split("/")
        folder = self._folder(tuple(parts[:-1]))
        _replace(folder, parts[-1], pieces)
        return self.root.joinpath(*parts)

    def _folder(self, parts: tuple[str, ...]) -> int:
        if not parts:
            return self._root_fd
        if self._current is not None:
            if self._current[0] == parts:
                return self._current[1]
            os.close(self._current[1])
            self._current = None
        fd = self._root_fd
        try:
            for i, name in enumerate(parts):
                try:
                    os.mkdir(name, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    child = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in _NOT_A_FOLDER:
                        where = self.root.joinpath(*parts[: i + 1])
                        raise InvalidPath(
                            f"{os.fspath(where)!r} is a link or a file, not a folder; get does "
                            "not write through links inside the output folder"
                        ) from None
                    raise
                if fd != self._root_fd:
                    os.close(fd)
                fd = child
        except BaseException:
            if fd != self._root_fd:
                os.close(fd)
            raise
        self._current = (parts, fd)
        return fd


def _replace(folder: int, name: str, pieces: Iterable[bytes]) -> None:
    """Write a temporary file in ``folder`` (a descriptor) and rename it over ``name``:
    a link at ``name`` is replaced, not followed, and a failed write leaves ``name`` as it
    was."""
    tmp = f".cairn-get-{secrets.token_hex(8)}.tmp"  # short: ``name`` may be NAME_MAX long
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o666, dir_fd=folder)
    try:
        with open(fd, "wb") as f:
            for piece in pieces:
                f.write(piece)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=folder)
        except FileNotFoundError:
            pass
        raise
