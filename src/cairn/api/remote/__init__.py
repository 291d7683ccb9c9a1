"""The remote client: the face (cairn.api.protocol) over ``cairn server``.

- ``client``: ``RemoteClient(url, token)``, its sub-clients generated from the Protocols,
  and the HTTP ``Transport`` (httpx) that carries calls and raises the server's errors as
  their own classes.
- ``files``: the byte-moving file methods: chunk-aware puts, streamed reads.
- ``pipelines``: create/update with the spec folder sent as a code bundle.
- ``monitors``: create/update with a rule file read here and sent as values.

It holds no store: every value comes from the server, every rule is the server's.
"""
