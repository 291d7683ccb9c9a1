"""The S3 gateway: the S3 REST API over the face (cairn.api.protocol), so boto3, the AWS
CLI and anything else that speaks S3 read and write versioned data. It talks only to a
``ClientProtocol``, so the same code serves the embedded store or a ``cairn server``
(``cairn s3-gateway`` picks one as ``cairn.connect()`` does).

What it owns:

- ``app``: the Starlette app (``create_app(client)``: routes, acting, errors, virtual
  hosts) and ``serve`` (uvicorn).
- ``handlers``: the operations on buckets and objects; ``uploading``: the multipart
  requests; ``conditions``: Range and conditional headers; ``replies``: ETags, times,
  XML answers and error documents.
- ``listing``: ListObjects pages over a repo's refs.
- ``body``: PutObject bodies, plain or ``aws-chunked``, and their checksums.
- ``multipart``: uploads in parts, kept in the store (a branch per upload) until
  completed or aborted, so any gateway of the store serves them.
- ``acting``: who a request is (SigV4 with cairn's S3 keys) and the face it acts
  through, checked by cairn.api.access; ``sigv4``: AWS's Signature Version 4.
- ``documents``: S3's XML documents; ``errors``: ``S3Error`` and S3's codes.

Mapping (lakeFS's layout): bucket = repo; key = ``REF/PATH``, where ``REF`` is a branch,
a commit id (or unique prefix) or an ancestor (``master^``, read only). Requests are
path-style (``http://host:port/REPO/master/a.csv``) or virtual-host-style
(``Host: REPO.localhost:port``, for the domains ``create_app`` is given). Pachyderm's
bucket names also: bucket ``BRANCH.REPO`` with key ``PATH`` is bucket ``REPO`` with key
``BRANCH/PATH`` (a bucket that names a repo itself stays that repo); listings and
DeleteObjects answer its keys without ``BRANCH/``.

Invariants:

- A read pins the commit first (``files.get`` names it), then reads by commit id, so one
  GetObject sees one commit while its branch moves. ``Last-Modified`` is when that
  commit was made.
- ETag: the first 128 bits of the content's BLAKE3 hash, hex, quoted. Equal bytes have
  equal ETags whatever the key, branch or commit; it is not an MD5.
- A PutObject to a branch is one commit (a name that is no branch and no commit makes
  the branch, as ``cairn put file`` does); to a commit id or an ancestor it is refused
  with AccessDenied before the body is read. A DeleteObject is one commit when the key
  is a file, and nothing (204, as S3) when it is not; DeleteObjects is one commit per
  branch it names; a multipart upload is one commit on its branch when completed, none
  there before (its parts are commits of its own upload branch).
  CopyObject reads its source at the commit its key resolves to and copies without
  copying bytes (one commit).
- A listing never names commit ids: a prefix without ``/`` lists branches.
- Errors are S3's XML error documents with S3's codes (``errors.STATUS``): cairn's
  NotFound is NoSuchBucket or NoSuchKey, ReadOnlyRef and DataError AccessDenied.
- Auth follows the store's (cairn.catalog.auth): while it is off any access key, or
  none, is accepted, as the store itself is open; once active, every request must be
  SigV4-signed with an S3 key cairn issued (``AuthStore.create_s3_key``), and each face
  call runs with that key's user's roles. Over a remote client (``keys`` None) the
  gateway checks nothing itself and acts as the token it was started with.
"""

import importlib
from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    # Starlette and the face load on first use, not when the CLI lists commands.
    if name in __all__:
        value = getattr(importlib.import_module("cairn.gateway.app"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cairn.gateway' has no attribute {name!r}")
