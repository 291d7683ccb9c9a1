"""cairn: versioned data and data-driven pipelines in one ``pip install``.

The public face: ``Client`` (the facade the CLI calls too), the errors a caller
can catch, and the value objects the API returns. Layers (see
``../shared/DESIGN.md``): storage < catalog < data < pipelines; ``client`` and
``cli`` sit on top.

    >>> from cairn import Client
    >>> c = Client.open("/tmp/example/.cairn")            # doctest: +SKIP
    >>> c.create_repo("images")                            # doctest: +SKIP
"""

from cairn.client import Client, find_home
from cairn.data import (
    AlreadyExists,
    BranchInfo,
    CommitInfo,
    CommitStateError,
    DataError,
    FileChange,
    FileInfo,
    InvalidPath,
    InvalidReference,
    NotFound,
    PathConflict,
    Provenance,
    RepoInfo,
    RepoInUse,
)
from cairn.pipelines import (
    DatumInfo,
    JobInfo,
    PipelineError,
    PipelineInfo,
    PipelineSpec,
    Reporter,
    SpecError,
)
from cairn.storage import CairnError, CorruptObject, StorageError, UnsupportedBackend

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "BranchInfo",
    "CairnError",
    "Client",
    "CommitInfo",
    "CommitStateError",
    "CorruptObject",
    "DataError",
    "DatumInfo",
    "FileChange",
    "FileInfo",
    "InvalidPath",
    "InvalidReference",
    "JobInfo",
    "NotFound",
    "PathConflict",
    "PipelineError",
    "PipelineInfo",
    "PipelineSpec",
    "Provenance",
    "Reporter",
    "RepoInUse",
    "RepoInfo",
    "SpecError",
    "StorageError",
    "UnsupportedBackend",
    "__version__",
    "find_home",
]
