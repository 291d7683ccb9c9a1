"""The public face of the package is pinned: a change to it is a decision, not an accident."""

import subprocess
import sys

import cairn
import cairn.api.errors

# The face beside the error tree: the client, the value objects, the run-tracking verbs
# (MLflow's names) and the modules ``sklearn`` and ``pyfunc`` (as MLflow's).
FACE = {
    "BranchInfo",
    "Client",
    "CommitInfo",
    "DatumInfo",
    "FileChange",
    "FileInfo",
    "JobInfo",
    "PipelineInfo",
    "PipelineSpec",
    "Provenance",
    "RepoInfo",
    "Reporter",
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
}
# Every error cairn raises on purpose is exported: the whole tree cairn.api.errors draws.
EXPECTED = FACE | set(cairn.api.errors.__all__)


def test_exported_names_are_pinned():
    assert set(cairn.__all__) == EXPECTED
    # __all__ is written out for static tools; the lazy-load table must name the same
    assert set(cairn._HOMES) | set(cairn._MODULES) | {"__version__"} == EXPECTED
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


def test_errors_loaded_from_their_layer_are_the_error_tree_classes():
    for name in cairn.api.errors.__all__:
        assert getattr(cairn, name) is getattr(cairn.api.errors, name)
