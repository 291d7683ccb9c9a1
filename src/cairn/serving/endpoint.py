"""One served deployment: the model versions its policy reaches, loaded before they take
traffic and swapped live when the policy or an alias moves.

State: one immutable routing table (policy revision, target -> version, the loaded
versions) behind one reference. ``refresh`` builds the next table off to the side, loading
every newly reachable version first, then swaps the reference under a short lock. Each
request takes its primary and shadow versions from one table and holds a reference count
on them until its prediction is done; a version that the new table no longer reaches is
closed when its last request lets go. So a policy change or a rollback never fails a
request: nothing a request holds is closed under it, and nothing unloaded is ever routed
to.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.data import NotFound
from cairn.data.subject import about
from cairn.ml.models import ModelVersion, Signature
from cairn.serving.errors import NotReady
from cairn.serving.policy import TrafficPolicy, choose
from cairn.serving.predict import enforce_signature, method_of, outcome, predict_logged
from cairn.serving.predlog import PredictionLog, make_record
from cairn.serving.source import ServingSource

if TYPE_CHECKING:
    from cairn.ml.flavors import LoadedModel

__all__ = ["Endpoint", "Prediction", "Routed", "predict_logged"]

log = logging.getLogger("cairn.serving.endpoint")


class _Slot:
    """A loaded version and how many requests hold it; closed once retired and free."""

    __slots__ = ("model", "refs", "retired", "version")

    def __init__(self, version: int, model: LoadedModel) -> None:
        self.version = version
        self.model = model
        self.refs = 0
        self.retired = False


@dataclass(frozen=True)
class _Table:
    revision: int
    key: tuple[Any, ...]
    policy: TrafficPolicy
    targets: dict[str, int]  # every target the policy names -> its version now
    routes: tuple[tuple[str, float], ...]  # (target, weight), weights > 0
    shadows: tuple[tuple[str, int], ...]  # (target, version)
    slots: dict[int, _Slot]


@dataclass
class Routed:
    """The versions one request uses, from one table: ``primary`` answers, ``shadows``
    get a copy. Hold it while predicting and ``release()`` it after (or use it as a
    context manager): until then none of its models is closed."""

    target: str
    primary: LoadedModel
    shadows: list[tuple[str, LoadedModel]]
    revision: int
    _endpoint: Endpoint = field(repr=False)
    _slots: list[_Slot] = field(repr=False)
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        """Let go of every model (idempotent)."""
        if not self._released:
            self._released = True
            self._endpoint._release(self._slots)

    def __enter__(self) -> Routed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class Prediction:
    """One request's answer: ``outputs`` as the model returned them (array, list or
    DataFrame), from ``version`` chosen by ``target``; ``latency_ms`` is the model's
    predict call; ``shadows`` the versions a copy went to."""

    request_id: str
    target: str
    version: ModelVersion
    outputs: Any
    latency_ms: float
    shadows: tuple[int, ...] = ()


class Endpoint:
    """The deployment ``name`` being served (see the module doc), read from ``source``
    (cairn.serving.source: the store in this process, ``StoreSource``, or a ``cairn
    server`` through the face).

    ``refresh()`` applies the current policy and aliases; ``start()`` refreshes once
    (raising if nothing can be loaded) and then every ``poll_interval`` seconds in a daemon
    thread; ``predict()`` answers a request. With a ``predlog``, every request and every
    shadow copy is logged (see cairn.serving.predlog for the record). Loaded model files are
    fetched into ``cache_dir``. ``strict_schema`` enforces signatures strictly (see
    ``cairn.ml.signature.enforce``; MLflow models keep MLflow's rules). Raises NotFound for
    an unknown deployment.
    """

    def __init__(
        self,
        source: ServingSource,
        name: str,
        *,
        cache_dir: Path,
        poll_interval: float = 0.5,
        shadow_workers: int = 2,
        predlog: PredictionLog | None = None,
        shadow_queue: int = 1000,
        rng: random.Random | None = None,
        strict_schema: bool = False,
    ) -> None:
        self.source = source
        self.strict_schema = strict_schema
        self.name = name
        self.model = source.deployment(name).model
        self.cache_dir = Path(cache_dir)
        self.poll_interval = poll_interval
        self.predlog = predlog
        self.shadow_queue = shadow_queue
        self.rng = rng or random.Random()
        self.last_error: str | None = None
        self.shadow_skipped = 0  # copies not made because the shadow pool was full
        self._table: _Table | None = None
        self._lock = threading.Lock()  # the table reference and the reference counts
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._shadow_pending = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max(1, shadow_workers), thread_name_prefix="cairn-shadow")

    # -- what is served ------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once a table is in place (every routed version loaded)."""
        return self._table is not None and not self._closed

    @property
    def revision(self) -> int | None:
        """The policy revision being served (None before the first refresh)."""
        table = self._table
        return table.revision if table else None

    @property
    def policy(self) -> TrafficPolicy | None:
        table = self._table
        return table.policy if table else None

    @property
    def targets(self) -> dict[str, int]:
        """Each target of the policy -> the version it reaches now."""
        table = self._table
        return dict(table.targets) if table else {}

    @property
    def versions(self) -> dict[int, ModelVersion]:
        """The loaded versions (routed and shadow) by number."""
        table = self._table
        return {v: s.model.version for v, s in table.slots.items()} if table else {}

    @property
    def primary(self) -> ModelVersion | None:
        """The version of the heaviest route (the first of equals): what metadata
        describes."""
        table = self._table
        if table is None:
            return None
        target = max(table.routes, key=lambda r: r[1])[0]
        return table.slots[table.targets[target]].model.version

    @property
    def signature(self) -> Signature | None:
        """The primary version's signature (MLflow's JSON form), or None."""
        table = self._table
        if table is None:
            return None
        target = max(table.routes, key=lambda r: r[1])[0]
        sig: Signature | None = table.slots[table.targets[target]].model.signature
        return sig

    def status(self) -> dict[str, Any]:
        """What the endpoint serves, as JSON: deployment, model, ready, revision, policy,
        targets, loaded versions, last refresh error, shadow copies skipped."""
        table = self._table
        return {
            "deployment": self.name,
            "model": self.model,
            "ready": self.ready,
            "revision": table.revision if table else None,
            "policy": table.policy.model_dump(mode="json") if table else None,
            "targets": dict(table.targets) if table else {},
            "versions": sorted(table.slots) if table else [],
            "last_error": self.last_error,
            "shadow_skipped": self.shadow_skipped,
        }

    # -- keeping up with the catalog -----------------------------------------------------
    def refresh(self) -> bool:
        """Read the policy and the aliases it names; if either changed, load every version
        now reachable that is not loaded yet, then swap the new table in. Versions no
        longer reachable are closed once their requests finish. Returns True if the table
        changed. Raises NotFound (deployment or alias gone), FlavorError (a version does
        not load); the table being served stays as it was."""
        with self._refresh_lock:
            deployment = self.source.deployment(self.name)
            policy = deployment.policy
            targets = self._targets(policy)
            key = (deployment.revision, tuple(sorted(targets.items())))
            current = self._table
            if current is not None and current.key == key:
                return False
            slots: dict[int, _Slot] = {}
            loaded: list[_Slot] = []
            try:
                for version in sorted(set(targets.values())):
                    have = current.slots.get(version) if current else None
                    if have is None:
                        have = _Slot(version, self._load(version))
                        loaded.append(have)
                    slots[version] = have
            except BaseException:
                for slot in loaded:
                    _close(slot)
                raise
            table = _Table(
                revision=deployment.revision,
                key=key,
                policy=policy,
                targets=targets,
                routes=tuple((r.target, r.weight) for r in policy.routes if r.weight > 0),
                shadows=tuple((t, targets[t]) for t in policy.shadow if t in targets),
                slots=slots,
            )
            free: list[_Slot] = []
            with self._lock:
                if self._closed:
                    free = loaded
                else:
                    self._table = table
                    for version, slot in current.slots.items() if current else ():
                        if version not in slots:
                            slot.retired = True
                            if slot.refs == 0:
                                free.append(slot)
            for slot in free:
                _close(slot)
            self.last_error = None
            log.info(
                "deployment %s: revision %d, %s",
                self.name,
                deployment.revision,
                ", ".join(f"{t}->v{v}" for t, v in targets.items()),
            )
            return True

    def _targets(self, policy: TrafficPolicy) -> dict[str, int]:
        """Each routed (weight > 0) and shadow target of ``policy`` -> its version now.
        Raises NotFound (a routed alias is not set; an unset shadow alias is skipped)."""
        aliases = self.source.aliases(self.model)
        targets: dict[str, int] = {}
        for target in [r.target for r in policy.routes if r.weight > 0]:
            found = _version_of(target, aliases)
            if found is None:
                unset = NotFound(
                    f"deployment {self.name!r} routes to alias {target!r} of model "
                    f"{self.model!r}, which is not set"
                )
                raise about(unset, "alias.unset", model=self.model, alias=target)
            targets[target] = found
        for target in policy.shadow:
            found = _version_of(target, aliases)
            if found is None:
                log.warning("deployment %s: shadow alias %r is not set", self.name, target)
            else:
                targets[target] = found
        return targets

    def prepare(self) -> list[int]:
        """Fetch every version the policy reaches into the cache, without loading any:
        what ``cairn serve`` checks before it starts its workers. Returns the version
        numbers. Raises NotFound (deployment, alias, version, or a version's files gone)."""
        targets = self._targets(self.source.deployment(self.name).policy)
        numbers = sorted(set(targets.values()))
        for version in numbers:
            self._fetch(version)
        return numbers

    def _fetch(self, version: int) -> tuple[ModelVersion, Path]:
        mv = self.source.version(self.model, version)
        try:
            return mv, self.source.fetch(mv, self.cache_dir)
        except NotFound as exc:
            raise NotFound(
                f"model {mv.name}/{mv.version} cannot be served: its files at {mv.ref} are "
                f"gone ({exc}); point the deployment's aliases at another version"
            ) from exc

    def _load(self, version: int) -> LoadedModel:
        from cairn.ml import flavors

        mv, local = self._fetch(version)
        return flavors.load(mv, local)

    def start(self) -> None:
        """Refresh once (errors propagate: nothing to serve) and then keep refreshing every
        ``poll_interval`` seconds in a daemon thread, logging failures and keeping the
        table being served."""
        self.refresh()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._poll, name=f"cairn-endpoint-{self.name}", daemon=True
            )
            self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving the current table
                message = f"{type(exc).__name__}: {exc}"
                if message != self.last_error:
                    log.warning("deployment %s: refresh failed: %s", self.name, message)
                self.last_error = message

    def close(self) -> None:
        """Stop refreshing, wait for shadow copies in flight, close every loaded model."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._refresh_lock, self._lock:
            self._closed = True
            table, self._table = self._table, None
        self._pool.shutdown(wait=True)
        free = []
        with self._lock:
            for slot in table.slots.values() if table else ():
                slot.retired = True
                if slot.refs == 0:
                    free.append(slot)
        for slot in free:
            _close(slot)

    # -- requests ------------------------------------------------------------------------
    def route(
        self, headers: Mapping[str, str] | None = None, *, version: int | None = None
    ) -> Routed:
        """Pick the versions for one request from one table snapshot: the primary by the
        policy's weights (by the sticky header's value when the policy names one and the
        request has it), or ``version`` if given (it must be loaded), plus every shadow.
        Release the result when done. Raises NotReady, NotFound (a version not served)."""
        with self._lock:
            table = self._table
            if table is None:
                raise NotReady(f"deployment {self.name!r} has no model version loaded yet")
            if version is None:
                sticky = _header(headers, table.policy.sticky_header)
                target = choose(table.routes, sticky, self.rng)
                slot = table.slots[table.targets[target]]
            else:
                slot_or_none = table.slots.get(version)
                if slot_or_none is None:
                    raise NotFound(
                        f"version {version} of {self.model!r} is not served by deployment "
                        f"{self.name!r} (serving {sorted(table.slots)})"
                    )
                slot, target = slot_or_none, str(version)
            shadows = [(t, table.slots[v]) for t, v in table.shadows if v != slot.version]
            held = [slot, *(s for _, s in shadows)]
            for s in held:
                s.refs += 1
        return Routed(
            target, slot.model, [(t, s.model) for t, s in shadows], table.revision, self, held
        )

    def _release(self, slots: list[_Slot]) -> None:
        free = []
        with self._lock:
            for slot in slots:
                slot.refs -= 1
                if slot.retired and slot.refs == 0:
                    free.append(slot)
        for slot in free:
            _close(slot)

    def predict(
        self,
        frame: Any,
        *,
        headers: Mapping[str, str] | None = None,
        params: dict[str, Any] | None = None,
        version: int | None = None,
        protocol: str = "mlflow",
        request_id: str | None = None,
    ) -> Prediction:
        """Answer one request (``frame``: a pandas DataFrame): route it, enforce the
        primary's signature, predict, and hand a copy to each shadow on the shadow pool
        (off the request path; their answers are only logged, with ``shadow: true``).
        Raises NotReady, NotFound (``version`` not served), SignatureError or InputRefused
        (a 400), or what else the model raised."""
        request_id = request_id or uuid.uuid4().hex
        routed = self.route(headers, version=version)
        primary = routed.primary
        mv = primary.version
        try:
            outputs, latency = predict_logged(
                primary,
                frame,
                params,
                predlog=self.predlog,
                request_id=request_id,
                deployment=self.name,
                protocol=protocol,
                target=routed.target,
                strict=self.strict_schema,
            )
            shadows = self._mirror(routed, frame, params, protocol, request_id)
        finally:
            routed.release()
        return Prediction(request_id, routed.target, mv, outputs, latency, shadows)

    def _mirror(
        self,
        routed: Routed,
        frame: Any,
        params: dict[str, Any] | None,
        protocol: str,
        request_id: str,
    ) -> tuple[int, ...]:
        """Queue a copy of the request for each shadow; each holds its own reference to
        its model until done. Copies beyond ``shadow_queue`` waiting are skipped and
        counted."""
        sent: list[int] = []
        for (target, model), slot in zip(routed.shadows, routed._slots[1:], strict=True):
            with self._lock:
                if self._shadow_pending >= self.shadow_queue or self._closed:
                    self.shadow_skipped += 1
                    continue
                self._shadow_pending += 1
                slot.refs += 1
            try:
                self._pool.submit(
                    self._shadow, target, model, slot, frame, params, protocol, request_id
                )
            except RuntimeError:  # the pool shut down: the endpoint is closing
                with self._lock:
                    self._shadow_pending -= 1
                    self.shadow_skipped += 1
                self._release([slot])
                continue
            sent.append(model.version.version)
        return tuple(sent)

    def _shadow(
        self,
        target: str,
        model: LoadedModel,
        slot: _Slot,
        frame: Any,
        params: dict[str, Any] | None,
        protocol: str,
        request_id: str,
    ) -> None:
        method = method_of(params)  # before predict: a model may consume its params
        started = time.perf_counter()
        status, error, outputs = "ok", None, None
        try:
            outputs = model.predict(
                enforce_signature(model, frame, self.strict_schema), params=params
            )
        except Exception as exc:  # noqa: BLE001 - a shadow's failure never reaches a caller
            status, error = outcome(exc)
        finally:
            latency = (time.perf_counter() - started) * 1000.0
            with self._lock:
                self._shadow_pending -= 1
            self._release([slot])
        if self.predlog is not None:
            self.predlog.submit(
                make_record(
                    request_id=request_id,
                    deployment=self.name,
                    model=self.model,
                    version=model.version.version,
                    protocol=protocol,
                    inputs=frame,
                    outputs=outputs,
                    latency_ms=latency,
                    shadow=True,
                    status=status,
                    error=error,
                    target=target,
                    method=method,
                )
            )


def _version_of(target: str, aliases: Mapping[str, int]) -> int | None:
    if target.isdigit():
        return int(target)
    found = aliases.get(target)
    return None if found is None else int(found)


def _header(headers: Mapping[str, str] | None, name: str | None) -> str | None:
    if not name or not headers:
        return None
    value = headers.get(name)
    if value is None and not hasattr(headers, "getlist"):  # a plain dict: any case
        for key, found in headers.items():
            if key.lower() == name:
                return found
    return value


def _close(slot: _Slot) -> None:
    try:
        slot.model.close()
    except Exception as exc:  # noqa: BLE001 - closing one model must not stop the others
        log.warning("closing version %d failed: %s", slot.version, exc)
