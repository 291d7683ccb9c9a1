"""MLflow's heavier tracking verbs, on top of ``cairn.sdk``'s runs: figures, images, tables
and datasets as artifacts, models logged, registered and loaded by MLflow's URIs, and
``search_runs`` with MLflow's filter grammar (``cairn.ml.search``). ``cairn.<name>`` loads
each on first use, so ``import cairn as mlflow`` scripts call them unchanged.

Model artifacts. ``log_model(model, name)`` stores folder ``<name>/`` of the active run's
artifacts: ``model.skops`` for a scikit-learn estimator made only of scikit-learn, NumPy
and SciPy types (loads without running code), else ``model.pkl`` (joblib; registering it
needs ``trust=True``), plus ``signature.json`` (given, or inferred from the estimator and
``input_example``) and ``input_example.json`` (pandas ``split`` orient). Its URI is
``runs:/<run id>/<name>``, which ``register_model``, ``load_model`` and
``cairn register model`` take.

URIs: ``runs:/<run id>/<artifact path>`` (a run's artifact), ``models:/NAME/VERSION``,
``models:/NAME@ALIAS`` (and ``models:/NAME/latest``).

Where these differ from MLflow: experiments are names (``experiment_id`` is the name);
``search_runs`` reads the runs of the experiments asked for and filters them in this
process; ``load_model`` returns a ``LoadedModel`` (``predict(data, params=None)``), as
``mlflow.pyfunc.load_model`` does, not the flavor's native object (``cairn.sklearn.
load_model`` gives the estimator).
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn import sdk
from cairn.api.errors import InvalidReference, NotFound
from cairn.ml.models import ModelVersion, RunInfo

__all__ = [
    "LoadedModel",
    "LoggedModel",
    "list_artifacts",
    "load_model",
    "log_figure",
    "log_image",
    "log_input",
    "log_model",
    "log_table",
    "register_model",
    "resolve_run_model",
    "runs_frame",
    "search_runs",
]

MODEL_FILES = ("model.skops", "model.pkl")


# -- artifacts -------------------------------------------------------------------------
def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: Mapping[str, Any] | None = None
) -> None:
    """Store a matplotlib figure as artifact ``artifact_file``, in the format its suffix
    names (``.png``, ``.svg``, ``.pdf``...). Raises TypeError for another object."""
    if not callable(getattr(figure, "savefig", None)):
        raise TypeError(f"log_figure takes a matplotlib figure, not {type(figure).__name__}")
    buffer = io.BytesIO()
    fmt = Path(artifact_file).suffix.lstrip(".") or "png"
    figure.savefig(buffer, format=fmt, **dict(save_kwargs or {}))
    sdk._store_artifacts({sdk._under(None, artifact_file): buffer.getvalue()})


def log_image(image: Any, artifact_file: str) -> None:
    """Store a PIL image or a NumPy array (H x W, H x W x 1, 3 or 4; uint8 as is, floats in
    [0, 1] scaled to 0-255 as MLflow does) as artifact ``artifact_file`` (PNG unless the
    suffix names another format). Raises TypeError, ValueError (a bad shape or range)."""
    import numpy as np
    from PIL import Image

    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ValueError(f"an image is H x W, H x W x 1, 3 or 4, not {array.shape}")
        if array.dtype.kind == "f":
            if array.size and (array.min() < 0 or array.max() > 1):
                raise ValueError("a float image has values in [0, 1]")
            array = (array * 255).round().astype(np.uint8)
        elif array.dtype.kind in "iub":
            if array.size and (array.min() < 0 or array.max() > 255):
                raise ValueError("an integer image has values in [0, 255]")
            array = array.astype(np.uint8)
        else:
            raise TypeError(f"an image array holds numbers, not {array.dtype}")
        image = Image.fromarray(array)
    buffer = io.BytesIO()
    fmt = (Path(artifact_file).suffix.lstrip(".") or "png").upper()
    image.save(buffer, format="JPEG" if fmt == "JPG" else fmt)
    sdk._store_artifacts({sdk._under(None, artifact_file): buffer.getvalue()})


def log_table(data: Any, artifact_file: str) -> None:
    """Store a pandas DataFrame, or a dict of columns, as JSON artifact ``artifact_file``
    in MLflow's table form ``{"columns": [...], "data": [[...], ...]}``."""
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    body = frame.to_json(orient="split", index=False, date_format="iso")
    sdk._store_artifacts({sdk._under(None, artifact_file): body.encode()})


