"""Tests of cairn.pipelines.sandbox: the argv that runs a datum on the host or in bubblewrap,
the /tmp folders bound back into the sandbox, and (where bwrap works) a real sandboxed datum
and job."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.data import DataStore, Ref
from cairn.pipelines import Pipelines, load_specs
from cairn.pipelines.datums import build_datums
from cairn.pipelines.executor import RunContext, run_datum
from cairn.pipelines.sandbox import Layout, _tmp_binds, sandbox_available, wrap_command
from cairn.pipelines.spec import Transform

from .conftest import Recorder


def triples(argv: list[str]) -> set[tuple[str, str, str]]:
    return set(zip(argv, argv[1:], argv[2:], strict=False))


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    pfs = tmp_path / "scratch" / "pfs"
    for name in ("images", "labels", "out"):
        (pfs / name).mkdir(parents=True)
    return Layout(pfs, ("images", "labels"), tmp_path)


@pytest.fixture
def under_tmp() -> Iterator[Path]:
    """A folder under the host's /tmp, whatever pytest's base temp is."""
    folder = Path(tempfile.mkdtemp(dir="/tmp")).resolve()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# -- wrap_command ------------------------------------------------------------------------------
def test_without_a_sandbox_the_command_runs_as_given(layout: Layout) -> None:
    cmd = ["python3", "train.py", "--epochs", "3"]

    argv, pfs = wrap_command(cmd, layout, sandbox=False)

    assert argv == cmd
    assert pfs == str(layout.pfs)


def test_the_sandbox_binds_inputs_read_only_and_out_writable(layout: Layout) -> None:
    cmd = ["bash", "-c", "ls /pfs"]

    argv, pfs = wrap_command(cmd, layout, sandbox=True)

    assert pfs == "/pfs"
    assert argv[0] == "bwrap"
    assert argv[-4:] == ["--", *cmd]
    binds = triples(argv)
    assert ("--ro-bind", str(layout.pfs / "images"), "/pfs/images") in binds
    assert ("--ro-bind", str(layout.pfs / "labels"), "/pfs/labels") in binds
    assert ("--bind", str(layout.out), "/pfs/out") in binds
    assert ("--ro-bind", "/usr", "/usr") in binds
    assert ("--tmpfs", "/tmp", "--dir") in binds
    assert {"--unshare-net", "--unshare-pid", "--die-with-parent"} <= set(argv)
    assert argv[argv.index("--chdir") + 1] == str(layout.cwd)
    # Nothing binds the host's /proc, /dev, /tmp or /pfs as they are.
    assert not {("--ro-bind", f"/{d}", f"/{d}") for d in ("proc", "dev", "tmp", "pfs")} & binds


def test_the_sandbox_binds_back_path_folders_under_tmp(
    layout: Layout, under_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = under_tmp / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")

    argv, _ = wrap_command(["true"], layout, sandbox=True)

    assert ("--ro-bind", str(tools), str(tools)) in triples(argv)


def test_tmp_binds_keep_only_existing_folders_under_tmp(under_tmp: Path) -> None:
    outer = under_tmp / "venv"
    inner = outer / "bin"
    inner.mkdir(parents=True)
    link = under_tmp / "link"
    link.symlink_to(outer)

    assert _tmp_binds([outer]) == ["--ro-bind", str(outer), str(outer)]
    assert _tmp_binds([outer, inner]) == ["--ro-bind", str(outer), str(outer)]
    assert _tmp_binds([link]) == ["--ro-bind", str(outer), str(outer)]
    assert _tmp_binds([under_tmp / "missing", Path("/tmp"), Path("/usr/bin")]) == []


# -- a real sandbox ----------------------------------------------------------------------------
@pytest.fixture
def real_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CAIRN_SANDBOX", raising=False)
    sandbox_available.cache_clear()
    if shutil.which("bwrap") is None or not sandbox_available():
        sandbox_available.cache_clear()
        pytest.skip("bubblewrap is missing or cannot create a sandbox here")
    yield
    sandbox_available.cache_clear()


@pytest.mark.usefixtures("real_sandbox")
def test_a_sandboxed_datum_sees_pfs_and_cannot_write_outside_out(
    data: DataStore, tmp_path: Path
) -> None:
    data.create_repo("images")
    commit = data.put_files("images", None, [("a.txt", io.BytesIO(b"a"))])
    doc = json.dumps(
        {
            "pipeline": {"name": "p"},
            "transform": {"cmd": ["true"]},
            "input": {"pfs": {"repo": "images", "glob": "/"}},
        }
    )
    [datum] = build_datums(data, load_specs(doc)[0].input, {("images", "master"): commit})
    script = (
        'cd /pfs/out; ls /pfs > ls; printf %s "$CAIRN_PFS" > pfs; cat /pfs/images/a.txt > a;'
        " touch /usr/cairn-probe 2>/dev/null && echo yes > usr || echo no > usr;"
        " touch /pfs/images/x 2>/dev/null && echo yes > input || echo no > input"
    )
    ctx = RunContext(
        "p",
        "ab" * 16,
        Transform(cmd=["bash", "-c", script]),
        1,
        30,
        tmp_path,
        tmp_path / "work",
        True,
    )

    result = run_datum(data, ctx, datum, "h")

    seen = {p: b"".join(data.chunks.read(c)) for p, c in result.outputs.items()}
    assert result.state == "success", result.log
    assert seen == {
        "ls": b"images\nout\n",
        "pfs": b"/pfs",
        "a": b"a",
        "usr": b"no\n",
        "input": b"no\n",
    }
    assert not Path("/usr/cairn-probe").exists()


@pytest.mark.usefixtures("real_sandbox")
def test_a_job_in_the_sandbox_writes_no_host_note(
    data: DataStore, tmp_path: Path, recorder: Recorder
) -> None:
    data.create_repo("in")
    data.put_files("in", None, [("a.txt", io.BytesIO(b"a"))])
    pipelines = Pipelines(data, data.catalog, work_dir=tmp_path / "work", parallelism=1)
    doc = json.dumps(
        {
            "pipeline": {"name": "copy"},
            "transform": {"cmd": ["cp", "/pfs/in/a.txt", "/pfs/out/"]},
            "input": {"pfs": {"repo": "in", "glob": "/*"}},
        }
    )
    pipelines.create_pipeline(load_specs(doc)[0], tmp_path)

    [job] = pipelines.propagate(recorder)

    assert job.state == "success", job.reason
    assert "note" not in recorder.names
    assert b"".join(data.read_file(Ref("copy", path="a.txt"))) == b"a"
