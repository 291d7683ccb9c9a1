"""A fork server for the campaign's trials (run as ``python forker.py``): it imports the
CLI and the library once, then per request line (JSON: argv, env, cwd, out) forks a child
that runs ``cairn.cli.main`` as the console script would (or, with ``call``, a
function of ``workloads.py``), writes ``pid N`` and, once the
child ends (or is killed), ``exit CODE`` (negative: the signal)."""

import gc
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path

import cairn.cli
from cairn.cli.commands import COMMANDS
from cairn.client import Client


def warm() -> None:
    """Import what commands load on first use: their modules, and the library's, by
    opening a client over a scratch store."""
    for module in {entry[0] for entry in COMMANDS.values()}:
        importlib.import_module(f"cairn.cli.{module}")
    with tempfile.TemporaryDirectory() as scratch:
        client = Client(scratch, auto_run=False)
        client.data.create_repo("warm")
        client.data.list_repos()
        client.data.catalog.dispose()


def child(request: dict) -> None:
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    fd = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdin = open(os.devnull)
    sys.argv = ["cairn", *request["argv"]]
    code = 0
    try:
        if "call" in request:  # a workload of workloads.py, not a command
            module, _, name = request["call"].partition(":")
            getattr(importlib.import_module(module), name)(*request["argv"])
        else:
            cairn.cli.main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: tests.*
    warm()
    gc.freeze()  # children do not copy the warm heap's pages to collect it
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        print(f"pid {pid}", flush=True)
        _, status, usage = os.wait4(pid, 0)
        if os.environ.get("CAIRN_FORKER_DEBUG"):
            print(request["argv"], usage.ru_utime + usage.ru_stime, file=sys.stderr)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
