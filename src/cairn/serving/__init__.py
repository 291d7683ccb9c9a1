"""The serving layer: deployments and their traffic policies, routing, loaded model
versions, and the prediction log (DESIGN.md, The ML lifecycle). It sits above ``ml``; the
HTTP server (``cairn.server``) is an adapter on top of it.

Modules:

- ``policy``: a deployment's traffic policy (weighted split, canary, shadow, sticky
  header), stored in the catalog with every revision, and the router that picks a
  version per request.
- ``endpoint``: one served deployment: the model versions its policy reaches, loaded
  before they take traffic, swapped atomically when the policy or an alias changes.
- ``predlog``: every request's record, batched off the request path into a repo.

Invariants:

- A policy change or an alias move takes effect without a restart and fails no request:
  new versions are loaded first, then one reference is swapped; requests in flight finish
  on the versions they started with.
- A prediction record is never dropped silently: the queue is bounded, and what does not
  fit is counted in the metrics the server exports.
"""
