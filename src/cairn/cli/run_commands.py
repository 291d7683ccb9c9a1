"""CLI commands for runs: list, inspect, compare, plot (cairn.ml.runs)."""
