"""Tests of datum batching (cairn.pipelines.batch, cairn.sdk): one process per worker takes
datums over $CAIRN_DATUM_CHANNEL, with results identical to one process per datum, and
failures (reported, crashes, timeouts, early exits) handled per datum."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.data import DataStore, FileEntry, Ref
from cairn.pipelines import Pipelines, PipelineSpec, SpecError, load_specs
from cairn.pipelines.sandbox import sandbox_available

MakeSpec = Callable[..., PipelineSpec]
Put = Callable[..., Any]
Entries = Callable[..., dict[str, FileEntry]]
Contents = Callable[..., dict[str, bytes]]

# The documented shell protocol around a body that runs once per datum.
LOOP = """
while echo next > "$CAIRN_DATUM_CHANNEL/request" &&
      read -r id < "$CAIRN_DATUM_CHANNEL/reply" && [ "$id" != end ]; do
{body}
done
"""
# Copies every input folder into the output, per datum, in either mode.
COPY_BODY = (
    'for d in "$CAIRN_PFS"/*; do [ "${d##*/}" = out ] || cp -r "$d/." "$CAIRN_PFS/out/"; done'
)
EITHER = f"""
work() {{ {COPY_BODY}; }}
if [ -n "${{CAIRN_DATUM_CHANNEL:-}}" ]; then {LOOP.format(body="work")}
else work; fi
"""


def batch(body: str) -> str:
    return LOOP.format(body=body)


def make(make_spec: MakeSpec, name: str, cmd: str | list[str], **fields: Any) -> PipelineSpec:
    transform = {"datum_batching": True, **fields.pop("transform", {})}
    return make_spec(name, cmd=cmd, transform=transform, **fields)


def records(pipelines: Pipelines, name: str, job_id: str) -> list[tuple[Any, ...]]:
    return sorted(
        (d.id, d.hash, d.state, json.dumps(d.inputs), d.bytes_in, d.bytes_out, d.attempts)
        for d in pipelines.list_datums(name, job_id)
    )


# -- the spec ------------------------------------------------------------------------------
def test_datum_batching_is_a_transform_field_and_off_by_default(make_spec: MakeSpec) -> None:
    assert make_spec("p").transform.datum_batching is False
    assert make_spec("p", transform={"datum_batching": True}).transform.datum_batching is True
    with pytest.raises(SpecError) as caught:
        load_specs(
            '{"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]}, "datum_batching": true,'
            ' "input": {"pfs": {"repo": "in", "glob": "/*"}}}'
        )
    assert caught.value.field == "datum_batching"


# -- identical to one process per datum -------------------------------------------------------
def _files(count: int) -> dict[str, bytes]:
    return {f"d{i % 10}/f{i}.txt": f"content {i}\n".encode() for i in range(count)}


def test_batch_and_per_process_runs_give_identical_outputs_and_records(
    pipelines: Pipelines,
    make_spec: MakeSpec,
    put: Put,
    spec_dir: Path,
    entries: Entries,
) -> None:
    put("in", _files(100))
    specs = [
        make_spec("single", cmd=EITHER, glob="/*/*", salt="s"),
        make_spec("batched", cmd=EITHER, glob="/*/*", salt="s", transform={"datum_batching": True}),
    ]
    pipelines.create_pipelines(specs, spec_dir)
    first = {j.pipeline: j for j in pipelines.propagate()}

    changed = _files(100)["d3/f13.txt"] + b"changed\n"
    put("in", {"d3/f13.txt": changed})
    second = {j.pipeline: j for j in pipelines.propagate()}

    for jobs, processed in ((first, 100), (second, 1)):
        single, batched = jobs["single"], jobs["batched"]
        assert single.state == batched.state == "success", (single.reason, batched.reason)
        assert (single.processed, single.skipped) == (processed, 100 - processed)
        counts = ("processed", "skipped", "failed", "recovered", "total", "bytes_in", "bytes_out")
        assert [getattr(batched, c) for c in counts] == [getattr(single, c) for c in counts]
        assert records(pipelines, "batched", batched.id) == records(pipelines, "single", single.id)
    # Same paths, same bytes, and each file remembers the same datum (file-level lineage).
    assert entries("batched") == entries("single")
    assert len(entries("batched")) == 100
    content = entries("batched")["d3/f13.txt"].content
    assert b"".join(pipelines.data.chunks.read(content)) == changed


def test_two_datums_writing_one_path_fail_the_job_as_per_process(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a", "b.txt": b"b"})
    pipelines.create_pipeline(
        make(make_spec, "clash", batch("echo x > $CAIRN_PFS/out/same")), spec_dir
    )

    [job] = pipelines.propagate()

    assert job.state == "failure"
    assert "/same" in job.reason and "in:/a.txt" in job.reason and "in:/b.txt" in job.reason


def test_one_process_serves_many_datums_and_each_log_holds_its_own_output(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {f"{i}.txt": b"x" for i in range(6)})
    body = 'ls "$CAIRN_PFS/in"; echo "$$" > "$CAIRN_PFS/out/$(ls "$CAIRN_PFS/in").pid"'
    spec = make(make_spec, "pid", "echo starting; " + batch(body), parallelism_spec={"constant": 1})
    pipelines.create_pipeline(spec, spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "success", job.reason
    assert len(set(contents("pid").values())) == 1  # one process for all six datums
    logs = {d.inputs[0]["path"]: d.id for d in pipelines.list_datums("pid", job.id)}
    for path, datum_id in logs.items():
        [(_, text)] = [(h, t) for h, t in pipelines.logs("pid", job.id, datum_id) if "datum" in h]
        others = [p for p in logs if p != path]
        assert path[1:] in text
        assert not any(p[1:] in text for p in others), text
    starting = [t for _, t in pipelines.logs("pid", job.id) if "starting" in t]
    assert len(starting) == 1  # start-up output goes to the process's first datum only


def test_the_python_sdk_takes_datums_and_reports_failures(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a", "bad.txt": b"b", "c.txt": b"c"})
    (spec_dir / "t.py").write_text(
        "import os\n"
        "from cairn.sdk import datums, fail\n"
        "pfs = os.environ['CAIRN_PFS']\n"
        "for datum_id in datums():\n"
        "    [name] = os.listdir(f'{pfs}/in')\n"
        "    print('datum', datum_id[:12], name)\n"
        "    if name == 'bad.txt':\n"
        "        fail('bad input\\nspread over lines')\n"
        "        continue\n"
        "    open(f'{pfs}/out/{name}', 'w').write(name.upper())\n"
    )
    spec = make(make_spec, "sdk", [sys.executable, "t.py"], datum_tries=2)
    pipelines.create_pipeline(spec, spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "failure"
    assert (job.processed, job.failed) == (2, 1)
    assert "bad input spread over lines" in job.reason
    [bad] = [d for d in pipelines.list_datums("sdk", job.id) if d.state == "failed"]
    assert (bad.inputs[0]["path"], bad.attempts, bad.error) == (
        "/bad.txt",
        2,
        "bad input spread over lines",
    )
    log = "".join(t for h, t in pipelines.logs("sdk", job.id, bad.id) if "datum" in h)
    assert log.count("bad.txt") == 2 and "a.txt" not in log  # printed output split exactly

    put("in", {"bad.txt": b"fixed"}, None)
    (spec_dir / "t.py").write_text((spec_dir / "t.py").read_text().replace("'bad.txt'", "''"))
    [job] = pipelines.propagate()
    assert job.state == "success"
    assert contents("sdk") == {"a.txt": b"A.TXT", "bad.txt": b"BAD.TXT", "c.txt": b"C.TXT"}


# -- failures --------------------------------------------------------------------------------
def test_a_process_dying_mid_datum_fails_that_datum_only_and_the_rest_go_on(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a", "crash.txt": b"c", "z.txt": b"z"})
    body = '[ -e "$CAIRN_PFS/in/crash.txt" ] && { echo dying; exit 3; }; ' + COPY_BODY
    spec = make(make_spec, "crashy", batch(body), datum_tries=3, parallelism_spec={"constant": 1})
    pipelines.create_pipeline(spec, spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "failure"
    assert (job.processed, job.failed) == (2, 1)
    [bad] = [d for d in pipelines.list_datums("crashy", job.id) if d.state == "failed"]
    assert (bad.inputs[0]["path"], bad.attempts, bad.exit_code, bad.error) == (
        "/crash.txt",
        3,
        3,
        "exit code 3",
    )
    assert "dying" in job.reason


def test_a_datum_past_its_timeout_is_killed_and_retried_in_a_fresh_process(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"a.txt": b"a", "slow.txt": b"s"})
    marker = spec_dir / "slept"
    body = (
        f'if [ -e "$CAIRN_PFS/in/slow.txt" ] && [ ! -e {marker} ]; then'
        f" touch {marker}; sleep 30; fi; " + COPY_BODY
    )
    spec = make(make_spec, "slow", batch(body), datum_timeout="1s", datum_tries=2)
    pipelines.create_pipeline(spec, spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "success", job.reason
    assert contents("slow") == {"a.txt": b"a", "slow.txt": b"s"}
    attempts = {d.inputs[0]["path"]: d.attempts for d in pipelines.list_datums("slow", job.id)}
    assert attempts == {"/a.txt": 1, "/slow.txt": 2}
    [slow] = [d for d in pipelines.list_datums("slow", job.id) if d.attempts == 2]
    log = "".join(t for _, t in pipelines.logs("slow", job.id, slow.id))
    assert "killed after datum_timeout" in log


def test_a_clean_exit_finishes_the_datum_and_the_rest_go_to_fresh_processes(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {f"{i}.txt": str(i).encode() for i in range(5)})
    one = 'echo next > "$CAIRN_DATUM_CHANNEL/request"; read -r id < "$CAIRN_DATUM_CHANNEL/reply"\n'
    one += '[ "$id" = end ] && exit 0; ' + COPY_BODY
    pipelines.create_pipeline(make(make_spec, "one", one), spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "success", job.reason
    assert contents("one") == {f"{i}.txt": str(i).encode() for i in range(5)}


def test_a_transform_that_never_asks_fails_every_datum_with_a_clear_reason(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a", "b.txt": b"b"})
    pipelines.create_pipeline(
        make(make_spec, "deaf", "echo not listening", datum_tries=2), spec_dir
    )

    [job] = pipelines.propagate()

    assert job.state == "failure"
    assert job.failed == 2
    assert "before asking for a datum" in job.reason
    assert "not listening" in job.reason


def test_err_cmd_recovers_a_failed_datum_in_its_own_process(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path, contents: Contents
) -> None:
    put("in", {"good.txt": b"g", "bad.txt": b"b"})
    body = '[ -e "$CAIRN_PFS/in/bad.txt" ] && exit 1; ' + COPY_BODY
    err = ["bash", "-c", 'test -e "$CAIRN_PFS/in/bad.txt" && echo "recovering $PACH_DATUM_ID"']
    spec = make(make_spec, "lenient", batch(body), datum_tries=1, transform={"err_cmd": err})
    pipelines.create_pipeline(spec, spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "success", job.reason
    assert (job.processed, job.recovered) == (1, 1)
    assert contents("lenient") == {"good.txt": b"g"}
    [recovered] = [d for d in pipelines.list_datums("lenient", job.id) if d.state == "recovered"]
    log = "".join(t for _, t in pipelines.logs("lenient", job.id, recovered.id))
    assert f"recovering {recovered.id}" in log


def test_an_unknown_request_fails_the_datum_in_progress(
    pipelines: Pipelines, make_spec: MakeSpec, put: Put, spec_dir: Path
) -> None:
    put("in", {"a.txt": b"a"})
    body = 'echo please > "$CAIRN_DATUM_CHANNEL/request"; sleep 5'
    pipelines.create_pipeline(make(make_spec, "rude", batch(body), datum_tries=1), spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "failure"
    assert "'please'" in job.reason


# -- the sdk and the sandbox -----------------------------------------------------------------
def test_the_sdk_imports_only_the_standard_library() -> None:
    code = (
        "import sys; from cairn.sdk import datums, fail; "
        "print(sorted(m for m in sys.modules if m.startswith('cairn')), "
        "any(m in sys.modules for m in ('sqlalchemy', 'pydantic', 'blake3', 'yaml')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['cairn', 'cairn.sdk'] False"


def test_the_sdk_outside_a_batching_transform_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn.sdk import datums

    monkeypatch.delenv("CAIRN_DATUM_CHANNEL", raising=False)
    with pytest.raises(RuntimeError, match="datum_batching"):
        next(datums())


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
def test_a_sandboxed_batch_sees_each_datum_at_pfs_and_cannot_write_inputs(
    data: DataStore, tmp_path: Path, make_spec: MakeSpec
) -> None:
    data.create_repo("in")
    data.put_files("in", None, [(p, io.BytesIO(b"x")) for p in ("a.txt", "b.txt")])
    pipelines = Pipelines(data, data.catalog, work_dir=tmp_path / "work", parallelism=1)
    body = (
        'n=$(ls /pfs/in); cd /pfs/out; ls /pfs > "$n.ls"; printf %s "$CAIRN_PFS" > "$n.pfs";'
        ' touch /pfs/in/x 2>/dev/null && echo yes > "$n.input" || echo no > "$n.input"'
    )
    spec_dir = tmp_path / "specs"  # pytest's tmp_path is 0700: the sandbox's uid can't enter
    spec_dir.mkdir(mode=0o755)
    pipelines.create_pipeline(make(make_spec, "boxed", batch(body)), spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "success", job.reason
    seen = {
        path: b"".join(data.chunks.read(entry.content))
        for path, entry in data.trees.walk(data.resolve(Ref("boxed", "master")).tree)
    }
    for name in ("a.txt", "b.txt"):
        assert seen[f"{name}.ls"] == b"in\nout\n"
        assert seen[f"{name}.pfs"] == b"/pfs"
        assert seen[f"{name}.input"] == b"no\n"


@pytest.mark.usefixtures("real_sandbox")
def test_a_sandboxed_batch_has_no_privilege(
    data: DataStore, tmp_path: Path, make_spec: MakeSpec
) -> None:
    data.create_repo("in")
    data.put_files("in", None, [("a.txt", io.BytesIO(b"x"))])
    pipelines = Pipelines(data, data.catalog, work_dir=tmp_path / "work", parallelism=1)
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir(mode=0o755)
    # Each line writes "yes" only if the attempt got through; as root on the host all do.
    body = (
        "cd /pfs/out; id -u > uid;"
        " (grep -q '^root:' /etc/shadow && echo yes || echo no) > shadow;"
        ' (mount -o remount,bind,rw "$OLDPWD" 2>/dev/null && echo yes || echo no) > remount;'
        " (echo x 2>/dev/null > /proc/sys/kernel/hostname && echo yes || echo no) > hostname"
    )
    pipelines.create_pipeline(make(make_spec, "boxed", batch(body)), spec_dir)

    [job] = pipelines.propagate()

    assert job.state == "success", job.reason
    seen = {
        path: b"".join(data.chunks.read(entry.content)).strip()
        for path, entry in data.trees.walk(data.resolve(Ref("boxed", "master")).tree)
    }
    assert seen["shadow"] == seen["remount"] == seen["hostname"] == b"no"
    assert seen["uid"] != b"0"
