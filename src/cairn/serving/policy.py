"""Deployments and their traffic policies, stored in the catalog with every revision, and
the router that picks a target per request.

A policy, as canonical JSON (keys sorted, no spaces), for a 90/10 canary that mirrors
every request to version 7 and keeps a user on one side by the ``x-user`` header::

    {"routes": [{"target": "champion", "weight": 90.0},
                {"target": "challenger", "weight": 10.0}],
     "shadow": ["7"], "sticky_header": "x-user"}

A target is an alias of the deployment's model (``champion``) or a version number
(``"3"``); weights are relative (any non-negative numbers with a positive sum; the helpers
write percentages). Shadow targets get a copy of every request; their answers are logged,
never returned.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blake3 import blake3
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy import Connection, insert, select, update
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from cairn.catalog import Catalog
from cairn.catalog.schema import deployment_history, deployments
from cairn.data import InvalidReference, NotFound
from cairn.data.refs import check_name
from cairn.data.subject import about
from cairn.ml.events import record_event
from cairn.pipelines.documents import load_document, read_document_file
from cairn.serving.errors import PolicyConflict, PolicyError, ServingError

if TYPE_CHECKING:
    from cairn.ml.registry import Registry

__all__ = [
    "KEEP",
    "Deployment",
    "DeploymentRevision",
    "Deployments",
    "Route",
    "TrafficPolicy",
    "choose",
    "load_policy_file",
    "parse_policy",
    "sticky_point",
]

_TARGET = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# An HTTP field name is a token (RFC 9110, section 5.1).
_HEADER = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"


class _Keep:
    """The type of KEEP: "leave this part of the policy as it is"."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


class Route(BaseModel):
    """One weighted target: an alias (``champion``) or a version number (``"3"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(pattern=_TARGET, max_length=255)
    weight: float = Field(ge=0, allow_inf_nan=False)


class TrafficPolicy(BaseModel):
    """How a deployment's requests are spread: ``routes`` (weighted, at least one, distinct
    targets, positive total), ``shadow`` (targets that get a mirrored copy, not also routes)
    and ``sticky_header`` (a request header whose value pins a caller to one target while
    the weights stay the same; stored lower-case, as HTTP field names are case-insensitive).

    Construct it with ``parse_policy`` to get a PolicyError naming the field; the
    constructor raises pydantic's ValidationError.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: list[Route] = Field(min_length=1)
    shadow: list[str] = Field(default_factory=list)
    sticky_header: str | None = Field(default=None, pattern=_HEADER, max_length=255)

    @field_validator("routes")
    @classmethod
    def _routes(cls, routes: list[Route]) -> list[Route]:
        seen: set[str] = set()
        for i, route in enumerate(routes):
            if route.target in seen:
                raise ValueError(f"target {route.target!r} appears twice (at index {i})")
            seen.add(route.target)
        if sum(r.weight for r in routes) <= 0:
            raise ValueError("the weights add up to 0; give at least one route a weight above 0")
        return routes

    @field_validator("shadow")
    @classmethod
    def _shadow(cls, shadow: list[str], info: ValidationInfo) -> list[str]:
        routed = {r.target for r in info.data.get("routes") or [] if r.weight > 0}
        seen: set[str] = set()
        for i, target in enumerate(shadow):
            if not isinstance(target, str) or not _valid_target(target):
                raise ValueError(f"index {i}: {target!r} is not an alias or a version number")
            if target in seen:
                raise ValueError(f"target {target!r} appears twice")
            if target in routed:
                raise ValueError(f"target {target!r} is a route already; it cannot also shadow")
            seen.add(target)
        return shadow

    @field_validator("sticky_header")
    @classmethod
    def _sticky(cls, header: str | None) -> str | None:
        return header.lower() if header is not None else None

    def canonical(self) -> str:
        """The policy as canonical JSON (sorted keys, no spaces): what the catalog stores."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def targets(self) -> list[str]:
        """Every target named: routes with a positive weight, then shadows."""
        return [r.target for r in self.routes if r.weight > 0] + list(self.shadow)

    def percentages(self) -> dict[str, float]:
        """Each route's share of the traffic in percent."""
        total = sum(r.weight for r in self.routes)
        return {r.target: 100.0 * r.weight / total for r in self.routes}


def _valid_target(target: str) -> bool:
    return len(target) <= 255 and re.match(_TARGET, target) is not None


