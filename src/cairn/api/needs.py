"""What the rules of cairn.api.access are made of: ``Need`` (a role on a resource),
``Call`` (one call being authorized), ``Rule`` (what an operation needs, what its result
shows, what it creates), and the functions that derive them: needs from a call's
arguments (``repo``, ``model``, ``deployment``...), needs to see one item of a result
(``shows_*``), and the resources a call created (``owns_*``). The table itself, and the
checks that apply it, are cairn.api.access.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cairn.api.refs import data_ref, model_ref
from cairn.catalog.auth import AuthStore, Principal, ResourceKind, Role, token_id
from cairn.catalog.errors import UnknownToken
from cairn.catalog.schema import deployments, events, models, monitors, runs
from cairn.data import InvalidReference, Ref
from cairn.storage.errors import FieldError

__all__ = [
    "ADMIN",
    "ADMIN_NEED",
    "CLUSTER",
    "MODEL",
    "OWN",
    "READ",
    "REPO",
    "WRITE",
    "Call",
    "Need",
    "Needs",
    "Owns",
    "Rule",
    "Shows",
    "admin",
    "admin_if",
    "checked_deployment",
    "deployment",
    "head",
    "model",
    "monitor",
    "monitor_rule",
    "new_model_or_writer",
    "on_resource",
    "own_tokens",
    "owns_new_model",
    "owns_pipelines",
    "owns_repo",
    "pipeline_specs",
    "repo",
    "repos",
    "run_repo",
    "runs_repos",
    "shows_comparison",
    "shows_event",
    "shows_explained",
    "shows_model",
    "shows_monitor",
    "shows_repo",
    "token_owner",
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
Shows = Callable[[Any, AuthStore], Iterable[Need]]
Owns = Callable[[Call, Any], Iterable[tuple[ResourceKind, str]]]


@dataclass(frozen=True)
class Rule:
    """What one operation needs: every Need each of ``needs`` yields for the call (none:
    any authenticated user); ``shows``: the needs to see one item of its result (a list
    loses the items the caller may not see; any other result is refused whole);
    ``owns``: resources the call created, which ``on_created`` gives its caller. ``shows``
    is given the store too, for items whose resource must be looked up."""

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


def admin(call: Call) -> Iterator[Need]:
    yield ADMIN_NEED


def _server_path(arg: str) -> Needs:
    """clusterAdmin when argument ``arg`` is a path (a file on the server's disk)."""

    def needs(call: Call) -> Iterator[Need]:
        if isinstance(call.arg(arg), str | Path):
            yield ADMIN_NEED

    return needs


def deployment(role: Role) -> Needs:
    """``role`` on the model deployment ``name`` serves (none while it does not exist)."""

    def needs(call: Call) -> Iterator[Need]:
        for served in call.lookup(deployments, "model", "name", call.arg("name")):
            yield Need(MODEL, served, role)

    return needs


def monitor(role: Role) -> Needs:
    """``role`` on the model monitor ``name`` watches (none while it does not exist)."""

    def needs(call: Call) -> Iterator[Need]:
        for spec in call.lookup(monitors, "spec", "name", call.arg("name")):
            # The stored canonical JSON: its model field alone, without validating it all.
            yield Need(MODEL, _model_name(json.loads(spec)["model"]), role)

    return needs


def run_repo(arg: str, role: Role) -> Needs:
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


def runs_repos(arg: str, role: Role) -> Needs:
    def needs(call: Call) -> Iterator[Need]:
        for ref in call.arg(arg) or ():
            yield from run_repo("ref", role)(Call({"ref": ref}, call.principal, call.store))

    return needs


def pipeline_specs(*, update: bool) -> Needs:
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
            for pfs in parsed.pfs_inputs():
                yield Need(REPO, pfs.repo, READ)
            if update:
                yield Need(REPO, parsed.name, WRITE)
            if parsed.transform.secrets:
                yield ADMIN_NEED

    return needs


def spec_inputs(call: Call) -> Iterator[Need]:
    """Read on every input repo of the one spec ``spec`` (a preview reads them only)."""
    from cairn.pipelines.spec import parse_spec

    spec = call.arg("spec")
    parsed = parse_spec(dict(spec) if isinstance(spec, Mapping) else spec)
    for pfs in parsed.pfs_inputs():
        yield Need(REPO, pfs.repo, READ)


def monitor_rule(*, update: bool) -> Needs:
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
            yield from deployment(WRITE)(Call({"name": parsed.deployment}, *_rest(call)))
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
            yield from monitor(WRITE)(Call({"name": parsed.name}, *_rest(call)))

    return needs


def checked_deployment(call: Call) -> Iterator[Need]:
    """Read on the model that deployment ``deployment``, if given, serves."""
    if call.arg("deployment") is not None:
        yield from deployment(READ)(Call({"name": call.arg("deployment")}, *_rest(call)))


def _rest(call: Call) -> tuple[Principal, AuthStore]:
    return call.principal, call.store


def new_model_or_writer(call: Call) -> Iterator[Need]:
    """Write on model ``name`` if it exists; a new name is anyone's (they will own it)."""
    if call.lookup(models, "name", "name", _model_name(call.arg("name"))):
        yield Need(MODEL, _model_name(call.arg("name")), WRITE)


def head(call: Call) -> Iterator[Need]:
    """Read on the repo of a branch head given as ``repo@other``."""
    head = call.arg("head")
    if isinstance(head, str) and "@" in head:
        yield Need(REPO, _repo_name(head), READ)


def own_tokens(call: Call) -> Iterator[Need]:
    """clusterAdmin unless the tokens are the caller's own (``subject``: theirs)."""
    if call.arg("subject") != call.principal.subject:
        yield ADMIN_NEED


def token_owner(call: Call) -> Iterator[Need]:
    """clusterAdmin unless the token is the caller's own (an unknown one: admins only,
    who learn it is unknown)."""
    try:
        owner = call.store.get_token(token_id(str(call.arg("token_or_id")))).subject
    except UnknownToken:
        owner = None
    if owner != call.principal.subject:
        yield ADMIN_NEED


def on_resource(cluster: Role, other: Role) -> Needs:
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
def shows_repo(attr: str) -> Shows:
    def shows(item: Any, store: AuthStore) -> Iterator[Need]:
        name = getattr(item, attr)
        if name is not None:
            yield Need(REPO, name, READ)

    return shows


def shows_model(attr: str) -> Shows:
    def shows(item: Any, store: AuthStore) -> Iterator[Need]:
        yield Need(MODEL, _model_name(getattr(item, attr)), READ)

    return shows


def shows_monitor(item: Any, store: AuthStore) -> Iterator[Need]:
    yield Need(MODEL, item.rule.model_name, READ)


def shows_explained(item: Any, store: AuthStore) -> Iterator[Need]:
    """Read on the model that answered an explained request (its lineage is in it)."""
    name = (item.get("request") or {}).get("model")
    if name:
        yield Need(MODEL, _model_name(str(name)), READ)


def shows_comparison(item: Any, store: AuthStore) -> Iterator[Need]:
    for run in item.runs:
        yield from shows_repo("repo")(run, store)


def shows_event(item: Any, store: AuthStore) -> Iterator[Need]:
    """Read on what an event is about: ``data.*`` the repos its subject and commit name;
    ``pipeline.*`` the pipeline's output repo; ``model.*``/``alias.*`` the model;
    ``deployment.*`` the model it serves; ``monitor.*`` the model the monitor watched then
    (its latest ``monitor.create``/``update`` event up to this one). ``auth.*``, and
    anything whose resource cannot be told, clusterAdmin."""
    kind, subject, info = item.kind, item.subject, item.info
    family = kind.split(".", 1)[0]
    try:
        if family == "data":
            named = [subject] if subject else []
            if isinstance(info.get("commit"), str):
                named.append(info["commit"])
            if not named:
                yield ADMIN_NEED
            for ref in named:
                yield Need(REPO, _repo_name(ref), READ)
        elif family == "pipeline":  # about a pipeline: its output repo
            yield Need(REPO, _repo_name(subject), READ)
        elif family in ("model", "alias"):
            yield Need(MODEL, _model_name(subject), READ)
        elif family == "deployment" and isinstance(info.get("model"), str):
            yield Need(MODEL, _model_name(info["model"]), READ)
        elif family == "monitor":
            watched = info.get("model") if kind in _MONITOR_RULE_EVENTS else None
            if not isinstance(watched, str):
                watched = _monitor_model(store, subject, item.id)
            if watched is None:
                yield ADMIN_NEED
            else:
                yield Need(MODEL, _model_name(watched), READ)
        else:
            yield ADMIN_NEED
    except InvalidReference:  # a subject that names no resource: not for everyone
        yield ADMIN_NEED


_MONITOR_RULE_EVENTS = ("monitor.create", "monitor.update")


def _monitor_model(store: AuthStore, monitor: str, before: int) -> str | None:
    """The model monitor ``monitor`` watched at event ``before``: that of its latest rule
    event up to it (the monitor may be gone since); None if it had none."""
    with store.catalog.read() as conn:
        row = conn.execute(
            select(events.c.info)
            .where(
                events.c.subject == monitor,
                events.c.kind.in_(_MONITOR_RULE_EVENTS),
                events.c.id <= before,
            )
            .order_by(events.c.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    model = json.loads(row.info).get("model")
    return model if isinstance(model, str) else None


# -- what calls create ----------------------------------------------------------------------
def owns_repo(call: Call, result: Any) -> Iterator[tuple[ResourceKind, str]]:
    yield REPO, result.name


def owns_pipelines(call: Call, result: Any) -> Iterator[tuple[ResourceKind, str]]:
    for info in result:
        yield REPO, info.name


def owns_new_model(call: Call, result: Any) -> Iterator[tuple[ResourceKind, str]]:
    if result.version == 1:  # this call made the model
        yield MODEL, result.name
