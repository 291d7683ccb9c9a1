"""CLI commands for models: register, list, inspect, set alias, lineage model (cairn.ml.registry)."""
