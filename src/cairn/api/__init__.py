"""The face: the one Python API that the CLI, the HTTP server and the SDK call, embedded
(``cairn.Client``) or remote, as cairn.api.protocol defines it.

What it owns:

- ``protocol``: the Protocols (``ClientProtocol`` and one per sub-client). Both clients
  satisfy them; tests/api runs one conformance suite over every implementation.
- ``refs``: the one parser of the strings users type (``images@master:/a.png``,
  ``edges@<job>``, ``cancer@champion``, ``cancer/3``), over the layers' own parsers.
- ``types``: value objects only the face returns (lineage, logs, alias moves). The rest
  are the layers' frozen dataclasses (``CommitInfo``, ``JobInfo``, ``ModelVersion``, ...)
  and the states are their StrEnums (``CommitState``, ``JobState``, ``DatumState``,
  ``MonitorStep``), whose values are what the catalog stores.
- ``embedded``: one module per sub-client, each composed of the layer objects it needs
  (no mixins), attached to ``Client`` as properties.

Invariant: nothing crosses the face but plain values (strings, numbers, bytes, streams,
mappings, frozen dataclasses of those, enums), so every call serializes to JSON.
Compatibility: a sub-client forwards the old names of the class it replaced
(``client.runs.sync``); those the README taught warn with a DeprecationWarning for one
release (cairn.api.embedded._compat).
"""

from cairn._lazy import lazy_exports

_HOMES = {
    **dict.fromkeys(
        "BranchesProtocol ClientProtocol CommitsProtocol DeploymentsProtocol EventsProtocol"
        " FilesProtocol JobsProtocol ModelsProtocol MonitorsProtocol PipelinesProtocol"
        " ReposProtocol RunsProtocol SUB_CLIENTS".split(),
        "cairn.api.protocol",
    ),
    **dict.fromkeys("ModelRef RefLike data_ref job_ref model_ref".split(), "cairn.api.refs"),
    **dict.fromkeys(
        "AliasMove CommitLineage FileLineage InputCommit InputFile LineageNode LogEntry"
        " ModelLineage RunSummary TrainingLineage".split(),
        "cairn.api.types",
    ),
    "CommitState": "cairn.data",
    "DatumState": "cairn.pipelines",
    "JobState": "cairn.pipelines",
    "MonitorStep": "cairn.monitoring.rules",
}

__all__ = sorted(_HOMES)


# Lazy, so that the protocols load without the ML and monitoring layers.
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
