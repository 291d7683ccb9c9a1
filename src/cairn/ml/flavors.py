"""Flavors: how a model version's file or folder is fetched from its commit and loaded.

``fetch`` copies the version's bytes into a local cache; ``load`` turns them into a
``LoadedModel`` whose ``predict(frame, params)`` serving calls. The flavors:

``sklearn``
    A scikit-learn estimator (a ``Pipeline`` too) in a ``.skops`` file, loaded by
    ``skops.io.load`` with an explicit trust policy: classes from the ``sklearn``, ``numpy``
    and ``scipy`` packages are trusted; functions and any other type the file names are
    refused with a FlavorError naming them (nothing runs). Or a joblib or pickle file
    (``.joblib`` / ``.pkl`` / ``.pickle``), loaded by ``joblib.load`` once trusted (see Trust
    below). ``params``: ``{"method": "predict_proba"}`` (or
    ``predict_log_proba``, ``decision_function``) calls that method instead of
    ``predict``.
``python``
    Any Python object with a ``predict`` method, in a joblib or pickle file (trusted), or a
    ``.skops`` file. ``predict(frame)`` gets the DataFrame, and
    ``params=`` as well when its ``predict`` takes a ``params`` argument.
``command``
    A folder (or a file) plus a command, in any language, run once per ``predict`` in the
    model's folder with ``CAIRN_MODEL_PATH`` (the fetched file or folder),
    ``CAIRN_MODEL_NAME`` and ``CAIRN_MODEL_VERSION`` set. It reads one JSON request on
    stdin, MLflow's ``dataframe_split`` payload plus ``params``::

        {"dataframe_split": {"columns": ["a", "b"], "index": [0, 1],
                             "data": [[1.0, 2.0], [3.0, 4.0]]},
         "params": {}}

    and writes JSON on stdout: ``{"predictions": [...]}`` (MLflow's response) or a bare
    list, one item per input row. A non-zero exit, a timeout (``timeout`` seconds, 60 by
    default), more than 256 MiB on stdout, or output of another shape raises FlavorError
    with the command's stderr. The command runs in its own process group, which is killed
    when it answers or fails: processes it leaves behind do not outlive the call.
    Files keep no executable bit in a repo, so name the interpreter:
    ``["python3", "predict.py"]``, ``["sh", "predict.sh"]``.
``mlflow``
    A folder in MLflow's format: an ``MLmodel`` file with a ``python_function`` flavor,
    loaded by ``mlflow.pyfunc.load_model`` (``pip install 'cairn[mlflow]'``). The
    signature comes from the ``MLmodel`` file when it has one. Requests are cast and
    enforced by MLflow's own code, so MLflow's schema rules and error codes hold
    (``MlflowModel``).

Trust. Loading some formats runs code the file names, on the machine that loads it, so a
model written by a sandboxed pipeline would escape the sandbox when served. Those formats
load only for a version registered with ``trust=True`` (``--trust``), recorded on the
version (``ModelVersion.trusted``); without it, registering raises UntrustedModel before
anything is unpickled, and ``load`` (serving, monitoring, evaluation) refuses any version
not recorded as trusted, e.g. one registered by a cairn from before trust was recorded.
The format is told by the file's *content* (``file_format``), never its name:

- ``.skops`` (a zip holding skops' ``schema.json``): runs no code; only scikit-learn, NumPy
  and SciPy classes load (``skops_trusted``). No trust needed.
- pickle, joblib, cloudpickle (pickle protocol 2 to 5, or joblib's zlib / gzip / bz2 / xz /
  lzma / lz4 wrappers around one), and any other file the sklearn and python flavors read:
  ``joblib.load`` unpickles, which calls whatever the file names (``__reduce__``). Trust.
- an MLflow folder, whatever its flavor: ``mlflow.pyfunc`` imports the module its MLmodel
  names, with the folder's code on ``sys.path``, and its sklearn and pyfunc flavors
  unpickle (MLflow says the same of its skops format: the trusted types come from the
  MLmodel file itself). Trust.
- ``command``: runs the command the user gave with ``--cmd``; giving it is the consent.

The detection (``file_format``, ``runs_code``, ``skops_trusted``, ``untrusted``) lives in
``cairn.ml.trust`` and is importable from here too.
"""

from __future__ import annotations

