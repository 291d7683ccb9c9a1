"""CLI commands for deployments: set traffic, inspect deployment, rollback (cairn.serving.policy)."""
