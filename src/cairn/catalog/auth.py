"""Tokens and role bindings: who a request is, and what they may do (issue 11, section 3).

Off until ``activate``: an embedded store, or a server never activated, checks nothing.
``activate`` turns it on for good, makes user ``root`` a ``clusterAdmin`` and returns
root's token, the only time its text exists outside the caller.

Tokens
    ``cairn_<id>_<secret>``: ``id`` is 16 hex digits, not secret, by which the token's
    row is found in one primary-key lookup; ``secret`` is ``secrets.token_urlsafe(32)``
    (256 random bits). The catalog keeps HMAC-SHA256 of the whole token keyed by a
    random per-token salt, never the text; a presented token is hashed the same way and
    compared with ``hmac.compare_digest``. A fast hash is enough: slow hashes (scrypt,
    argon2) exist to make guessing low-entropy passwords expensive, but nobody can guess
    through 2**256 secrets at any speed, while every request pays for the hash. The salt
    keeps equal hashes from ever linking two rows. ``hint`` keeps the last 4 characters,
    to tell tokens apart in a listing.

Invariants
    * ``authenticate`` reads the token's row in every call (no cache), so a revoked or
      expired token is refused from the next request on, on every server of the store.
    * Activation is one-way and happens once: a second ``activate`` raises, even from
      another process (the check and the insert share one write transaction).
    * Every change of a token or a role writes an event in the same transaction
      (``auth.activate``, ``auth.token.create``, ``auth.token.revoke``, ``auth.role.set``)
      with the actor of cairn.catalog.actor; never a token's text.
    * Some subject always holds ``clusterAdmin``: a change that would leave none is
      refused.

Roles (Pachyderm's names and order): ``repoReader`` < ``repoWriter`` < ``repoOwner`` <
``clusterAdmin``; each implies those before it. Bindings are on a ``repo`` or a
``model`` by name (the three repo roles: read and serve / register and move aliases /
grant), or on the ``cluster`` (resource ""), where they hold on every resource.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from cairn.catalog.engine import Catalog
from cairn.catalog.errors import AuthStateError, Unauthenticated, UnknownToken
from cairn.catalog.rows import row_to
from cairn.catalog.schema import auth_state, events, role_bindings, s3_keys, tokens
from cairn.storage.errors import FieldError

__all__ = [
    "ROOT",
    "TOKEN_PREFIX",
    "AuthStore",
    "Principal",
    "ResourceKind",
    "Role",
    "S3Key",
    "TokenInfo",
    "token_id",
]

TOKEN_PREFIX = "cairn_"
ROOT = "root"
"""The user ``activate`` makes clusterAdmin."""

_ID_HEX = 16
_TOKEN = re.compile(
    rf"^{TOKEN_PREFIX}(?P<id>[0-9a-f]{{{_ID_HEX}}})_(?P<secret>[A-Za-z0-9_-]{{43}})$"
)
_TOKEN_ID = re.compile(rf"^[0-9a-f]{{{_ID_HEX}}}$")
# A user name: letters and digits first, then also what e-mail addresses and Pachyderm's
# ``user:`` / ``robot:`` prefixes use.
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,254}$")


class ResourceKind(StrEnum):
    """What a role is bound on."""

    CLUSTER = "cluster"
    REPO = "repo"
    MODEL = "model"


class Role(StrEnum):
    """Pachyderm's roles; each implies the ones before it in this order."""

    REPO_READER = "repoReader"
    REPO_WRITER = "repoWriter"
    REPO_OWNER = "repoOwner"
    CLUSTER_ADMIN = "clusterAdmin"

    @property
    def rank(self) -> int:
        """0 for repoReader up to 3 for clusterAdmin."""
        return list(Role).index(self)

    def implies(self, other: Role) -> bool:
        """Whether holding this role grants ``other`` too (a role implies itself)."""
        return self.rank >= Role(other).rank


@dataclass(frozen=True)
class Principal:
    """Who a request is: ``subject`` (a user name) and the id of the token it showed."""

    subject: str
    token_id: str | None = None


@dataclass(frozen=True)
class TokenInfo:
    """A token without its text: ``created``, ``expires`` (None: never) and
    ``revoked_at`` (None: not revoked) are UTC seconds since the epoch; ``hint`` is the
    token's last 4 characters."""

    id: str
    subject: str
    created: float
    expires: float | None
    revoked_at: float | None
    hint: str

    def valid(self, now: float) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires is None or now < self.expires)


@dataclass(frozen=True)
class S3Key:
    """An S3 access key without its secret: ``id`` is the access key id (``CAIRN`` and 15
    upper-case hex digits, 20 characters as AWS's); ``created`` and ``revoked_at`` (None:
    not revoked) are UTC seconds since the epoch."""

    id: str
    subject: str
    created: float
    revoked_at: float | None


def token_id(token_or_id: str) -> str:
    """The id of a token given whole (``cairn_<id>_<secret>``) or as its id. Raises
    UnknownToken for text that is neither (the message never repeats it)."""
    match = _TOKEN.match(token_or_id)
    if match is not None:
        return match.group("id")
    if _TOKEN_ID.match(token_or_id):
        return token_or_id
    raise UnknownToken(
        f"not a token or token id: expected {TOKEN_PREFIX}<id>_<secret> or {_ID_HEX} hex digits"
    )


def _digest(salt: bytes, token: str) -> bytes:
    return hmac.new(salt, token.encode("ascii"), hashlib.sha256).digest()


def _check_subject(subject: str) -> str:
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise FieldError(
            f"user name {subject!r} is not allowed: use letters, digits and _ . @ : + -, "
            "starting with a letter or digit",
            field="subject",
        )
    return subject


def _record(conn: Connection, kind: str, subject: str, info: dict[str, Any]) -> None:
    # The events table's row (cairn.ml.events reads it); the actor column takes its default.
    conn.execute(
        insert(events).values(
            time=time.time(), kind=kind, subject=subject, info=json.dumps(info, sort_keys=True)
        )
    )


