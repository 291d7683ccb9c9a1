"""Tests of cairn.pipelines.sandbox: the argv that runs a datum on the host or in bubblewrap,
the /tmp folders bound back into the sandbox, and (where bwrap works) a real sandboxed datum
and job."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from cairn.catalog.schema import events
from cairn.data import DataStore, Ref
from cairn.pipelines import Pipelines, SpecError, load_specs
from cairn.pipelines.datums import build_datums
from cairn.pipelines.executor import RunContext, limits_for, run_datum
from cairn.pipelines.sandbox import (
    DEFAULT_LIMITS,
    SANDBOX_UID_BASE,
    Layout,
    Limits,
    sandbox_available,
    wrap_command,
)
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
def test_without_a_sandbox_the_command_runs_as_given_under_its_limits(layout: Layout) -> None:
    cmd = ["python3", "train.py", "--epochs", "3"]
    limits = Limits(processes=7, memory=1 << 30, cpu_seconds=9, output_bytes=5, scratch_bytes=6)

    argv, pfs = wrap_command(cmd, layout, sandbox=False, limits=limits)

    assert argv[-4:] == cmd
    assert pfs == str(layout.pfs)
    if shutil.which("prlimit"):
        assert argv[1:-4] == ["--nproc=7", f"--as={1 << 30}", "--cpu=9", "--fsize=5", "--"]


def test_the_sandbox_binds_inputs_read_only_and_out_writable(layout: Layout) -> None:
    cmd = ["bash", "-c", "ls /pfs"]

    argv, pfs = wrap_command(cmd, layout, sandbox=True)

    assert pfs == "/pfs"
    assert argv[0] == "bwrap"
    assert argv[-3:] == cmd
    binds = triples(argv)
    assert ("--ro-bind", str(layout.pfs / "images"), "/pfs/images") in binds
    assert ("--ro-bind", str(layout.pfs / "labels"), "/pfs/labels") in binds
    assert ("--bind", str(layout.out), "/pfs/out") in binds
    assert ("--ro-bind", "/usr", "/usr") in binds
    assert ("1777", "--tmpfs", "/tmp") in binds
    assert ("1777", "--tmpfs", "/dev/shm") in binds
    assert ("--ro-bind", str(layout.cwd), str(layout.cwd)) in binds
    assert argv[argv.index("--chdir") + 1] == str(layout.cwd)
    assert ("--cap-drop", "ALL") in set(zip(argv, argv[1:], strict=False))
    namespaces = {"--unshare-net", "--unshare-pid", "--unshare-uts", "--unshare-ipc"}
    assert namespaces | {"--die-with-parent", "--new-session"} <= set(argv)


def test_as_root_the_command_runs_as_an_unprivileged_uid_without_capabilities(
    layout: Layout,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the uid change happens only when cairn runs as root")

    argv, _ = wrap_command(["true"], layout, sandbox=True, uid=SANDBOX_UID_BASE + 5)

    drop = argv[argv.index("setpriv") :]
    uid = SANDBOX_UID_BASE + 5
    assert {f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs"} <= set(drop)
    assert "--bounding-set=-all" in drop


def test_the_sandbox_binds_only_system_folders_runtimes_and_the_spec_folder(
    layout: Layout, under_tmp: Path
) -> None:
    venv = under_tmp / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python3").touch()
    base = under_tmp / "base"
    (base / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\n")
    tools = under_tmp / "tools"
    tools.mkdir()
    path = os.pathsep.join([str(venv / "bin"), str(tools), "/root", "/usr/bin"])

    argv, _ = wrap_command(["python3", "x.py"], layout, sandbox=True, env_path=path)

    bound = {b for flag, b, to in triples(argv) if flag == "--ro-bind" and b == to}
    assert {str(venv), str(base), str(tools), str(layout.cwd), "/usr", "/etc"} <= bound
    assert not bound & {"/", "/root", "/home", "/tmp", "/run", "/var", "/proc", "/dev"}
    assert ("--ro-bind", "/dev/null", "/etc/shadow") in triples(argv)


def test_a_store_inside_the_spec_folder_is_masked(tmp_path: Path) -> None:
    cwd = tmp_path / "project"
    (cwd / ".cairn" / "objects").mkdir(parents=True)
    (cwd / "catalog.db").touch()
    (cwd / "store").mkdir()
    pfs = tmp_path / "pfs"
    (pfs / "out").mkdir(parents=True)
    private = (cwd / "store", cwd / "catalog.db")
    layout = Layout(pfs, (), cwd, private)

    argv, _ = wrap_command(["true"], layout, sandbox=True)

    binds = triples(argv)
    assert argv[argv.index(str(cwd / ".cairn")) - 1] == "--tmpfs"
    assert argv[argv.index(str(cwd / "store")) - 1] == "--tmpfs"
    assert ("--ro-bind", "/dev/null", str(cwd / "catalog.db")) in binds
    # Masks come after the bind they cover, or the bind would uncover them.
    assert argv.index(str(cwd / ".cairn")) > argv.index(str(cwd))


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
    spec_dir = tmp_path / "specs"  # pytest's tmp_path is 0700: the sandbox's uid can't enter
    spec_dir.mkdir(mode=0o755)
    doc = json.dumps(
        {
            "pipeline": {"name": "copy"},
            "transform": {"cmd": ["cp", "/pfs/in/a.txt", "/pfs/out/"]},
            "input": {"pfs": {"repo": "in", "glob": "/*"}},
        }
    )
    pipelines.create_pipeline(load_specs(doc)[0], spec_dir)

    [job] = pipelines.propagate(recorder)

    assert job.state == "success", job.reason
    assert "note" not in recorder.names
    assert b"".join(data.read_file(Ref("copy", path="a.txt"))) == b"a"


# -- probes: what a hostile transform tries, as a real pipeline ------------------------------
# Each probe exits 0 only if it got through; on the host as root every one of them would.
PROBES = r"""
set -u
case "$(ls /pfs/probes)" in
control) echo ok > /pfs/out/control ;;
remount) mount -o remount,bind,rw "$PWD" && echo escaped > "$PWD/escaped" ;;
hostname) echo cairn-probe > /proc/sys/kernel/hostname ;;
shadow) grep -q '^root:' /etc/shadow ;;
home) cat "$SECRET" ;;
store_files) ls -A .cairn "$STORE" | grep -q catalog ;;
store_api) "$PY" -c "from cairn.client import Client; print(Client('$STORE').data.list_repos())" |
    grep -q probes ;;
