"""``cairn server``: one cairn for a team. An adapter that serves the face
(cairn.api.protocol) over HTTP to remote clients (cairn.api.remote), and keeps pipelines
and monitors current in a worker process it manages.

Modules:

- ``app``: ``create_api(client, guard)``, the FastAPI app. One ``POST /api/v1/SUB/METHOD``
  route per method of the face, generated from the Protocols (cairn.api.wire converts
  arguments and answers with pydantic from their annotations), so OpenAPI at ``/docs``
  lists exactly the face. ``call`` is the one path of every route: identify, check,
  call, record.
- ``files``: bytes both ways: chunk-aware uploads (the client sends only the chunks the
  server lacks) and streamed reads.
- ``specs``: ``pipelines.create``/``update`` with the code their transforms run beside,
  sent as a code bundle (cairn.api.bundles) and unpacked under ``<home>/code/<id>/``; a
  client never names a folder of the server.
- ``masking``: secret values replaced by ``***`` in every JSON answer to a caller who is
  not a clusterAdmin (an ASGI middleware).
- ``runner``: ``serve_team``, uvicorn plus the pipeline worker; ``worker``: that process.

Invariants: handlers hold no behaviour (the embedded Client does it all); a write returns
when its commit is finished, and the jobs it triggers run in the worker, as with pachd;
every route goes through ``call``, so the guard sees every request.
"""
