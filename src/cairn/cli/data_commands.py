"""Commands on repos, branches, commits and files (pachctl's verbs)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cairn.cli.output import (
    Raw,
    byte_progress,
    client,
    embedded,
    err,
    fail_on_jobs,
    fmt_size,
    fmt_time,
    groups,
    job_line,
    out,
    print_json,
    print_pairs,
    print_table,
    printable,
    waits,
)
from cairn.data import InvalidPath, Skipped, parse_ref, to_json


# -- repos ---------------------------------------------------------------------------------
@groups["create"].command("repo")
def create_repo(
    name: str, description: Annotated[str, typer.Option("-d", "--description")] = ""
) -> None:
    """Create a new, empty repo."""
    client().repos.create(name, description)


@groups["list"].command("repo")
def list_repo(
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help="As pachctl's --all (system repos too): cairn keeps no hidden system repos, "
            "so every repo is listed either way.",
        ),
    ] = False,
    raw: Raw = False,
) -> None:
    """List every repo."""
    repos = client().repos.list()
    if raw:
        return print_json(to_json(repos))
    print_table(
        ["NAME", "TYPE", "CREATED", "SIZE (MASTER)", "DESCRIPTION"],
        [[r.name, r.type, fmt_time(r.created), fmt_size(r.size), r.description] for r in repos],
    )


@groups["inspect"].command("repo")
def inspect_repo(name: str, raw: Raw = False) -> None:
    """Show a repo's type, branches and size."""
    r = client().repos.get(name)
    if raw:
        return print_json(to_json(r))
    print_pairs(
        {
            "Name": r.name,
            "Type": r.type,
            "Description": r.description,
            "Created": fmt_time(r.created),
            "Size of HEAD on master": fmt_size(r.size),
            "Branches": ", ".join(r.branches) or "-",
        }
    )


@groups["delete"].command("repo")
def delete_repo(name: str, force: Annotated[bool, typer.Option("--force", "-f")] = False) -> None:
    """Delete a repo (refused while a pipeline reads it, unless --force)."""
    client().repos.delete(name, force=force)


# -- branches ------------------------------------------------------------------------------
def _branch(ref: str) -> str:
    """``repo@branch``; ``repo`` alone names master, as pachctl's branch commands take it."""
    return ref if "@" in ref else f"{ref}@master"


@groups["create"].command("branch")
def create_branch(
    ref: Annotated[str, typer.Argument(help="repo@branch")],
    head: Annotated[str | None, typer.Option("--head", help="commit or branch^N")] = None,
) -> None:
    """Create a branch, or move it to --head."""
    parsed = parse_ref(ref)
    if not parsed.commit:
        raise InvalidPath("name the branch: repo@branch")
    recording = _transaction()
    if recording is not None:
        return _recorded(recording.create_branch(parsed.repo, parsed.commit, head))
    client().branches.create(ref, head)


@groups["list"].command("branch")
def list_branch(repo: str, raw: Raw = False) -> None:
    """List a repo's branches."""
    found = client().branches.list(repo)
    if raw:
        return print_json(to_json(found))
    print_table(["BRANCH", "HEAD"], [[b.name, b.head or "-"] for b in found])


@groups["inspect"].command("branch")
def inspect_branch(
    ref: Annotated[str, typer.Argument(help="repo@branch")], raw: Raw = False
) -> None:
    """Show a branch's head."""
    b = client().branches.get(_branch(ref))
    if raw:
        return print_json(to_json(b))
    print_pairs(
        {"Name": f"{b.repo}@{b.name}", "Head": b.head or "-", "Created": fmt_time(b.created)}
    )


@groups["delete"].command("branch")
def delete_branch(ref: Annotated[str, typer.Argument(help="repo@branch")]) -> None:
    """Delete a branch name (its commits stay reachable by id)."""
    recording = _transaction()
    if recording is not None:
        parsed = parse_ref(_branch(ref))
        return _recorded(recording.delete_branch(parsed.repo, parsed.commit or "master"))
    client().branches.delete(_branch(ref))


# -- commits -------------------------------------------------------------------------------
@groups["start"].command("commit")
def start_commit(
    ref: Annotated[str, typer.Argument(help="repo@branch")],
    message: Annotated[str, typer.Option("-m", "--message")] = "",
) -> None:
    """Open a commit; later puts go into it until `finish commit`. Prints its id."""
    print(client().commits.start(ref, message).id)