import errno
import inspect
import json
import os
import pickle
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import yaml

from cairn.data import DataStore, Ref
from cairn.ml.errors import FlavorError, SignatureError
from cairn.ml.models import ModelVersion, Signature
from cairn.ml.signature import normalize
from cairn.ml.trust import (
    JOBLIB,
    PICKLE,
    SKOPS,
    UNKNOWN,
    file_format,
    runs_code,
    skops_trusted,
    untrusted,
)

__all__ = [
    "FLAVORS",
    "LoadedModel",
    "cached",
    "fetch",
    "file_format",
    "infer_flavor",
    "load",
    "load_object",
    "mlmodel_signature",
    "parse_mlmodel",
    "runs_code",
    "skops_trusted",
    "untrusted",
]

FLAVORS = ("sklearn", "python", "command", "mlflow")
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
SKLEARN_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
DEFAULT_TIMEOUT = 60.0
MAX_OUTPUT = 256 * 1024 * 1024  # bytes a command may write on stdout per call
_STDERR_KEPT = 64 * 1024  # bytes of a command's stderr kept (its tail) for error messages
_MLFLOW_EXTRA = "install MLflow to load this model: pip install 'cairn[mlflow]'"


class LoadedModel(Protocol):
    """A model ready to predict. ``predict`` takes a DataFrame (already passed through
    ``signature.enforce``) and returns one prediction per row: a numpy array, a list or a
    DataFrame. ``close`` frees what the model holds (a no-op for most flavors)."""

    version: ModelVersion
    signature: Signature | None

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> Any: ...

    def close(self) -> None: ...


# -- fetching -------------------------------------------------------------------------


def _cache_dir(version: ModelVersion, cache_root: Path) -> tuple[Path, str]:
    tag = str(version.info.get("hash") or version.commit)[:16]
    leaf = version.path.rstrip("/").rpartition("/")[2] or "model"
    return Path(cache_root) / version.name / f"{version.version}-{tag}", leaf


def fetch(data: DataStore, version: ModelVersion, cache_root: Path) -> Path:
    """The version's file or folder, copied from its commit to
    ``<cache_root>/<name>/<version>-<hash[:16]>/<basename>`` (``cached``); returns that
    path. Raises NotFound when the commit or path is gone.
    """

    def copy(root: Path) -> None:
        ref = Ref(version.repo, version.commit, path=version.path.strip("/"))
        base = ref.path or ""
        is_dir = data.inspect_file(ref).type == "dir"
        if is_dir:
            root.mkdir()
        for path, entry in data.walk_files(ref):
            rel = path[len(base) :].lstrip("/") if is_dir else ""
            target = root / rel if rel else root
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                for piece in data.chunks.read(entry.content):
                    fh.write(piece)

    return cached(version, cache_root, copy)


def cached(version: ModelVersion, cache_root: Path, fill: Callable[[Path], Any]) -> Path:
    """``<cache_root>/<name>/<version>-<hash[:16]>/<basename>``, the version's files
    named by their content hash (``info["hash"]``, else the commit), written by
    ``fill(path)`` (the file, or the folder it creates) unless they are there already;
    returns that path.

    Idempotent and atomic: ``fill`` writes in a temporary folder beside it, which is then
    renamed into place, so concurrent callers (several server workers) never see half a
    model; a loser of the race drops its copy and uses the winner's. Raises what ``fill``
    raises.
    """
    dest, leaf = _cache_dir(version, cache_root)
    if (dest / leaf).exists():
        return dest / leaf
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        fill(tmp / leaf)
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (dest / leaf).exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest / leaf


# -- reading model files ----------------------------------------------------------------


