"""``cairn auth``, and tokens: who may read or change what on a ``cairn server``, with
pachctl's verbs (``auth activate``, ``auth login``, ``auth whoami``, ``auth set repo REPO
ROLE USER``, ``auth get repo REPO``, ``auth check repo REPO``) and the token verbs
(``create token USER``, ``list token``, ``revoke token``).

A new token is printed once, alone on the last line of standard output, so a script can
take it (``TOKEN=$(cairn create token alice | tail -1)``); cairn never shows it again.
``auth activate`` and ``auth login`` save the token in the context the CLI is using
(``cairn config``), never in another's; with ``CAIRN_URL`` instead of a context, they say
to set ``CAIRN_TOKEN``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cairn.cli.output import Raw, app, client, err, fmt_time, groups, out, print_json, print_table
from cairn.cli.root import subgroup
from cairn.storage.errors import ConfigError, FieldError

auth = subgroup("Turn on and use tokens and roles on a cairn server (as pachctl auth).")
_set = subgroup("Give a user a role on a repo, a model or the cluster.")
_get = subgroup("List who holds which role on a repo, a model or the cluster.")
_check = subgroup("Show your own roles on a repo, a model or the cluster.")
auth.add_typer(_set, name="set")
auth.add_typer(_get, name="get")
auth.add_typer(_check, name="check")
app.add_typer(
    auth,
    name="auth",
    help="Tokens and roles on a cairn server: activate, login, whoami, set, get, check.",
)


def _remote() -> Any:
    """The remote client; auth is a server's. Raises ConfigError when embedded."""
    found = client()
    if not hasattr(found, "auth"):
        raise ConfigError(
            "auth is a cairn server's: set CAIRN_URL or use a context (cairn config)", "url"
        )
    return found


def _save_token(token: str) -> bool:
    """Save ``token`` in the context in use; False if the URL does not come from one."""
    from cairn.storage.contexts import config_dir, read_contexts, write_contexts
    from cairn.storage.settings import read_settings

    settings = read_settings()
    folder = config_dir(settings.config_dir)
    saved = read_contexts(folder)
    name = settings.context or saved.active
    if not name or name not in saved.contexts:
        return False
    context = saved.contexts[name]
    if context.url != settings.url:  # CAIRN_URL points elsewhere: not this context's
        return False
    write_contexts(folder, saved.with_context(type(context)(name, context.url, token)))
    return True


@auth.command("activate")
def activate() -> None:
    """Turn auth on: from now on every request needs a token. Prints the root token
    (clusterAdmin) once, alone on the last line."""
    token = _remote().auth.activate()
    if _save_token(token):
        err.print("auth is active; the root token is saved in this context")
    else:
        err.print("auth is active; set CAIRN_TOKEN to the root token below to use it")
    print(token)


@auth.command("login")
def login(
    token: Annotated[
        str | None, typer.Option("--token", "-t", help="The token (default: read from stdin).")
    ] = None,
) -> None:
    """Log in with a token (from --token or stdin): it is checked with the server, then
    saved in the context in use."""
    from cairn.api.remote.client import RemoteClient

    text = (token if token is not None else sys.stdin.readline()).strip()
    if not text:
        raise FieldError("give a token with --token or on stdin", "token")
    url = _remote().url
    with RemoteClient(url, text) as checked:
        me = checked.auth.whoami()
    if not _save_token(text):
        raise ConfigError(
            "logging in saves the token in a context (cairn config set context NAME --url "
            f"{url}); with CAIRN_URL, set CAIRN_TOKEN instead",
            "context",
        )
    err.print(f"logged in to {url} as {me['subject']}")


@auth.command("logout")
def logout() -> None:
    """Forget the token saved in the context in use (it stays valid: revoke it to end it)."""
    from cairn.storage.contexts import config_dir, read_contexts, write_contexts
    from cairn.storage.settings import read_settings

    settings = read_settings()
    folder = config_dir(settings.config_dir)
    saved = read_contexts(folder)
    name = settings.context or saved.active
    if not name or name not in saved.contexts:
        raise ConfigError("no context in use: nothing to log out of", "context")
    context = saved.contexts[name]
    write_contexts(folder, saved.with_context(type(context)(name, context.url, None)))
    err.print(f"logged out of context {name}")


@auth.command("whoami")
def whoami(raw: Raw = False) -> None:
    """Who the token in use belongs to, and their roles."""
    me = _remote().auth.whoami()
    if raw:
        return print_json(me)
    out.print(f"You are logged in as {me['subject']}")
    for binding in me["roles"]:
        where = "the cluster" if binding["kind"] == "cluster" else binding["resource"]
        out.print(f"  {binding['role']} on {binding['kind']} {where}".replace("cluster the ", ""))


Role = Annotated[
    str,
    typer.Argument(help="repoReader, repoWriter, repoOwner, clusterAdmin, or none to remove."),
]


def _set_role(kind: str, resource: str, role: str, user: str) -> None:
    _remote().auth.set_role(kind, resource, user, None if role == "none" else role)
    err.print(f"{user}: {role} on {kind} {resource}".rstrip())


