"""The one table of operation -> required roles (DESIGN.md, Service), checked at the face's
edge: a server calls ``authorize`` before every call of a sub-client method (and of the
extra operations in ``EXTRA``), ``visible`` on its result, and ``on_created`` after it
succeeded. With auth off (``AuthStore.is_active()`` false) everything is allowed.

Each rule names, from the call's keyword arguments (bound to the Protocol's signature, so
defaults such as ``log_repo="predictions"`` count), the resources the call touches and the
role it needs on each. Resources are repos (a data ref's repo; a pipeline's or job's name
is its output repo), models (the name of a model spec), and the cluster. A rule with no
needs admits any authenticated user. Roles imply the lower ones: repoReader < repoWriter <
repoOwner < clusterAdmin; a role bound on the cluster holds on every resource.

Choices, where Pachyderm is silent or cairn has more than it:

- Data (repos, branches, commits, files): reads need repoReader, writes repoWriter
  (also moving or deleting a branch), deleting a repo repoOwner; creating one any user,
  who becomes its repoOwner. ``files.copy`` reads the source and writes the target;
  ``files.diff`` reads both sides.
- Operations that name a path on the server's own disk need clusterAdmin, since they
  would read or write the server's files: ``files.upload`` (local sources),
  ``files.download`` (local output), a pipeline spec or monitor rule given as a file
  path, and ``spec_dir``. A remote client sends contents instead.
- Pipelines (Pachyderm): creating one needs repoReader on every input and makes the
  creator repoOwner of its output repo; ``update``, ``start``, ``stop`` need repoWriter
  on the output repo (and read on the inputs), ``delete`` repoOwner. A spec that reads
  ``transform.secrets`` needs clusterAdmin: secrets are the admin's (``secrets.*``), and a
  transform sees their values. Jobs, datums and logs need repoReader on the pipeline.
- Models: the three repo roles on a model name: reader reads versions, aliases, lineage
  and runs drift checks; writer registers versions and moves or deletes aliases; owner
  grants. Registering a new model name is open to any user, who becomes its owner (the
  call that made version 1); an existing one needs repoWriter. Registering needs read on
  the source repo too. ``trust=True`` or a ``command`` model needs clusterAdmin: loading
  it runs code wherever it is served or registered, the server included.
- Deployments are governed by their model: reading one needs repoReader on the model it
  serves, creating or changing it (traffic, rollback) repoWriter, as moving an alias.
  So are ``cairn serve``'s admin routes (``serve.admin``: flushing the prediction log):
  repoWriter on the model served.
- Monitors are governed by their model as deployments are; a rule also needs read on
  every repo it reads (``log_repo``, ``reference``, labels, source, holdout, the training
  pipeline) and write on the repo it commits retraining data to (``action.retrain.to``);
  ``trust`` needs clusterAdmin. ``tick`` (advance every monitor) is clusterAdmin: the
  server does it by itself.
- Runs have no roles of their own: a pipeline's run is readable by readers of its repo,
  a run made through the SDK by any user (MLflow's tracking server without its auth
  plugin does the same), who may also log to it and finish it.
- Listings (repos, pipelines, jobs, runs, models, deployments, monitors, broken
  pipelines) are open to any user and show only what they may read; ``auth.*`` events
  only to clusterAdmins (other events are open: names and reasons, never data).
- ``auth.*``: ``whoami`` and ``check`` (one's own roles) any user; ``create_token`` and
  ``set_role`` on the cluster clusterAdmin; ``list_tokens`` and ``revoke_token``
  clusterAdmin, or the user themselves for their own tokens; ``set_role`` on a repo or
  model repoOwner of it; ``get_roles`` repoReader of it (clusterAdmin on the cluster).
  ``store.gc``, ``store.fsck`` and ``secrets.*`` are clusterAdmin.

Known gap: two users registering one new model name at once both pass; the one whose
call made version 1 owns it, the other's version stays in it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cairn.api.protocol import SUB_CLIENTS
from cairn.api.refs import data_ref, model_ref
from cairn.catalog.auth import AuthStore, Principal, ResourceKind, Role, token_id
from cairn.catalog.errors import PermissionDenied, Unauthenticated, UnknownToken
from cairn.catalog.schema import deployments, models, monitors, runs
from cairn.data import InvalidReference, Ref
from cairn.storage.errors import FieldError

__all__ = [
    "EXTRA",
    "RULES",
    "Call",
    "Need",
    "Rule",
    "authorize",
    "missing_rules",
    "on_created",
    "visible",
]

REPO, MODEL, CLUSTER = ResourceKind.REPO, ResourceKind.MODEL, ResourceKind.CLUSTER
READ, WRITE, OWN, ADMIN = Role.REPO_READER, Role.REPO_WRITER, Role.REPO_OWNER, Role.CLUSTER_ADMIN


@dataclass(frozen=True)
class Need:
    """``role`` on resource ``resource`` of ``kind`` ("" for the cluster)."""

    kind: ResourceKind
    resource: str
    role: Role


ADMIN_NEED = Need(CLUSTER, "", ADMIN)


@dataclass(frozen=True)
class Call:
    """One call being authorized: its arguments (bound to the method's signature,
    defaults filled in), who makes it, and the store to look resources up in."""

    args: Mapping[str, Any]
    principal: Principal
    store: AuthStore

    def arg(self, name: str) -> Any:
        return self.args.get(name)

    def lookup(self, table: Any, column: str, key_column: str, key: str) -> list[Any]:
        """Values of ``column`` in rows of ``table`` whose ``key_column`` is ``key``."""
        with self.store.catalog.read() as conn:
            return list(
                conn.execute(select(table.c[column]).where(table.c[key_column] == key)).scalars()
            )


Needs = Callable[[Call], Iterable[Need]]
Shows = Callable[[Any], Iterable[Need]]
Owns = Callable[[Call, Any], Iterable[tuple[ResourceKind, str]]]


@dataclass(frozen=True)
class Rule:
    """What one operation needs: every Need each of ``needs`` yields for the call (none:
    any authenticated user); ``shows``: the needs to see one item of its result (a list
    loses the items the caller may not see; any other result is refused whole);
    ``owns``: resources the call created, which ``on_created`` gives its caller."""

    needs: tuple[Needs, ...] = ()
    shows: Shows | None = None
    owns: Owns | None = None


# -- resources named by arguments ----------------------------------------------------------
def _repo_name(value: Any) -> str:
    if not isinstance(value, str | Ref):
        raise InvalidReference(f"expected a repo reference (repo@branch:/path), got {value!r}")
    return data_ref(value).repo


def _model_name(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidReference(f"expected a model name or spec (cancer@champion), got {value!r}")
    return model_ref(value).name


def repo(arg: str, role: Role) -> Needs:
    """``role`` on the repo of argument ``arg`` (a repo name, data ref, ``pipeline@job``
    or pipeline name), if given."""

    def needs(call: Call) -> Iterator[Need]:
        if call.arg(arg) is not None:
            yield Need(REPO, _repo_name(call.arg(arg)), role)

    return needs


def repos(arg: str, role: Role) -> Needs:
    """``role`` on the repo of each reference in sequence argument ``arg``."""

    def needs(call: Call) -> Iterator[Need]:
        for value in call.arg(arg) or ():
            yield Need(REPO, _repo_name(value), role)

    return needs


def model(arg: str, role: Role) -> Needs:
    """``role`` on the model argument ``arg`` names (a name or spec), if given."""

    def needs(call: Call) -> Iterator[Need]:
        if call.arg(arg) is not None:
            yield Need(MODEL, _model_name(call.arg(arg)), role)

    return needs


def admin_if(*args: str) -> Needs:
    """clusterAdmin when any of arguments ``args`` is given and not empty or false."""

    def needs(call: Call) -> Iterator[Need]:
        if any(call.arg(a) for a in args):
            yield ADMIN_NEED

    return needs


def _admin(call: Call) -> Iterator[Need]:
    yield ADMIN_NEED


def _server_path(arg: str) -> Needs:
    """clusterAdmin when argument ``arg`` is a path (a file on the server's disk)."""

    def needs(call: Call) -> Iterator[Need]:
        if isinstance(call.arg(arg), str | Path):
            yield ADMIN_NEED

    return needs


def _deployment(role: Role) -> Needs:
    """``role`` on the model deployment ``name`` serves (none while it does not exist)."""

    def needs(call: Call) -> Iterator[Need]:
        for served in call.lookup(deployments, "model", "name", call.arg("name")):
            yield Need(MODEL, served, role)

    return needs


def _monitor(role: Role) -> Needs:
    """``role`` on the model monitor ``name`` watches (none while it does not exist)."""

    def needs(call: Call) -> Iterator[Need]:
        for spec in call.lookup(monitors, "spec", "name", call.arg("name")):
            # The stored canonical JSON: its model field alone, without validating it all.
            yield Need(MODEL, _model_name(json.loads(spec)["model"]), role)

    return needs


def _run(arg: str, role: Role) -> Needs:
    """``role`` on the repo of every run argument ``arg`` may name (an id, a name or an
    id prefix, as ``Runs.get`` resolves it); runs outside pipelines need nothing."""

    def needs(call: Call) -> Iterator[Need]:
        ref = call.arg(arg)
        if not isinstance(ref, str):
            return
        with call.store.catalog.read() as conn:
            found = conn.execute(
                select(runs.c.repo).where(
                    (runs.c.id == ref)
                    | (runs.c.name == ref)
                    | runs.c.id.startswith(ref, autoescape=True)
                )
            ).scalars()
            named = sorted({r for r in found if r is not None})
        for name in named:
            yield Need(REPO, name, role)

    return needs


def _runs(arg: str, role: Role) -> Needs:
    def needs(call: Call) -> Iterator[Need]:
        for ref in call.arg(arg) or ():
            yield from _run("ref", role)(Call({"ref": ref}, call.principal, call.store))

    return needs


def _pipeline_specs(*, update: bool) -> Needs:
    """Read on every input of every spec; on update, write on each output repo too;
    clusterAdmin for a spec file on the server, ``spec_dir`` or ``transform.secrets``."""

    def needs(call: Call) -> Iterator[Need]:
        from cairn.pipelines import PipelineSpec
        from cairn.pipelines.spec import parse_spec

        spec = call.arg("spec")
        if isinstance(spec, str | Path) or call.arg("spec_dir") is not None:
            yield ADMIN_NEED
            return
        items = [spec] if isinstance(spec, PipelineSpec | Mapping) else list(spec or ())
        for item in items:
            parsed = item if isinstance(item, PipelineSpec) else parse_spec(item)
            for pfs in parsed.input.pfs_inputs():
                yield Need(REPO, pfs.repo, READ)
            if update:
                yield Need(REPO, parsed.name, WRITE)
            if parsed.transform.secrets:
                yield ADMIN_NEED

    return needs


def _monitor_rule(*, update: bool) -> Needs:
    """Write on the rule's model and the repo retraining commits to, read on the repos
    it reads; clusterAdmin for a rule file on the server or ``trust``."""

    def needs(call: Call) -> Iterator[Need]:
        from cairn.monitoring.rules import parse_rule

        rule = call.arg("rule")
        if isinstance(rule, str | Path):
            yield ADMIN_NEED
            return
        parsed = parse_rule(dict(rule) if isinstance(rule, Mapping) else rule)
        yield Need(MODEL, parsed.model_name, WRITE)
        if parsed.deployment is not None:
            yield from _deployment(WRITE)(Call({"name": parsed.deployment}, *_rest(call)))
        for read in (parsed.log_repo, parsed.reference):
            if read is not None:
                yield Need(REPO, _repo_name(read), READ)
        retrain = parsed.action.retrain
        if retrain is not None:
            for read in (retrain.labels, retrain.evaluate.holdout, retrain.pipeline):
                if read is not None:
                    yield Need(REPO, _repo_name(read), READ)
            if retrain.source != "window":
                yield Need(REPO, _repo_name(retrain.source), READ)
            yield Need(REPO, _repo_name(retrain.to), WRITE)
            if retrain.trust:
                yield ADMIN_NEED
        if update:
            yield from _monitor(WRITE)(Call({"name": parsed.name}, *_rest(call)))

    return needs


def _checked_deployment(call: Call) -> Iterator[Need]:
    """Read on the model that deployment ``deployment``, if given, serves."""
    if call.arg("deployment") is not None:
        yield from _deployment(READ)(Call({"name": call.arg("deployment")}, *_rest(call)))


def _rest(call: Call) -> tuple[Principal, AuthStore]:
    return call.principal, call.store


def _new_model_or_writer(call: Call) -> Iterator[Need]:
    """Write on model ``name`` if it exists; a new name is anyone's (they will own it)."""
    if call.lookup(models, "name", "name", _model_name(call.arg("name"))):
        yield Need(MODEL, _model_name(call.arg("name")), WRITE)


def _head(call: Call) -> Iterator[Need]:
    """Read on the repo of a branch head given as ``repo@other``."""
    head = call.arg("head")
    if isinstance(head, str) and "@" in head:
        yield Need(REPO, _repo_name(head), READ)


def _own_tokens(call: Call) -> Iterator[Need]:
    """clusterAdmin unless the tokens are the caller's own (``subject``: theirs)."""
    if call.arg("subject") != call.principal.subject:
        yield ADMIN_NEED


def _token_owner(call: Call) -> Iterator[Need]:
    """clusterAdmin unless the token is the caller's own (an unknown one: admins only,
    who learn it is unknown)."""
    try:
        owner = call.store.get_token(token_id(str(call.arg("token_or_id")))).subject
    except UnknownToken:
        owner = None
    if owner != call.principal.subject:
        yield ADMIN_NEED


def _on_resource(cluster: Role, other: Role) -> Needs:
    """``cluster`` for kind cluster, else ``other`` on the resource the call names."""

    def needs(call: Call) -> Iterator[Need]:
        try:
            kind = ResourceKind(call.arg("kind"))
        except ValueError:
            raise FieldError(f"unknown resource kind {call.arg('kind')!r}", field="kind") from None
        if kind is CLUSTER:
            yield Need(CLUSTER, "", cluster)
        else:
            yield Need(kind, str(call.arg("resource")), other)

    return needs


# -- what results show ----------------------------------------------------------------------
def _shows_repo(attr: str) -> Shows:
    def shows(item: Any) -> Iterator[Need]:
        name = getattr(item, attr)
        if name is not None:
            yield Need(REPO, name, READ)

    return shows


def _shows_model(attr: str) -> Shows:
    def shows(item: Any) -> Iterator[Need]:
        yield Need(MODEL, _model_name(getattr(item, attr)), READ)

    return shows


def _shows_monitor(item: Any) -> Iterator[Need]:
    yield Need(MODEL, item.rule.model_name, READ)


def _shows_comparison(item: Any) -> Iterator[Need]:
    for run in item.runs:
        yield from _shows_repo("repo")(run)


def _shows_event(item: Any) -> Iterator[Need]:
    if item.kind.startswith("auth."):
        yield ADMIN_NEED


# -- what calls create ----------------------------------------------------------------------
def _owns_repo(call: Call, result: Any) -> Iterator[tuple[ResourceKind, str]]:
    yield REPO, result.name


def _owns_pipelines(call: Call, result: Any) -> Iterator[tuple[ResourceKind, str]]:
    for info in result:
        yield REPO, info.name


def _owns_new_model(call: Call, result: Any) -> Iterator[tuple[ResourceKind, str]]:
    if result.version == 1:  # this call made the model
        yield MODEL, result.name


ANY = Rule()
ADMIN_ONLY = Rule((_admin,))


def _r(*needs: Needs, shows: Shows | None = None, owns: Owns | None = None) -> Rule:
    return Rule(tuple(needs), shows, owns)


RULES: dict[tuple[str, str], Rule] = {
    # repos
    ("repos", "list"): _r(shows=_shows_repo("name")),
    ("repos", "get"): _r(repo("name", READ)),
    ("repos", "create"): _r(owns=_owns_repo),
    ("repos", "delete"): _r(repo("name", OWN)),
    # branches
    ("branches", "list"): _r(repo("repo", READ)),
    ("branches", "get"): _r(repo("ref", READ)),
    # ``head`` is another ref of the same repo or, as ``repo@other``, of one given whole.
    ("branches", "create"): _r(repo("ref", WRITE), _head),
    ("branches", "delete"): _r(repo("ref", WRITE)),
    # commits
    ("commits", "list"): _r(repo("ref", READ)),
    ("commits", "get"): _r(repo("ref", READ)),
    ("commits", "start"): _r(repo("ref", WRITE)),
    ("commits", "finish"): _r(repo("ref", WRITE)),
    ("commits", "wait"): _r(repo("ref", READ)),
    # the jobs downstream of a commit: those of pipelines the caller may read
    ("commits", "wait_jobs"): _r(repo("ref", READ), shows=_shows_repo("pipeline")),
    # the store's maintenance and the secrets transforms see: the admin's
    ("store", "gc"): ADMIN_ONLY,
    ("store", "fsck"): ADMIN_ONLY,
    ("secrets", "list"): ADMIN_ONLY,
    ("secrets", "create"): ADMIN_ONLY,
    ("secrets", "delete"): ADMIN_ONLY,
    # masking tells whether a guessed value is a secret: the admin's too
    ("secrets", "mask"): ADMIN_ONLY,
    ("commits", "lineage"): _r(repo("ref", READ)),
    # files
    ("files", "put"): _r(repo("ref", WRITE)),
    ("files", "upload"): _r(repo("ref", WRITE), _admin),
    ("files", "download"): _r(repo("ref", READ), _admin),
    ("files", "read"): _r(repo("ref", READ)),
    ("files", "open"): _r(repo("ref", READ)),
    ("files", "get"): _r(repo("ref", READ)),
    ("files", "list"): _r(repo("ref", READ)),
    ("files", "glob"): _r(repo("ref", READ)),
    ("files", "diff"): _r(repo("new", READ), repo("old", READ)),
    ("files", "copy"): _r(repo("src", READ), repo("dst", WRITE)),
    ("files", "delete"): _r(repo("ref", WRITE), repos("more", WRITE)),
    ("files", "lineage"): _r(repo("ref", READ)),
    # pipelines: the output repo has the pipeline's name
    ("pipelines", "list"): _r(shows=_shows_repo("name")),
    ("pipelines", "get"): _r(repo("name", READ)),
    ("pipelines", "create"): _r(_pipeline_specs(update=False), owns=_owns_pipelines),
    ("pipelines", "update"): _r(_pipeline_specs(update=True)),
    ("pipelines", "delete"): _r(repo("name", OWN)),
    ("pipelines", "broken"): _r(shows=_shows_repo("name")),
    ("pipelines", "start"): _r(repo("name", WRITE)),
    ("pipelines", "stop"): _r(repo("name", WRITE)),
    ("pipelines", "rerun"): _r(repo("name", WRITE)),
    # jobs: ``pipeline@id``
    ("jobs", "list"): _r(repo("pipeline", READ), shows=_shows_repo("pipeline")),
    ("jobs", "get"): _r(repo("ref", READ)),
    ("jobs", "wait"): _r(repo("ref", READ)),
    ("jobs", "datums"): _r(repo("ref", READ)),
    ("jobs", "logs"): _r(repo("ref", READ)),
    # runs
    ("runs", "list"): _r(repo("pipeline", READ), shows=_shows_repo("repo")),
    ("runs", "get"): _r(_run("ref", READ), shows=_shows_repo("repo")),
    ("runs", "create"): ANY,
    ("runs", "log"): _r(_run("run", WRITE)),
    ("runs", "finish"): _r(_run("run", WRITE)),
    ("runs", "history"): _r(_run("run", READ)),
    ("runs", "compare"): _r(_runs("refs", READ), repo("pipeline", READ), shows=_shows_comparison),
    # models
    ("models", "list"): _r(shows=_shows_model("name")),
    ("models", "get"): _r(model("spec", READ)),
    ("models", "versions"): _r(model("name", READ)),
    ("models", "register"): _r(
        _new_model_or_writer,
        repo("ref", READ),
        admin_if("trust", "command"),
        owns=_owns_new_model,
    ),
    ("models", "set_alias"): _r(model("spec", WRITE)),
    ("models", "delete_alias"): _r(model("spec", WRITE)),
    ("models", "rollback"): _r(model("spec", WRITE)),
    ("models", "aliases"): _r(model("name", READ)),
    ("models", "alias_history"): _r(model("spec", READ)),
    ("models", "lineage"): _r(model("spec", READ)),
    # deployments: governed by the model they serve
    ("deployments", "list"): _r(shows=_shows_model("model")),
    ("deployments", "get"): _r(_deployment(READ)),
    ("deployments", "create"): _r(model("model", WRITE), _deployment(WRITE)),
    ("deployments", "apply"): _r(_deployment(WRITE), model("model", WRITE)),
    ("deployments", "rollback"): _r(_deployment(WRITE)),
    ("deployments", "history"): _r(_deployment(READ)),
    # monitors: governed by the model they watch
    ("monitors", "list"): _r(shows=_shows_monitor),
    ("monitors", "get"): _r(_monitor(READ)),
    ("monitors", "create"): _r(_monitor_rule(update=False)),
    ("monitors", "update"): _r(_monitor_rule(update=True)),
    ("monitors", "delete"): _r(_monitor(WRITE)),
    ("monitors", "state"): _r(_monitor(READ)),
    ("monitors", "tick"): ADMIN_ONLY,
    ("monitors", "check"): _r(
        model("spec", READ),
        repo("log_repo", READ),
        repo("labels", READ),
        repo("reference", READ),
        _checked_deployment,
    ),
    # events
    ("events", "list"): _r(shows=_shows_event),
}
"""(sub-client, method) -> Rule, for every method of every Protocol in SUB_CLIENTS."""


EXTRA: dict[tuple[str, str], Rule] = {
    ("auth", "activate"): ADMIN_ONLY,  # only ever reached with auth off, when all is open
    ("auth", "whoami"): ANY,
    ("auth", "check"): ANY,
    ("auth", "create_token"): ADMIN_ONLY,
    ("auth", "list_tokens"): _r(_own_tokens),
    ("auth", "revoke_token"): _r(_token_owner),
    ("auth", "set_role"): _r(_on_resource(ADMIN, OWN)),
    ("auth", "get_roles"): _r(_on_resource(ADMIN, READ)),
    ("server", "settle"): ANY,
    # ``cairn serve``'s /admin/* routes (cairn.server.app), given the served model's name
    ("serve", "admin"): _r(model("model", WRITE)),
    # code bundles (cairn.server.team.specs): storing one grants nothing; the pipeline
    # that runs it needs its own roles
    ("pipelines", "code"): ANY,  # waits for the worker; reads and changes nothing
}
"""The server's operations beyond the sub-clients. Their keyword arguments: ``auth``'s
are AuthStore's (``create_token(subject, ttl)``, ``list_tokens(subject)``,
``revoke_token(token_or_id)``, ``set_role(kind, resource, subject, role)``,
``get_roles(kind, resource)``, ``check(kind, resource)``), taken as given."""


def missing_rules(sub_clients: Mapping[str, type] = SUB_CLIENTS) -> list[str]:
    """``sub.method`` of every public method of the Protocols in ``sub_clients`` that has
    no rule in RULES (a server should refuse to start while any is missing)."""
    return [
        f"{sub}.{name}"
        for sub, protocol in sub_clients.items()
        for name in _methods(protocol)
        if (sub, name) not in RULES
    ]


def _methods(protocol: type) -> list[str]:
    return sorted(n for n, v in vars(protocol).items() if not n.startswith("_") and callable(v))


def _bind(sub: str, method: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the Protocol method's defaults added (a ``*more`` parameter taken
    as a list under its name). Raises FieldError for an unknown or missing argument."""
    protocol = SUB_CLIENTS.get(sub)
    function = vars(protocol).get(method) if protocol is not None else None
    if function is None:
        return dict(kwargs)
    params = list(inspect.signature(function).parameters.values())[1:]  # self
    unknown = set(kwargs) - {p.name for p in params}
    if unknown:
        raise FieldError(
            f"{sub}.{method} takes no argument {sorted(unknown)[0]!r}", field=sorted(unknown)[0]
        )
    args: dict[str, Any] = {}
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            args[p.name] = list(kwargs.get(p.name) or ())
        elif p.name in kwargs:
            args[p.name] = kwargs[p.name]
        elif p.default is inspect.Parameter.empty:
            raise FieldError(f"{sub}.{method} needs argument {p.name!r}", field=p.name)
        else:
            args[p.name] = p.default
    return args


def _rule(sub: str, method: str) -> Rule:
    # An operation with no rule is for clusterAdmins only: refusing is the safe default.
    return RULES.get((sub, method)) or EXTRA.get((sub, method)) or ADMIN_ONLY


def _principal(store: AuthStore, principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("this server needs a token (none was sent)")
    return principal


def _check(store: AuthStore, principal: Principal, needs: Iterable[Need]) -> None:
    held = None
    for need in needs:
        if held is None:
            held = store.bindings_of(principal)
        roles = [held.get((CLUSTER, "")), held.get((need.kind, need.resource))]
        if not any(r is not None and r.implies(need.role) for r in roles):
            where = "the cluster" if need.kind is CLUSTER else f"{need.kind} {need.resource}"
            raise PermissionDenied(
                f"{principal.subject} lacks {need.role} on {where}",
                subject=principal.subject,
                role=need.role,
                kind=need.kind,
                resource=need.resource,
            )


def authorize(
    store: AuthStore,
    principal: Principal | None,
    sub: str,
    method: str,
    kwargs: Mapping[str, Any],
) -> None:
    """Raise unless ``principal`` may call ``sub.method`` with keyword arguments
    ``kwargs`` (as the request gives them; ``*more`` as a list). Allows everything while
    auth is off. Raises Unauthenticated (auth on, no principal), PermissionDenied naming
    the first role lacked, FieldError (an argument the method does not take or lacks),
    InvalidReference, SpecError, RuleError (arguments that name nothing)."""
    if not store.is_active():
        return
    principal = _principal(store, principal)
    call = Call(_bind(sub, method, kwargs), principal, store)
    _check(store, principal, (need for needs in _rule(sub, method).needs for need in needs(call)))


def visible(
    store: AuthStore, principal: Principal | None, sub: str, method: str, result: Any
) -> Any:
    """``result`` of ``sub.method`` as ``principal`` may see it: a list without the items
    they may not read; any other result as it is, or PermissionDenied if they may not
    read it (a run of a repo they cannot read, fetched by id). Everything while auth is
    off."""
    shows = _rule(sub, method).shows
    if shows is None or not store.is_active():
        return result
    principal = _principal(store, principal)
    if not isinstance(result, list):
        _check(store, principal, shows(result))
        return result
    held = store.bindings_of(principal)
    admin = held.get((CLUSTER, ""))

    def allowed(need: Need) -> bool:
        return any(
            r is not None and r.implies(need.role)
            for r in (admin, held.get((need.kind, need.resource)))
        )

    return [item for item in result if all(allowed(n) for n in shows(item))]


def on_created(
    store: AuthStore,
    principal: Principal | None,
    sub: str,
    method: str,
    kwargs: Mapping[str, Any],
    result: Any,
) -> None:
    """After ``sub.method`` succeeded with ``result``: make ``principal`` the owner of
    what it created (a repo, each pipeline's output repo, a model at its first version),
    replacing bindings left from a deleted namesake. Does nothing while auth is off or
    for calls that create nothing."""
    owns = _rule(sub, method).owns
    if owns is None or principal is None or not store.is_active():
        return
    call = Call(dict(kwargs), principal, store)
    for kind, name in owns(call, result):
        store.set_owner(kind, name, principal.subject)
