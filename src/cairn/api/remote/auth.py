"""``RemoteClient.auth``: the token and role verbs of ``cairn server`` (its routes are
cairn.server.team.auth's). The embedded store has no auth: these exist only remote."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from cairn.catalog.auth import Role, S3Key, TokenInfo

__all__ = ["RemoteAuth"]

_TOKENS = TypeAdapter(list[TokenInfo])
_TOKEN = TypeAdapter(TokenInfo)
_S3KEY = TypeAdapter(S3Key)
_S3KEYS = TypeAdapter(list[S3Key])


class RemoteAuth:
    """Tokens and roles on the server behind ``transport`` (cairn.api.remote.client)."""

    def __init__(self, transport: Any) -> None:
        self._t = transport

    def _op(self, op: str, **kwargs: Any) -> Any:
        body = {k: v for k, v in kwargs.items() if v is not None or k == "role"}
        return self._t.request("POST", f"/api/v1/auth/{op}", json=body).json()["result"]

    def activate(self) -> str:
        """Turn auth on; the root token (shown once). Raises AuthStateError (active)."""
        return str(self._t.request("POST", "/api/v1/auth/activate").json()["token"])

    def whoami(self) -> dict[str, Any]:
        """``{"subject", "token_id", "roles": [{"kind", "resource", "role"}]}`` of the
        token in use. Raises Unauthenticated."""
        return dict(self._t.request("GET", "/api/v1/auth/whoami").json())

    def create_token(self, subject: str, ttl: float | None = None) -> tuple[TokenInfo, str]:
        """A new token for ``subject`` (``ttl`` seconds, None: no expiry): its record and
        its text, which the server never shows again. Raises PermissionDenied."""
        answer = self._op("create_token", subject=subject, ttl=ttl)
        return _TOKEN.validate_python(answer["info"]), str(answer["token"])

    def create_s3_key(self, subject: str) -> tuple[S3Key, str]:
        """A new S3 access key for ``subject`` (the S3 gateway checks SigV4 signatures
        with it and acts with ``subject``'s roles): its record and its secret access key,
        which the server never shows again. Raises PermissionDenied."""
        answer = self._op("create_s3_key", subject=subject)
        return _S3KEY.validate_python(answer["key"]), str(answer["secret"])

    def list_s3_keys(self, subject: str | None = None) -> list[S3Key]:
        """S3 access keys (never their secrets), of one subject or all. Raises
        PermissionDenied (not a clusterAdmin)."""
        return _S3KEYS.validate_python(self._op("list_s3_keys", subject=subject))

    def revoke_s3_key(self, key_id: str) -> S3Key:
        """Revoke an S3 access key; its next request is refused. Raises UnknownToken,
        PermissionDenied."""
        return _S3KEY.validate_python(self._op("revoke_s3_key", key_id=key_id))

    def revoke_token(self, token_or_id: str) -> TokenInfo:
        """Revoke a token (its text or id); it stops working at once. Raises UnknownToken."""
        return _TOKEN.validate_python(self._op("revoke_token", token_or_id=token_or_id))

    def list_tokens(self, subject: str | None = None) -> list[TokenInfo]:
        """Tokens (never their text), of one subject or all (clusterAdmin)."""
        return _TOKENS.validate_python(self._op("list_tokens", subject=subject))

    def set_role(self, kind: str, resource: str, subject: str, role: str | None) -> None:
        """Give ``subject`` ``role`` on a repo, model or the cluster (``kind``; resource
        ``""`` for the cluster); None takes their role away."""
        self._op("set_role", kind=kind, resource=resource, subject=subject, role=role)

    def get_roles(self, kind: str, resource: str) -> dict[str, list[Role]]:
        """Subject -> roles on a repo, model or the cluster."""
        found = self._op("get_roles", kind=kind, resource=resource)
        return {k: [Role(r) for r in v] for k, v in found.items()}

    def check(self, kind: str, resource: str = "") -> list[Role]:
        """The caller's own roles on a repo, model or the cluster."""
        return [Role(r) for r in self._op("check", kind=kind, resource=resource)]