def log_input(
    dataset: Any,
    context: str | None = None,
    tags: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
) -> None:
    """Record a dataset the active run read, in ``run.info["inputs"]`` under its name:

    - a cairn reference ``repo@branch:/path`` (or a commit): linked to the commit it names
      now (``repo``, ``branch``, ``commit``, ``path`` and the file's ``hash``), so lineage
      reaches the exact bytes;
    - a pandas DataFrame: its ``digest`` (BLAKE3 of its parquet-free canonical JSON), row
      count and column types (``name`` defaults to ``dataset``);
    - an MLflow ``Dataset`` (``mlflow.data.from_pandas`` ...): its ``name``, ``digest``
      and ``source``.

    ``context`` (``training``, ``eval``...) and ``tags`` are kept with it. Raises NotFound
    (a ref naming nothing), TypeError (another object)."""
    import pandas as pd

    entry: dict[str, Any] = {"context": context, "tags": dict(tags or {})}
    if isinstance(dataset, str):
        from cairn.api.refs import parse_ref

        ref = parse_ref(dataset)
        client = sdk._client()
        commit = client.commits.get(f"{ref.repo}@{ref.commit}")
        entry.update(repo=ref.repo, commit=commit.id, branch=commit.branch or ref.commit)
        path = (ref.path or "").strip("/")
        if path:
            info = client.files.get(f"{ref.repo}@{commit.id}:/{path}")
            entry.update(path=f"/{path}", hash=info.hash)
        key = name or "/".join(p for p in (ref.repo, path) if p)
    elif isinstance(dataset, pd.DataFrame):
        import blake3

        canonical = dataset.to_json(orient="split", date_format="iso", double_precision=15)
        entry.update(
            digest=blake3.blake3(canonical.encode()).hexdigest()[:16],
            rows=len(dataset),
            schema={str(c): str(t) for c, t in dataset.dtypes.items()},
        )
        key = name or "dataset"
    elif hasattr(dataset, "digest") and hasattr(dataset, "name"):
        source = getattr(dataset, "source", None)
        to_json = getattr(source, "to_json", None)
        entry.update(
            digest=str(dataset.digest), source=to_json() if callable(to_json) else str(source)
        )
        key = name or str(dataset.name)
    else:
        raise TypeError(
            "log_input takes a cairn ref (repo@branch:/path), a pandas DataFrame or an "
            f"MLflow Dataset, not {type(dataset).__name__}"
        )
    if sdk._in_transform():
        raise RuntimeError("log_input works outside transforms: a job's inputs are recorded")
    sdk._runs().log(sdk._current().id, inputs={key: entry})


def list_artifacts(run_id: str) -> list[str]:
    """The artifact paths of run ``run_id`` (relative to the run, sorted), newest commit
    of each path. Raises NotFound."""
    return sorted(_artifacts(sdk._runs().get(run_id)))


def _artifacts(run: RunInfo) -> dict[str, str]:
    """Artifact path (relative to the run) -> the ``repo@commit:/path`` ref of its latest
    copy (runs keep artifact refs in logging order, so a later one wins)."""
    prefix = f":/{run.id}/"
    found: dict[str, str] = {}
    for ref in run.info.get("artifacts", []):
        rel = ref.split(prefix, 1)[1] if prefix in ref else ref.lstrip("/")
        found[rel] = ref
    return found


# -- models ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LoggedModel:
    """What ``log_model`` returns: MLflow's ``model_uri`` (``runs:/<run>/<name>``),
    ``run_id``, ``artifact_path`` and the signature stored (cairn's form, or None)."""

    model_uri: str
    run_id: str | None
    artifact_path: str
    signature: dict[str, Any] | None


def _frame(example: Any) -> Any:
    import pandas as pd

    if example is None or isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, Mapping):
        return pd.DataFrame(
            {
                k: list(v) if hasattr(v, "__len__") and not isinstance(v, str) else [v]
                for k, v in example.items()
            }
        )
    return pd.DataFrame(example)


def _signature_form(signature: Any) -> Any:
    """An MLflow ``ModelSignature`` (its ``to_dict``), or what cairn.ml.signature takes."""
    to_dict = getattr(signature, "to_dict", None)
    return to_dict() if callable(to_dict) else signature


