"""A monitor's persisted place in its loop (``monitor_state``) and its transitions.

A transition (``apply_move``) is one catalog write transaction holding the new step, the
cycle's findings (``info``) and the event ``monitor.<step>``, guarded by the row it leaves
(compare and set on cycle, step and update time): two processes ticking one monitor never
both move it, and a crash between two steps resumes at the step last recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from cairn.catalog.schema import monitor_state
from cairn.data import NotFound
from cairn.ml.events import record_event
from cairn.monitoring.rules import MonitorStep

if TYPE_CHECKING:
    from cairn.catalog.engine import Catalog

__all__ = ["STEPS", "MonitorState", "Move", "apply_move", "note", "read_state"]

STEPS = tuple(MonitorStep)


@dataclass(frozen=True)
class MonitorState:
    """Where a monitor's loop is: ``cycle`` (drift detections so far), ``step`` (one of
    STEPS), ``info`` (the current cycle's findings under ``"cycle"``, the last check under
    ``"last_check"``), ``updated`` (UTC seconds)."""

    monitor: str
    cycle: int
    step: MonitorStep
    info: dict[str, Any]
    updated: float

    def to_json(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "cycle": self.cycle,
            "step": self.step,
            "info": self.info,
            "updated": self.updated,
        }


@dataclass
class Move:
    """A transition: the next step, the event kind and reasons, and info changes."""

    step: MonitorStep
    kind: str
    reasons: dict[str, Any]
    cycle: dict[str, Any] | None = None  # merged into info["cycle"]
    end: bool = False  # the cycle is over: info["cycle"] moves to info["last_cycle"]


def read_state(catalog: Catalog, name: str) -> MonitorState:
    """The monitor's state row. Raises NotFound."""
    with catalog.read() as conn:
        row = conn.execute(select(monitor_state).where(monitor_state.c.monitor == name)).first()
    if row is None:
        raise NotFound(f"monitor {name!r} does not exist")
    return MonitorState(
        row.monitor, row.cycle, MonitorStep(row.step), json.loads(row.info), row.updated
    )


def apply_move(
    catalog: Catalog, name: str, state: MonitorState, move: Move, now: float
) -> dict[str, Any] | None:
    """Record a transition if the monitor is still where ``state`` says; return the
    event's reasons (None when another process moved it first)."""
    info = dict(state.info)
    idle = MonitorStep.IDLE
    cycle = state.cycle + (1 if state.step == idle and move.step != idle else 0)
    if move.kind == "monitor.drift" and move.step == idle:
        cycle = state.cycle + 1  # an alert-only cycle
    current = dict(info.get("cycle") or {})
    if move.cycle:
        current.update(move.cycle)
    info["cycle"] = current
    if move.end:
        info["last_cycle"] = {**current, "outcome": move.kind.removeprefix("monitor.")}
        info["after"] = current.get("after", info.get("after"))
        info["cycle"] = {}
    reasons = {"cycle": cycle, "step": move.step, **move.reasons}
    with catalog.write() as conn:
        done = conn.execute(
            update(monitor_state)
            .where(
                monitor_state.c.monitor == name,
                monitor_state.c.cycle == state.cycle,
                monitor_state.c.step == state.step,
                monitor_state.c.updated == state.updated,
            )
            .values(cycle=cycle, step=move.step, info=json.dumps(info), updated=now)
        )
        if done.rowcount != 1:
            return None
        if move.kind:
            record_event(conn, move.kind, name, reasons)
    return reasons


def note(catalog: Catalog, name: str, state: MonitorState, now: float, **changes: Any) -> None:
    """Update the idle monitor's info without a transition or an event."""
    info = {**state.info, **changes}
    with catalog.write() as conn:
        conn.execute(
            update(monitor_state)
            .where(
                monitor_state.c.monitor == name,
                monitor_state.c.step == state.step,
                monitor_state.c.updated == state.updated,
            )
            .values(info=json.dumps(info), updated=now)
        )
