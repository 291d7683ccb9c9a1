"""``monitors.create``/``update`` of the remote client: a rule given as a file path is a
file of this machine, so it is read here, with the loader the embedded client uses
(cairn.monitoring.rules.load_rule_file, so errors name the file and field alike), and
sent as values; the server's route takes values only (cairn.api.wire.ON_THE_WIRE)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cairn.api.remote.client import RemoteSub
from cairn.monitoring.rules import MonitorInfo, MonitorRule, load_rule_file

__all__ = ["RemoteMonitorsBase"]

RuleLike = MonitorRule | Mapping[str, Any] | str | Path


class RemoteMonitorsBase(RemoteSub):
    """The methods of MonitorsProtocol that may read local files; the generated class adds
    the rest."""

    def create(self, rule: RuleLike) -> MonitorInfo:
        """MonitorsProtocol.create over the wire. Raises RuleError, AlreadyExists,
        OSError (a rule file that cannot be read)."""
        made: MonitorInfo = self._transport.call("monitors", "create", {"rule": _values(rule)})
        return made

    def update(self, rule: RuleLike) -> MonitorInfo:
        """MonitorsProtocol.update over the wire. Raises RuleError, NotFound, OSError."""
        made: MonitorInfo = self._transport.call("monitors", "update", {"rule": _values(rule)})
        return made


def _values(rule: RuleLike) -> Mapping[str, Any]:
    if isinstance(rule, str | Path):
        rule = load_rule_file(rule)
    if isinstance(rule, MonitorRule):
        return rule.model_dump(mode="json")
    return rule
