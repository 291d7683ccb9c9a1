"""Tests of cairn.pipelines.executor.run_datum on the host (no sandbox): outputs collected
from ``out``, return codes, retries, err_cmd, timeouts, stdin, environment, symlinks and the
scratch folder, over an in-process DataStore."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.data import DataStore, Ref
from cairn.pipelines.datums import Datum, build_datums
from cairn.pipelines.executor import DatumResult, RunContext, run_datum
from cairn.pipelines.spec import Transform, load_specs
from cairn.storage import Content

JOB = "ab" * 16

MakeDatums = Callable[..., list[Datum]]
Run = Callable[..., DatumResult]


@pytest.fixture
def make_datums(data: DataStore) -> MakeDatums:
    """``make_datums({path: bytes}, glob="/", name="in")``: the datums of a new commit of
    repo ``name`` (created on first use), cut by ``glob``."""

    def make(files: Mapping[str, bytes], glob: str = "/", name: str = "in") -> list[Datum]:
        if name not in {r.name for r in data.list_repos()}:
            data.create_repo(name)
        commit = data.put_files(name, None, [(p, io.BytesIO(b)) for p, b in files.items()])
        doc = (
            '{"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},'
            f' "input": {{"pfs": {{"repo": "{name}", "glob": "{glob}"}}}}}}'
        )
        spec_input = load_specs(doc)[0].input
        return build_datums(data, spec_input, {(name, "master"): commit})

    return make


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def run(data: DataStore, tmp_path: Path, work: Path) -> Run:
    """``run(datum, cmd, tries=1, timeout=None, env={}, **transform)``: run_datum on the host
    with ``cwd=tmp_path``; ``cmd`` is a script for ``bash -c`` or an argv list."""

    def run_one(
        datum: Datum,
        cmd: str | list[str],
        *,
        tries: int = 1,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        **transform: Any,
    ) -> DatumResult:
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else cmd
        ctx = RunContext(
            pipeline="p",
            job=JOB,
            transform=Transform.model_validate({"cmd": argv, **transform}),
            tries=tries,
            timeout=timeout,
            cwd=tmp_path,
            work_dir=work,
            sandbox=False,
            env=dict(env or {}),
        )
        return run_datum(data, ctx, datum, "hash-of-the-datum")

    return run_one


@pytest.fixture
def read(data: DataStore) -> Callable[[Content], bytes]:
    return lambda content: b"".join(data.chunks.read(content))


def outputs(result: DatumResult, read: Callable[[Content], bytes]) -> dict[str, bytes]:
    return {path: read(content) for path, content in result.outputs.items()}


def assert_scratch_removed(work: Path) -> None:
    assert list(work.iterdir()) == []


# -- success and outputs -----------------------------------------------------------------------
def test_success_collects_every_file_under_out(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes], work: Path
) -> None:
    [datum] = make_datums({"a.txt": b"hello"})

    result = run(
        datum,
        'cd "$CAIRN_PFS/out" && mkdir -p x/y && tr a-z A-Z < ../in/a.txt > x/y/deep.txt'
        " && echo top > top.txt && mkdir empty",
    )

    assert (result.state, result.attempts, result.exit_code, result.error) == (
        "success",
        1,
        0,
        "",
    )
    assert outputs(result, read) == {"x/y/deep.txt": b"HELLO", "top.txt": b"top\n"}
    assert result.bytes_out == 9
    assert result.hash == "hash-of-the-datum"
    assert result.datum == datum
    assert_scratch_removed(work)


paths = st.lists(st.from_regex(r"[a-z0-9_]{1,6}", fullmatch=True), min_size=1, max_size=3).map(
    "/".join
)


def _no_file_is_a_folder(files: dict[str, bytes]) -> bool:
    return not any(other.startswith(p + "/") for p in files for other in files)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.dictionaries(paths, st.binary(max_size=64), max_size=6).filter(_no_file_is_a_folder)
)
def test_outputs_are_exactly_the_files_the_command_wrote(
    make_datums: MakeDatums,
    run: Run,
    read: Callable[[Content], bytes],
    tmp_path: Path,
    files: dict[str, bytes],
) -> None:
    source = Path(tempfile.mkdtemp(dir=tmp_path))
    for path, content in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(content)
    [datum] = make_datums({"a.txt": b"a"})

    result = run(datum, f'cp -r "{source}/." "$CAIRN_PFS/out/"')

    assert result.state == "success"
    assert outputs(result, read) == files


def test_stdout_and_stderr_go_to_the_log(make_datums: MakeDatums, run: Run) -> None:
    [datum] = make_datums({"a.txt": b"a"})

    result = run(datum, "echo to-stdout; echo to-stderr >&2")

    assert b"to-stdout" in result.log
    assert b"to-stderr" in result.log


def test_the_command_runs_in_the_context_folder(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes], tmp_path: Path
) -> None:
    [datum] = make_datums({"a.txt": b"a"})

    result = run(datum, 'pwd > "$CAIRN_PFS/out/pwd"')

    assert outputs(result, read) == {"pwd": f"{tmp_path}\n".encode()}


# -- return codes, retries, err_cmd, timeouts --------------------------------------------------
def test_an_accepted_return_code_counts_as_success(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes]
) -> None:
    [datum] = make_datums({"a.txt": b"a"})
    script = 'echo kept > "$CAIRN_PFS/out/k"; exit 3'

    accepted = run(datum, script, accept_return_code=[3])
    refused = run(datum, script, accept_return_code=[4])

    assert (accepted.state, accepted.exit_code) == ("success", 3)
    assert outputs(accepted, read) == {"k": b"kept\n"}
    assert (refused.state, refused.exit_code, refused.outputs) == ("failed", 3, {})
    assert refused.error == "exit code 3"


def test_retries_are_counted_in_attempts(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes], tmp_path: Path
) -> None:
    [datum] = make_datums({"a.txt": b"a"})
    # Fails twice, then succeeds: the counter lives outside the scratch folder.
    script = (
        f'n=$(( $(cat "{tmp_path}/count" 2>/dev/null || echo 0) + 1 ));'
        f' echo $n > "{tmp_path}/count"; echo "try $n" > "$CAIRN_PFS/out/t"; [ $n -ge 3 ]'
    )

    flaky = run(datum, script, tries=3)
    (tmp_path / "count").unlink()
    short = run(datum, script, tries=2)

    assert (flaky.state, flaky.attempts) == ("success", 3)
    assert outputs(flaky, read) == {"t": b"try 3\n"}  # each attempt starts with an empty out
    assert flaky.log.count(b"[cairn] attempt") == 3
    assert (short.state, short.attempts, short.exit_code) == ("failed", 2, 1)


def test_err_cmd_that_succeeds_recovers_the_datum_with_no_outputs(
    make_datums: MakeDatums, run: Run, tmp_path: Path, work: Path
) -> None:
    [datum] = make_datums({"a.txt": b"a"})
    fail = 'echo partial > "$CAIRN_PFS/out/p"; exit 5'

    recovered = run(
        datum,
        fail,
        tries=2,
        err_cmd=["bash"],
        err_stdin=[f'echo "$PACH_DATUM_ID" > "{tmp_path}/err-ran"'],
    )
    failed = run(datum, fail, err_cmd=["false"])

    assert (recovered.state, recovered.attempts, recovered.exit_code) == ("recovered", 2, 5)
    assert recovered.outputs == {}
    assert recovered.error == "exit code 5"
    assert (tmp_path / "err-ran").read_text() == datum.id + "\n"
    assert (failed.state, failed.outputs) == ("failed", {})
    assert_scratch_removed(work)


def test_a_datum_past_its_timeout_is_killed_and_fails(
    make_datums: MakeDatums, run: Run, work: Path
) -> None:
    [datum] = make_datums({"a.txt": b"a"})

    result = run(datum, "echo started; sleep 30", timeout=0.3)

    assert result.state == "failed"
    assert result.exit_code is None
    assert "timed out" in result.error
    assert result.duration < 10
    assert b"started" in result.log
    assert_scratch_removed(work)


def test_a_process_left_in_the_background_does_not_hold_the_datum(
    make_datums: MakeDatums, run: Run
) -> None:
    [datum] = make_datums({"a.txt": b"a"})

    result = run(datum, "sleep 30 & echo done", timeout=20)

    assert result.state == "success"
    assert result.duration < 10


def test_a_command_that_cannot_start_fails_the_datum(
    make_datums: MakeDatums, run: Run, tmp_path: Path
) -> None:
    [datum] = make_datums({"a.txt": b"a"})

    result = run(datum, [str(tmp_path / "no-such-program")], tries=2)

    assert (result.state, result.attempts, result.exit_code) == ("failed", 2, None)
    assert result.error


# -- what the command sees ---------------------------------------------------------------------
def test_stdin_lines_reach_the_command(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes]
) -> None:
    [datum] = make_datums({"a.txt": b"a"})

    piped = run(datum, 'cat > "$CAIRN_PFS/out/stdin"', stdin=["first line", "second"])
    scripted = run(datum, ["bash"], stdin=['cd "$CAIRN_PFS"', "cp in/a.txt out/copied"])

    assert outputs(piped, read) == {"stdin": b"first line\nsecond\n"}
    assert outputs(scripted, read) == {"copied": b"a"}


def test_environment_names_the_pfs_job_datum_and_each_input(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes], work: Path
) -> None:
    [datum] = make_datums({"a.txt": b"a"}, glob="/*", name="images")
    script = (
        'cd "$CAIRN_PFS/out"; for v in CAIRN_PFS PACH_JOB_ID PACH_DATUM_ID PACH_OUTPUT_COMMIT_ID'
        ' images FROM_CTX; do printf %s "${!v}" > $v; done; cat "$images" > content'
    )

    result = run(datum, script, env={"FROM_CTX": "ctx"})

    seen = outputs(result, read)
    pfs = seen["CAIRN_PFS"].decode()
    assert Path(pfs).name == "pfs"
    assert Path(pfs).is_relative_to(work)
    assert seen["PACH_JOB_ID"] == seen["PACH_OUTPUT_COMMIT_ID"] == JOB.encode()
    assert seen["PACH_DATUM_ID"] == datum.id.encode()
    assert seen["images"] == f"{pfs}/images/a.txt".encode()
    assert seen["FROM_CTX"] == b"ctx"
    assert seen["content"] == b"a"


def test_spec_env_overrides_context_env_but_not_the_pfs_variables(
    data: DataStore,
    make_datums: MakeDatums,
    read: Callable[[Content], bytes],
    tmp_path: Path,
    work: Path,
) -> None:
    [datum] = make_datums({"a.txt": b"a"})
    script = 'cd "$CAIRN_PFS/out"; printf %s "$SHARED" > shared; printf %s "$CAIRN_PFS" > pfs'
    transform = Transform.model_validate(
        {"cmd": ["bash", "-c", script], "env": {"SHARED": "spec", "CAIRN_PFS": "/nowhere"}}
    )
    ctx = RunContext("p", JOB, transform, 1, None, tmp_path, work, False, {"SHARED": "ctx"})

    result = run_datum(data, ctx, datum, "h")

    seen = outputs(result, read)
    assert seen["shared"] == b"spec"
    assert seen["pfs"] != b"/nowhere"
    assert seen["pfs"].endswith(b"/pfs")


def test_a_folder_datum_sees_every_file_under_its_root(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes]
) -> None:
    datums = make_datums({"d/x.txt": b"x", "d/sub/y.txt": b"y", "e.txt": b"e"}, glob="/*")
    [folder] = [d for d in datums if d.roots[0][3] == "/d"]

    result = run(folder, 'cd "$CAIRN_PFS/in" && find . -type f | sort > ../out/list')

    assert outputs(result, read)["list"] == b"./d/sub/y.txt\n./d/x.txt\n"


# -- symlinks ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "link",
    [
        '"$CAIRN_PFS/in/a.txt"',  # absolute, on the host
        "../in/a.txt",  # relative
        "/pfs/in/a.txt",  # as written inside the sandbox
    ],
)
def test_a_symlink_into_pfs_is_followed(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes], link: str
) -> None:
    [datum] = make_datums({"a.txt": b"linked content"})

    result = run(datum, f'ln -s {link} "$CAIRN_PFS/out/link.txt"')

    assert result.state == "success"
    assert outputs(result, read) == {"link.txt": b"linked content"}


def test_a_symlink_to_an_input_folder_copies_the_folder(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes]
) -> None:
    [datum] = make_datums({"a.txt": b"a", "sub/b.txt": b"b"})

    result = run(datum, 'ln -s "$CAIRN_PFS/in" "$CAIRN_PFS/out/copy"')

    assert outputs(result, read) == {"copy/a.txt": b"a", "copy/sub/b.txt": b"b"}


@pytest.mark.parametrize("target", ["outside-file", "outside-dir"])
def test_a_symlink_out_of_pfs_fails_the_datum(
    make_datums: MakeDatums, run: Run, tmp_path: Path, work: Path, target: str
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("do not publish")
    path = secret / "key" if target == "outside-file" else secret
    [datum] = make_datums({"a.txt": b"a"})

    result = run(
        datum, f'echo ok > "$CAIRN_PFS/out/ok"; ln -s "{path}" "$CAIRN_PFS/out/x"', tries=2
    )

    assert (result.state, result.attempts, result.exit_code) == ("failed", 2, 0)
    assert result.outputs == {}
    assert result.error
    assert_scratch_removed(work)


# -- inputs and scratch ------------------------------------------------------------------------
def test_inputs_are_materialized_read_only(
    data: DataStore, make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes]
) -> None:
    [datum] = make_datums({"a.txt": b"original"})

    result = run(
        datum,
        'cd "$CAIRN_PFS"; stat -c %a in/a.txt > out/mode;'
        " (echo changed > in/a.txt) 2>/dev/null && echo written > out/write"
        " || echo denied > out/write",
    )

    seen = outputs(result, read)
    assert seen["mode"] == b"444\n"
    # Without a sandbox only the file mode protects the input: root writes through it.
    assert seen["write"] == (b"written\n" if os.geteuid() == 0 else b"denied\n")
    assert b"".join(data.read_file(Ref("in", path="a.txt"))) == b"original"


def test_each_datum_gets_its_own_scratch_folder_removed_afterwards(
    make_datums: MakeDatums, run: Run, read: Callable[[Content], bytes], work: Path
) -> None:
    [first, second] = make_datums({"a.txt": b"a", "b.txt": b"b"}, glob="/*")
    script = (
        'ls "$CAIRN_PFS/in" > "$CAIRN_PFS/out/ls"; printf %s "$CAIRN_PFS" > "$CAIRN_PFS/out/pfs"'
    )

    one, two = run(first, script), run(second, script)

    assert outputs(one, read)["ls"] == b"a.txt\n"
    assert outputs(two, read)["ls"] == b"b.txt\n"
    assert outputs(one, read)["pfs"] != outputs(two, read)["pfs"]
    assert not Path(outputs(one, read)["pfs"].decode()).exists()
    assert_scratch_removed(work)
