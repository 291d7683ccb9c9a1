"""Tests of cairn.pipelines.environment: the environment fingerprint recorded on output
commits, and the code files (with their BLAKE3) a transform's command and stdin name."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.pipelines.datums import canonical_hash
from cairn.pipelines.environment import code_files, environment_fingerprint
from cairn.pipelines.spec import Transform


def transform(**fields: Any) -> Transform:
    return Transform.model_validate({"cmd": ["true"], **fields})


def digest(path: Path) -> str:
    return blake3.blake3(path.read_bytes()).hexdigest()


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A spec folder holding a shell script and a Python script."""
    (tmp_path / "script.sh").write_text("echo hi\n")
    (tmp_path / "x.py").write_text("print('x')\n")
    return tmp_path


# -- environment_fingerprint -------------------------------------------------------------------
def test_fingerprint_describes_this_machine() -> None:
    env = environment_fingerprint()

    assert {"hash", "python", "implementation", "platform", "machine", "cpu", "cpu_count"} <= set(
        env
    )
    assert {"accelerator", "packages"} <= set(env)
    assert env["python"] == platform.python_version()
    assert env["implementation"] == sys.implementation.name
    assert env["cpu"]
    assert env["packages"]["cairn"]
    assert list(env["packages"]) == sorted(env["packages"])


def test_fingerprint_hash_is_the_canonical_hash_of_the_rest_and_stable() -> None:
    env = environment_fingerprint()
    body = {k: v for k, v in env.items() if k != "hash"}

    environment_fingerprint.cache_clear()
    again = environment_fingerprint()

    assert env["hash"] == canonical_hash(body)
    assert again == env


# -- code_files --------------------------------------------------------------------------------
def test_a_script_named_in_cmd_is_hashed(code: Path) -> None:
    found = code_files(transform(cmd=["bash", "script.sh"]), code)

    assert found == {"script.sh": digest(code / "script.sh")}


def test_scripts_named_in_stdin_are_hashed(code: Path) -> None:
    t = transform(cmd=["bash"], stdin=["python3 x.py --epochs 3", "bash script.sh"])

    assert code_files(t, code) == {
        "script.sh": digest(code / "script.sh"),
        "x.py": digest(code / "x.py"),
    }


def test_err_cmd_and_err_stdin_count_too(code: Path) -> None:
    t = transform(err_cmd=["bash", "script.sh"], err_stdin=["python3 x.py"])

    assert sorted(code_files(t, code)) == ["script.sh", "x.py"]


def test_an_absolute_script_path_is_kept_as_written(code: Path, tmp_path_factory: Any) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "tool.py"
    elsewhere.write_text("pass\n")

    found = code_files(transform(cmd=["python3", str(elsewhere)]), code)

    assert found == {str(elsewhere): digest(elsewhere)}


def test_executables_on_path_are_not_code(code: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    t = transform(cmd=[bash, "-c", "true"], stdin=["bash", sys.executable])

    assert code_files(t, code) == {}


def test_flags_missing_files_and_folders_are_ignored(code: Path) -> None:
    (code / "--verbose").write_text("a file that looks like a flag\n")
    (code / "data").mkdir()
    t = transform(cmd=["python3", "--verbose", "-u", "missing.py", "data", "x.py"])

    assert code_files(t, code) == {"x.py": digest(code / "x.py")}


def test_an_unbalanced_quote_in_stdin_still_finds_the_script(code: Path) -> None:
    t = transform(cmd=["bash"], stdin=["bash script.sh 'oops"])

    assert code_files(t, code) == {"script.sh": digest(code / "script.sh")}


def test_the_hash_follows_the_file_content(code: Path) -> None:
    t = transform(cmd=["bash", "script.sh"])
    before = code_files(t, code)

    (code / "script.sh").write_text("echo changed\n")
    after = code_files(t, code)
    os.utime(code / "script.sh")
    again = code_files(t, code)

    assert before["script.sh"] != after["script.sh"] == digest(code / "script.sh")
    assert again == after


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(words=st.lists(st.text(max_size=300), min_size=1, max_size=5))
def test_code_files_never_raises_and_names_only_regular_files(code: Path, words: list[str]) -> None:
    t = transform(cmd=words, stdin=[" ".join(words)])

    found = code_files(t, code)

    for word, hashed in found.items():
        path = Path(word) if os.path.isabs(word) else code / word
        assert path.is_file()
        assert hashed == digest(path)


def test_a_python_transform_records_the_interpreter_it_ran() -> None:
    import sys

    from cairn.pipelines.environment import interpreter_fingerprint, transform_runtime
    from cairn.pipelines.spec import Transform

    runtime = transform_runtime(Transform(cmd=[sys.executable, "x.py"]))
    assert runtime is not None
    assert runtime["executable"] == sys.executable
    assert runtime["packages"]["blake3"]  # the virtual environment's packages, not the base's
    assert runtime == interpreter_fingerprint(sys.executable)
    assert transform_runtime(Transform(cmd=["bash", "x.sh"])) is None
    assert interpreter_fingerprint("/nonexistent/python3") is None