def load_object(local: Path, *, trusted: bool = False) -> Any:
    """The Python object in a model file: a skops file (by content) through skops with the
    trust policy of ``skops_trusted``; any other file through ``joblib.load`` (joblib and
    pickle files), which runs code the file names, so only with ``trusted=True``.

    Raises FlavorError (a folder, refused types, a file that does not load), UntrustedModel
    (a file skops does not read, without ``trusted``; nothing is unpickled).
    """
    local = Path(local)
    if local.is_dir():
        raise FlavorError(
            f"{local.name} is a folder; the sklearn and python flavors load one file "
            "(a folder is an mlflow or command model)"
        )
    if file_format(local) == SKOPS:
        import skops.io as sio

        types = skops_trusted(local)
        try:
            return sio.load(local, trusted=types)
        except Exception as exc:  # noqa: BLE001
            raise FlavorError(f"cannot load {local.name} with skops: {exc}") from None
    if not trusted:
        raise untrusted(local.name, runs_code("python", local) or "is not a .skops file")
    import joblib

    try:
        return joblib.load(local)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise FlavorError(f"{local.name} is not a joblib or pickle file: {exc}") from None
    except (ImportError, AttributeError) as exc:
        raise FlavorError(
            f"{local.name} needs code this Python does not have: {exc} "
            "(install the package the model was saved with)"
        ) from None


def is_sklearn(obj: Any) -> bool:
    """Whether ``obj`` is a scikit-learn estimator (its class comes from ``sklearn``)."""
    return type(obj).__module__.split(".", 1)[0] == "sklearn" and hasattr(obj, "predict")


def parse_mlmodel(text: bytes | str, where: str = "MLmodel") -> dict[str, Any]:
    """An ``MLmodel`` file (YAML, MLflow's model format) as a dict. Raises FlavorError when
    it is not YAML or has no ``python_function`` flavor."""
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FlavorError(f"{where} is not YAML: {exc}") from None
    if not isinstance(body, dict):
        raise FlavorError(f"{where} is not an MLflow MLmodel file")
    flavors = body.get("flavors") or {}
    if "python_function" not in flavors:
        raise FlavorError(
            f"{where} has the flavors {sorted(flavors)} but no python_function; cairn loads "
            "MLflow models through mlflow.pyfunc"
        )
    return body


def mlmodel_signature(mlmodel: dict[str, Any]) -> Signature | None:
    """The column signature of a parsed MLmodel (its ``signature.inputs`` and ``outputs``
    are JSON text), or None without one or for tensor signatures."""
    sig = mlmodel.get("signature")
    if not isinstance(sig, dict) or not sig.get("inputs"):
        return None
    return normalize({"inputs": sig["inputs"], "outputs": sig.get("outputs")})


def infer_flavor(
    path: str,
    is_dir: bool,
    names: list[str],
    command: list[str] | None,
    found: str = UNKNOWN,
) -> str:
    """The flavor a model path implies: a command given -> ``command``; a folder with an
    ``MLmodel`` file -> ``mlflow``; a skops file -> ``sklearn``; a joblib or pickle file ->
    ``python`` (the registry narrows it to ``sklearn`` once it sees the object). A file's
    format is ``found`` (``file_format`` of its content) when known, else its name's
    suffix. ``names`` are the folder's direct children. Raises FlavorError."""
    if command:
        return "command"
    if is_dir:
        if "MLmodel" in names:
            return "mlflow"
        raise FlavorError(
            f"{path} is a folder without an MLmodel file: give a command to run it "
            "(--flavor command --cmd ...) or register one model file inside it"
        )
    if found == SKOPS:
        return "sklearn"
    if found in (PICKLE, JOBLIB):
        return "python"
    if path.endswith(".skops"):
        return "sklearn"
    if path.endswith(PICKLE_SUFFIXES):
        return "python"
    raise FlavorError(
        f"cannot tell the flavor of {path}: name the file .skops, .joblib or .pkl, "
        f"or give --flavor (one of {', '.join(FLAVORS)})"
    )


# -- loaded models ------------------------------------------------------------------------


class _Loaded:
    def __init__(self, version: ModelVersion, local: Path) -> None:
        self.version = version
        self.signature = version.signature
        self.local = local

    def close(self) -> None:
        """Nothing to free: the model is garbage collected with this object."""


class SklearnModel(_Loaded):
    """A scikit-learn estimator. Estimators fitted on a DataFrame get the frame (their
    column names checked by scikit-learn too); others get its values as an array."""

    def __init__(self, version: ModelVersion, local: Path, estimator: Any) -> None:
        super().__init__(version, local)
        self.estimator = estimator
        self.named = getattr(estimator, "feature_names_in_", None) is not None

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        params = dict(params or {})
        method = params.pop("method", "predict")
        if params:
            raise SignatureError(
                f"unknown params {sorted(params)}: a scikit-learn model takes only "
                f"'method', one of {', '.join(SKLEARN_METHODS)}"
            )
        if method not in SKLEARN_METHODS or not hasattr(self.estimator, method):
            have = [m for m in SKLEARN_METHODS if hasattr(self.estimator, m)]
            raise SignatureError(f"params method {method!r}: this model has {', '.join(have)}")
        return getattr(self.estimator, method)(frame if self.named else frame.to_numpy())


