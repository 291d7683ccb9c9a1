"""Trust: whether loading a model file runs code the file names (see ``cairn.ml.flavors``,
Trust), told by the file's content, never its name, and the skops type policy.

- ``file_format``: skops (a zip holding ``schema.json``), pickle (protocol 2 to 5), joblib
  (its compressed wrappers around a pickle) or unknown.
- ``runs_code``: why loading a fetched model as a flavor runs code, or None.
- ``skops_trusted``: the types a ``.skops`` file may load (classes of scikit-learn, NumPy,
  SciPy, outside their test helpers); FlavorError naming the others.
- ``untrusted``: the UntrustedModel to raise, with what to do next.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from pathlib import Path

from cairn.data.subject import about
from cairn.ml.errors import FlavorError, UntrustedModel
from cairn.ml.models import ModelVersion

__all__ = [
    "JOBLIB",
    "PICKLE",
    "SKOPS",
    "SKOPS_TRUSTED_PACKAGES",
    "UNKNOWN",
    "file_format",
    "runs_code",
    "skops_trusted",
    "untrusted",
]

SKOPS_TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")
# What a model file holds, told by its first bytes (``file_format``).
SKOPS, PICKLE, JOBLIB, UNKNOWN = "skops", "pickle", "joblib", "unknown"
# The magic bytes of joblib's compressed files (joblib/compressor.py, each compressor's
# ``prefix``, and ``ZF``, its format before 0.10); a pickle is inside every one.
_JOBLIB_MAGIC = (b"x", b"\x1f\x8b", b"BZ", b"]\x00", b"\xfd7zXZ", b'\x04"M\x18', b"ZF")


def skops_trusted(file: Path) -> list[str]:
    """The types a ``.skops`` file names beyond skops' defaults, all from the trusted
    packages (scikit-learn, NumPy, SciPy), to pass to ``skops.io.load(trusted=...)``.

    Raises FlavorError naming every type from another package (the file is not loaded).
    """
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=file)
    except Exception as exc:  # noqa: BLE001  (a damaged zip, not a skops file)
        raise FlavorError(f"{file.name} is not a readable .skops file: {exc}") from None
    refused = [t for t in untrusted if not _trusted_class(t)]
    if refused:
        raise FlavorError(
            f"{file.name} holds types cairn does not trust ({', '.join(sorted(refused))}); "
            "only scikit-learn, NumPy and SciPy classes load from .skops files (functions, "
            "e.g. in a FunctionTransformer, can run anything). Save the model with joblib and "
            "register it with --trust if you trust it"
        )
    return list(untrusted)


def _trusted_class(name: str) -> bool:
    """Whether ``name`` (``module.attr``) is a class of a trusted package, outside its test
    helpers. Functions are not trusted: a reference to one (``numpy.testing``'s helpers
    include one that calls ``exec``) is code a file can make run at predict time."""
    module, _, attr = name.rpartition(".")
    parts = module.split(".")
    if parts[0] not in SKOPS_TRUSTED_PACKAGES or "testing" in parts or "tests" in parts:
        return False
    try:
        value = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(value, type)


def file_format(local: Path) -> str:
    """What the model file ``local`` holds, by its content, not its name: ``skops`` (a zip
    holding skops' ``schema.json``), ``pickle`` (a pickle of protocol 2 to 5: what pickle,
    joblib and cloudpickle write), ``joblib`` (joblib's compressed format, a pickle inside)
    or ``unknown`` (including protocol 0/1 pickles, which have no header)."""
    with open(local, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(local) as zf:
                return SKOPS if "schema.json" in zf.namelist() else UNKNOWN
        except (zipfile.BadZipFile, OSError):
            return UNKNOWN
    if head[:1] == pickle.PROTO and head[1:2] and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:
        return PICKLE
    if head.startswith(_JOBLIB_MAGIC):
        return JOBLIB
    return UNKNOWN


def runs_code(flavor: str, local: Path) -> str | None:
    """Why loading the fetched model ``local`` as ``flavor`` runs code the model names (a
    phrase: "is a pickle"), or None when it does not: a skops file, a command (the user
    gave it), a folder given to a one-file flavor (refused as such on load). See Trust in
    the module doc."""
    local = Path(local)
    if flavor == "mlflow":
        return (
            "is an MLflow model folder: loading it imports the Python module its MLmodel "
            "names, with the folder's code on sys.path, and MLflow's sklearn and pyfunc "
            "flavors unpickle"
        )
    if flavor not in ("sklearn", "python") or local.is_dir():
        return None
    found = file_format(local)
    if found == SKOPS:
        return None
    if found == PICKLE:
        return "is a pickle (by its content): unpickling calls any function the file names"
    if found == JOBLIB:
        return "is a compressed joblib file: loading unpickles it, calling any function it names"
    return (
        "is not a .skops file, so cairn would read it with joblib.load, which unpickles: "
        "that calls any function the file names"
    )


def untrusted(what: str, reason: str, version: ModelVersion | None = None) -> UntrustedModel:
    """The UntrustedModel for ``what`` (a ref or a file name) whose loading ``reason``
    (from ``runs_code``) says runs code. For a registered ``version`` the message gives the
    command that registers it again, trusted."""
    if version is None:
        fix = (
            "Save a scikit-learn model with skops (skops.io.dump(model, 'model.skops')) and "
            "register that file, or, if you trust whoever wrote this one, register it with "
            "--trust (trust=True)"
        )
    else:
        fix = (
            "It was registered without trust (or by a cairn from before trust was "
            "recorded), so cairn does not load it. If you trust whoever wrote it, register "
            "it again with trust and point the aliases at the new version; better, save it "
            "with skops and register that"
        )
        refused = UntrustedModel(f"{what} {reason}. {fix}")
        return about(refused, "model.retrust", model=version.name, ref=version.ref)
    return UntrustedModel(f"{what} {reason}. {fix}")
