"""Code bundles: a pipeline's spec folder (the folder its transform runs in) as one
tar.gz, so that a pipeline created through ``cairn server`` runs its transform unchanged
in a copy of the client's folder on the server. The one writer (``pack``, the remote
client) and the one reader (``unpack``, the server) of the format.

Format: a gzip'd POSIX (pax) tar of the folder's files, folders and links, in sorted
order, every time, owner and gzip header zeroed and modes reduced to 0644/0755 (the exec
bit kept): the same files give the same bytes, so the bundle's id (BLAKE3 of its bytes)
names its content, a bundle is uploaded and unpacked once however often it is used.

Left out while packing: ``.git``, ``.cairn`` (an embedded store), ``__pycache__``,
``.venv``, ``node_modules``, and anything neither a regular file, a folder nor a link; a
link is kept (as a relative link) only when it points inside the folder, never followed.

Limits, on both sides: ``MAX_BUNDLE_BYTES`` (64 MiB) of file bytes before compression and
of archive bytes, ``MAX_MEMBERS`` entries. ``unpack`` extracts with tarfile's ``"data"``
filter (no links out of the folder, no devices, no owners, no set-uid bits) and refuses
absolute names, ``..``, hard links and special files outright. Every violation is a ``BundleError``.

On the server, bundles live in ``<home>/code/<id>/``, each used by the pipelines whose
spec folder it is; ``collect`` (called by ``store.gc``) removes those no pipeline uses,
with the grace period of the other objects, and ``touch`` marks one as taken into use.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from cairn.pipelines.errors import PipelineError

__all__ = [
    "CODE_DIR",
    "EMPTY_BUNDLE",
    "MAX_BUNDLE_BYTES",
    "MAX_MEMBERS",
    "SKIPPED_NAMES",
    "BundleError",
    "Collected",
    "collect",
    "pack",
    "touch",
    "unpack",
]

MAX_BUNDLE_BYTES = 64 << 20
MAX_MEMBERS = 100_000
SKIPPED_NAMES = frozenset({".git", ".cairn", "__pycache__", ".venv", "node_modules"})


class BundleError(PipelineError):
    """A spec folder that cannot travel as a code bundle (over the limits), or a bundle
    the server refuses (malformed, unsafe names or links, over the limits)."""


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def pack(folder: str | Path, out: BinaryIO) -> int:
    """Write the bundle of ``folder`` to ``out``; returns the file bytes it holds. Raises
    BundleError (over MAX_BUNDLE_BYTES or MAX_MEMBERS; the message says what to do),
    OSError (the folder cannot be read)."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise BundleError(f"{folder}: not a folder; the spec folder must be one")
    total = members = 0

    def count(size: int) -> None:
        nonlocal total, members
        total += size
        members += 1
        if total > MAX_BUNDLE_BYTES or members > MAX_MEMBERS:
            raise BundleError(
                f"{root} holds over {MAX_BUNDLE_BYTES >> 20} MiB or {MAX_MEMBERS:,} files, "
                "the most a spec folder may send to a server: keep the transform's code in "
                "a folder of its own (pass spec_dir=, or move the spec file there)"
            )

    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for here, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_NAMES)
            base = Path(here)
            for name in [*dirs, *sorted(f for f in files if f not in SKIPPED_NAMES)]:
                path = base / name
                rel = path.relative_to(root).as_posix()
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    target = _inside(root, path)
                    if target is not None:
                        count(0)
                        tar.addfile(_info(rel, tarfile.SYMTYPE, 0o777, link=target))
                elif stat.S_ISDIR(st.st_mode):
                    count(0)
                    tar.addfile(_info(rel, tarfile.DIRTYPE, 0o755))
                elif stat.S_ISREG(st.st_mode):
                    count(st.st_size)
                    mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
                    with open(path, "rb") as f:
                        tar.addfile(_info(rel, tarfile.REGTYPE, mode, st.st_size), f)
    return total


