"""pipelines: specs, datums, the incremental planner, jobs, executors, triggers.

Owns
    * ``spec.py``: pipeline specs with Pachyderm's field names (pydantic), and the one
      parse path, with its limits, for spec files and stored specs alike;
    * ``schedule.py``: cron schedules (croniter, ``@every``, ``never``); ``cron.py``: the
      ticks of cron inputs; ``triggers.py``: branch triggers (``input.pfs.trigger``); all
      take the current time as a parameter, and ``propagate`` runs them first;
    * ``secret_store.py``: the values ``transform.secrets`` refer to, kept out of specs,
      the catalog and logs (masked);
    * ``datums.py``: cutting inputs into datums; datum id (which) vs hash (changed?);
    * ``executor.py`` / ``sandbox.py`` / ``containers.py``: running one datum in bubblewrap,
      in its image (podman or docker) or on the host;
    * ``daemons.py``: spout and service pipelines, long-lived processes that the runner
      starts, restarts with backoff and stops;
    * ``batch.py``: ``datum_batching``, one process working through many datums over a
      channel (the wire protocol is documented there; ``cairn.sdk`` speaks it);
    * ``service.py``: Pipelines — create/update/delete and triggering (``propagate``);
      it holds a JobRunner, which holds a JobHistory (composed, not inherited);
    * ``rows.py``: stored pipelines read back (one, all, the broken ones);
    * ``jobs.py``: running one job (plan, pool, confinement, job rows);
    * ``ray_executor.py``: the same datums as Ray tasks on a cluster, by datum set
      (``CAIRN_EXECUTOR=ray``); nodes move the bytes, the coordinator commits;
    * ``output.py``: what a job leaves: its output commit and its datum records;
    * ``history.py``: jobs, datums and logs as recorded;
    * ``lineage.py``: commit-level and file-level lineage;
    * ``environment.py``: environment fingerprints and code hashes for provenance.

Invariants
    * A job writes its output commit only when every datum succeeded (or was
      recovered); otherwise nothing is written and the previous output stays.
    * A datum whose hash a successful earlier job processed is skipped and its
      outputs kept; outputs of datums that changed or vanished are deleted.
    * Every output file carries the hash of the datum that wrote it; two datums
      writing one path fail the job, naming both.
    * Output commits record their input commits (provenance rows), spec version,
      transform and code hashes, and the environment fingerprint.
    * This is the lowest layer that starts processes.
    * A stored spec is one that ``read_spec`` reads back; a row that does not (stored by an
      older cairn) is a broken pipeline, listed and skipped, never a crash of the others.
    * cairn keeps secret values in the secrets file only (a transform may still write one
      to its output).

Incremental semantics follow Pachyderm: the salt is part of every datum hash;
``update pipeline`` keeps it (unchanged datums are skipped even if the code
changed), ``update pipeline --reprocess`` draws a new one.
"""

from typing import TYPE_CHECKING

from cairn._lazy import lazy_exports

if TYPE_CHECKING:
    from cairn.pipelines.errors import PipelineError, SpecError
    from cairn.pipelines.lineage import CommitNode, commit_lineage, file_lineage
    from cairn.pipelines.models import (
        DatumInfo,
        DatumState,
        JobInfo,
        JobState,
        PipelineInfo,
        Reporter,
    )
    from cairn.pipelines.service import Pipelines
    from cairn.pipelines.spec import PipelineSpec, load_spec_file, load_specs

# Each name is imported on first use: a remote client needs the spec and value types,
# not the service, executors or the catalog.
_HOMES = {
    "CommitNode": "cairn.pipelines.lineage",
    "DatumInfo": "cairn.pipelines.models",
    "DatumState": "cairn.pipelines.models",
    "JobInfo": "cairn.pipelines.models",
    "JobState": "cairn.pipelines.models",
    "PipelineError": "cairn.pipelines.errors",
    "PipelineInfo": "cairn.pipelines.models",
    "PipelineSpec": "cairn.pipelines.spec",
    "Pipelines": "cairn.pipelines.service",
    "Reporter": "cairn.pipelines.models",
    "SpecError": "cairn.pipelines.errors",
    "commit_lineage": "cairn.pipelines.lineage",
    "file_lineage": "cairn.pipelines.lineage",
    "load_spec_file": "cairn.pipelines.spec",
    "load_specs": "cairn.pipelines.spec",
}

__all__ = [
    "CommitNode",
    "DatumInfo",
    "DatumState",
    "JobInfo",
    "JobState",
    "PipelineError",
    "PipelineInfo",
    "PipelineSpec",
    "Pipelines",
    "Reporter",
    "SpecError",
    "commit_lineage",
    "file_lineage",
    "load_spec_file",
    "load_specs",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