class PythonModel(_Loaded):
    """Any object with ``predict(frame)`` (or ``predict(frame, params=...)``)."""

    def __init__(self, version: ModelVersion, local: Path, obj: Any) -> None:
        super().__init__(version, local)
        self.obj = obj
        try:
            self.takes_params = "params" in inspect.signature(obj.predict).parameters
        except (TypeError, ValueError):
            self.takes_params = False

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        if self.takes_params:
            return self.obj.predict(frame, params=params)
        if params:
            raise SignatureError(f"this model's predict takes no params (got {sorted(params)})")
        return self.obj.predict(frame)


class CommandModel(_Loaded):
    """A command speaking JSON on stdin and stdout (see the module doc for the shapes)."""

    def __init__(
        self, version: ModelVersion, local: Path, command: list[str], timeout: float
    ) -> None:
        super().__init__(version, local)
        self.command = list(command)
        self.timeout = timeout
        self.cwd = local if local.is_dir() else local.parent
        self.env = {
            **os.environ,
            "CAIRN_MODEL_PATH": str(local),
            "CAIRN_MODEL_NAME": version.name,
            "CAIRN_MODEL_VERSION": str(version.version),
        }

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        split = frame.to_json(orient="split", date_format="iso", default_handler=str)
        request = f'{{"dataframe_split": {split}, "params": {json.dumps(params or {})}}}'
        label = f"model {self.version.name}/{self.version.version} command {self.command}"
        returncode, stdout, stderr = self._run(request.encode(), label)
        if returncode != 0:
            raise FlavorError(f"{label} exited with status {returncode}: {stderr}")
        try:
            body = json.loads(stdout)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FlavorError(
                f"{label} wrote no JSON on stdout ({stdout[:200]!r}); stderr: {stderr}"
            ) from None
        predictions = body.get("predictions") if isinstance(body, dict) else body
        if not isinstance(predictions, list) or len(predictions) != len(frame):
            raise FlavorError(
                f"{label} must answer a list of {len(frame)} prediction(s) or "
                f'{{"predictions": [...]}}; it wrote {stdout[:200]!r}'
            )
        return predictions

    def _run(self, request: bytes, label: str) -> tuple[int, bytes, str]:
        """Run the command once: ``request`` on stdin; its exit status, stdout and the tail
        of its stderr. The command gets its own process group (session), killed at the end,
        at the timeout or when stdout passes MAX_OUTPUT. Raises FlavorError."""
        limit = MAX_OUTPUT
        try:
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise FlavorError(f"{label}: {self.command[0]} not found") from None
        out: list[bytes] = []
        err = bytearray()
        overflow = threading.Event()

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

        def feed() -> None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(request)
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass  # the command stopped reading; its exit status tells why

        def read_out() -> None:
            assert proc.stdout is not None
            size = 0
            while chunk := os.read(proc.stdout.fileno(), 1 << 16):
                size += len(chunk)
                if size > limit:
                    overflow.set()
                    kill()
                    return
                out.append(chunk)

        def read_err() -> None:
            assert proc.stderr is not None
            while chunk := os.read(proc.stderr.fileno(), 1 << 16):
                err.extend(chunk)
                del err[:-_STDERR_KEPT]

        threads = [threading.Thread(target=f, daemon=True) for f in (feed, read_out, read_err)]
        for thread in threads:
            thread.start()
        timed_out = False
        try:
            proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # the command, or what it started and left holding the pipes; what they wrote
            # stays readable in the pipes
            kill()
            proc.wait()
            for thread in threads:
                thread.join(5.0)
            if not any(thread.is_alive() for thread in threads):
                for pipe in (proc.stdin, proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()
        stderr = err.decode(errors="replace")[-2000:].strip()
        if overflow.is_set():
            raise FlavorError(f"{label} wrote more than {limit} bytes on stdout; stderr: {stderr}")
        if timed_out:
            raise FlavorError(f"{label} did not answer within {self.timeout:g} s")
        return proc.returncode, b"".join(out), stderr


class MlflowModel(_Loaded):
    """An MLflow ``python_function`` model loaded by ``mlflow.pyfunc.load_model``, predicting
    as MLflow's scoring server does: the frame is cast to the input schema's types by
    MLflow's own ``cast_df_types_according_to_schema`` and the pyfunc enforces its schema,
    so MLflow's rules (extra columns dropped, numeric strings converted, integers widened)
    and error codes hold. A value the cast refuses, and any exception the model raises, is
    a SignatureError with ``BAD_REQUEST`` (MLflow's answer); an ``MlflowException`` keeps its
    code (``INVALID_PARAMETER_VALUE`` for a schema or params mismatch), unless it is a
    server error, which raises FlavorError."""

    def __init__(self, version: ModelVersion, local: Path) -> None:
        super().__init__(version, local)
        try:
            import mlflow.pyfunc
        except ImportError:
            raise FlavorError(f"model {version.name}/{version.version}: {_MLFLOW_EXTRA}") from None
        parse_mlmodel((local / "MLmodel").read_bytes(), f"{version.ref}/MLmodel")
        try:
            self.model = mlflow.pyfunc.load_model(str(local))
        except Exception as exc:  # noqa: BLE001  (MLflow raises many types)
            raise FlavorError(f"mlflow could not load {version.ref}: {exc}") from None
        self.schema = self.model.metadata.get_input_schema()

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.utils.proto_json_utils import cast_df_types_according_to_schema

        if self.schema is not None and isinstance(frame, pd.DataFrame):
            try:
                frame = cast_df_types_according_to_schema(frame.copy(), self.schema)
            except MlflowException as exc:
                raise SignatureError(exc.message, "BAD_REQUEST") from exc
        try:
            if params:
                return self.model.predict(frame, params=params)
            return self.model.predict(frame)
        except MlflowException as exc:
            if exc.get_http_status_code() >= 500:
                raise FlavorError(f"model {self.version.ref}: {exc.message}") from exc
            raise SignatureError(exc.message, str(exc.error_code)) from exc
        except Exception as exc:  # noqa: BLE001  (MLflow answers any model error with 400)
            raise SignatureError(
                "Encountered an unexpected error while evaluating the model. Verify that the "
                f"serialized input Dataframe is compatible with the model for inference. "
                f"{type(exc).__name__}: {exc}",
                "BAD_REQUEST",
            ) from exc


def load(version: ModelVersion, local: Path, *, timeout: float | None = None) -> LoadedModel:
    """Load a fetched version (``local`` from ``fetch``) by its flavor.

    ``timeout`` (seconds) bounds each call of a ``command`` model (default: the one it was
    registered with, else 60). A version whose loading runs code (``runs_code``: pickle,
    joblib, MLflow) loads only when it was registered trusted (``version.trusted``).
    Raises UntrustedModel (such a version, not trusted; nothing is loaded), FlavorError
    (unknown flavor, a file that does not load, refused skops types, a missing extra).
    """
    local = Path(local)
    if not version.trusted:
        reason = runs_code(version.flavor, local)
        if reason is not None:
            raise untrusted(f"model {version.name}/{version.version}", reason, version)
    if version.flavor == "sklearn":
        obj = load_object(local, trusted=version.trusted)
        if not is_sklearn(obj):
            raise FlavorError(
                f"{version.ref} holds a {type(obj).__module__}.{type(obj).__qualname__}, not a "
                "scikit-learn estimator; register it with --flavor python"
            )
        return SklearnModel(version, local, obj)
    if version.flavor == "python":
        obj = load_object(local, trusted=version.trusted)
        if not callable(getattr(obj, "predict", None)):
            raise FlavorError(f"{version.ref} holds an object without a predict method")
        return PythonModel(version, local, obj)
    if version.flavor == "command":
        command = version.info.get("command")
        if not command:
            raise FlavorError(f"{version.ref}: a command model needs its command")
        limit = timeout or float(version.info.get("timeout") or DEFAULT_TIMEOUT)
        return CommandModel(version, local, list(command), limit)
    if version.flavor == "mlflow":
        return MlflowModel(version, local)
    raise FlavorError(f"unknown flavor {version.flavor!r}; cairn knows {', '.join(FLAVORS)}")