def log_model(
    model: Any,
    name: str | None = None,
    *,
    input_example: Any = None,
    signature: Any = None,
    registered_model_name: str | None = None,
    artifact_path: str | None = None,
) -> LoggedModel:
    """Store ``model`` as artifact folder ``name`` of the active run (see the module's
    doc), and register it as the next version of ``registered_model_name`` if given.
    ``artifact_path`` is MLflow 2's name for ``name``. ``signature``: an MLflow
    ``ModelSignature``, a dict ``{"inputs": [...]}``, or None to infer one from the model
    and ``input_example`` (a DataFrame, array or dict of columns). Raises TypeError (no
    ``predict``), SignatureError."""
    from cairn.ml import flavors
    from cairn.ml.signature import infer_signature, normalize

    name = name or artifact_path or "model"
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"log_model takes an object with predict, not {type(model).__name__}")
    sample = _frame(input_example)
    sig = normalize(_signature_form(signature)) if signature is not None else None
    if sig is None and signature is None:
        sig = infer_signature(model, sample.head(5) if sample is not None else None)
    files: dict[str, bytes | str] = {}
    with tempfile.TemporaryDirectory(prefix="cairn-model-") as tmp:
        target = Path(tmp) / "model.skops"
        stored = False
        if flavors.is_sklearn(model):
            import skops.io as sio

            sio.dump(model, target)
            try:
                flavors.skops_trusted(target)
                stored = True
            except flavors.FlavorError:  # holds types skops would refuse to load untrusted
                target.unlink()
        if not stored:
            import joblib

            target = Path(tmp) / "model.pkl"
            joblib.dump(model, target)
        files[f"{name}/{target.name}"] = target.read_bytes()
    if sig is not None:
        files[f"{name}/signature.json"] = json.dumps(sig, indent=2).encode()
    if sample is not None:
        example = sample.head(5).to_json(orient="split", index=False, date_format="iso")
        files[f"{name}/input_example.json"] = example.encode()
    sdk._store_artifacts({sdk._under(None, k): v for k, v in files.items()})
    run = sdk.active_run()
    run_id = run.id if run else None
    uri = f"runs:/{run_id}/{name}"
    if registered_model_name:
        register_model(uri, registered_model_name)
    return LoggedModel(uri, run_id, name, sig)


def resolve_run_model(client: Any, uri: str, signature: Any = None) -> tuple[str, Any]:
    """The ``repo@commit:/path`` of the model file ``log_model`` stored at
    ``runs:/<run>/<name>``, and its signature (``signature`` if given, else the stored
    one). Raises InvalidReference (not a runs:/ URI), NotFound (no such run or model)."""
    run_ref, _, name = uri.removeprefix("runs:/").partition("/")
    if not uri.startswith("runs:/") or not run_ref or not name.strip("/"):
        raise InvalidReference(f"{uri!r} is not runs:/<run id>/<artifact path>")
    run = client.runs.get(run_ref)
    name = name.strip("/")
    found = _artifacts(run)
    for leaf in MODEL_FILES:
        ref = found.get(f"{name}/{leaf}")
        if ref is not None:
            break
    else:
        have = sorted({k.split("/")[0] for k in found})
        raise NotFound(
            f"run {run.id[:12]} has no model at {name!r} (log_model stores one); its "
            f"artifacts: {', '.join(have) or 'none'}"
        )
    if signature is None and f"{name}/signature.json" in found:
        signature = json.loads(client.files.read(found[f"{name}/signature.json"]))
    return ref, signature


def register_model(model_uri: str, name: str, *, trust: bool = False) -> ModelVersion:
    """Register the model at ``model_uri`` (``runs:/<run>/<name>`` from ``log_model``, or
    a cairn ref ``repo@commit:/path``) as the next version of model ``name``; return it
    (``.version`` is its number, as MLflow's). ``trust``: needed for a ``model.pkl``
    (loading it runs code). Raises NotFound, InvalidReference, UntrustedModel."""
    client = sdk._client()
    signature = None
    ref = model_uri
    if model_uri.startswith("runs:/"):
        ref, signature = resolve_run_model(client, model_uri)
    return client.models.register(name, ref, signature=signature, trust=trust)


def _model_spec(uri: str) -> str:
    body = uri.removeprefix("models:/")
    name, slash, rest = body.partition("/")
    if not name or (slash and not rest):
        raise InvalidReference(f"{uri!r} is not models:/NAME/VERSION or models:/NAME@ALIAS")
    if rest == "latest":
        return name
    return body


class LoadedModel:
    """A loaded model, as ``mlflow.pyfunc.load_model`` returns one: ``predict(data,
    params=None)`` takes a DataFrame, a NumPy array, a list of rows or a dict of columns;
    ``metadata`` is the ModelVersion (None for a ``runs:/`` URI); ``unwrap_python_model``
    gives the underlying object where there is one."""

    def __init__(self, loaded: Any, metadata: ModelVersion | None) -> None:
        self._loaded = loaded
        self.metadata = metadata

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        frame = _frame(data)
        sig = getattr(self._loaded, "signature", None)
        names = [c["name"] for c in sig["inputs"]] if sig and not sig.get("positional") else []
        if frame is not data and names and len(names) == frame.shape[1]:
            frame.columns = names  # rows without names: the signature's, as MLflow's pyfunc
        return self._loaded.predict(frame, params)

    def unwrap_python_model(self) -> Any:
        return getattr(self._loaded, "estimator", None) or getattr(self._loaded, "obj", None)