@groups["finish"].command("commit")
def finish_commit(ref: Annotated[str, typer.Argument(help="repo@branch or repo@id")]) -> None:
    """Finish an open commit; pipelines that read it run."""
    recording = _transaction()
    if recording is not None:
        parsed = parse_ref(ref)
        return _recorded(recording.finish_commit(parsed.repo, parsed.commit or None))
    client().commits.finish(ref)


# -- transactions (cairn.pipelines.transactions; an embedded store's) ----------------------
_WHY_TX = "transactions are kept by an embedded store; run these commands where it is"


def _transaction() -> Any:
    """The store's Transactions while one is open (embedded stores only), else None."""
    from cairn.client import Client

    found = client()
    if not isinstance(found, Client) or found.transactions.active() is None:
        return None
    return found.transactions


def _recorded(request: Any) -> None:
    err.print(f"added to the transaction: {printable(request.describe())}", soft_wrap=True)


@groups["start"].command("transaction")
def start_transaction() -> None:
    """Open a transaction: create/delete branch and finish commit wait for its finish.
    Prints its id."""
    print(embedded("start transaction", _WHY_TX).transactions.start().id)


@groups["finish"].command("transaction")
def finish_transaction(
    tid: Annotated[str | None, typer.Argument(help="id (default: the open one)")] = None,
) -> None:
    """Make a transaction's changes at once; pipelines then see them together."""
    info = embedded("finish transaction", _WHY_TX).finish_transaction(tid)
    err.print(f"transaction {info.id}: {len(info.requests)} change(s) made")


@groups["delete"].command("transaction")
def delete_transaction(
    tid: Annotated[str | None, typer.Argument(help="id (default: the open one)")] = None,
) -> None:
    """Drop a transaction and the changes it recorded."""
    embedded("delete transaction", _WHY_TX).transactions.delete(tid)


@groups["list"].command("transaction")
def list_transaction(raw: Raw = False) -> None:
    """List transactions: id, state, and the changes each recorded."""
    found = embedded("list transaction", _WHY_TX).transactions.list()
    if raw:
        return print_json(to_json(found))
    rows = [
        [t.id, t.state, fmt_time(t.created), "; ".join(r.describe() for r in t.requests) or "-"]
        for t in found
    ]
    print_table(["TRANSACTION", "STATE", "CREATED", "CHANGES"], rows)


def _commit_rows(commits: list) -> list[list[Any]]:
    return [
        [
            f"{c.repo}@{c.id}",
            c.branch or "-",
            c.origin,
            c.state,
            fmt_time(c.created),
            fmt_size(c.size),
            c.description,
        ]
        for c in commits
    ]


@groups["list"].command("commit")
def list_commit(
    ref: Annotated[str, typer.Argument(help="repo or repo@branch")],
    number: Annotated[int, typer.Option("-n", "--number")] = 0,
    all_: Annotated[
        bool, typer.Option("--all", help="Every commit of the repo, on any branch or none.")
    ] = False,
    raw: Raw = False,
) -> None:
    """List commits, newest first (a branch's history when a branch is named)."""
    found = client().commits.list(ref.partition("@")[0] if all_ else ref, limit=number)
    if raw:
        return print_json(to_json(found))
    print_table(
        ["COMMIT", "BRANCH", "ORIGIN", "STATE", "STARTED", "SIZE", "DESCRIPTION"],
        _commit_rows(found),
    )


@groups["inspect"].command("commit")
def inspect_commit(
    ref: Annotated[str, typer.Argument(help="repo@branch^N or repo@id")], raw: Raw = False
) -> None:
    """Show a commit with its provenance."""
    c = client().commits.get(ref)
    if raw:
        return print_json(to_json(c))
    print_pairs(
        {
            "Commit": f"{c.repo}@{c.id}",
            "Branch": c.branch or "-",
            "Parent": c.parent or "-",
            "Origin": c.origin,
            "State": c.state,
            "Started": fmt_time(c.created),
            "Finished": fmt_time(c.finished),
            "Size": fmt_size(c.size),
            "Description": c.description or "-",
            "Provenance": ", ".join(f"{p.name}={p.repo}@{p.commit}" for p in c.provenance) or "-",
        }
    )
    if c.info:
        out.print("Info:")
        out.print(json.dumps(c.info, indent=2, sort_keys=True))


@groups["wait"].command("commit")
def wait_commit(ref: str, timeout: Annotated[float | None, typer.Option()] = None) -> None:
    """Block until a commit is finished and the jobs it starts downstream are done; exit 1
    naming a job that did not succeed."""
    c = client().commits.wait(ref, timeout)
    jobs = client().commits.wait_jobs(f"{c.repo}@{c.id}", timeout)
    for job in jobs:
        err.print(job_line(job))
    print(f"{c.repo}@{c.id}")
    fail_on_jobs(jobs)


# -- files ---------------------------------------------------------------------------------
_PIECE = 1 << 20  # bytes copied to stdout at a time
_SKIPS_SHOWN = 5  # skipped entries named on stderr; --raw lists them all


def _report_skipped(skipped: list[Skipped]) -> None:
    err.print(
        f"put: skipped {len(skipped)} of the folder's entries (links out of it or to "
        "folders, broken links, pipes, sockets, devices):"
    )
    for s in skipped[:_SKIPS_SHOWN]:
        err.print(f"  {printable(s.path)}  ({s.reason})")
    if len(skipped) > _SKIPS_SHOWN:
        err.print(f"  ... and {len(skipped) - _SKIPS_SHOWN} more (--raw lists them all)")


@groups["put"].command("file")
def put_file(
    ref: Annotated[str, typer.Argument(help="repo@branch:/path")],
    file: Annotated[
        list[str] | None,
        typer.Option("-f", "--file", help="local file, folder, http(s) URL, or -"),
    ] = None,
    recursive: Annotated[bool, typer.Option("-r", "--recursive")] = False,
    input_file: Annotated[
        str | None,
        typer.Option(
            "-i", "--input-file", help="A file listing sources (paths or URLs), one per line."
        ),
    ] = None,
    untar: Annotated[
        bool, typer.Option("--untar", help="Each source is a tar archive: put what it holds.")
    ] = False,
    full_path: Annotated[
        bool,
        typer.Option("--full-path", help="Keep each source's whole path below the target."),
    ] = False,
    compress: Annotated[
        bool,
        typer.Option("-c", "--compress", help="As pachctl's; cairn compresses every chunk."),
    ] = False,
    parallelism: Annotated[
        int,
        typer.Option("-p", "--parallelism", help="As pachctl's; cairn's put sizes its own pool."),
    ] = 0,
    append: Annotated[bool, typer.Option("-a", "--append")] = False,
    message: Annotated[str, typer.Option("-m", "--message")] = "",
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="Mirror: also delete the files below the path that the folder(s) no "
            "longer hold (as rsync --delete); needs -r and folders.",
        ),
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Do not run or wait for the jobs this triggers (as CAIRN_AUTO_RUN=0); "
            "exit 0 whatever they do.",
        ),
    ] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="Print the commit and the skipped entries as JSON.")
    ] = False,
) -> None:
    """Put files into a commit (overwrite by default, -a to append).

    With an open commit on the branch the files join it; otherwise they make one new commit.
    A folder put again merges: files it no longer holds stay, unless --delete. A folder's
    links, pipes, sockets and devices are not read: a link to a file inside the folder is
    stored as that file's content, the rest are skipped and named on stderr. A link named
    with -f is followed. The pipelines a new commit triggers run before the command ends;
    it exits 1 naming a job that failed (--no-wait: it does not wait for them).
    """
    skipped: list[Skipped] = []
    client(wait=not no_wait)
    sources = list(file or []) + (_listed_sources(input_file) if input_file else [])
    if not sources:
        raise typer.BadParameter("name what to put: -f SOURCE (or -i FILE listing sources)")
    with _staged(sources, untar=untar, full_path=full_path) as staged:
        if staged is not None:
            sources, recursive = [staged], True
        _put(ref, sources, recursive, append, message, delete, raw, skipped)


def _listed_sources(listing: str) -> list[str]:
    """The sources named in ``listing`` (pachctl's ``-i``): one per line, ``-`` for stdin;
    blank lines and lines starting with ``#`` are left out."""
    text = sys.stdin.read() if listing == "-" else Path(listing).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


@contextmanager
def _staged(sources: list[str], *, untar: bool, full_path: bool) -> Iterator[str | None]:
    """A temporary folder laid out as the put should store ``sources``, or None when they
    go as they are: URLs are fetched into it, archives (``untar``) extracted with the
    tarfile ``data`` filter (no absolute paths, ``..``, devices or links out), and with
    ``full_path`` each local source copied below its own whole path. Raises InvalidPath
    for a full path with ``..``, typer.BadParameter for an archive that is not a tar."""
    fetch = [s for s in sources if s.startswith(("http://", "https://", "file://"))]
    if not (untar or full_path or fetch):
        yield None
        return
    import tarfile
    import tempfile
    import urllib.parse
    import urllib.request

    with tempfile.TemporaryDirectory(prefix="cairn-put-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        for n, source in enumerate(sources):
            local = source
            if source in fetch:
                name = Path(urllib.parse.urlparse(source).path).name or f"download-{n}"
                local = str(Path(tmp) / f"fetched-{n}" / name)
                Path(local).parent.mkdir()
                with urllib.request.urlopen(source) as body, open(local, "wb") as sink:
                    shutil.copyfileobj(body, sink, 1 << 20)
            if untar:
                if not tarfile.is_tarfile(local):
                    raise typer.BadParameter(f"--untar: {source} is not a tar archive")
                with tarfile.open(local) as archive:
                    try:
                        archive.extractall(stage, filter="data")
                    except tarfile.FilterError as exc:  # .., absolute, links out, devices
                        raise InvalidPath(f"--untar: {source}: {exc}") from None
                continue
            rel = Path(source if full_path and source not in fetch else Path(local).name)
            parts = [p for p in rel.parts if p not in ("/", "")]
            if ".." in parts:
                raise InvalidPath(f"{source}: a full path with '..' cannot be stored")
            target = stage.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if Path(local).is_dir():
                shutil.copytree(local, target, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copyfile(local, target)
        yield str(stage)


def _put(
    ref: str,
    file: list[str],
    recursive: bool,
    append: bool,
    message: str,
    delete: bool,
    raw: bool,
    skipped: list[Skipped],
) -> None:
    def on_skipped(entries: list[Skipped]) -> None:
        skipped.extend(entries)
        _report_skipped(entries)

    def upload() -> Any:
        with byte_progress(None, "put") as bar:
            return client().files.upload(
                ref,
                file,
                recursive=recursive,
                append=append,
                description=message,
                on_plan=bar.plan,
                progress=bar.advance,
                on_stored=bar.stop,
                on_skipped=on_skipped,
            )

    commit = _mirrored(ref, file, message, upload) if delete else upload()
    if raw:
        print_json({"commit": to_json(commit), "skipped": to_json(skipped)})
    else:
        print(f"{commit.repo}@{commit.id}")
    if waits() and commit.state == "finished":
        # the jobs ran (embedded) or were waited for (remote) already: this returns them
        fail_on_jobs(client().commits.wait_jobs(f"{commit.repo}@{commit.id}"))


def _mirrored(ref: str, folders: list[str], message: str, upload: Any) -> Any:
    """``put file -r --delete``: in one commit (the branch's open one, else a new one),
    put ``folders`` and delete the files below the path that none of them holds. Raises
    typer.BadParameter when a source is not a folder."""
    import os

    from cairn.data import CommitStateError
    from cairn.data.localfiles import walk_folder

    not_folders = [f for f in folders if not os.path.isdir(f)]
    if not_folders:
        raise typer.BadParameter(f"--delete mirrors folders; not a folder: {not_folders[0]}")
    parsed = parse_ref(ref)
    branch = f"{parsed.repo}@{parsed.commit or 'master'}"
    base = "/" + (parsed.path or "").strip("/")
    keep: set[str] = set()
    for folder in folders:
        found, left_out = walk_folder(folder)
        rels = [rel for rel, _ in found] + [os.path.relpath(s.path, folder) for s in left_out]
        keep.update(f"{base.rstrip('/')}/{rel}" for rel in rels)
    commits = client().commits
    try:
        opened = commits.start(branch, message)
    except CommitStateError:  # one is open: the put and the deletes join it
        opened = None
    upload()
    files = client().files
    below = files.glob(branch, f"{base.rstrip('/')}/**")
    gone = sorted(f.path for f in below if f.type == "file" and f.path not in keep)
    if gone:
        files.delete(*(f"{branch}:{path}" for path in gone))
        err.print(f"put: deleted {len(gone)} file(s) the folder no longer holds")
    if opened is None:
        return commits.get(branch)
    return commits.finish(f"{parsed.repo}@{opened.id}")


@groups["get"].command("file")
def get_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:/path")],
    output: Annotated[str | None, typer.Option("-o", "--output")] = None,
    recursive: Annotated[bool, typer.Option("-r", "--recursive")] = False,
) -> None:
    """Write a file to stdout or -o; with -r, a folder into the -o folder."""
    files = client().files
    info = files.get(ref)
    if info.type == "dir" and not (recursive and output):
        raise InvalidPath(f"{ref} is a folder; use -r -o LOCAL_FOLDER")
    if output:
        label = f"get {info.count} file(s)" if info.type == "dir" else f"get {printable(info.path)}"
        with byte_progress(info.size, label) as bar:
            files.download(ref, output, progress=bar.advance)
        return
    with files.open(ref) as stream:
        shutil.copyfileobj(stream, sys.stdout.buffer, _PIECE)
    sys.stdout.buffer.flush()


def _print_files(files: list[Any], raw: bool) -> None:
    if raw:
        print_json(to_json(files))
    else:
        print_table(
            ["NAME", "TYPE", "SIZE", "HASH"],
            [[f.path, f.type, fmt_size(f.size), f.hash[:16]] for f in files],
        )


@groups["list"].command("file")
def list_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:/folder")], raw: Raw = False
) -> None:
    """List a folder's files."""
    _print_files(client().files.list(ref), raw)


@groups["glob"].command("file")
def glob_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:PATTERN")], raw: Raw = False
) -> None:
    """List the files and folders a glob pattern matches."""
    repo_part, _, pattern = ref.partition(":")
    _print_files(client().files.glob(repo_part, pattern or "/*"), raw)


@groups["inspect"].command("file")
def inspect_file(
    ref: Annotated[str, typer.Argument(help="repo@commit:/path")], raw: Raw = False
) -> None:
    """Show a file's size, hash, chunks and the datum that wrote it."""
    f = client().files.get(ref)
    if raw:
        return print_json(to_json(f))
    print_pairs(
        {
            "Path": printable(f.path),
            "Commit": f"{f.repo}@{f.commit}",
            "Type": f.type,
            "Size": f"{fmt_size(f.size)} ({f.size} bytes)",
            "Hash (BLAKE3)": f.hash,
            "Files" if f.type == "dir" else "Chunks": f.count if f.type == "dir" else f.chunks,
            "Datum": f.datum or "-",
        }
    )


@groups["diff"].command("file")
def diff_file(
    new: Annotated[str, typer.Argument(help="repo@commit[:/path]")],
    old: Annotated[str | None, typer.Argument(help="repo@commit (default: parent)")] = None,
    name_only: Annotated[
        bool, typer.Option("--name-only", help="Print only the changed paths, one per line.")
    ] = False,
    raw: Raw = False,
) -> None:
    """Files added, modified and deleted between two commits."""
    changes = client().files.diff(new, old)
    if raw:
        return print_json(to_json(changes))
    if name_only:
        for c in changes:
            out.print(printable(c.path))
        return
    print_table(
        ["STATUS", "PATH", "OLD SIZE", "NEW SIZE"],
        [[c.status, c.path, fmt_size(c.old_size), fmt_size(c.new_size)] for c in changes],
    )


@groups["delete"].command("file")
def delete_file(
    ref: Annotated[str, typer.Argument(help="repo@branch:/path")],
    recursive: Annotated[
        bool,
        typer.Option(
            "-r", "--recursive", help="As pachctl's -r; a folder is deleted whole either way."
        ),
    ] = False,
) -> None:
    """Delete a file or folder (in a new commit, or the open one)."""
    commit = client().files.delete(ref)
    print(f"{commit.repo}@{commit.id}")


@groups["copy"].command("file")
def copy_file(
    src: Annotated[str, typer.Argument(help="repo@commit:/path")],
    dst: Annotated[str, typer.Argument(help="repo@branch:/path")],
) -> None:
    """Copy a file or folder; the copy shares the original's chunks."""
    commit = client().files.copy(src, dst)
    print(f"{commit.repo}@{commit.id}")
