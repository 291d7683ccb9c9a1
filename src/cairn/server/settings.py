"""``ServerSettings``: what one ``cairn serve`` worker serves, handed from the process that
starts the server (cairn.server.runner.serve) to each uvicorn worker in the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BODY_TIMEOUT", "HEADER_TIMEOUT", "MAX_BODY", "ServerSettings"]

MAX_BODY = 64 * 1024 * 1024  # bytes: the default largest request body
HEADER_TIMEOUT = 10.0  # seconds a request's line and headers may take to arrive
BODY_TIMEOUT = 30.0  # seconds its body may take to arrive after them


@dataclass(frozen=True)
class ServerSettings:
    """What a server worker serves, read from the environment that ``cairn serve`` sets:

    - ``CAIRN_HOME``: the store folder (else the one ``cairn.client.find_home`` picks);
    - ``CAIRN_SERVE_DEPLOYMENT``: the deployment to serve (it must exist);
    - ``CAIRN_SERVE_LOG_REPO``: the prediction log's repo (``predictions``); empty: no log;
    - ``CAIRN_SERVE_POLL``: seconds between checks for a policy or alias change (0.5);
    - ``CAIRN_SERVE_CACHE``: where model files are unpacked (``<home>/work/serving``);
    - ``CAIRN_SERVE_MAX_BODY``: the largest request body in bytes (64 MiB); a larger one is
      refused with 413 before it is read into memory;
    - ``CAIRN_SERVE_ALLOW_ANY_VERSION``: ``1`` to answer a path naming any registered
      version, loaded on demand (default: only the versions of the current policy);
    - ``CAIRN_SERVE_ADMIN``: ``1`` to answer ``/admin/*`` routes (to loopback clients);
    - ``CAIRN_SERVE_HEADER_TIMEOUT``, ``CAIRN_SERVE_BODY_TIMEOUT``: seconds a request's
      head (10) and then its body (30) may take to arrive (cairn.server.deadlines).
    """

    deployment: str
    home: Path | None = None
    log_repo: str | None = "predictions"
    poll_interval: float = 0.5
    cache_dir: Path | None = None
    max_body: int = MAX_BODY
    allow_any_version: bool = False
    admin: bool = False
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ServerSettings:
        deployment = env.get("CAIRN_SERVE_DEPLOYMENT")
        if not deployment:
            raise RuntimeError(
                "CAIRN_SERVE_DEPLOYMENT is not set: start the server with `cairn serve`"
            )
        home = env.get("CAIRN_HOME")
        cache = env.get("CAIRN_SERVE_CACHE")
        return cls(
            deployment=deployment,
            home=Path(home) if home else None,
            log_repo=env.get("CAIRN_SERVE_LOG_REPO", "predictions") or None,
            poll_interval=float(env.get("CAIRN_SERVE_POLL", "0.5")),
            cache_dir=Path(cache) if cache else None,
            max_body=int(env.get("CAIRN_SERVE_MAX_BODY", str(MAX_BODY))),
            allow_any_version=env.get("CAIRN_SERVE_ALLOW_ANY_VERSION") == "1",
            admin=env.get("CAIRN_SERVE_ADMIN") == "1",
            header_timeout=float(env.get("CAIRN_SERVE_HEADER_TIMEOUT", str(HEADER_TIMEOUT))),
            body_timeout=float(env.get("CAIRN_SERVE_BODY_TIMEOUT", str(BODY_TIMEOUT))),
        )

    def to_env(self) -> dict[str, str]:
        """The environment ``from_env`` reads these settings back from."""
        env = {
            "CAIRN_SERVE_DEPLOYMENT": self.deployment,
            "CAIRN_SERVE_LOG_REPO": self.log_repo or "",
            "CAIRN_SERVE_POLL": str(self.poll_interval),
            "CAIRN_SERVE_MAX_BODY": str(self.max_body),
            "CAIRN_SERVE_ALLOW_ANY_VERSION": "1" if self.allow_any_version else "0",
            "CAIRN_SERVE_ADMIN": "1" if self.admin else "0",
            "CAIRN_SERVE_HEADER_TIMEOUT": str(self.header_timeout),
            "CAIRN_SERVE_BODY_TIMEOUT": str(self.body_timeout),
        }
        if self.home is not None:
            env["CAIRN_HOME"] = str(self.home)
        if self.cache_dir is not None:
            env["CAIRN_SERVE_CACHE"] = str(self.cache_dir)
        return env
