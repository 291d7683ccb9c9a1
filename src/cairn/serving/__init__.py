"""The serving layer: deployments and their traffic policies, routing, loaded model
versions, and the prediction log (DESIGN.md, The ML lifecycle). It sits above ``ml``; the
HTTP server (``cairn.server``) is an adapter on top of it.

Modules:

- ``policy``: a deployment's traffic policy (weighted split, canary, shadow, sticky
  header), stored in the catalog with every revision, and the router that picks a
  version per request.
- ``endpoint``: one served deployment: the model versions its policy reaches, loaded
  before they take traffic, swapped atomically when the policy or an alias changes.
- ``predict``: one prediction (signature enforced, predicted, logged whatever the outcome),
  shared by the endpoint and the HTTP server.
- ``predlog``: every request's record, batched off the request path into a repo. Its
  module doc is the record format (JSON Lines at ``/<deployment>/<YYYY-MM-DD>/...``) and
  ``read_records`` its one reader, which the drift monitor uses.
- ``errors``: ServingError and its subclasses (PolicyError, PolicyConflict, NotReady).
- ``source``: where an endpoint reads (``ServingSource``: the deployment, aliases, versions,
  a version's files) and where the log commits (``LogSink``), as Protocols, with their
  implementations over the store in this process (``StoreSource``, ``StoreSink``); the
  model server's adapter implements them over a ``cairn server``'s face
  (cairn.server.remote_store), so this layer never knows which it holds.

State machine of a deployment's policy: created at revision 1 (``ensure``); every change
(``set_policy``, ``update`` and its helpers, ``rollback``) writes revision n + 1, its
``deployment_history`` row and an event in one transaction; a rollback records the
revision it restored, so rollbacks walk back like an undo stack.

Invariants:

- A policy change or an alias move takes effect without a restart and fails no request:
  new versions are loaded first, then one reference is swapped; requests in flight finish
  on the versions they started with.
- A prediction record is never dropped silently: the queue is bounded, and what does not
  fit is counted in the metrics the server exports. A commit that fails keeps its batch
  and is retried; ``flush()`` acknowledges with the id of a commit holding every record
  submitted before it.
- The serving layer writes the log through the data layer directly (or, remote, through
  the face's ``files.put``): a model server process never runs pipelines.
"""
