"""Exceptions of the ML layer (runs, registry, flavors)::

MLError                      (a CairnError)
├── RunFileError             a run file in an output commit that is not the documented format
├── FlavorError              a model path cairn cannot load, or a flavor's extra missing
│   └── UntrustedModel       a model whose loading runs code, without the user's --trust
└── SignatureError           a request's inputs do not match the model's signature, or the
                             model refused them; ``error_code`` is MLflow's code for it

Unknown names (a run, a model, a version, an alias) raise cairn.data's ``NotFound``, and a
model that exists already raises ``AlreadyExists``, so one ``except NotFound`` serves every
layer.
"""

from __future__ import annotations

from cairn.storage.errors import CairnError

__all__ = ["FlavorError", "MLError", "RunFileError", "SignatureError", "UntrustedModel"]


class MLError(CairnError):
    """A run, registry or model-loading operation failed."""


class RunFileError(MLError, ValueError):
    """A run file (``.cairn/runs/*.json[l]`` in an output commit) is malformed; the
    message names the file, the line and the field."""


class FlavorError(MLError):
    """A model cannot be loaded: unknown flavor, missing file, or a missing extra (the
    message names the ``pip install`` to run)."""


class UntrustedModel(FlavorError):
    """A model whose loading runs code the file names (a pickle or joblib file, an MLflow
    folder), registered or loaded without the user's explicit trust (``trust=True``,
    ``--trust``). Nothing of the model was loaded; the message says how to save it safely
    (skops) or how to register it trusted."""


class SignatureError(MLError, ValueError):
    """Inputs that do not match a model's signature: a missing or unknown column, or a
    value that does not convert to the column's type. Servers answer it with 400 and
    ``error_code``, the code MLflow's scoring server gives the same mistake:
    ``INVALID_PARAMETER_VALUE`` (missing columns, params the model refuses: the default) or
    ``BAD_REQUEST`` (a value that does not convert, a model that raised on the inputs)."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.error_code = error_code
