"""Every error cairn raises on purpose, in one tree (each layer defines its own in its
``errors`` module; this leaf re-exports them all)::

    CairnError                        catch it to catch anything cairn raises on purpose
    ├── FieldError (ValueError)       a value given for a named field, flag or setting
    │   ├── ConfigError               a setting (environment, config.toml) cairn cannot use
    │   ├── SpecError                 a malformed pipeline spec (also a PipelineError)
    │   │   └── UnreadableSpec        a stored spec this cairn cannot read back
    │   ├── RuleError                 a malformed monitoring rule (also a MonitoringError)
    │   └── PolicyError               a refused traffic policy (also a ServingError)
    ├── StorageError                  object stores and the chunk store (cairn.storage)
    │   ├── ObjectNotFound (KeyError) a key the store does not hold
    │   ├── CorruptObject             bytes that fail their hash or framing
    │   ├── NotRegularFile            a local path that is a link, pipe, device or another file
    │   └── UnsupportedBackend        a URL scheme with no backend, or a missing extra
    ├── ServerUnreachable             no cairn server answers at the URL (cairn.api.wire)
    ├── CatalogError                  the metadata database (cairn.catalog)
    ├── AuthError                     tokens and roles (cairn.catalog.auth)
    │   ├── Unauthenticated           no token, or one unknown, revoked or expired (401)
    │   ├── PermissionDenied          a role the caller lacks on a resource (403)
    │   ├── AuthStateError            activating twice, or tokens while auth is off (409)
    │   └── UnknownToken (LookupError)  no token has this id (404)
    ├── DataError                     repos, branches, commits, files (cairn.data)
    │   ├── NotFound (LookupError)    no such repo, branch, commit, file, pipeline, model...
    │   │   └── NoCommitYet           a branch with no commit yet (lists as empty)
    │   ├── AlreadyExists             a name already taken
    │   ├── InvalidPath (ValueError)  a path no commit can hold
    │   ├── InvalidReference (ValueError)  text that is no repo@commit:/path or model ref
    │   ├── CommitStateError          writing a finished commit, finishing a finished one
    │   │   └── ReadOnlyRef (PermissionError)  a write to a commit id or ancestor (cairn://)
    │   ├── RepoInUse                 deleting a repo a pipeline reads or writes
    │   ├── PathConflict              two writers (datums) of one path
    │   ├── StoreDamaged              fsck found damage
    │   └── ArchiveError              an extract file restore cannot load, or a store not empty
    ├── PipelineError                 pipelines, jobs, datums (cairn.pipelines)
    │   ├── SpecError                 (drawn under FieldError)
    │   ├── LimitExceeded             a datum over its resource limits
    │   ├── Unconfined                another user's transform with no sandbox
    │   ├── BundleError               a spec folder a server refuses (cairn.api.bundles)
    │   ├── ExecutorError             a bad executor URL, or a cluster that cannot run a job
    │   ├── SecretError               the secrets file cannot be read or written safely
    │   └── Irreproducible            a job that cannot run again as it ran (reproduce)
    ├── MLError                       runs, registry, model loading (cairn.ml)
    │   ├── RunFileError (ValueError) a malformed run file
    │   ├── FlavorError               a model file no flavor can load
    │   │   └── UntrustedModel        a pickle registered without trust
    │   └── SignatureError (ValueError)  a malformed model signature
    ├── ServingError                  deployments, routing, the prediction log (cairn.serving)
    │   ├── PolicyError               (drawn under FieldError)
    │   ├── PolicyConflict            the policy changed meanwhile; read it again
    │   ├── NotReady                  no model version loaded yet
    │   └── InputRefused (ValueError) inputs the model refused (answered 400)
    └── MonitoringError               drift, reports, monitors (cairn.monitoring)
        ├── DriftInputError (ValueError)  frames or settings that cannot be compared
        ├── RuleError                 (drawn under FieldError)
        └── LoopError                 a monitor step that cannot run as its rule says

Importing this module imports every layer's ``errors`` module (and so each layer's
package); import an error from its own layer where start-up time matters.
"""

from __future__ import annotations

from cairn.api.bundles import BundleError
from cairn.api.wire import ServerUnreachable
from cairn.catalog.errors import (
    AuthError,
    AuthStateError,
    CatalogError,
    PermissionDenied,
    Unauthenticated,
    UnknownToken,
)
from cairn.data.errors import (
    AlreadyExists,
    ArchiveError,
    CommitStateError,
    DataError,
    InvalidPath,
    InvalidReference,
    NoCommitYet,
    NotFound,
    PathConflict,
    ReadOnlyRef,
    RepoInUse,
    StoreDamaged,
)
from cairn.ml.errors import FlavorError, MLError, RunFileError, SignatureError, UntrustedModel
from cairn.monitoring.errors import DriftInputError, LoopError, MonitoringError, RuleError
from cairn.pipelines.errors import (
    ExecutorError,
    Irreproducible,
    LimitExceeded,
    PipelineError,
    SecretError,
    SpecError,
    Unconfined,
    UnreadableSpec,
)
from cairn.serving.errors import (
    InputRefused,
    NotReady,
    PolicyConflict,
    PolicyError,
    ServingError,
)
from cairn.storage.errors import (
    CairnError,
    ConfigError,
    CorruptObject,
    FieldError,
    NotRegularFile,
    ObjectNotFound,
    StorageError,
    UnsupportedBackend,
)

__all__ = [
    "AlreadyExists",
    "AuthError",
    "AuthStateError",
    "BundleError",
    "CairnError",
    "CatalogError",
    "CommitStateError",
    "ConfigError",
    "CorruptObject",
    "DataError",
    "DriftInputError",
    "ExecutorError",
    "FieldError",
    "FlavorError",
    "InputRefused",
    "InvalidPath",
    "InvalidReference",
    "LimitExceeded",
    "LoopError",
    "MLError",
    "MonitoringError",
    "NotFound",
    "NotReady",
    "NotRegularFile",
    "ObjectNotFound",
    "PathConflict",
    "PermissionDenied",
    "Irreproducible",
    "PipelineError",
    "PolicyConflict",
    "PolicyError",
    "ReadOnlyRef",
    "RepoInUse",
    "RuleError",
    "RunFileError",
    "SecretError",
    "ServerUnreachable",
    "ServingError",
    "SignatureError",
    "SpecError",
    "StorageError",
    "StoreDamaged",
    "ArchiveError",
    "NoCommitYet",
    "Unauthenticated",
    "Unconfined",
    "UnknownToken",
    "UnreadableSpec",
    "UnsupportedBackend",
    "UntrustedModel",
]
