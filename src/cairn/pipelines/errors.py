"""Pipeline exceptions (see cairn.storage.errors for the whole tree)::

PipelineError
├── SpecError            a spec that is malformed or breaks a limit
│   └── UnreadableSpec   a spec stored in the catalog that cannot be read back
├── SecretError          the secrets file cannot be read or written safely
├── ExecutorError        the executor URL is malformed, or its cluster cannot run the job
└── Irreproducible       a job cannot be run again as it ran (code, inputs or spec gone)
"""

from __future__ import annotations

from cairn.storage.errors import CairnError, FieldError

__all__ = [
    "ExecutorError",
    "Irreproducible",
    "LimitExceeded",
    "PipelineError",
    "SecretError",
    "SpecError",
    "Unconfined",
    "UnreadableSpec",
]


class PipelineError(CairnError):
    """A pipeline, job or datum operation failed."""


class SpecError(PipelineError, FieldError):
    """A pipeline spec is malformed.

    ``field`` is the dotted path of the bad field ("input.pfs.glob"), ``problems`` lists every
    (field, message).
    """


class LimitExceeded(PipelineError):
    """A datum went over one of its resource limits (``resource_limits`` or the defaults)."""


class Unconfined(PipelineError):
    """A job would run another user's transform with no sandbox; allow it with
    ``CAIRN_ALLOW_UNCONFINED=1`` (``cairn run --allow-unconfined``) or install bubblewrap."""


class UnreadableSpec(SpecError):
    """A pipeline's stored spec cannot be read back (an older cairn accepted it); the pipeline
    cannot run until ``delete pipeline NAME`` removes it or ``update pipeline`` replaces it."""


class SecretError(PipelineError):
    """The secrets file cannot be read or written safely (see cairn.pipelines.secret_store)."""


class ExecutorError(PipelineError):
    """The executor cannot run a job: a malformed ``CAIRN_EXECUTOR``, Ray not installed, a
    cluster that cannot be reached, or one that cannot share this store (an embedded store
    with nodes on other machines) or fit the spec's resource requests."""


class Irreproducible(PipelineError):
    """A job cannot be reproduced: it did not succeed, or what it ran is not here any more
    as it was (its code files or image changed, its spec version or input commits are
    gone); the message says which."""
