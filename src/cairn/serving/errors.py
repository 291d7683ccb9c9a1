"""Exceptions of the serving layer (deployments, endpoints, the prediction log)::

ServingError                 (a CairnError)
├── PolicyError              a traffic policy that is not valid (the message names the field)
├── PolicyConflict           the policy changed between reading and writing it; try again
├── NotReady                 an endpoint has no model version loaded yet (servers answer 503)
└── InputRefused             the model refused a request's values (servers answer 400,
                             MLflow's BAD_REQUEST)

An unknown deployment raises cairn.data's ``NotFound``, like every other unknown name;
a request whose inputs do not match the model raises cairn.ml's ``SignatureError`` (400).
"""

from __future__ import annotations

from cairn.storage.errors import CairnError, FieldError

__all__ = ["InputRefused", "NotReady", "PolicyConflict", "PolicyError", "ServingError"]


class ServingError(CairnError):
    """A deployment, routing or prediction-log operation failed."""


class PolicyError(ServingError, FieldError):
    """A traffic policy is refused; ``problems`` lists (field path, message) pairs such as
    ``("routes.1.weight", "Input should be greater than or equal to 0")``, ``field`` the
    first of them (or the policy file)."""

    def __init__(
        self, message: str, problems: list[tuple[str, str]] | None = None, field: str = ""
    ) -> None:
        problems = list(problems or [])
        super().__init__(message, field or (problems[0][0] if problems else ""), problems)


class PolicyConflict(ServingError):
    """Somebody else changed the deployment's policy meanwhile; read it again and retry."""


class NotReady(ServingError):
    """The endpoint has not loaded a model version yet (or its policy cannot be served)."""


class InputRefused(ServingError, ValueError):
    """The model raised ``ValueError`` or ``TypeError`` on inputs that passed its signature:
    values it cannot take (a null where it needs a number, a number so large that its preprocessing
    overflows, no rows). The client's mistake, not a broken model: servers answer 400 with
    the model's own message. The model's exception is the ``__cause__``."""
