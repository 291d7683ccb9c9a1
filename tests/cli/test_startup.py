"""Start-up: the CLI lists and prints its version from one table, without importing a
command module or the library; a command loads only the module that defines it."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import subprocess
import sys

import pytest
import typer.main

from cairn.cli.commands import COMMANDS, VERBS

from .conftest import CAIRN, Cairn

HEAVY = ["pydantic", "sqlalchemy", "numpy", "pandas", "fastapi", "rich", "cairn.client"]
COMMAND_MODULES = sorted({module for module, _ in COMMANDS.values()})

# Runs the CLI in a fresh interpreter as the console script does, then prints which
# modules that loaded (after the help or version, on the last line of stdout).
RUN = """
import json, sys
from cairn.cli import main
sys.argv = ["cairn", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print()
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after(*args: str) -> tuple[str, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, check=True
    )
    output, _, modules = proc.stdout.rstrip("\n").rpartition("\n")
    return output, set(json.loads(modules))


def test_importing_the_cli_loads_no_command_and_no_heavy_library():
    code = "import cairn.cli, sys; print(sorted(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(eval(proc.stdout))
    assert "typer" in modules
    assert not modules & {*HEAVY, *(f"cairn.cli.{m}" for m in COMMAND_MODULES)}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list", "--help"]])
def test_help_and_version_load_no_command_module(args: list[str]):
    output, modules = loaded_after(*args)
    assert output.strip()
    assert not modules & {*HEAVY, *(f"cairn.cli.{m}" for m in COMMAND_MODULES)}


def test_a_command_loads_only_its_own_module():
    output, modules = loaded_after("list", "repo", "--help")
    assert "List every repo." in output
    assert {m for m in COMMAND_MODULES if f"cairn.cli.{m}" in modules} == {"data_commands"}


def test_the_root_listing_comes_from_the_table():
    output, _ = loaded_after("--help")
    for name in [*(verb for verb, noun in COMMANDS if noun is None), *VERBS]:
        assert f"\n  {name} " in output


def test_version_prints_the_installed_version():
    proc = subprocess.run([CAIRN, "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout == f"cairn {importlib.metadata.version('cairn')}\n"


def _registered() -> dict[tuple[str, str | None], tuple[str, str]]:
    """(verb, noun) -> (module, first help paragraph on one line) of every command the
    command modules register, once all are imported."""
    from cairn.cli.root import app, groups

    for module in COMMAND_MODULES:
        importlib.import_module(f"cairn.cli.{module}")
    owners = [(None, app), *groups.items()]
    found = {}
    for verb, owner in owners:
        for info in owner.registered_commands:
            assert info.callback is not None
            name = info.name or typer.main.get_command_name(info.callback.__name__)
            key = (name, None) if verb is None else (verb, name)
            text = inspect.cleandoc(info.help or inspect.getdoc(info.callback) or "")
            found[key] = (
                info.callback.__module__.removeprefix("cairn.cli."),
                " ".join(text.split("\n\n")[0].split()),
            )
    for info in app.registered_groups:  # a command with its own subcommands (config)
        if info.name not in groups:
            assert info.typer_instance is not None
            found[(str(info.name), None)] = (
                _module_of(info.typer_instance),
                " ".join(inspect.cleandoc(str(info.help)).split("\n\n")[0].split()),
            )
    return found


def _module_of(typer_app: typer.Typer) -> str:
    """The module under cairn.cli whose commands ``typer_app``'s groups hold."""
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        for command in group.typer_instance.registered_commands:
            assert command.callback is not None
            return command.callback.__module__.removeprefix("cairn.cli.")
    raise AssertionError("a group without commands")


def test_the_table_names_every_registered_command_with_its_module_and_help():
    registered = _registered()
    assert registered.keys() == COMMANDS.keys()
    for key, row in COMMANDS.items():
        assert registered[key] == row, key
    # every verb group has a command, and every verb of the table has a group
    assert {verb for verb, noun in COMMANDS if noun} == set(VERBS)


@pytest.mark.parametrize("args", [["list", "repo"], ["list", "model"]])
def test_a_remote_command_loads_no_monitoring_library(tmp_path, args: list[str]):
    # Decoding a server's answer needs the wire forms of the monitoring types only when
    # the answer holds one: loading scipy and pandas cost every remote command a second.
    with Cairn(tmp_path).serving("remote", worker=False) as remote:
        proc = subprocess.run(
            [sys.executable, "-c", RUN, *args, "--raw"],
            capture_output=True,
            text=True,
            check=True,
            env=remote.env,
            cwd=tmp_path,
        )
    output, _, modules = proc.stdout.rstrip("\n").rpartition("\n")
    assert json.loads(output) == []
    assert not set(json.loads(modules)) & {"scipy", "pandas", "cairn.monitoring"}


EMBEDDED_STACK = {"sqlalchemy", "scipy", "pandas", "cairn.catalog.engine", "cairn.data.store"}
MONITORING_LIBRARIES = {"scipy", "pandas", "pyarrow", "cairn.monitoring.drift"}


def test_a_remote_command_loads_no_embedded_stack(tmp_path):
    # A remote command only sends a request and prints the answer: importing the store,
    # the catalog (SQLAlchemy) or the monitoring libraries was most of its start-up.
    from cairn.client import Client

    store = Client(tmp_path / "store", auto_run=False)
    store.repos.create("r")
    store.files.put("r@master:/a.txt", b"hi")
    commands = {
        ("list", "repo"): EMBEDDED_STACK,
        ("list", "commit", "r@master"): EMBEDDED_STACK,
        ("inspect", "file", "r@master:/a.txt"): EMBEDDED_STACK,
        ("get", "file", "r@master:/a.txt"): EMBEDDED_STACK,
        ("list", "pipeline"): EMBEDDED_STACK,
        ("list", "monitor"): MONITORING_LIBRARIES,
    }
    with Cairn(tmp_path).serving("remote", worker=False) as remote:
        for args, heavy in commands.items():
            proc = subprocess.run(
                [sys.executable, "-c", RUN, *args],
                capture_output=True,
                text=True,
                check=True,
                env=remote.env,
                cwd=tmp_path,
            )
            output, _, modules = proc.stdout.rstrip("\n").rpartition("\n")
            assert "cairn.api.remote.client" in json.loads(modules), args
            assert not set(json.loads(modules)) & heavy, args
            if args[0] == "get":
                assert output.startswith("hi"), output
