"""``cairn config``: saved contexts, the servers a user talks to (cairn.storage.contexts),
with pachctl's verbs: ``config set context``, ``config use context``, ``config list
context``, ``config delete context``."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli.output import Raw, app, err, print_json, print_table
from cairn.cli.root import subgroup
from cairn.storage.contexts import Context, check_url, config_dir, read_contexts, write_contexts
from cairn.storage.settings import read_settings

config = subgroup("Save, choose and list contexts: the cairn servers to talk to.")
_set = subgroup("Save a context.")
_use = subgroup("Make a context the active one.")
_list = subgroup("List contexts.")
_delete = subgroup("Delete a context.")
config.add_typer(_set, name="set")
config.add_typer(_use, name="use")
config.add_typer(_list, name="list")
config.add_typer(_delete, name="delete")
app.add_typer(
    config,
    name="config",
    help="Save, choose and list contexts: the cairn servers to talk to (as pachctl's).",
)


@_set.command("context")
def set_context(
    name: str,
    url: Annotated[str, typer.Option("--url", help="The server, http(s)://host:port.")],
    use: Annotated[bool, typer.Option("--use", help="Also make it the active context.")] = False,
) -> None:
    """Save context NAME for the cairn server at --url (replacing one of that name)."""
    folder = config_dir(read_settings().config_dir)
    saved = read_contexts(folder)
    url = check_url(url, "--url")
    old = saved.contexts.get(name)
    # A token saved for one server is never sent to another.
    token = old.token if old is not None and old.url == url else None
    saved = saved.with_context(Context(name, url, token))
    if use:
        saved = saved.using(name)
    path = write_contexts(folder, saved)
    err.print(f"saved context {name} ({url}) in {path}" + (", active" if use else ""))


@_use.command("context")
def use_context(name: str) -> None:
    """Make context NAME the active one: commands and cairn.connect() then talk to its
    server (unless CAIRN_URL or CAIRN_HOME says otherwise)."""
    folder = config_dir(read_settings().config_dir)
    saved = read_contexts(folder).using(name)
    write_contexts(folder, saved)
    err.print(f"using context {name} ({saved.get(name).url})")


@_list.command("context")
def list_context(raw: Raw = False) -> None:
    """List saved contexts; * marks the active one."""
    saved = read_contexts(config_dir(read_settings().config_dir))
    found = [saved.contexts[n] for n in sorted(saved.contexts)]
    if raw:
        return print_json(
            [{"name": c.name, "url": c.url, "active": c.name == saved.active} for c in found]
        )
    print_table(
        ["ACTIVE", "NAME", "URL"],
        [["*" if c.name == saved.active else "", c.name, c.url] for c in found],
    )


@_delete.command("context")
def delete_context(name: str) -> None:
    """Delete context NAME (and its token); deleting the active one goes back to the
    embedded store."""
    folder = config_dir(read_settings().config_dir)
    write_contexts(folder, read_contexts(folder).without(name))
    err.print(f"deleted context {name}")