class AuthStore:
    """Tokens, role bindings and the on/off state of auth, in ``catalog``.

    Holds no state of its own beyond "auth is active" once seen (activation is one-way),
    so any number of stores and servers may share one catalog.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._active = False

    # -- state ----------------------------------------------------------------------------
    def is_active(self) -> bool:
        """Whether ``activate`` ran on this catalog (by any process)."""
        if not self._active:
            with self.catalog.read() as conn:
                self._active = bool(conn.execute(select(auth_state.c.active)).scalar())
        return self._active

    def activate(self) -> str:
        """Turn auth on: user ``root`` becomes clusterAdmin; return root's token (its text
        exists nowhere else: the caller must show it once). Raises AuthStateError when auth
        is active already."""
        with self.catalog.write() as conn:
            if conn.execute(select(auth_state.c.active)).scalar():
                raise AuthStateError("auth is active already; it cannot be activated twice")
            now = time.time()
            conn.execute(insert(auth_state).values(id=0, active=True, activated_at=now))
            _record(conn, "auth.activate", ROOT, {})
            conn.execute(
                insert(role_bindings).values(
                    kind=ResourceKind.CLUSTER, resource="", subject=ROOT, role=Role.CLUSTER_ADMIN
                )
            )
            _, secret = self._insert_token(conn, ROOT, None, now)
        self._active = True
        return secret

    def _require_active(self, conn: Connection) -> None:
        if not conn.execute(select(auth_state.c.active)).scalar():
            raise AuthStateError("auth is not active: run `cairn auth activate` first")

    # -- tokens ---------------------------------------------------------------------------
    def authenticate(self, token: str) -> Principal:
        """Who ``token`` belongs to. Raises Unauthenticated for text that is no cairn
        token, an unknown token (or a wrong secret), a revoked or an expired one."""
        match = _TOKEN.match(token) if isinstance(token, str) else None
        if match is None:
            raise Unauthenticated(
                f"not a cairn token (they start with {TOKEN_PREFIX}); log in with the token "
                "you were given"
            )
        with self.catalog.read() as conn:
            row = conn.execute(select(tokens).where(tokens.c.id == match.group("id"))).first()
        # The same answer for an unknown id and a wrong secret: an id alone opens nothing.
        if row is None or not hmac.compare_digest(
            _digest(bytes.fromhex(row.salt), token), bytes.fromhex(row.hash)
        ):
            raise Unauthenticated("unknown token; ask an admin for one (cairn auth login)")
        if row.revoked_at is not None:
            raise Unauthenticated(f"token {row.id} was revoked; ask an admin for a new one")
        if row.expires is not None and row.expires <= time.time():
            raise Unauthenticated(f"token {row.id} has expired; ask an admin for a new one")
        return Principal(row.subject, row.id)

    def create_token(self, subject: str, ttl: float | None = None) -> tuple[TokenInfo, str]:
        """A new token for user ``subject``, valid for ``ttl`` seconds (None: until
        revoked); return its info and its text, which is not kept. Raises FieldError (a
        bad name, a ttl that is not a positive number), AuthStateError (auth off)."""
        _check_subject(subject)
        number = isinstance(ttl, int | float) and not isinstance(ttl, bool)
        if ttl is not None and not (number and math.isfinite(ttl) and ttl > 0):
            raise FieldError(f"ttl must be a positive number of seconds, not {ttl!r}", field="ttl")
        with self.catalog.write() as conn:
            self._require_active(conn)
            return self._insert_token(conn, subject, ttl, time.time())

    def _insert_token(
        self, conn: Connection, subject: str, ttl: float | None, now: float
    ) -> tuple[TokenInfo, str]:
        tid = secrets.token_hex(_ID_HEX // 2)
        token = f"{TOKEN_PREFIX}{tid}_{secrets.token_urlsafe(32)}"
        salt = secrets.token_bytes(16)
        info = TokenInfo(tid, subject, now, None if ttl is None else now + ttl, None, token[-4:])
        conn.execute(
            insert(tokens).values(
                id=tid,
                subject=subject,
                salt=salt.hex(),
                hash=_digest(salt, token).hex(),
                created=now,
                expires=info.expires,
                revoked_at=None,
                hint=info.hint,
            )
        )
        _record(conn, "auth.token.create", subject, {"token": tid, "expires": info.expires})
        return info, token

    # -- S3 access keys -------------------------------------------------------------------
    def create_s3_key(self, subject: str) -> tuple[S3Key, str]:
        """A new S3 access key for user ``subject``, who it signs as (their roles hold);
        return it and its secret access key (40 characters), which the caller must show
        once. Raises FieldError (a bad name), AuthStateError (auth off)."""
        _check_subject(subject)
        key = S3Key(f"CAIRN{secrets.token_hex(8)[:15].upper()}", subject, time.time(), None)
        secret = secrets.token_urlsafe(30)
        with self.catalog.write() as conn:
            self._require_active(conn)
            conn.execute(
                insert(s3_keys).values(
                    id=key.id, subject=subject, secret=secret, created=key.created
                )
            )
            _record(conn, "auth.s3key.create", subject, {"key": key.id})
        return key, secret

    def list_s3_keys(self, subject: str | None = None) -> list[S3Key]:
        """Every S3 access key (of user ``subject`` if given), oldest first, revoked ones
        included; never their secrets."""
        query = select(*(s3_keys.c[n] for n in S3Key.__dataclass_fields__))
        if subject is not None:
            query = query.where(s3_keys.c.subject == subject)
        with self.catalog.read() as conn:
            rows = conn.execute(query.order_by(s3_keys.c.created, s3_keys.c.id)).all()
        return [row_to(S3Key, r) for r in rows]

    def revoke_s3_key(self, key_id: str) -> S3Key:
        """Revoke S3 access key ``key_id`` at once (its next request is refused); again
        changes nothing. Raises UnknownToken, AuthStateError (auth off)."""
        with self.catalog.write() as conn:
            self._require_active(conn)
            row = conn.execute(select(s3_keys).where(s3_keys.c.id == key_id)).first()
            if row is None:
                raise UnknownToken(f"no S3 access key has id {key_id}")
            key = S3Key(row.id, row.subject, row.created, row.revoked_at)
            if row.revoked_at is None:
                now = time.time()
                conn.execute(update(s3_keys).where(s3_keys.c.id == key_id).values(revoked_at=now))
                _record(conn, "auth.s3key.revoke", row.subject, {"key": key_id})
                key = S3Key(row.id, row.subject, row.created, now)
        return key

    def s3_secret(self, key_id: str) -> tuple[Principal, str]:
        """Who S3 access key ``key_id`` signs as, and its secret (for checking a
        signature; never to be shown or logged). Raises UnknownToken (no such key, or
        revoked)."""
        with self.catalog.read() as conn:
            row = conn.execute(select(s3_keys).where(s3_keys.c.id == key_id)).first()
        if row is None or row.revoked_at is not None:
            raise UnknownToken("no such S3 access key, or revoked")
        return Principal(row.subject, None), str(row.secret)

    def get_token(self, token_or_id: str) -> TokenInfo:
        """The token given whole or by id. Raises UnknownToken."""
        tid = token_id(token_or_id)
        with self.catalog.read() as conn:
            row = conn.execute(select(tokens).where(tokens.c.id == tid)).first()
        if row is None:
            raise UnknownToken(f"no token has id {tid}")
        return row_to(TokenInfo, row)

    def revoke_token(self, token_or_id: str) -> TokenInfo:
        """Revoke a token given whole or by id, at once (its next request is refused);
        revoking it again changes nothing. Returns it. Raises UnknownToken, AuthStateError
        (auth off)."""
        tid = token_id(token_or_id)
        with self.catalog.write() as conn:
            self._require_active(conn)
            row = conn.execute(select(tokens).where(tokens.c.id == tid)).first()
            if row is None:
                raise UnknownToken(f"no token has id {tid}")
            if row.revoked_at is None:
                now = time.time()
                conn.execute(update(tokens).where(tokens.c.id == tid).values(revoked_at=now))
                _record(conn, "auth.token.revoke", row.subject, {"token": tid})
                return row_to(TokenInfo, row, revoked_at=now)
        return row_to(TokenInfo, row)

    def list_tokens(self, subject: str | None = None) -> list[TokenInfo]:
        """Every token (of user ``subject`` if given), oldest first, revoked and expired
        ones included; never their text or hashes."""
        query = select(*(tokens.c[n] for n in TokenInfo.__dataclass_fields__))
        if subject is not None:
            query = query.where(tokens.c.subject == subject)
        with self.catalog.read() as conn:
            rows = conn.execute(query.order_by(tokens.c.created, tokens.c.id)).all()
        return [row_to(TokenInfo, r) for r in rows]

    # -- roles ----------------------------------------------------------------------------
    def set_role(
        self, kind: ResourceKind | str, resource: str, subject: str, role: Role | str | None
    ) -> None:
        """Give ``subject`` exactly ``role`` on the resource (replacing what they held
        there), or nothing with None. ``kind`` cluster takes ``resource`` "". Raises
        FieldError (an unknown kind or role, clusterAdmin off the cluster, a bad name),
        AuthStateError (auth off, or no clusterAdmin would be left)."""
        kind, resource = _resource(kind, resource)
        _check_subject(subject)
        new = _role(role) if role is not None else None
        if new is Role.CLUSTER_ADMIN and kind is not ResourceKind.CLUSTER:
            raise FieldError("clusterAdmin is a role on the cluster only", field="role")
        where = and_(
            role_bindings.c.kind == kind,
            role_bindings.c.resource == resource,
            role_bindings.c.subject == subject,
        )
        with self.catalog.write() as conn:
            self._require_active(conn)
            conn.execute(delete(role_bindings).where(where))
            if new is not None:
                conn.execute(
                    insert(role_bindings).values(
                        kind=kind, resource=resource, subject=subject, role=new
                    )
                )
            if kind is ResourceKind.CLUSTER and not self._admins(conn):
                raise AuthStateError(
                    f"{subject} is the last clusterAdmin; make someone else one first"
                )
            _record(
                conn,
                "auth.role.set",
                resource,
                {"kind": str(kind), "resource": resource, "user": subject, "role": new},
            )

    def set_owner(self, kind: ResourceKind | str, resource: str, subject: str) -> None:
        """Make ``subject`` the resource's only role holder, as ``repoOwner``: for a
        resource just created, whose name may carry bindings from a deleted one of the
        same name. Raises as ``set_role``."""
        kind, resource = _resource(kind, resource)
        if kind is ResourceKind.CLUSTER:
            raise FieldError("the cluster has no owner; bind clusterAdmin", field="kind")
        _check_subject(subject)
        with self.catalog.write() as conn:
            self._require_active(conn)
            conn.execute(
                delete(role_bindings).where(
                    role_bindings.c.kind == kind, role_bindings.c.resource == resource
                )
            )
            conn.execute(
                insert(role_bindings).values(
                    kind=kind, resource=resource, subject=subject, role=Role.REPO_OWNER
                )
            )
            _record(
                conn,
                "auth.role.set",
                resource,
                {"kind": str(kind), "resource": resource, "user": subject, "role": "repoOwner"},
            )

    def _admins(self, conn: Connection) -> list[str]:
        return list(
            conn.execute(
                select(role_bindings.c.subject).where(
                    role_bindings.c.kind == ResourceKind.CLUSTER,
                    role_bindings.c.role == Role.CLUSTER_ADMIN,
                )
            ).scalars()
        )

    def get_roles(self, kind: ResourceKind | str, resource: str) -> dict[str, list[Role]]:
        """Subject -> the roles bound to them on this resource itself (not those they
        hold through the cluster), subjects sorted. Raises FieldError."""
        kind, resource = _resource(kind, resource)
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(role_bindings.c.subject, role_bindings.c.role)
                .where(role_bindings.c.kind == kind, role_bindings.c.resource == resource)
                .order_by(role_bindings.c.subject)
            ).all()
        out: dict[str, list[Role]] = {}
        for subject, role in rows:
            out.setdefault(subject, []).append(Role(role))
        return {s: sorted(r, key=lambda x: x.rank) for s, r in out.items()}

    def roles_of(
        self, principal: Principal | str, kind: ResourceKind | str, resource: str
    ) -> list[Role]:
        """The roles ``principal`` (or a user name) holds on the resource: bound there or
        on the cluster, lowest first, each once. Raises FieldError."""
        kind, resource = _resource(kind, resource)
        subject = principal.subject if isinstance(principal, Principal) else principal
        on = role_bindings.c.kind == ResourceKind.CLUSTER
        if kind is not ResourceKind.CLUSTER:
            on = on | and_(role_bindings.c.kind == kind, role_bindings.c.resource == resource)
        with self.catalog.read() as conn:
            found = conn.execute(
                select(role_bindings.c.role).where(role_bindings.c.subject == subject, on)
            ).scalars()
            return sorted({Role(r) for r in found}, key=lambda r: r.rank)

    def bindings_of(self, principal: Principal | str) -> dict[tuple[ResourceKind, str], Role]:
        """Every resource ``principal`` (or a user name) holds a role on, with the highest
        one held there (cluster bindings under ``(cluster, "")``): one query, for checking
        many resources at once."""
        subject = principal.subject if isinstance(principal, Principal) else principal
        with self.catalog.read() as conn:
            rows = conn.execute(
                select(role_bindings.c.kind, role_bindings.c.resource, role_bindings.c.role).where(
                    role_bindings.c.subject == subject
                )
            ).all()
        out: dict[tuple[ResourceKind, str], Role] = {}
        for kind, resource, role in rows:
            key, held = (ResourceKind(kind), resource), Role(role)
            if key not in out or held.rank > out[key].rank:
                out[key] = held
        return out

    def has_role(
        self, principal: Principal | str, kind: ResourceKind | str, resource: str, role: Role
    ) -> bool:
        """Whether a role ``principal`` holds on the resource implies ``role``."""
        return any(held.implies(role) for held in self.roles_of(principal, kind, resource))


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        names = ", ".join(Role)
        raise FieldError(f"unknown role {role!r}: use one of {names}", field="role") from None


def _resource(kind: ResourceKind | str, resource: str) -> tuple[ResourceKind, str]:
    try:
        kind = ResourceKind(kind)
    except ValueError:
        names = ", ".join(ResourceKind)
        raise FieldError(f"unknown resource kind {kind!r}: use {names}", field="kind") from None
    if kind is ResourceKind.CLUSTER:
        if resource:
            raise FieldError("the cluster takes no resource name", field="resource")
        return kind, ""
    if not isinstance(resource, str) or not 0 < len(resource) <= 255:
        raise FieldError(f"a {kind} needs a name of 1 to 255 characters", field="resource")
    return kind, resource
