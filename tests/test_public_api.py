"""The public face of the package is pinned: a change to it is a decision, not an accident."""

import subprocess
import sys

import cairn

EXPECTED = {
    "AlreadyExists",
    "BranchInfo",
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
    "FieldError",
    "FileChange",
    "FileInfo",
    "FlavorError",
    "InputRefused",
    "InvalidPath",
    "InvalidReference",
    "JobInfo",
    "LimitExceeded",
    "LoopError",
    "MLError",
    "MonitoringError",
    "NotFound",
    "NotReady",
    "NotRegularFile",
    "ObjectNotFound",
    "PathConflict",
    "PipelineError",
    "PipelineInfo",
    "PipelineSpec",
    "PolicyConflict",
    "PolicyError",
    "Provenance",
    "RepoInUse",
    "RepoInfo",
    "Reporter",
    "RuleError",
    "RunFileError",
    "SecretError",
    "ServingError",
    "SignatureError",
    "SpecError",
    "StorageError",
    "StoreDamaged",
    "Unconfined",
    "UnreadableSpec",
    "UnsupportedBackend",
    "UntrustedModel",
    "__version__",
    "active_run",
    "connect",
    "end_run",
    "find_home",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
}


def test_exported_names_are_pinned():
    assert set(cairn.__all__) == EXPECTED
    for name in cairn.__all__:
        assert hasattr(cairn, name)


def test_every_error_is_a_cairn_error():
    for name in cairn.__all__:
        obj = getattr(cairn, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, cairn.CairnError)


def test_importing_the_library_does_not_load_the_cli():
    code = "import sys, cairn; print('typer' in sys.modules, 'cairn.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