def load_model(model_uri: str, *, trust: bool = False) -> LoadedModel:
    """Load ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` (``latest``) or
    ``runs:/<run>/<name>`` in one call. A registered version loads as it was registered
    (its trust recorded); a ``runs:/`` model in ``model.pkl`` needs ``trust=True``.
    Raises NotFound, InvalidReference, UntrustedModel, FlavorError."""
    from cairn.ml import flavors

    client = sdk._client()
    if model_uri.startswith("runs:/"):
        spec = ref = ""
        ref, sig = resolve_run_model(client, model_uri)
        repo, _, rest = ref.partition("@")
        commit, _, path = rest.partition(":")
        flavor = "sklearn" if path.endswith(".skops") else "python"
        version = ModelVersion(
            model_uri, 0, repo, commit, path, flavor, sig, None, 0.0, trusted=trust
        )
        metadata = None
    elif model_uri.startswith("models:/"):
        spec = _model_spec(model_uri)
        version = client.models.get(spec)
        metadata = version
        ref = None
    else:
        raise InvalidReference(f"{model_uri!r}: load models:/NAME@ALIAS, models:/NAME/N or runs:/")
    # The loaded model may read its folder lazily (command, mlflow): it stays for the
    # life of the process, as MLflow's downloaded artifacts do.
    local = Path(tempfile.mkdtemp(prefix="cairn-load-")) / Path(version.path).name
    if ref is None:
        client.models.download(spec, local)
    else:
        client.files.download(ref, local)
    if version.flavor == "sklearn" and local.is_file():
        obj = flavors.load_object(local, trusted=version.trusted)
        if not flavors.is_sklearn(obj):
            version = ModelVersion(**{**version.__dict__, "flavor": "python"})
    return LoadedModel(flavors.load(version, local), metadata)


# -- searching -------------------------------------------------------------------------
def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: Any = None,
    max_results: int = 100000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching ``filter_string`` (MLflow's grammar, cairn.ml.search), ordered by
    ``order_by`` then newest first: a pandas DataFrame shaped as MLflow's (``run_id``,
    ``experiment_id``, ``status``, ``artifact_uri``, ``start_time``, ``end_time``, then
    ``metrics.*``, ``params.*``, ``tags.*``), or with ``output_format="list"`` the
    RunInfos. Experiments: ``experiment_ids``/``experiment_names`` (both names here),
    else ``set_experiment``'s, else ``default``; ``search_all_experiments`` reads all.
    ``run_view_type`` is accepted for MLflow's signature (cairn deletes no runs). Raises
    MLError (a malformed filter or order), ValueError (another output format)."""
    from cairn.ml.search import search

    if output_format not in ("pandas", "list"):
        raise ValueError(f"output_format is 'pandas' or 'list', not {output_format!r}")
    runs_api = sdk._runs()
    wanted = [*(experiment_ids or ()), *(experiment_names or ())]
    if search_all_experiments and not wanted:
        pool = runs_api.list()
    else:
        pool = [r for e in wanted or [sdk.get_experiment() or "default"] for r in runs_api.list(e)]
    found = search(pool, filter_string, order_by, max_results)
    return found if output_format == "list" else runs_frame(found)


def runs_frame(runs: Sequence[RunInfo]) -> Any:
    """Runs as MLflow's ``search_runs`` DataFrame: one row per run; times as UTC
    timestamps; params and tags as text, as MLflow stores them; a key a run lacks is
    NaN/None."""
    import pandas as pd

    from cairn.ml.search import attribute

    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run_id": r.id,
            "experiment_id": r.experiment,
            "status": attribute(r, "status"),
            "artifact_uri": attribute(r, "artifact_uri"),
            "start_time": pd.Timestamp(r.created, unit="s", tz="UTC"),
            "end_time": None
            if r.finished is None
            else pd.Timestamp(r.finished, unit="s", tz="UTC"),
        }
        row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
        row.update({f"params.{k}": str(v) for k, v in r.params.items()})
        row.update({f"tags.{k}": str(v) for k, v in r.tags.items()})
        row.setdefault("tags.mlflow.runName", r.name)
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    keys = {k for row in rows for k in row}
    ordered = base + sorted(k for k in keys if k.startswith("metrics."))
    ordered += sorted(k for k in keys if k.startswith("params."))
    ordered += sorted(k for k in keys if k.startswith("tags."))
    frame = pd.DataFrame(rows, columns=ordered)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame
