"""CLI commands for serve: the HTTP server for one deployment (cairn.server)."""