fork) "$PY" -c "
import os, time
for _ in range(300):
    if os.fork() == 0:
        time.sleep(20)
        os._exit(0)
" ;;
write_out) head -c 2G /dev/zero > /pfs/out/big ;;
write_tmp) head -c 2G /dev/zero > /tmp/big ;;
alloc) "$PY" -c "b = bytearray(2 << 30)" ;;
esac
"""
# Each probe and (for those stopped by a limit) the limit its datum's error names.
EXPECTED = {
    "remount": None,
    "hostname": None,
    "shadow": None,
    "home": None,
    "store_files": None,
    "store_api": None,
    "fork": "processes",
    "write_out": "SIGXFSZ",
    "write_tmp": "SIGXFSZ",
    "alloc": "memory",
}


@pytest.fixture
def home_secret() -> Iterator[Path]:
    """A file in the home folder of the user running the tests, removed afterwards."""
    fd, name = tempfile.mkstemp(dir=Path.home(), prefix=".cairn-probe-")
    os.write(fd, b"secret")
    os.close(fd)
    yield Path(name)
    os.unlink(name)


@pytest.mark.usefixtures("real_sandbox")
def test_probes_fail_inside_the_sandbox_and_leave_the_host_untouched(
    tmp_path: Path, home_secret: Path
) -> None:
    from cairn.client import Client

    project = tmp_path / "project"
    project.mkdir(mode=0o755)
    (project / "probe.sh").write_text(PROBES)
    store = project / ".cairn"  # the README's layout: the store next to the spec
    client = Client(store, auto_run=False)
    client.data.create_repo("probes")
    names = ["control", *EXPECTED]
    client.data.put_files("probes", None, [(n, io.BytesIO(b"")) for n in names])
    client.data.create_repo("private")
    client.data.put_files("private", None, [("secret.txt", io.BytesIO(b"do not read"))])
    doc = {
        "pipeline": {"name": "probe"},
        "transform": {
            "cmd": ["bash", "probe.sh"],
            "env": {"STORE": str(store), "PY": sys.executable, "SECRET": str(home_secret)},
        },
        "input": {"pfs": {"repo": "probes", "glob": "/*"}},
        "datum_tries": 1,
        "parallelism_spec": {"constant": 2},
        "resource_limits": {"memory": "1Gi", "disk": "64Mi", "processes": 64},
    }
    client.pipelines.create_pipeline(load_specs(json.dumps(doc))[0], project)
    hostname = Path("/proc/sys/kernel/hostname").read_text()

    [job] = client.pipelines.propagate()

    by_probe = {
        d.inputs[0]["path"].strip("/"): d for d in client.pipelines.list_datums("probe", job.id)
    }
    assert by_probe["control"].state == "success", job.reason
    for probe, limit in EXPECTED.items():
        datum = by_probe[probe]
        assert datum.state == "failed", probe
        if limit is not None:
            assert limit in datum.error, (probe, datum.error)
    assert Path("/proc/sys/kernel/hostname").read_text() == hostname
    assert not (project / "escaped").exists()
    assert not Path("/tmp/big").exists()
    assert list((store / "work").rglob("*")) == []


# -- without a sandbox ---------------------------------------------------------------------------
def test_an_unconfined_job_says_so_first(
    pipelines: Pipelines, data: DataStore, spec_dir: Path, recorder: Recorder
) -> None:
    data.create_repo("in")
    data.put_files("in", None, [("a.txt", io.BytesIO(b"a"))])
    doc = {
        "pipeline": {"name": "copy"},
        "transform": {"cmd": ["cp", "-r", ".", "/nonexistent"], "image": "alpine"},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
    }
    pipelines.create_pipeline(load_specs(json.dumps(doc))[0], spec_dir)

    [job] = pipelines.propagate(recorder)

    notes = [message for _pipeline, message in recorder.args("note")]
    assert notes[0].startswith("unconfined:")
    [(_heading, text), *_] = pipelines.logs("copy", job.id)
    assert text.startswith("unconfined:")


def other_user_owns(pipelines: Pipelines, name: str) -> None:
    """Record ``name`` as created by another OS user, as their own cairn would have."""
    with pipelines.catalog.write() as conn:
        conn.execute(
            insert(events).values(
                time=0.0,
                kind="pipeline.owner",
                subject=name,
                info=json.dumps({"uid": os.getuid() + 1}),
            )
        )


def test_without_a_sandbox_another_users_pipeline_is_refused_unless_allowed(
    pipelines: Pipelines, data: DataStore, spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data.create_repo("in")
    data.put_files("in", None, [("a.txt", io.BytesIO(b"a"))])
    doc = {
        "pipeline": {"name": "copy"},
        "transform": {"cmd": ["bash", "-c", 'cp "$CAIRN_PFS"/in/* "$CAIRN_PFS/out/"']},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
    }
    pipelines.create_pipeline(load_specs(json.dumps(doc))[0], spec_dir)
    other_user_owns(pipelines, "copy")

    [refused] = pipelines.propagate()
    assert refused.state == "failure"
    assert pipelines.list_datums("copy", refused.id) == []

    monkeypatch.setenv("CAIRN_ALLOW_UNCONFINED", "1")
    data.put_files("in", None, [("b.txt", io.BytesIO(b"b"))])
    [allowed] = pipelines.propagate()
    assert allowed.state == "success", allowed.reason


def test_the_allow_unconfined_option_runs_another_users_pipeline(
    pipelines: Pipelines, data: DataStore, spec_dir: Path
) -> None:
    data.create_repo("in")
    data.put_files("in", None, [("a.txt", io.BytesIO(b"a"))])
    doc = {
        "pipeline": {"name": "copy"},
        "transform": {"cmd": ["bash", "-c", 'cp "$CAIRN_PFS"/in/* "$CAIRN_PFS/out/"']},
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
    }
    pipelines.create_pipeline(load_specs(json.dumps(doc))[0], spec_dir)
    other_user_owns(pipelines, "copy")
    pipelines.allow_unconfined = True

    [job] = pipelines.propagate()

    assert job.state == "success", job.reason


# -- limits ------------------------------------------------------------------------------------
def test_resource_limits_map_to_the_datums_limits() -> None:
    doc = {
        "pipeline": {"name": "p"},
        "transform": {"cmd": ["true"]},
        "input": {"pfs": {"repo": "in", "glob": "/"}},
        "datum_timeout": "10m",
        "resource_requests": {"cpu": "500m", "memory": "1G"},
        "resource_limits": {"cpu": 2, "memory": "512Mi", "disk": "1Gi", "processes": 32},
    }
    spec = load_specs(json.dumps(doc))[0]

    limits = limits_for(spec.resource_limits, spec.datum_timeout)

    assert limits == Limits(
        processes=32,
        memory=512 << 20,
        cpu_seconds=2 * 600,
        output_bytes=1 << 30,
        scratch_bytes=1 << 30,
    )
    assert limits_for(None, None) == DEFAULT_LIMITS


@pytest.mark.parametrize("memory", ["lots", "-1Gi", "1Qi", True])
def test_a_resource_limit_that_is_no_quantity_is_a_spec_error(memory: object) -> None:
    doc = {
        "pipeline": {"name": "p"},
        "transform": {"cmd": ["true"]},
        "input": {"pfs": {"repo": "in", "glob": "/"}},
        "resource_limits": {"memory": memory},
    }

    with pytest.raises(SpecError) as info:
        load_specs(json.dumps(doc))

    assert info.value.problems[0][0] == "resource_limits.memory"


def test_an_output_over_the_limit_fails_the_datum(data: DataStore, tmp_path: Path) -> None:
    data.create_repo("in")
    commit = data.put_files("in", None, [("a.txt", io.BytesIO(b"a"))])
    doc = json.dumps(
        {
            "pipeline": {"name": "p"},
            "transform": {"cmd": ["true"]},
            "input": {"pfs": {"repo": "in", "glob": "/"}},
        }
    )
    [datum] = build_datums(data, load_specs(doc)[0].input, {("in", "master"): commit})
    script = 'for i in 1 2 3; do head -c 600 /dev/zero > "$CAIRN_PFS/out/$i"; done'
    ctx = RunContext(
        "p",
        "ab" * 16,
        Transform(cmd=["bash", "-c", script]),
        1,
        30,
        tmp_path,
        tmp_path / "work",
        False,
        limits=Limits(output_bytes=1000),
    )

    result = run_datum(data, ctx, datum, "h")

    assert (result.state, result.exit_code, result.outputs) == ("failed", 0, {})
    assert "output limit" in result.error


@pytest.fixture
def venv_with_module(under_tmp: Path) -> Path:
    """A virtual environment made by the test (``--system-site-packages``, no pip) with a
    one-module package copied into its site-packages; returns its ``bin/python``."""
    import subprocess

    venv = under_tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=60,
    )
    [site] = venv.glob("lib/python*/site-packages")
    (site / "cairn_venv_probe.py").write_text("ANSWER = 'from the venv'\n")
    os.chmod(under_tmp, 0o755)
    return venv / "bin" / "python"


@pytest.mark.usefixtures("real_sandbox")
def test_a_transform_naming_a_venvs_python_imports_that_venvs_packages(
    data: DataStore, tmp_path: Path, venv_with_module: Path, under_tmp: Path, recorder: Recorder
) -> None:
    data.create_repo("in")
    data.put_files("in", None, [("a.txt", io.BytesIO(b"a"))])
    pipelines = Pipelines(data, data.catalog, work_dir=tmp_path / "work", parallelism=1)
    spec_dir = under_tmp / "specs"
    spec_dir.mkdir(mode=0o755)
    code = (
        "import cairn_venv_probe, sys; "
        "open('/pfs/out/answer', 'w').write(cairn_venv_probe.ANSWER + ' ' + sys.prefix)"
    )
    doc = json.dumps(
        {
            "pipeline": {"name": "venv"},
            "transform": {"cmd": [str(venv_with_module), "-c", code]},
            "input": {"pfs": {"repo": "in", "glob": "/"}},
        }
    )
    pipelines.create_pipeline(load_specs(doc)[0], spec_dir)

    [job] = pipelines.propagate(recorder)

    assert job.state == "success", job.reason
    answer = b"".join(data.read_file(Ref("venv", path="answer"))).decode()
    assert answer == f"from the venv {venv_with_module.parent.parent}"