def parse_policy(data: Mapping[str, Any] | str | bytes | TrafficPolicy) -> TrafficPolicy:
    """A TrafficPolicy from a mapping or JSON text. Raises PolicyError whose message and
    ``problems`` name each bad field by its path (``routes.1.weight``)."""
    if isinstance(data, TrafficPolicy):
        return data
    try:
        if isinstance(data, str | bytes):
            return TrafficPolicy.model_validate_json(data)
        return TrafficPolicy.model_validate(data)
    except ValidationError as exc:
        raise _policy_error(exc) from None


def load_policy_file(path: str | Path) -> TrafficPolicy:
    """A TrafficPolicy from a UTF-8 JSON or YAML file (``set traffic -f``), read by
    cairn.pipelines.documents. Raises OSError if it cannot be read, PolicyError naming the
    file for text that is not one JSON/YAML mapping, and each bad field otherwise."""
    source = str(path)
    text = read_document_file(path, error=PolicyError)
    data = load_document(text, source, what="a traffic policy", error=PolicyError)
    try:
        return TrafficPolicy.model_validate(data)
    except ValidationError as exc:
        error = _policy_error(exc)
        raise PolicyError(f"{source}: {error}", error.problems) from None


def _policy_error(exc: ValidationError) -> PolicyError:
    problems = [
        (
            ".".join(str(p) for p in e["loc"]) or "policy",
            str(e["msg"]).removeprefix("Value error, "),
        )
        for e in exc.errors()
    ]
    text = "; ".join(f"{path}: {msg}" for path, msg in problems)
    return PolicyError(f"invalid traffic policy: {text}", problems)


def _build(**fields: Any) -> TrafficPolicy:
    return parse_policy(fields)


@dataclass(frozen=True)
class Deployment:
    """A served endpoint: ``model`` is the registered model it serves, ``policy`` how its
    requests are spread, ``revision`` counts policy changes (1 at creation), ``updated``
    UTC seconds since the epoch."""

    name: str
    model: str
    policy: TrafficPolicy
    revision: int
    updated: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "policy": self.policy.model_dump(mode="json"),
            "revision": self.revision,
            "updated": self.updated,
        }


@dataclass(frozen=True)
class DeploymentRevision:
    """One entry of a deployment's history: the policy it had from ``time`` (UTC seconds),
    why, and for a rollback the earlier revision it restored."""

    revision: int
    policy: TrafficPolicy
    time: float
    reason: str
    restores: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "policy": self.policy.model_dump(mode="json"),
            "time": self.time,
            "reason": self.reason,
            "restores": self.restores,
        }


class Deployments:
    """Deployments in the catalog (tables ``deployments`` and ``deployment_history``).

    Every change is one write transaction: the new policy, its history row and a
    ``deployment.*`` event together. Targets are checked against the registry before
    anything is written: a target that names no alias or version raises PolicyError.
    Unknown deployments raise NotFound.
    """

    def __init__(self, catalog: Catalog, registry: Registry) -> None:
        self.catalog = catalog
        self.registry = registry

    # -- reading -------------------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        """The deployment. Raises NotFound."""
        with self.catalog.read() as conn:
            row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
        if row is None:
            missing = NotFound(f"deployment {name!r} does not exist")
            raise about(missing, "deployment.missing", name=name)
        return _deployment(row)

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""
        with self.catalog.read() as conn:
            rows = conn.execute(select(deployments).order_by(deployments.c.name)).all()
        return [_deployment(r) for r in rows]

    def revision(self, name: str) -> int:
        """The deployment's policy revision (one small query; servers poll it). Raises
        NotFound."""
        with self.catalog.read() as conn:
            found = conn.execute(
                select(deployments.c.revision).where(deployments.c.name == name)
            ).scalar()
        if found is None:
            raise NotFound(f"deployment {name!r} does not exist")
        return int(found)

    def history(self, name: str) -> list[DeploymentRevision]:
        """Every revision of the deployment's policy, oldest first. Raises NotFound."""
        self.get(name)
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(deployment_history)
                .where(deployment_history.c.name == name)
                .order_by(deployment_history.c.revision)
            ).all()
        return [
            DeploymentRevision(r.revision, parse_policy(r.policy), r.time, r.reason, r.restores)
            for r in rows
        ]

    # -- writing -------------------------------------------------------------------------
    def ensure(self, name: str, model: str, target: str) -> Deployment:
        """The deployment ``name``, created if missing with all traffic to ``target`` of
        ``model``; an existing one is returned as it is. Raises PolicyError (no such
        target), ServingError (it exists and serves another model), InvalidReference (a
        name that is not allowed)."""
        check_name(name, "deployment")
        policy = _build(routes=[{"target": target, "weight": 100.0}])
        with self.catalog.read() as conn:
            row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
        if row is not None:
            return self._same_model(_deployment(row), model)
        self._check_targets(model, policy)
        now = time.time()
        with self.catalog.write() as conn:
            row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
            if row is not None:  # another server worker created it meanwhile
                return self._same_model(_deployment(row), model)
            conn.execute(
                insert(deployments).values(
                    name=name, model=model, policy=policy.canonical(), revision=1, updated=now
                )
            )
            self._record(conn, name, 1, policy, now, "created", None, "deployment.create", model)
        return self.get(name)

    def set_policy(
        self,
        name: str,
        policy: TrafficPolicy | Mapping[str, Any],
        *,
        reason: str = "",
        expected_revision: int | None = None,
        model: str | None = None,
    ) -> Deployment:
        """Replace the policy: revision + 1, a history row and a ``deployment.policy``
        event in one transaction. A policy equal to the current one changes nothing. With
        ``expected_revision``, raises PolicyConflict if the revision moved on meanwhile.
        With ``model``, a missing deployment is created (revision 1, all traffic to
        ``champion``) in the same transaction, as ``update`` does. Raises NotFound,
        PolicyError, ServingError (it serves another model)."""
        parsed = parse_policy(policy)
        if model is None:
            return self._write(name, parsed, reason, expected_revision, None)
        first = _build(routes=[{"target": "champion", "weight": 100.0}])
        whole = parsed.model_dump(mode="json")
        return self._change(name, lambda _: whole, reason, (model, first))

    def rollback(self, name: str, *, reason: str = "") -> Deployment:
        """Restore the policy in force before the current one, as a new revision. Rolling
        back again goes one further back (a rollback is undone by setting a policy, not by
        another rollback). Raises NotFound, PolicyError when there is nothing to go back to."""
        history = self.history(name)
        # Revisions still in effect, oldest first: a rollback pops the one it undid.
        stack: list[DeploymentRevision] = []
        for rev in history:
            if rev.restores is None:
                stack.append(rev)
            elif stack:
                stack.pop()
        if len(stack) < 2:
            none = PolicyError(f"deployment {name!r} has no earlier policy to roll back to")
            raise about(none, "deployment.first", name=name)
        back = stack[-2]
        return self._write(
            name,
            back.policy,
            reason or f"rollback to revision {back.revision}",
            history[-1].revision,
            back.revision,
        )

    # -- helpers over set_policy ---------------------------------------------------------
    def update(
        self,
        name: str,
        *,
        reset: str | None = None,
        split: Mapping[str, float] | None = None,
        canary: tuple[str, float] | None = None,
        shadow: Sequence[str] | None = None,
        sticky_header: str | None | _Keep = KEEP,
        reason: str = "",
        model: str | None = None,
    ) -> Deployment:
        """Change several parts of the policy as one revision, applied in this order:
        ``reset`` (all traffic to one target, no shadows), ``split`` (replace the routes by
        target -> weight; shadows that are now routed are dropped), ``canary`` ((target,
        percent): the target gets ``percent`` of the traffic, the other routes share the
        rest in their current proportions, 0 removes the target's route), ``shadow`` (the
        targets that get a copy; empty: none), ``sticky_header`` (a header name, or None
        for no pinning; ``KEEP`` leaves it). Helpers write weights as percentages.

        With ``model``, a missing deployment is created first, all traffic to the first
        target named (``reset``, else the first of ``split``, else ``champion``), in the
        same transaction as the change: revision 1 ``created``, then the change as
        revision 2, or neither. Raises PolicyError (also when a canary leaves nobody to
        take the rest), ServingError (it exists and serves another model), NotFound
        (missing, without ``model``), PolicyConflict (it kept changing meanwhile)."""
        parts = []
        if reset is not None:
            parts.append(f"reset to {reset}")
        if split is not None:
            parts.append("split " + ", ".join(f"{t}={w:g}" for t, w in split.items()))
        if canary is not None:
            if not 0 <= canary[1] <= 100:
                raise PolicyError(f"canary percent must be between 0 and 100, not {canary[1]:g}")
            parts.append(f"canary {canary[0]} {canary[1]:g}%")
        if shadow is not None:
            parts.append(f"shadow {', '.join(shadow) or 'none'}")
        if not isinstance(sticky_header, _Keep):
            parts.append(f"sticky header {sticky_header or 'none'}")

        def change(p: TrafficPolicy) -> dict[str, Any]:
            fields = p.model_dump(mode="json")
            if reset is not None:
                fields["routes"], fields["shadow"] = [{"target": reset, "weight": 100.0}], []
            if split is not None:
                fields["routes"] = [{"target": t, "weight": w} for t, w in split.items()]
                fields["shadow"] = [s for s in fields["shadow"] if split.get(s, 0) <= 0]
            if canary is not None:
                fields = _canary(fields, *canary)
            if shadow is not None:
                fields["shadow"] = list(shadow)
            if not isinstance(sticky_header, _Keep):
                fields["sticky_header"] = sticky_header
            return fields

        create = None
        if model is not None:
            first = reset or (next(iter(split)) if split else "champion")
            create = (model, _build(routes=[{"target": first, "weight": 100.0}]))
        return self._change(name, change, reason or "; ".join(parts), create)

    def canary(self, name: str, target: str, percent: float, *, reason: str = "") -> Deployment:
        """``update(name, canary=(target, percent))``."""
        return self.update(name, canary=(target, percent), reason=reason)

    def split(self, name: str, weights: Mapping[str, float], *, reason: str = "") -> Deployment:
        """``update(name, split=weights)``."""
        return self.update(name, split=weights, reason=reason)

    def shadow(self, name: str, targets: Sequence[str], *, reason: str = "") -> Deployment:
        """``update(name, shadow=targets)``."""
        return self.update(name, shadow=targets, reason=reason)

    def sticky(self, name: str, header: str | None, *, reason: str = "") -> Deployment:
        """``update(name, sticky_header=header)``."""
        return self.update(name, sticky_header=header, reason=reason)

    def reset(self, name: str, target: str, *, reason: str = "") -> Deployment:
        """``update(name, reset=target)``: all traffic to ``target``, no shadows (the
        sticky header stays)."""
        return self.update(name, reset=target, reason=reason)

    # -- internals -----------------------------------------------------------------------
    def _change(
        self,
        name: str,
        change: Callable[[TrafficPolicy], dict[str, Any]],
        reason: str,
        create: tuple[str, TrafficPolicy] | None = None,
    ) -> Deployment:
        """Apply ``change`` to the current policy as one revision, retrying when another
        writer moved the revision on; ``create`` = (model, first policy) creates a missing
        deployment in the same transaction."""
        # Each conflict means another writer moved the policy: read it again after a short
        # jittered pause, so that writers which keep colliding spread out.
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(PolicyConflict),
                stop=stop_after_attempt(5),
                wait=wait_random_exponential(multiplier=0.01, max=0.2),
                reraise=True,
            ):
                with attempt:
                    try:
                        current: Deployment | None = self.get(name)
                    except NotFound:
                        if create is None:
                            raise
                        current = None
                    if current is not None:
                        if create is not None:
                            self._same_model(current, create[0])
                        base, revision, fresh = current.policy, current.revision, None
                    else:
                        assert create is not None
                        check_name(name, "deployment")
                        self._check_targets(*create)
                        base, revision, fresh = create[1], 1, create
                    policy = _build(**change(base))
                    return self._write(name, policy, reason, revision, None, fresh)
        except PolicyConflict:
            pass
        raise PolicyConflict(f"deployment {name!r} keeps changing; try again")

    def _write(
        self,
        name: str,
        policy: TrafficPolicy,
        reason: str,
        expected_revision: int | None,
        restores: int | None,
        create: tuple[str, TrafficPolicy] | None = None,
    ) -> Deployment:
        """Write ``policy`` as the next revision. With ``create`` (model, first policy),
        the deployment must not exist yet: it is created as revision 1 in the same
        transaction (PolicyConflict if another writer created it meanwhile)."""
        model = create[0] if create is not None else self.get(name).model
        self._check_targets(model, policy)
        now = time.time()
        with self.catalog.write() as conn:
            row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
            if create is not None:
                if row is not None:
                    raise PolicyConflict(f"deployment {name!r} was created meanwhile")
                first = create[1]
                conn.execute(
                    insert(deployments).values(
                        name=name, model=model, policy=first.canonical(), revision=1, updated=now
                    )
                )
                self._record(conn, name, 1, first, now, "created", None, "deployment.create", model)
                row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
            if row is None:
                raise NotFound(f"deployment {name!r} was deleted meanwhile")
            if expected_revision is not None and row.revision != expected_revision:
                raise PolicyConflict(
                    f"deployment {name!r} is at revision {row.revision} now, not "
                    f"{expected_revision}; look at it again and retry"
                )
            if row.policy == policy.canonical():
                return _deployment(row)
            revision = int(row.revision) + 1
            conn.execute(
                update(deployments)
                .where(deployments.c.name == name)
                .values(policy=policy.canonical(), revision=revision, updated=now)
            )
            kind = "deployment.rollback" if restores is not None else "deployment.policy"
            self._record(conn, name, revision, policy, now, reason, restores, kind, row.model)
        return self.get(name)

    def _record(
        self,
        conn: Connection,
        name: str,
        revision: int,
        policy: TrafficPolicy,
        now: float,
        reason: str,
        restores: int | None,
        kind: str,
        model: str,
    ) -> None:
        conn.execute(
            insert(deployment_history).values(
                name=name,
                revision=revision,
                policy=policy.canonical(),
                time=now,
                reason=reason,
                restores=restores,
            )
        )
        info: dict[str, Any] = {
            "model": model,
            "revision": revision,
            "policy": policy.model_dump(mode="json"),
            "reason": reason,
        }
        if restores is not None:
            info["restores"] = restores
        record_event(conn, kind, name, info)

    def _check_targets(self, model: str, policy: TrafficPolicy) -> None:
        problems = []
        fields = [(f"routes.{i}.target", r.target) for i, r in enumerate(policy.routes)]
        fields += [(f"shadow.{i}", t) for i, t in enumerate(policy.shadow)]
        for path, target in fields:
            ref = f"{model}/{target}" if target.isdigit() else f"{model}@{target}"
            try:
                self.registry.resolve(ref)
            except (NotFound, InvalidReference):
                what = "version" if target.isdigit() else "alias"
                problems.append((path, f"model {model!r} has no {what} {target!r}"))
        if problems:
            text = "; ".join(f"{p}: {m}" for p, m in problems)
            raise about(
                PolicyError(f"invalid traffic policy: {text}", problems),
                "policy.targets",
                model=model,
            )

    @staticmethod
    def _same_model(found: Deployment, model: str) -> Deployment:
        if found.model != model:
            raise ServingError(
                f"deployment {found.name!r} serves model {found.model!r}, not {model!r}; "
                "give this one another deployment name"
            )
        return found


def _deployment(row: Any) -> Deployment:
    return Deployment(row.name, row.model, parse_policy(row.policy), row.revision, row.updated)


def _canary(fields: dict[str, Any], target: str, percent: float) -> dict[str, Any]:
    others = [r for r in fields["routes"] if r["target"] != target and r["weight"] > 0]
    total = sum(r["weight"] for r in others)
    if percent < 100 and total <= 0:
        raise PolicyError(
            f"no other route takes the remaining {100 - percent:g}%; name both with a split"
        )
    routes = [
        {"target": r["target"], "weight": (100 - percent) * r["weight"] / total}
        for r in others
        if percent < 100
    ]
    if percent > 0:
        routes.append({"target": target, "weight": float(percent)})  # last: see choose()
    shadow = [s for s in fields["shadow"] if s != target]
    return {**fields, "routes": routes, "shadow": shadow}


# -- routing -------------------------------------------------------------------------------
def sticky_point(value: str) -> float:
    """Where a sticky header's value falls in [0, 1): the first 8 bytes of its BLAKE3
    hash as a big-endian fraction of 2**64. The same value always falls at the same point,
    in every process and on every machine."""
    return int.from_bytes(blake3(value.encode()).digest(length=8), "big") / 2.0**64


def choose(
    routes: Sequence[tuple[str, float]], sticky_value: str | None, rng: random.Random
) -> str:
    """Pick a target from (target, weight) pairs with probability weight / total.

    Without ``sticky_value`` the draw is ``rng.random()``; with one it is
    ``sticky_point(sticky_value)``, so one caller keeps its target while the weights stay
    the same, and a canary that grows at the end of the list only takes callers over,
    never hands its own back. Routes of weight 0 are never chosen. Raises PolicyError if
    no weight is positive.
    """
    total = 0.0
    for _, weight in routes:
        if weight > 0:
            total += weight
    if total <= 0:
        raise PolicyError("no route has a weight above 0")
    point = (rng.random() if sticky_value is None else sticky_point(sticky_value)) * total
    acc = 0.0
    last = ""
    for target, weight in routes:
        if weight > 0:
            acc += weight
            last = target
            if point < acc:
                return target
    return last  # point rounded up to the total
