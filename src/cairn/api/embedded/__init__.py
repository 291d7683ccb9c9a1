"""The face in this process: one module per sub-client, each holding the layer objects
it needs (the DataStore, the Pipelines service, Runs, the Registry, Deployments,
Monitors) and, for writes that trigger pipelines, the Client's bound methods. The
Client (cairn.client) builds them on first use, so a data command never loads the ML
layers."""
