"""The pipeline worker of ``cairn server``: ``python -m cairn.server.team.worker HOME``
runs ``Client.run_forever`` over the store at HOME (what ``cairn run`` does) until
terminated. Errors of the monitors' tick are logged and retried on the next tick."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from cairn.server.team.rounds import Rounds

log = logging.getLogger("cairn.server.team.worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cairn-server-worker")
    parser.add_argument("home", type=Path)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    # SIGTERM from the server ends the loop as Ctrl-C does, between rounds or inside one
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # SIGUSR1 from the server (a write waits for its jobs) starts the next round now
    woken = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: woken.set())
    from cairn.client import Client  # after the signals are handled: it takes a while

    logging.basicConfig(level=logging.WARNING, format="cairn worker: %(message)s")
    client = Client(args.home, auto_run=True)

    def report(exc: Exception) -> None:
        log.warning("monitors: %s: %s", type(exc).__name__, exc)

    rounds = Rounds(args.home)
    server = os.getppid()
    try:
        while os.getppid() == server:  # a server killed outright leaves no worker behind
            began = rounds.begin()
            client.run_forever(once=True, on_error=report)
            rounds.end(began)
            woken.wait(args.interval)
            woken.clear()
    except KeyboardInterrupt:
        pass
    finally:
        client.daemons.stop()
        client.data.catalog.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
