"""The HTTP server of ``cairn serve``: an adapter that speaks MLflow's scoring protocol and
the Open Inference Protocol V2 REST over one deployment of the serving layer.

Modules:

- ``runner``: ``serve(settings, model=..., host=..., port=..., workers=...)``, what
  ``cairn serve`` calls: creates the deployment if asked, fetches its versions, runs uvicorn.
- ``settings``: ``ServerSettings``, which travel to workers in the environment.
- ``app``: the FastAPI app factory (``create_app``, what uvicorn imports in each worker)
  and its handlers; ``worker``: one worker's lifecycle (open the store, start, follow,
  stop).
- ``remote_store``: the serving layer's source and log sink over a ``cairn server``
  (``CAIRN_URL`` or a context), through the public face, and the admin routes' check
  with that server.
- ``mlflow_protocol``: ``/invocations`` bodies (JSON dataframe_split / dataframe_records /
  instances / inputs, CSV) to a DataFrame, predictions to ``{"predictions": ...}``.
- ``v2_protocol``: V2 tensors (JSON and the binary tensor data extension) to a DataFrame,
  predictions to output tensors, signatures to tensor metadata.
- ``metrics``: the Prometheus metrics, in prometheus_client's multiprocess mode when there
  are several workers.
- ``deadlines``: the uvicorn protocol class with a deadline for a request's headers and
  one for its body, so slow clients cannot hold connections.

Request path (both protocols), kept lean because it is the server's throughput:

1. read the body, parse it with orjson; rows of numbers become one numpy array and a
   DataFrame over it without copying; positional inputs take the names of the signature
   the served versions share (computed when the policy changes, never per request);
2. ``Endpoint.predict`` routes (split, canary, sticky header), enforces the signature,
   predicts, and mirrors to shadows off the request path; a version in the V2 path must
   be one of the policy's (the endpoint's loaded versions, so a rollback applies to it
   when it applies to routing), else 404, unless ``--allow-any-version``;
3. write the answer with orjson (numpy arrays natively), count it in the metrics, and
   hand the record to the prediction log's bounded queue (never blocks).

Handlers run on the event loop, not in a thread pool: a small model answers in about a
millisecond, less than a thread hop costs. What may take long (loading a version a V2
path names, flushing the log, metadata from the catalog) runs in the thread pool.

Invariants:

- No catalog query (nor, against a ``cairn server``, a call to it) on the request
  path: the endpoint follows policy and alias changes in its own thread, and the server
  reads its state.
- Every answered request is counted in ``/metrics``, and every request that reached a
  model is handed to the prediction log; malformed bodies are counted, not logged.
- ``POST /admin/log/flush`` returns once every record the worker queued before it is
  committed, and names the commit: acknowledged records survive a crash (SIGKILL).
  With several workers a flush covers the worker that answers it.
- ``/admin/*`` routes answer only with ``--admin`` (else 404) and only to loopback
  clients (else 403); every state-changing route is an admin route.
- A 4xx is the client's mistake (malformed body, no rows, signature mismatch, values the
  model raised ValueError on); a 5xx means the server or the model is broken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.server.app import create_app
    from cairn.server.runner import serve
    from cairn.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app", "serve"]

_HOMES = {"ServerSettings": "settings", "create_app": "app", "serve": "runner"}


def __getattr__(name: str) -> Any:
    # The app pulls in FastAPI and the serving layer; the protocol modules alone do not.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"cairn.server.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'cairn.server' has no attribute {name!r}")
