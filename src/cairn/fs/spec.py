"""``CairnFileSystem``: fsspec's AbstractFileSystem over a cairn client (see the package
doc for paths, caching and commits)."""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
from fsspec.transaction import Transaction

from cairn.data.errors import NotFound, ReadOnlyRef
from cairn.fs.blocks import BlockCache

if TYPE_CHECKING:
    from cairn.api.protocol import ClientProtocol

__all__ = ["CairnFileSystem", "ReadOnlyRef"]

_DEFAULT = "master"
_GLOB_MAGIC = re.compile(r"[*?\[{]")


@dataclass(frozen=True)
class _Loc:
    """A path split: ``repo``, ``at`` (the text after ``@``; None: master) and ``path``
    (no leading slash; "" is the root of the commit)."""

    repo: str
    at: str | None
    path: str

    @property
    def prefix(self) -> str:
        return self.repo if self.at is None else f"{self.repo}@{self.at}"

    @property
    def ref(self) -> str:
        return f"{self.prefix}:/{self.path}"

    def name(self, path: str) -> str:
        """The fsspec name of stored ``path`` (``/a/b`` or ``a/b``) under this prefix."""
        path = path.strip("/")
        return f"{self.prefix}/{path}" if path else self.prefix


@dataclass
class _Ops:
    """The writes a transaction holds for one branch, in call order."""

    puts: dict[str, str]  # target path -> the local temporary file holding its bytes
    copies: dict[str, str]  # target path -> source ref
    deletes: list[str]


class CairnTransaction(Transaction):
    """``with fs.transaction:``: every write, copy and delete of the block, one commit per
    branch when it ends without an exception; nothing at all otherwise."""

    def __init__(self, fs: CairnFileSystem, **kwargs: Any) -> None:
        super().__init__(fs, **kwargs)
        self.ops: dict[tuple[str, str], _Ops] = {}

    def start(self) -> None:
        super().start()
        self.ops = {}

    def complete(self, commit: bool = True) -> None:
        fs = self.fs
        try:
            while self.files:  # files still open when the block ends are written as they are
                f = self.files.popleft()
                if not f.closed:
                    f.close()
            if commit:
                for (repo, branch), ops in self.ops.items():
                    fs._apply(repo, branch, ops)
        finally:
            for ops in self.ops.values():
                for local in ops.puts.values():
                    _unlink(local)
            self.ops = {}
            super().complete(commit)

    def record(self, repo: str, branch: str) -> _Ops:
        return self.ops.setdefault((repo, branch), _Ops({}, {}, []))


class CairnFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Repos, branches and commits of a cairn store as an fsspec filesystem.

    ``url``, ``home``, ``token``: as ``cairn.connect`` takes them (none: ``CAIRN_URL``,
    ``CAIRN_HOME``, the saved context, the store found from the current folder, as the
    CLI picks); or an existing ``client``. ``block_size``: bytes per cached block and per
    read of an open file (default 2 MiB); ``cache_size``: bytes of blocks kept (default
    64 MiB, 0: none).

    Errors: FileNotFoundError (no such repo, branch, commit or path), IsADirectoryError
    (reading a folder), ReadOnlyRef (a PermissionError: writing to a commit id or an
    ancestor), FileExistsError (mode ``"xb"`` on an existing file); other cairn errors
    (InvalidReference, CommitStateError, ...) as they are.
    """

    protocol = "cairn"
    root_marker = ""
    transaction_type = CairnTransaction

    def __init__(
        self,
        url: str | None = None,
        *,
        home: str | None = None,
        token: str | None = None,
        client: ClientProtocol | None = None,
        block_size: int = 2 << 20,
        cache_size: int = 64 << 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if client is None:
            from cairn.client import connect  # the embedded store's layers load only here

            client = connect(url, home=home, token=token)
        self.client: ClientProtocol = client
        self.blocksize = block_size
        self.blocks = BlockCache(cache_size)

    # -- paths --------------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        if text.startswith("cairn://"):
            text = text[len("cairn://") :]
        elif text.startswith("cairn::"):
            text = text[len("cairn::") :]
        return text.strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    def _split(self, path: str) -> _Loc:
        text = self._strip_protocol(path)
        first, _, rest = text.partition("/")
        repo, at_sign, at = first.partition("@")
        return _Loc(repo, at if at_sign else None, rest.strip("/"))

    def _parent(self, path: str) -> str:
        loc = self._split(path)
        if not loc.path:
            return ""
        return loc.name(loc.path.rpartition("/")[0])

    # -- reads --------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The children of a folder (the file itself for a file; the repos for "")."""
        loc = self._split(path)
        if not loc.repo:
            out = [
                {"name": r.name, "size": r.size, "type": "directory"}
                for r in self.client.repos.list()
            ]
        else:
            with _errors(path):
                out = [self._entry(loc, f) for f in self.client.files.list(loc.ref)]
        return out if detail else [o["name"] for o in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """``name``, ``size`` (bytes), ``type`` (file or directory), ``hash`` (BLAKE3 of
        the content, for a folder of its tree), ``commit`` (the id it was read at),
        ``chunks``. Raises FileNotFoundError."""
        loc = self._split(path)
        if not loc.repo:
            return {"name": "", "size": 0, "type": "directory"}
        with _errors(path):
            return self._entry(loc, self.client.files.get(loc.ref))

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """As fsspec's ``find``; below a repo, one ``files.glob`` call instead of an
        ``ls`` per folder."""
        loc = self._split(path)
        if maxdepth is not None or not loc.repo or _GLOB_MAGIC.search(loc.path):
            return super().find(path, maxdepth, withdirs, detail, **kwargs)
        try:
            top = self.info(path)
        except FileNotFoundError:
            return {} if detail else []
        out: dict[str, dict[str, Any]] = {}
        if top["type"] == "file":
            out[top["name"]] = top
        else:
            if withdirs and loc.path:
                out[top["name"]] = top
            pattern = f"/{loc.path}/**" if loc.path else "/**"
            root = _Loc(loc.repo, loc.at, "")
            with _errors(path):
                found = self.client.files.glob(root.ref, pattern)
            for f in found:
                entry = self._entry(loc, f)
                if entry["type"] == "file" or withdirs:
                    out[entry["name"]] = entry
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def modified(self, path: str) -> datetime:
        """When the commit the path is read at was made (UTC): a version's time, not the
        time its bytes were first written. Raises FileNotFoundError."""
        loc = self._split(path)
        info = self.info(path)
        with _errors(path):
            commit = self.client.commits.get(f"{loc.repo}@{info['commit']}")
        return datetime.fromtimestamp(commit.finished or commit.created, UTC)

    created = modified

    def ukey(self, path: str) -> str:
        """The content hash: equal for equal bytes, whatever the path or commit."""
        return str(self.info(path)["hash"])

    def checksum(self, path: str) -> int:
        return int(self.ukey(path)[:16], 16)

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Bytes ``start`` to ``end`` of a file (negative: from its end), fetching only
        the blocks not cached. Raises FileNotFoundError, IsADirectoryError."""
        info = self._file(path)
        size = info["size"]
        lo = 0 if start is None else (max(size + start, 0) if start < 0 else start)
        hi = size if end is None else (max(size + end, 0) if end < 0 else min(end, size))
        return self._read(info, lo, hi)

    def _file(self, path: str) -> dict[str, Any]:
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, "a folder, not a file", path)
        return info

    def _read(self, info: dict[str, Any], start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` of the file ``info`` describes (pinned at its commit)."""
        end = min(end, info["size"])
        if start >= end:
            return b""
        ref = info["ref"]
        size = self.blocksize
        first, last = start // size, (end - 1) // size
        if (last - first + 1) * size > self.blocks.capacity:
            with _errors(info["name"]):
                return self.client.files.read_range(ref, start, end)
        digest = info["hash"]
        blocks: dict[int, bytes] = {}
        missing: list[int] = []
        for i in range(first, last + 1):
            block = self.blocks.get((digest, i))
            if block is None:
                missing.append(i)
            else:
                blocks[i] = block
        for run_start, run_end in _runs(missing):
            with _errors(info["name"]):
                data = self.client.files.read_range(ref, run_start * size, (run_end + 1) * size)
            for i in range(run_start, run_end + 1):
                block = data[(i - run_start) * size : (i - run_start + 1) * size]
                blocks[i] = block
                self.blocks.put((digest, i), block)
        joined = b"".join(blocks[i] for i in range(first, last + 1))
        return joined[start - first * size : end - first * size]

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> CairnFile:
        if mode == "rb":
            info = self._file(path)
            return CairnFile(
                self,
                path,
                mode,
                block_size=block_size or self.blocksize,
                # The filesystem's block cache holds what was read; fsspec's per-file
                # readahead would fetch a further block past every read.
                cache_type=kwargs.get("cache_type", "none"),
                cache_options=cache_options,
                size=info["size"],
                details=info,
            )
        loc = self._split(path)
        branch = self._branch(loc)
        if not loc.path:
            raise IsADirectoryError(errno.EISDIR, "name a file below the commit", path)
        if mode == "xb" and self.exists(path):
            raise FileExistsError(errno.EEXIST, "the file exists", path)
        return CairnFile(
            self,
            path,
            mode,
            block_size=block_size or self.blocksize,
            autocommit=autocommit,
            target=(loc.repo, branch, loc.path),
        )

    # -- writes -------------------------------------------------------------------------
    def _branch(self, loc: _Loc) -> str:
        """The branch ``loc`` writes to. Raises ReadOnlyRef for a commit id or an ancestor."""
        at = loc.at or _DEFAULT
        if any(c in at for c in "^~"):
            raise ReadOnlyRef(f"{loc.prefix}: an ancestor never changes; write to a branch")
        try:
            self.client.branches.get(f"{loc.repo}@{at}")
            return at
        except NotFound:
            pass
        try:
            commit = self.client.commits.get(f"{loc.repo}@{at}")
        except NotFound:
            return at  # neither a branch nor a commit: the write makes the branch
        raise ReadOnlyRef(
            f"{loc.prefix}: commit {commit.id} never changes; write to a branch "
            f"(cairn://{loc.repo}@BRANCH/...)"
        )

    def _write(self, repo: str, branch: str, path: str, local: str, append: bool) -> None:
        """One closed file, its bytes in temporary file ``local``: one commit, or held by
        the open transaction."""
        if self._intrans and not append:
            ops = self.transaction.record(repo, branch)
            if path in ops.puts:
                _unlink(ops.puts[path])
            ops.puts[path] = local
            return
        try:
            with _errors(f"{repo}@{branch}/{path}"), open(local, "rb") as body:
                self.client.files.put(f"{repo}@{branch}:/{path}", body, append=append)
        finally:
            _unlink(local)

    def _apply(self, repo: str, branch: str, ops: _Ops) -> None:
        """One commit on ``repo@branch`` with the transaction's deletes, copies and puts
        (in that order, so a file deleted and then written again is written). Deletes
        with writes or copies go into an open commit (start, add, finish): should a call
        fail between start and finish, that commit stays open and unseen, and the branch
        takes no other write until it is finished (``cairn finish commit``)."""
        deletes = _outermost(ops.deletes)
        if not ops.copies and not (deletes and ops.puts):  # one call makes the commit
            if deletes:
                self.client.files.delete(*(f"{repo}@{branch}:/{p}" for p in deletes))
            elif ops.puts:
                self.client.files.put(f"{repo}@{branch}:/", _held(ops.puts))
            return
        # Several kinds of change in one commit: open it, add each, finish it.
        commit = self.client.commits.start(f"{repo}@{branch}").id
        at = f"{repo}@{commit}"
        if deletes:
            self.client.files.delete(*(f"{at}:/{p}" for p in deletes))
        for target, source in ops.copies.items():
            self.client.files.copy(source, f"{at}:/{target}")
        if ops.puts:
            self.client.files.put(f"{at}:/", _held(ops.puts))
        self.client.commits.finish(at)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete files (folders with ``recursive``) in one commit per branch, or in the
        open transaction's. Raises FileNotFoundError, IsADirectoryError (a folder without
        ``recursive``), ReadOnlyRef."""
        named = path if isinstance(path, list) else [path]
        if not recursive:
            for p in named:
                if not _GLOB_MAGIC.search(str(p)) and self.isdir(p):
                    raise IsADirectoryError(errno.EISDIR, "a folder: pass recursive=True", p)
        expanded = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        grouped: dict[tuple[str, str], list[str]] = {}
        for p in expanded:
            loc = self._split(p)
            if not loc.path:
                raise IsADirectoryError(errno.EISDIR, "cannot delete a commit's root", p)
            grouped.setdefault((loc.repo, self._branch(loc)), []).append(loc.path)
        for (repo, branch), paths in grouped.items():
            if self._intrans:
                ops = self.transaction.record(repo, branch)
                for p in paths:
                    for put in [q for q in ops.puts if q == p or q.startswith(p + "/")]:
                        _unlink(ops.puts.pop(put))
                    ops.deletes.append(p)
                continue
            refs = [f"{repo}@{branch}:/{p}" for p in _outermost(paths)]
            with _errors(path):
                self.client.files.delete(*refs)

    def rm_file(self, path: str) -> None:
        self.rm(path)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy a file (or folder) without copying bytes: one commit, or the transaction's."""
        src = self._split(path1)
        dst = self._split(path2)
        branch = self._branch(dst)
        with _errors(path1):
            pinned = self.info(path1)
        source = f"{src.repo}@{pinned['commit']}:/{src.path}"
        if self._intrans:
            self.transaction.record(dst.repo, branch).copies[dst.path] = source
            return
        with _errors(path2):
            self.client.files.copy(source, f"{dst.repo}@{branch}:/{dst.path}")

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        """As fsspec's ``copy``, every file copied in one commit per branch."""
        return self._batched(super().copy, *args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        """As fsspec's ``put``, every local file in one commit per branch."""
        return self._batched(super().put, *args, **kwargs)

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        """As fsspec's ``pipe``; a mapping of paths to bytes is one commit per branch."""
        return self._batched(super().pipe, *args, **kwargs)

    def mv(self, *args: Any, **kwargs: Any) -> Any:
        """As fsspec's ``mv`` (a copy, then a delete), in one commit per branch."""
        return self._batched(super().mv, *args, **kwargs)

    def _batched(self, op: Any, *args: Any, **kwargs: Any) -> Any:
        # A bulk call of fsspec's makes one write per file; one transaction gathers them.
        if self._intrans:
            return op(*args, **kwargs)
        with self.transaction:
            return op(*args, **kwargs)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing: a folder exists while it holds a file, as in object stores."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing (see ``mkdir``)."""

    def rmdir(self, path: str) -> None:
        """Nothing: an empty folder does not exist."""

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _entry(loc: _Loc, f: Any) -> dict[str, Any]:
        return {
            "name": loc.name(f.path),
            "size": f.size,
            "type": "file" if f.type == "file" else "directory",
            "hash": f.hash,
            "commit": f.commit,
            "chunks": f.chunks,
            "ref": f"{f.repo}@{f.commit}:/{f.path.strip('/')}",
        }


class CairnFile(AbstractBufferedFile):  # type: ignore[misc]
    """A file of ``CairnFileSystem``: reads fetch blocks of the commit pinned at open;
    writes go to a local temporary file and commit on close."""

    def __init__(
        self,
        fs: CairnFileSystem,
        path: str,
        mode: str,
        *,
        details: dict[str, Any] | None = None,
        target: tuple[str, str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fs, path, mode, **kwargs)
        if details is not None:
            self._details = details
        self._target = target
        self._local: IO[bytes] | None = None

    def _fetch_range(self, start: int, end: int) -> bytes:
        return bytes(self.fs._read(self.details, start, end))

    def _initiate_upload(self) -> None:
        self._local = tempfile.NamedTemporaryFile(prefix="cairn-fs-", delete=False)

    def _upload_chunk(self, final: bool = False) -> bool:
        assert self._local is not None
        self.buffer.seek(0)
        shutil.copyfileobj(self.buffer, self._local)
        if final:
            self._local.close()
            assert self._target is not None
            repo, branch, path = self._target
            local, self._local = self._local.name, None
            self.fs._write(repo, branch, path, local, append=self.mode == "ab")
        return True

    def commit(self) -> None:
        """Written on close already (into the transaction when one is open)."""

    def discard(self) -> None:
        if self._local is not None:
            self._local.close()
            _unlink(self._local.name)
            self._local = None


class _Held(io.RawIOBase):
    """A written file held on local disk until its commit: opened when first read and
    closed at its end, so a transaction of many files holds no descriptor open (the face
    reads the sources of one put in turn)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._file: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._file is None:
            self._file = open(self._path, "rb")  # noqa: SIM115 (closed at its end)
        if self._file.closed:  # read to its end already
            return 0
        n = self._file.readinto(buffer)
        if not n:
            self._file.close()
        return n

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


def _held(puts: dict[str, str]) -> dict[str, IO[bytes]]:
    return {path: io.BufferedReader(_Held(local), 1 << 20) for path, local in puts.items()}


def _unlink(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _runs(indexes: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive ``indexes`` as (first, last) pairs."""
    start = prev = None
    for i in indexes:
        if start is None:
            start = prev = i
        elif i == prev + 1:  # type: ignore[operator]
            prev = i
        else:
            yield start, prev  # type: ignore[misc]
            start = prev = i
    if start is not None:
        yield start, prev  # type: ignore[misc]


def _outermost(paths: list[str]) -> list[str]:
    """``paths`` without those inside another one of them, each once, in order."""
    keep: list[str] = []
    for p in sorted(set(paths), key=len):
        if not any(p == k or p.startswith(k + "/") for k in keep):
            keep.append(p)
    return [p for p in dict.fromkeys(paths) if p in keep]


@contextmanager
def _errors(path: Any) -> Iterator[None]:
    """cairn's NotFound as FileNotFoundError, which fsspec callers (pandas, pyarrow,
    DuckDB) handle."""
    try:
        yield
    except NotFound as exc:
        raise FileNotFoundError(errno.ENOENT, str(exc), str(path)) from exc
