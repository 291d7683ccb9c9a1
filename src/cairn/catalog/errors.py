"""Catalog exceptions (see cairn.storage.errors for the whole tree): the database's, and
those of authentication and authorization, whose state the catalog holds
(cairn.catalog.auth)::

    CatalogError                the metadata database could not be opened or written
    AuthError                   tokens and roles
    ├── Unauthenticated         no token, or one unknown, revoked or expired (HTTP 401)
    ├── PermissionDenied        a role the caller lacks on a resource (HTTP 403)
    ├── AuthStateError          activating twice, or managing tokens while auth is off (409)
    └── UnknownToken            a token id no token has (HTTP 404)
"""

from __future__ import annotations

from cairn.storage.errors import CairnError

__all__ = [
    "AuthError",
    "AuthStateError",
    "CatalogError",
    "PermissionDenied",
    "Unauthenticated",
    "UnknownToken",
]


class CatalogError(CairnError):
    """The metadata database could not be opened or written."""


class AuthError(CairnError):
    """Authentication or authorization refused or failed; catch it for all of them."""


class Unauthenticated(AuthError):
    """The request carries no token, or one that is unknown, revoked or expired: log in
    again with a valid token (``cairn auth login``). A server answers 401."""


class PermissionDenied(AuthError):
    """The caller lacks a role on a resource. The message names both ("alice lacks
    repoWriter on repo images"); ``subject``, ``role``, ``kind`` and ``resource`` say them
    as values ("" when not known, as after a trip over the wire). A server answers 403."""

    def __init__(
        self, message: str, *, subject: str = "", role: str = "", kind: str = "", resource: str = ""
    ) -> None:
        super().__init__(message)
        self.subject = subject
        self.role = role
        self.kind = kind
        self.resource = resource


class AuthStateError(AuthError):
    """Auth is in the wrong state for the request: activated already (it cannot be
    activated twice), or not active yet (tokens and roles mean nothing then). A server
    answers 409."""


class UnknownToken(AuthError, LookupError):
    """No token has this id (revoking or inspecting one). A server answers 404."""
