"""Every CLI command has help text and is named in the README (sqlite-utils' rule)."""

from pathlib import Path

import pytest
import typer.main

from cairn.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands() -> list[tuple[str, object]]:
    # Through click's listing API, which loads the lazily registered commands.
    group = typer.main.get_group(app)
    ctx = group.make_context("cairn", ["--help"], resilient_parsing=True)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if hasattr(command, "list_commands"):
            sub_ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
            found += [
                (f"{name} {s}", command.get_command(sub_ctx, s))
                for s in command.list_commands(sub_ctx)
            ]
        else:
            found.append((name, command))
    return found


COMMANDS = _commands()


def test_the_pachctl_verbs_are_all_there():
    names = {n for n, _ in COMMANDS}
    for verb in [
        "create repo",
        "list repo",
        "inspect repo",
        "delete repo",
        "put file",
        "get file",
        "list file",
        "glob file",
        "inspect file",
        "diff file",
        "delete file",
        "copy file",
        "start commit",
        "finish commit",
        "list commit",
        "inspect commit",
        "wait commit",
        "create branch",
        "list branch",
        "inspect branch",
        "create pipeline",
        "update pipeline",
        "list pipeline",
        "inspect pipeline",
        "delete pipeline",
        "stop pipeline",
        "start pipeline",
        "list job",
        "inspect job",
        "wait job",
        "list datum",
        "logs",
        "lineage",
        "run",
    ]:
        assert verb in names


@pytest.mark.parametrize("name,command", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_has_help_and_is_documented(name, command):
    assert (command.help or "").strip(), f"`cairn {name}` has no help text"
    verb, _, noun = name.partition(" ")
    assert verb in README
    if noun:
        assert noun in README
