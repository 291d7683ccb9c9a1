"""``serve_team``: what ``cairn server`` runs. The HTTP API (cairn.server.team.app) in
this process, and a worker process that keeps pipelines and monitors current (what
``cairn run`` does), restarted if it dies, stopped with the server."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cairn.client import Client
from cairn.server.team.rounds import Rounds

__all__ = ["PipelineWorker", "serve_team"]

log = logging.getLogger("cairn.server.team")


class PipelineWorker:
    """A ``python -m cairn.server.team.worker HOME`` process, kept alive: a watcher thread
    starts it again (after ``backoff`` s) when it exits, until ``stop``. Jobs it runs are
    in the catalog, so every client's ``list job`` sees them at once; the catalog's lock
    keeps it from running a job that another server or ``cairn run`` runs."""

    def __init__(self, home: Path, *, interval: float = 1.0, backoff: float = 2.0) -> None:
        self.home, self.interval, self.backoff = home, interval, backoff
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._watch, name="cairn-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Start the worker's next round now (SIGUSR1 ends its sleep between rounds)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "cairn.server.team.worker", str(self.home)]
        # Its own session: a Ctrl-C in the terminal reaches the server, which stops it.
        return subprocess.Popen([*argv, "--interval", str(self.interval)], start_new_session=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._proc = self._spawn()
            code = self._proc.wait()
            if not self._stop.is_set():
                log.warning("pipeline worker exited with %s; starting it again", code)
                self._stop.wait(self.backoff)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _s3_gateway(
    client: Client, host: str, port: int, cert: str | None, key: str | None
) -> tuple[Any, threading.Thread]:
    """The S3 gateway's uvicorn server over ``client``, with the catalog's S3 keys, and
    the thread that will run it (uvicorn leaves signals to the main thread's server)."""
    import uvicorn

    from cairn.catalog.auth import AuthStore
    from cairn.gateway import create_app

    app = create_app(client, keys=AuthStore(client.data.catalog))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=cert,
            ssl_keyfile=key,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    )
    return server, threading.Thread(target=server.run, name="cairn-s3", daemon=True)


def serve_team(
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    worker: bool = True,
    s3_port: int | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_s3_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the store at ``home`` over HTTP(S) on ``host``:``port`` until interrupted,
    with a pipeline worker unless ``worker`` is False, and the S3 gateway
    (cairn.gateway) on ``s3_port`` if given: same store, same tokens and roles (its S3
    keys). ``on_ready(url)`` / ``on_s3_ready(url)`` are called before they listen.
    Raises ValueError (only one of the TLS files), OSError (a port is taken)."""
    import uvicorn

    from cairn.server.team.app import create_api

    if (tls_cert is None) != (tls_key is None):
        raise ValueError("give both --tls-cert and --tls-key, or neither")
    client = Client(home, auto_run=False)
    pipelines = PipelineWorker(client.home) if worker else None
    rounds = Rounds(client.home, pipelines.wake) if pipelines is not None else None
    app = create_api(client, rounds=rounds)
    scheme = "https" if tls_cert else "http"
    # uvicorn stops on SIGTERM, then raises it again with the handler it found: this one,
    # so that the worker is stopped below instead of the process dying at once.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    cert, key = (str(tls_cert), str(tls_key)) if tls_cert and tls_key else (None, None)
    s3 = _s3_gateway(client, host, s3_port, cert, key) if s3_port is not None else None
    if pipelines is not None:
        pipelines.start()
    try:
        if s3 is not None:
            if on_s3_ready is not None:
                on_s3_ready(f"{scheme}://{host}:{s3_port}")
            s3[1].start()
            while not s3[0].started:  # a taken port ends the thread: say so, not later
                if not s3[1].is_alive():
                    raise OSError(f"the S3 gateway could not listen on {host}:{s3_port}")
                time.sleep(0.02)
        if on_ready is not None:
            on_ready(f"{scheme}://{host}:{port}")
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=cert,
            ssl_keyfile=key,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    finally:
        if s3 is not None:
            s3[0].should_exit = True
            s3[1].join(30)
        if pipelines is not None:
            pipelines.stop()
        client.data.catalog.dispose()
