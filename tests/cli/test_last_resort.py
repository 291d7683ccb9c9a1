"""The CLI's last resort: an exception that escapes a command is one line on stderr and
exit 1, its traceback appended to a log file the line names; --debug shows it instead."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Cairn, seed_repo, single_error

# The real app and entry point, with one more command that fails the way a bug does.
BOOM = """
import sys
from cairn.cli import app, main

@app.command("boom")
def boom(kind: str = "value") -> None:
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "pipe":
        raise BrokenPipeError(32, "Broken pipe")
    raise ValueError("a bug\\nover two lines")

sys.argv = ["cairn", *sys.argv[1:]]
main()
"""


def boom(cairn: Cairn, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BOOM, *args],
        capture_output=True,
        text=True,
        cwd=cairn.root,
        env={**cairn.env, "XDG_STATE_HOME": str(cairn.root / "state"), **env},
        timeout=60,
    )


def logged_at(stderr: str) -> Path:
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    found = re.search(r"\(the traceback is in (.+); --debug prints it\)$", stderr.strip())
    assert found, stderr
    return Path(found[1])


@pytest.mark.embedded_only(
    "the log goes to the store folder once it exists, and a server creates it"
)
def test_a_bug_is_one_line_naming_the_log_that_holds_its_traceback(cairn: Cairn):
    proc = boom(cairn, "boom")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ValueError: a bug over two lines (")
    log = logged_at(proc.stderr)
    # no store yet: the user's state folder
    assert log == cairn.root / "state" / "cairn" / "cli.log"
    text = log.read_text()
    assert "cairn boom" in text and "Traceback" in text and "ValueError: a bug" in text
    # the next one is appended
    boom(cairn, "boom")
    assert log.read_text().count("Traceback") == 2


def test_with_a_store_the_log_is_in_its_folder(cairn: Cairn):
    cairn("create", "repo", "images")
    log = logged_at(boom(cairn, "boom").stderr)
    assert log == cairn.home / "logs" / "cli.log"
    assert "ValueError: a bug" in log.read_text()


@pytest.mark.embedded_only(
    "the log goes to the store folder once it exists, and a server creates it"
)
def test_a_log_that_cannot_be_written_is_said_on_the_same_line(cairn: Cairn):
    (cairn.root / "file").write_text("")
    proc = boom(cairn, "boom", XDG_STATE_HOME=str(cairn.root / "file" / "state"))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "could not be saved" in proc.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_prints_the_traceback(cairn: Cairn, how: str):
    if how == "flag":
        proc = boom(cairn, "--debug", "boom")
    else:
        proc = boom(cairn, "boom", CAIRN_DEBUG="1")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: a bug" in proc.stderr
    assert not (cairn.root / "state").exists()


def test_interrupt_exits_130_and_a_closed_pipe_is_quiet(cairn: Cairn):
    interrupted = boom(cairn, "boom", "--kind", "interrupt")
    assert interrupted.returncode == 130 and "Traceback" not in interrupted.stderr
    assert boom(cairn, "boom", "--kind", "pipe").stderr == ""


def test_invalid_json_for_set_traffic_is_one_error_line(cairn: Cairn):
    # before, a JSONDecodeError traceback
    cairn.write("bad.json", "{bad")
    proc = cairn("set", "traffic", "web", "-f", "bad.json", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr


def test_missing_spec_file_and_unwritable_output_are_one_line_errors(cairn: Cairn) -> None:
    seed_repo(cairn, "r", {"a": "a"})

    missing = cairn.fails("create", "pipeline", "-f", "missing.yaml")
    unwritable = cairn.fails("get", "file", "r@master:/a", "-o", "/proc/nope/x")

    single_error(missing)
    single_error(unwritable)
    assert "missing.yaml" in missing.stderr