def _inside(root: Path, link: Path) -> str | None:
    """The relative target of ``link`` when it resolves inside ``root``, else None."""
    try:
        resolved = link.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling or a loop
        return None
    if not resolved.is_relative_to(root):
        return None
    return os.path.relpath(resolved, link.parent)


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    """What the "data" filter allows, by hand: folders, regular files (mode 0644, or 0755
    when executable; no owner from the archive) and links that stay inside ``dest``."""
    root = dest.resolve()
    for m in members:
        target = dest / m.name
        if m.isdir():
            target.mkdir(mode=0o755, parents=True, exist_ok=True)
            continue
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if m.issym():
            if os.path.isabs(m.linkname):
                raise BundleError(f"{m.name}: a link out of the code bundle")
            if not (target.parent / m.linkname).resolve().is_relative_to(root):
                raise BundleError(f"{m.name}: a link out of the code bundle")
            os.symlink(m.linkname, target)
            continue
        source = tar.extractfile(m)
        assert source is not None  # a regular file
        with source, open(target, "xb") as out:
            shutil.copyfileobj(source, out)
        target.chmod(0o755 if m.mode & 0o111 else 0o644)


def unpack(archive: BinaryIO, dest: str | Path) -> None:
    """Extract the bundle ``archive`` (a readable, seekable binary file) into the empty
    folder ``dest``. Raises BundleError for a malformed or unsafe bundle (``dest`` may then
    hold part of it: extract into a temporary folder)."""
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            total = 0
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise BundleError(f"a code bundle holds at most {MAX_MEMBERS:,} entries")
            for m in members:
                if m.name.startswith("/") or ".." in PurePosixPath(m.name).parts:
                    raise BundleError(f"{m.name}: a code bundle names paths inside it")
                if not (m.isreg() or m.isdir() or m.issym()):
                    raise BundleError(f"{m.name}: a code bundle holds files, folders, links")
                total += m.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(
                        f"a code bundle holds at most {MAX_BUNDLE_BYTES >> 20} MiB of files"
                    )
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # Python before 3.11.4: no extraction filters
                _extract(tar, members, Path(dest))
    except getattr(tarfile, "FilterError", BundleError) as exc:
        raise BundleError(f"unsafe code bundle: {exc}") from None
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BundleError(f"not a code bundle (tar.gz): {exc}") from None


# -- bundles on the server ------------------------------------------------------------------
CODE_DIR = "code"
"""The folder of a store (``<home>/code/<id>/``) where cairn server unpacks bundles."""
EMPTY_BUNDLE = "empty"
"""The (empty) folder of pipelines created through a server without a bundle."""
_SCRATCH = (".unpack-", ".incoming-", ".trash-")  # what a server or gc leaves if it dies


def touch(folder: Path) -> None:
    """Mark the bundle at ``folder`` as in use now, so that a collection (``collect``)
    started before it spares it. Raises BundleError when it is not there (collected)."""
    try:
        os.utime(folder)
    except FileNotFoundError:
        raise BundleError(
            f"code bundle {folder.name} is not on the server; send it first"
        ) from None


@dataclass
class Collected:
    """What ``collect`` removed (or would): bundles, their bytes; and the unused bundles
    it kept because they were modified after the cutoff."""

    objects: int = 0
    bytes: int = 0
    kept_young: int = 0


def collect(root: Path, used: Iterable[str | Path], cutoff: float, *, dry_run: bool) -> Collected:
    """Remove the bundles under ``root`` (``<home>/code``) that no folder of ``used`` (the
    stored pipelines' spec folders) is, modified before ``cutoff`` (UTC seconds), and
    what an interrupted upload or collection left there as old. A bundle being taken into
    use meanwhile is spared: it is moved aside first and looked at again (``touch``
    updates its time; a touch after the move fails, so no pipeline gets a removed
    folder). Raises OSError."""
    found = Collected()
    if not root.is_dir():
        return found
    keep = {Path(p).resolve() for p in used}
    for entry in sorted(root.iterdir()):
        scratch = entry.name.startswith(_SCRATCH)
        if entry.name == EMPTY_BUNDLE or (not scratch and entry.resolve() in keep):
            continue
        try:
            if entry.lstat().st_mtime >= cutoff:
                found.kept_young += not scratch
                continue
            size = _size(entry)
            if not dry_run:
                doomed = entry
                if not scratch:
                    doomed = root / f".trash-{entry.name}"
                    os.rename(entry, doomed)
                    if doomed.lstat().st_mtime >= cutoff:  # touched just before the move
                        os.rename(doomed, entry)
                        found.kept_young += 1
                        continue
                if doomed.is_dir() and not doomed.is_symlink():
                    shutil.rmtree(doomed)
                else:
                    doomed.unlink()
        except FileNotFoundError:  # another collection took it
            continue
        found.objects += 1
        found.bytes += size
    return found


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    return sum(
        (Path(folder) / name).lstat().st_size
        for folder, _, names in os.walk(path)
        for name in names
    )
