"""The ``cairn`` app, its verb groups and its global options, with commands loaded lazily.

Click's lazy-group pattern over typer: each group lists its commands from
``cairn.cli.commands`` and imports a command's module only when that command runs (or
shows its own help), so ``cairn --help``, ``cairn VERB --help`` and ``cairn --version``
import typer and nothing of the library. A command module registers its commands at
import on ``app`` or ``groups[verb]`` (re-exported by ``cairn.cli.output``), as it always
has.

Help is click's plain layout (``rich_markup_mode=None``): typer's rich help costs more
start-up than the whole budget of ``cairn --help``.
"""

from __future__ import annotations

import importlib
from difflib import get_close_matches
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from cairn.cli.commands import COMMANDS, VERBS

__all__ = ["LazyGroup", "app", "debugging", "groups", "output_format", "subgroup", "verb"]

_debug = False
_verb: str | None = None
_output: str | None = None


def output_format() -> str | None:
    """``json`` or ``yaml`` when the command was given ``-o``/``--output`` (pachctl's
    ``--raw -o yaml``), else None."""
    return _output


def verb() -> str | None:
    """The verb of the command running (``create`` of ``cairn create repo``), if any."""
    return _verb


def debugging() -> bool:
    """Whether ``--debug`` (or ``CAIRN_DEBUG``) asked for tracebacks instead of one line."""
    return _debug


class LazyGroup(TyperGroup):
    """A group whose commands named in ``COMMANDS`` load on first use.

    The root group is the one typer names ``""``; its lazy commands are the table's
    ``(verb, None)`` rows. A verb group is named by its verb; its lazy commands are that
    verb's ``(verb, noun)`` rows.
    """

    def _lazy(self) -> dict[str, tuple[str, str]]:
        """Command name -> (module, one-line help) of this group's table rows."""
        verb = self.name or None
        if verb is None:
            return {v: row for (v, noun), row in COMMANDS.items() if noun is None}
        return {noun: row for (v, noun), row in COMMANDS.items() if v == verb and noun}

    def list_commands(self, ctx: Any) -> list[str]:
        lazy = self._lazy()
        return [*lazy, *(name for name in self.commands if name not in lazy)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        row = self._lazy().get(cmd_name)
        if command is None and row is not None:
            command = self.commands[cmd_name] = _load(self.name or None, cmd_name, row[0])
        return command

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        # typer (0.29) coerces an absent --help, None, through a pydantic adapter: importing
        # pydantic more than doubles `cairn VERB --help`. A bool default passes as it is.
        if option is not None and option.default is None:
            option.default = False
        return option

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # typer suggests only among the commands built so far; suggest among all of them.
        name = args[0] if args else ""
        if not self.name:  # the root group: remember the verb for cairn.cli.output.client
            global _verb
            _verb = name or None
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.suggest_commands
            and name not in self.list_commands(ctx)
        ):
            matches = get_close_matches(name, self.list_commands(ctx))
            hint = f" Did you mean {', '.join(map(repr, matches))}?" if matches else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """click's command list, each with the whole first paragraph of its help (as typer's
        rich help shows it), from the table for commands not loaded."""
        lazy = self._lazy()
        rows = []
        for name in self.list_commands(ctx):
            if name in lazy:
                rows.append((name, lazy[name][1]))
            elif not self.commands[name].hidden:
                command = self.commands[name]
                rows.append((name, command.short_help or _summary(command.help or "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _summary(help: str) -> str:
    """The first paragraph of ``help`` on one line."""
    return " ".join(help.strip().split("\n\n")[0].split())


def _load(verb: str | None, name: str, module: str) -> Any:
    """Import ``cairn.cli.<module>`` and build the click command it registered as ``name``
    (on ``app`` when ``verb`` is None, else on ``groups[verb]``), or the group of its own
    commands (``cairn config``) it added to ``app`` as ``name``."""
    importlib.import_module(f"cairn.cli.{module}")
    owner = app if verb is None else groups[verb]
    for group in owner.registered_groups if verb is None else ():
        if group.name == name:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=owner.pretty_exceptions_short,
                suggest_commands=owner.suggest_commands,
                rich_markup_mode=owner.rich_markup_mode,
            )
    for info in reversed(owner.registered_commands):
        assert info.callback is not None
        if (info.name or typer.main.get_command_name(info.callback.__name__)) == name:
            return _with_output_option(
                typer.main.get_command_from_info(
                    info,
                    pretty_exceptions_short=owner.pretty_exceptions_short,
                    rich_markup_mode=owner.rich_markup_mode,
                )
            )
    raise LookupError(
        f"cairn.cli.{module} registers no command {name!r}: cairn.cli.commands is out of date"
    )


def _output_args(args: list[str]) -> tuple[list[str], str | None]:
    """``args`` without ``-o FORMAT``/``--output FORMAT``/``--output=FORMAT``/``-oFORMAT``,
    and that FORMAT (the last given), or None."""
    kept: list[str] = []
    found: str | None = None
    it = iter(args)
    for arg in it:
        if arg == "--":
            kept += [arg, *it]
            break
        if arg in ("-o", "--output"):
            found = next(it, "")
        elif arg.startswith("--output="):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-o") and not arg.startswith("--"):
            found = arg[2:]
        else:
            kept.append(arg)
    return kept, found


def _with_output_option(command: Any) -> Any:
    """``command`` with pachctl's ``-o/--output json|yaml`` when it prints ``--raw`` JSON
    and has no ``-o`` of its own: ``-o yaml`` implies ``--raw`` and prints YAML.

    One hook on the arguments here instead of an option on every command with ``--raw``
    (typer builds options from signatures; a hand-made option would reach into typer's
    vendored click)."""
    names = {p.name for p in command.params}
    taken = {opt for p in command.params for opt in p.opts}
    if "raw" not in names or {"-o", "--output"} & taken:
        return command
    command.help = (command.help or "") + (
        "\n\n-o, --output json|yaml: print JSON or YAML (implies --raw), as pachctl's."
    )
    parse_args = command.parse_args

    def parse(ctx: Any, args: list[str]) -> Any:
        global _output
        args, found = _output_args(args)
        if found is not None:
            if found not in ("json", "yaml"):
                ctx.fail(f"-o/--output: {found!r} is not one of 'json', 'yaml'")
            _output = found
            args = [*args, "--raw"]
        return parse_args(ctx, args)

    command.parse_args = parse
    return command


def subgroup(help: str) -> typer.Typer:
    """A group of commands of its own (``cairn config``, ``cairn auth`` and theirs), set up
    as every group of the app is, without lazy loading (its module is loaded already)."""
    return typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        help=help,
    )


def _typer(help: str) -> typer.Typer:
    return typer.Typer(
        cls=LazyGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        help=help,
    )


app = _typer("cairn: versioned data and data-driven pipelines (pachctl's verbs).")
groups = {verb: _typer(text) for verb, text in VERBS.items()}
for _verb, _group in groups.items():
    app.add_typer(_group, name=_verb)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("cairn")
        except PackageNotFoundError:  # run from a source checkout that is not installed
            import cairn

            number = cairn.__version__
        typer.echo(f"cairn {number}")
        raise typer.Exit()


def _set_debug(value: bool) -> None:
    global _debug
    _debug = value


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print cairn's version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="CAIRN_DEBUG",
            callback=_set_debug,
            help="On an unexpected error, print the traceback instead of one line.",
        ),
    ] = False,
) -> None:
    pass