def _get_roles(kind: str, resource: str, raw: bool) -> None:
    found = _remote().auth.get_roles(kind, resource)
    if raw:
        return print_json({k: [str(r) for r in v] for k, v in found.items()})
    print_table(["USER", "ROLES"], [[k, ", ".join(map(str, v))] for k, v in sorted(found.items())])


def _check_roles(kind: str, resource: str) -> None:
    out.print(", ".join(map(str, _remote().auth.check(kind, resource))) or "no role")


@_set.command("repo")
def set_repo(repo: str, role: Role, user: str) -> None:
    """Give USER ROLE on repo REPO (repoOwner of it, or clusterAdmin, may)."""
    _set_role("repo", repo, role, user)


@_set.command("model")
def set_model(model: str, role: Role, user: str) -> None:
    """Give USER ROLE on model MODEL: repoReader reads and serves its versions, repoWriter
    registers versions and moves aliases, repoOwner grants."""
    _set_role("model", model, role, user)


@_set.command("cluster")
def set_cluster(role: Role, user: str) -> None:
    """Give USER ROLE on the cluster: that role on every repo and model."""
    _set_role("cluster", "", role, user)


@_get.command("repo")
def get_repo(repo: str, raw: Raw = False) -> None:
    """Who holds which role on repo REPO."""
    _get_roles("repo", repo, raw)


@_get.command("model")
def get_model(model: str, raw: Raw = False) -> None:
    """Who holds which role on model MODEL."""
    _get_roles("model", model, raw)


@_get.command("cluster")
def get_cluster(raw: Raw = False) -> None:
    """Who holds which role on the cluster."""
    _get_roles("cluster", "", raw)


@_check.command("repo")
def check_repo(repo: str) -> None:
    """Your own roles on repo REPO."""
    _check_roles("repo", repo)


@_check.command("model")
def check_model(model: str) -> None:
    """Your own roles on model MODEL."""
    _check_roles("model", model)


@_check.command("cluster")
def check_cluster() -> None:
    """Your own roles on the cluster."""
    _check_roles("cluster", "")


# -- tokens ---------------------------------------------------------------------------
@groups["create"].command("token")
def create_token(
    user: str,
    ttl: Annotated[
        str | None, typer.Option("--ttl", help="How long it works: 30d, 12h, 90m (default: ever).")
    ] = None,
) -> None:
    """Create a token for USER (clusterAdmin); prints it once, alone on the last line."""
    from cairn.pipelines.units import parse_duration

    seconds = parse_duration(ttl, "--ttl") if ttl is not None else None
    info, token = _remote().auth.create_token(user, seconds)
    until = f", expires {fmt_time(info.expires)}" if info.expires else ""
    err.print(f"token {info.id} for {user}{until}")
    print(token)


@groups["create"].command("s3-key")
def create_s3_key(user: str) -> None:
    """Create an S3 access key for USER (clusterAdmin); prints its id, then its secret once.

    S3 clients sign requests with it (SigV4) to the S3 gateway of `cairn server --s3-port`,
    which acts with USER's roles: e.g. AWS_ACCESS_KEY_ID=<first line>,
    AWS_SECRET_ACCESS_KEY=<last line>."""
    key, secret = _remote().auth.create_s3_key(user)
    err.print(f"S3 access key for {user} (the secret is on the last line, shown once)")
    print(key.id)
    print(secret)


@groups["list"].command("s3-key")
def list_s3_key(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only USER's keys.")] = None,
    raw: Raw = False,
) -> None:
    """List S3 access keys (never their secrets), for a clusterAdmin."""
    found = _remote().auth.list_s3_keys(user)
    if raw:
        from pydantic import TypeAdapter

        return print_json(TypeAdapter(Any).dump_python(found, mode="json"))
    rows = [
        [k.id, k.subject, fmt_time(k.created), "revoked" if k.revoked_at else "active"]
        for k in found
    ]
    print_table(["ACCESS KEY ID", "USER", "CREATED", "STATE"], rows)


@groups["revoke"].command("s3-key")
def revoke_s3_key(key_id: str) -> None:
    """Revoke an S3 access key (its id); it stops working at once."""
    key = _remote().auth.revoke_s3_key(key_id)
    err.print(f"revoked S3 access key {key.id} of {key.subject}")


@groups["list"].command("token")
def list_token(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only USER's tokens.")] = None,
    raw: Raw = False,
) -> None:
    """List tokens (never their text): yours, or everyone's for a clusterAdmin."""
    found = _remote().auth.list_tokens(user)
    if raw:
        from pydantic import TypeAdapter

        return print_json(TypeAdapter(Any).dump_python(found, mode="json"))
    rows = [
        [
            t.id,
            t.subject,
            fmt_time(t.created),
            fmt_time(t.expires) if t.expires else "-",
            "revoked" if t.revoked_at else "active",
            f"...{t.hint}" if t.hint else "-",
        ]
        for t in found
    ]
    print_table(["ID", "USER", "CREATED", "EXPIRES", "STATE", "ENDS WITH"], rows)


@groups["revoke"].command("token")
def revoke_token(token: str) -> None:
    """Revoke a token (its id, or its text); it stops working at once."""
    info = _remote().auth.revoke_token(token)
    err.print(f"revoked token {info.id} of {info.subject}")
