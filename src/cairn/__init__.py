"""cairn: versioned data and data-driven pipelines in one ``pip install``.

The public face: ``Client`` (the facade the CLI calls too), the errors a caller
can catch, and the value objects the API returns. Layers (see
``../shared/DESIGN.md``): storage < catalog < data < pipelines; ``client`` and
``cli`` sit on top.

    >>> from cairn import Client
    >>> c = Client.open("/tmp/example/.cairn")            # doctest: +SKIP
    >>> c.create_repo("images")                            # doctest: +SKIP
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn import pyfunc, sklearn
    from cairn.client import Client, connect, find_home
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
    from cairn.sdk import (
        active_run,
        delete_tag,
        end_run,
        last_active_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_experiment,
        set_tag,
        set_tags,
        start_run,
    )
    from cairn.storage import CairnError, CorruptObject, StorageError, UnsupportedBackend
    from cairn.tracking import (
        load_model,
        log_figure,
        log_image,
        log_input,
        log_model,
        log_table,
        register_model,
        search_runs,
    )

# Names load on first use (PEP 562), so that ``cairn.sdk``, which runs inside transforms,
# starts without importing the catalog, the data layer or their dependencies.
_HOMES = {
    "Client": "cairn.client",
    "connect": "cairn.client",
    "find_home": "cairn.client",
    **dict.fromkeys(
        "AlreadyExists BranchInfo CommitInfo CommitStateError DataError FileChange FileInfo"
        " InvalidPath InvalidReference NotFound PathConflict Provenance RepoInfo RepoInUse".split(),
        "cairn.data",
    ),
    **dict.fromkeys(
        "DatumInfo JobInfo PipelineError PipelineInfo PipelineSpec Reporter SpecError".split(),
        "cairn.pipelines",
    ),
    **dict.fromkeys(
        "CairnError CorruptObject StorageError UnsupportedBackend".split(), "cairn.storage"
    ),
    # The rest of the error tree (cairn.api.errors draws it); the names above load lighter.
    **dict.fromkeys(
        "ArchiveError AuthError AuthStateError BundleError CatalogError ConfigError"
        " DriftInputError ExecutorError FieldError FlavorError InputRefused Irreproducible"
        " LimitExceeded LoopError MLError MonitoringError NoCommitYet"
        " NotReady NotRegularFile ObjectNotFound PermissionDenied PolicyConflict PolicyError"
        " RuleError RunFileError SecretError ServerUnreachable ServingError SignatureError"
        " StoreDamaged Unauthenticated Unconfined UnknownToken UnreadableSpec"
        " UntrustedModel".split(),
        "cairn.api.errors",
    ),
    "ReadOnlyRef": "cairn.api.errors",
    # Run tracking (MLflow's verbs); standard library only, so usable in any transform.
    **dict.fromkeys(
        "active_run delete_tag end_run last_active_run log_artifact log_artifacts log_dict"
        " log_metric log_metrics log_param log_params log_text set_experiment set_tag set_tags"
        " start_run".split(),
        "cairn.sdk",
    ),
    # MLflow's heavier verbs (figures, tables, models, search_runs): pandas and the store.
    **dict.fromkeys(
        "load_model log_figure log_image log_input log_model log_table register_model"
        " search_runs".split(),
        "cairn.tracking",
    ),
}
# Submodules named as MLflow's (``mlflow.sklearn.autolog()`` -> ``cairn.sklearn.autolog()``).
_MODULES = {"pyfunc": "cairn.pyfunc", "sklearn": "cairn.sklearn"}


# Written out, not cairn._lazy's: transforms import ``cairn.sdk``, which loads this
# package, and must load no other module of cairn (tests pin ['cairn', 'cairn.sdk']).
def __getattr__(name: str) -> Any:
    if name in _MODULES:
        module = importlib.import_module(_MODULES[name])
        globals()[name] = module
        return module
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cairn' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES, *_MODULES})


__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "ArchiveError",
    "AuthError",
    "AuthStateError",
    "BranchInfo",
    "BundleError",
    "CairnError",
    "CatalogError",
    "Client",
    "CommitInfo",
    "CommitStateError",
    "ConfigError",
    "CorruptObject",
    "DataError",
    "DatumInfo",
    "DriftInputError",
    "ExecutorError",
    "FieldError",
    "FileChange",
    "FileInfo",
    "FlavorError",
    "InputRefused",
    "InvalidPath",
    "InvalidReference",
    "Irreproducible",
    "JobInfo",
    "LimitExceeded",
    "LoopError",
    "MLError",
    "MonitoringError",
    "NoCommitYet",
    "NotFound",
    "NotReady",
    "NotRegularFile",
    "ObjectNotFound",
    "PathConflict",
    "PermissionDenied",
    "PipelineError",
    "PipelineInfo",
    "PipelineSpec",
    "PolicyConflict",
    "PolicyError",
    "Provenance",
    "ReadOnlyRef",
    "RepoInUse",
    "RepoInfo",
    "Reporter",
    "RuleError",
    "RunFileError",
    "SecretError",
    "ServerUnreachable",
    "ServingError",
    "SignatureError",
    "SpecError",
    "StorageError",
    "StoreDamaged",
    "Unauthenticated",
    "Unconfined",
    "UnknownToken",
    "UnreadableSpec",
    "UnsupportedBackend",
    "UntrustedModel",
    "__version__",
    "active_run",
    "connect",
    "delete_tag",
    "end_run",
    "find_home",
    "last_active_run",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "pyfunc",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "sklearn",
    "start_run",
]
