"""The one table of operation -> required roles (DESIGN.md, Service), checked at the face's
edge: a server calls ``authorize`` before every call of a sub-client method (and of the
extra operations in ``EXTRA``), ``visible`` on its result, and ``on_created`` after it
succeeded. With auth off (``AuthStore.is_active()`` false) everything is allowed. The
parts rules are made of (Need, Call, Rule, and the functions that derive needs from
arguments and results) are cairn.api.needs.

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
  pipelines, events) are open to any user and show only what they may read. An event
  shows to readers of what it is about (cairn.api.needs.shows_event: a data event's
  repos, a model's, alias's, deployment's or monitor's model); ``auth.*`` events only to
  clusterAdmins.
- ``auth.*``: ``whoami`` and ``check`` (one's own roles) any user; ``create_token``,
  ``create_s3_key``, ``list_s3_keys``, ``revoke_s3_key`` and ``set_role`` on the cluster
  clusterAdmin; ``list_tokens`` and
  ``revoke_token`` clusterAdmin, or the user themselves for their own tokens;
  ``set_role`` on a repo or model repoOwner of it; ``get_roles`` repoReader of it
  (clusterAdmin on the cluster).
  ``store.gc``, ``store.fsck`` and ``secrets.*`` are clusterAdmin.

Known gap: two users registering one new model name at once both pass; the one whose
call made version 1 owns it, the other's version stays in it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from cairn.api.needs import (
    ADMIN,
    CLUSTER,
    OWN,
    READ,
    WRITE,
    Call,
    Need,
    Needs,
    Owns,
    Rule,
    Shows,
    admin,
    admin_if,
    checked_deployment,
    deployment,
    head,
    model,
    monitor,
    monitor_rule,
    new_model_or_writer,
    on_resource,
    own_tokens,
    owns_new_model,
    owns_pipelines,
    owns_repo,
    pipeline_specs,
    repo,
    repos,
    run_repo,
    runs_repos,
    shows_comparison,
    shows_event,
    shows_explained,
    shows_model,
    shows_monitor,
    shows_repo,
    spec_inputs,
    token_owner,
)
from cairn.api.protocol import SUB_CLIENTS
from cairn.catalog.auth import AuthStore, Principal
from cairn.catalog.errors import PermissionDenied, Unauthenticated
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

ANY = Rule()
ADMIN_ONLY = Rule((admin,))


def _r(*needs: Needs, shows: Shows | None = None, owns: Owns | None = None) -> Rule:
    return Rule(tuple(needs), shows, owns)


RULES: dict[tuple[str, str], Rule] = {
    # repos
    ("repos", "list"): _r(shows=shows_repo("name")),
    ("repos", "get"): _r(repo("name", READ)),
    ("repos", "create"): _r(owns=owns_repo),
    ("repos", "delete"): _r(repo("name", OWN)),
    # branches
    ("branches", "list"): _r(repo("repo", READ)),
    ("branches", "get"): _r(repo("ref", READ)),
    # ``head`` is another ref of the same repo or, as ``repo@other``, of one given whole.
    ("branches", "create"): _r(repo("ref", WRITE), head),
    ("branches", "delete"): _r(repo("ref", WRITE)),
    # commits
    ("commits", "list"): _r(repo("ref", READ)),
    ("commits", "get"): _r(repo("ref", READ)),
    ("commits", "start"): _r(repo("ref", WRITE)),
    ("commits", "finish"): _r(repo("ref", WRITE)),
    ("commits", "wait"): _r(repo("ref", READ)),
    # the jobs downstream of a commit: those of pipelines the caller may read
    ("commits", "wait_jobs"): _r(repo("ref", READ), shows=shows_repo("pipeline")),
    # the store's maintenance and the secrets transforms see: the admin's
    ("store", "gc"): ADMIN_ONLY,
    ("store", "fsck"): ADMIN_ONLY,
    ("secrets", "list"): ADMIN_ONLY,
    ("secrets", "create"): ADMIN_ONLY,
    ("secrets", "delete"): ADMIN_ONLY,
    # masking tells whether a guessed value is a secret: the admin's too
    ("secrets", "mask"): ADMIN_ONLY,
    ("commits", "lineage"): _r(repo("ref", READ)),
    # downstream commits go with it: they were made from it, as a job's output is
    ("commits", "delete"): _r(repo("ref", WRITE)),
    ("commits", "squash"): _r(repo("ref", WRITE)),
    # files
    ("files", "put"): _r(repo("ref", WRITE)),
    ("files", "upload"): _r(repo("ref", WRITE), admin),
    ("files", "download"): _r(repo("ref", READ), admin),
    ("files", "read"): _r(repo("ref", READ)),
    ("files", "open"): _r(repo("ref", READ)),
    ("files", "read_range"): _r(repo("ref", READ)),
    ("files", "get"): _r(repo("ref", READ)),
    ("files", "list"): _r(repo("ref", READ)),
    ("files", "glob"): _r(repo("ref", READ)),
    ("files", "diff"): _r(repo("new", READ), repo("old", READ)),
    ("files", "copy"): _r(repo("src", READ), repo("dst", WRITE)),
    ("files", "delete"): _r(repo("ref", WRITE), repos("more", WRITE)),
    ("files", "lineage"): _r(repo("ref", READ)),
    # pipelines: the output repo has the pipeline's name
    ("pipelines", "list"): _r(shows=shows_repo("name")),
    ("pipelines", "get"): _r(repo("name", READ)),
    ("pipelines", "create"): _r(pipeline_specs(update=False), owns=owns_pipelines),
    ("pipelines", "update"): _r(pipeline_specs(update=True)),
    ("pipelines", "delete"): _r(repo("name", OWN)),
    ("pipelines", "broken"): _r(shows=shows_repo("name")),
    ("pipelines", "start"): _r(repo("name", WRITE)),
    ("pipelines", "stop"): _r(repo("name", WRITE)),
    ("pipelines", "rerun"): _r(repo("name", WRITE)),
    ("pipelines", "datums"): _r(spec_inputs),
    # jobs: ``pipeline@id``
    ("jobs", "list"): _r(repo("pipeline", READ), shows=shows_repo("pipeline")),
    ("jobs", "get"): _r(repo("ref", READ)),
    ("jobs", "wait"): _r(repo("ref", READ)),
    ("jobs", "datums"): _r(repo("ref", READ)),
    ("jobs", "logs"): _r(repo("ref", READ)),
    ("jobs", "stop"): _r(repo("ref", WRITE)),
    ("jobs", "restart_datum"): _r(repo("ref", WRITE)),
    ("jobs", "delete"): _r(repo("ref", WRITE)),
    # runs the pipeline's code again on the server's machine, as a job does
    ("jobs", "reproduce"): _r(repo("ref", WRITE)),
    # runs
    ("runs", "list"): _r(repo("pipeline", READ), shows=shows_repo("repo")),
    ("runs", "get"): _r(run_repo("ref", READ), shows=shows_repo("repo")),
    ("runs", "create"): ANY,
    ("runs", "log"): _r(run_repo("run", WRITE)),
    ("runs", "finish"): _r(run_repo("run", WRITE)),
    ("runs", "history"): _r(run_repo("run", READ)),
    ("runs", "compare"): _r(
        runs_repos("refs", READ), repo("pipeline", READ), shows=shows_comparison
    ),
    # models
    ("models", "list"): _r(shows=shows_model("name")),
    ("models", "get"): _r(model("spec", READ)),
    ("models", "versions"): _r(model("name", READ)),
    ("models", "register"): _r(
        new_model_or_writer,
        repo("ref", READ),
        admin_if("trust", "command"),
        owns=owns_new_model,
    ),
    ("models", "set_alias"): _r(model("spec", WRITE)),
    ("models", "delete_alias"): _r(model("spec", WRITE)),
    ("models", "rollback"): _r(model("spec", WRITE)),
    ("models", "aliases"): _r(model("name", READ)),
    ("models", "alias_history"): _r(model("spec", READ)),
    ("models", "lineage"): _r(model("spec", READ)),
    ("models", "download"): _r(model("spec", READ), admin),
    ("models", "diff"): _r(model("old", READ), model("new", READ)),
    # deployments: governed by the model they serve
    ("deployments", "list"): _r(shows=shows_model("model")),
    ("deployments", "get"): _r(deployment(READ)),
    ("deployments", "create"): _r(model("model", WRITE), deployment(WRITE)),
    ("deployments", "apply"): _r(deployment(WRITE), model("model", WRITE)),
    ("deployments", "rollback"): _r(deployment(WRITE)),
    ("deployments", "history"): _r(deployment(READ)),
    # monitors: governed by the model they watch
    ("monitors", "list"): _r(shows=shows_monitor),
    ("monitors", "get"): _r(monitor(READ)),
    ("monitors", "create"): _r(monitor_rule(update=False)),
    ("monitors", "update"): _r(monitor_rule(update=True)),
    ("monitors", "delete"): _r(monitor(WRITE)),
    ("monitors", "state"): _r(monitor(READ)),
    ("monitors", "tick"): ADMIN_ONLY,
    ("monitors", "check"): _r(
        model("spec", READ),
        repo("log_repo", READ),
        repo("labels", READ),
        repo("reference", READ),
        checked_deployment,
    ),
    # a logged request shows the lineage of the model that answered it: read on both
    ("monitors", "explain"): _r(repo("log_repo", READ), checked_deployment, shows=shows_explained),
    ("monitors", "replay"): _r(
        model("model", READ),
        repo("log_repo", READ),
        repo("labels", READ),
        checked_deployment,
    ),
    # events
    ("events", "list"): _r(shows=shows_event),
}
"""(sub-client, method) -> Rule, for every method of every Protocol in SUB_CLIENTS."""


EXTRA: dict[tuple[str, str], Rule] = {
    ("auth", "activate"): ADMIN_ONLY,  # only ever reached with auth off, when all is open
    ("auth", "whoami"): ANY,
    ("auth", "check"): ANY,
    ("auth", "create_token"): ADMIN_ONLY,
    ("auth", "create_s3_key"): ADMIN_ONLY,  # as a token: it signs as its user
    ("auth", "list_s3_keys"): ADMIN_ONLY,
    ("auth", "revoke_s3_key"): ADMIN_ONLY,
    ("auth", "list_tokens"): _r(own_tokens),
    ("auth", "revoke_token"): _r(token_owner),
    ("auth", "set_role"): _r(on_resource(ADMIN, OWN)),
    ("auth", "get_roles"): _r(on_resource(ADMIN, READ)),
    ("server", "settle"): ANY,
    # the whole store to and from one file (cairn.server.team.files): every repo's data
    ("store", "extract"): ADMIN_ONLY,
    ("store", "restore"): ADMIN_ONLY,
    # ``cairn serve``'s /admin/* routes (cairn.server.app), given the served model's name
    ("serve", "admin"): _r(model("model", WRITE)),
    # code bundles (cairn.server.team.specs): storing one grants nothing; the pipeline
    # that runs it needs its own roles
    ("pipelines", "code"): ANY,  # waits for the worker; reads and changes nothing
}
"""The server's operations beyond the sub-clients. Their keyword arguments: ``auth``'s
are AuthStore's (``create_token(subject, ttl)``, ``create_s3_key(subject)``,
``list_s3_keys(subject)``, ``revoke_s3_key(key_id)``,
``list_tokens(subject)``,
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
        _check(store, principal, shows(result, store))
        return result
    held = store.bindings_of(principal)
    admin = held.get((CLUSTER, ""))

    def allowed(need: Need) -> bool:
        return any(
            r is not None and r.implies(need.role)
            for r in (admin, held.get((need.kind, need.resource)))
        )

    return [item for item in result if all(allowed(n) for n in shows(item, store))]


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
