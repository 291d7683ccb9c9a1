"""The ``cairn`` command: pachctl's verbs and ``repo@branch:/path`` syntax over cairn.Client.

Each command parses its arguments, calls one Client method and formats the
result: a table (``--raw`` for JSON) or plain lines. Commands load lazily (see
``cairn.cli.root`` and the table in ``cairn.cli.commands``): importing this package
imports typer and no command, nor the library below it.

Errors, the last resort (``main``):

- a cairn error, a timeout or an OS error (a missing spec file, an unwritable ``-o``):
  ``error: <message>`` on standard error, exit 1;
- any other exception (a bug): one line, ``error: <type>: <message>``, naming the file the
  traceback was appended to, exit 1. That file is ``<store>/logs/cli.log`` when the store
  folder exists (and is writable), else ``$XDG_STATE_HOME/cairn/cli.log``
  (``~/.local/state/cairn/cli.log``); it rotates at 1 MB, keeping one old file;
- with ``--debug`` or ``CAIRN_DEBUG=1``, any exception prints its traceback instead;
- Ctrl-C exits 130; a closed pipe (``cairn ... | head``) ends quietly.

Nothing is half done: the library writes atomically, whatever the CLI prints.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cairn.cli.root import app, debugging

__all__ = ["app", "main"]

_LOG_BYTES = 1_000_000


def main() -> None:
    """Console entry point: run the app; an exception becomes one line and exit 1."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
    except Exception as exc:
        sys.exit(_last_resort(exc))


def _last_resort(exc: Exception) -> int:
    """Report ``exc`` as the module doc says; returns the exit status."""
    import traceback

    from cairn.cli.text import printable_lines

    if debugging():
        traceback.print_exception(exc)
        return 1
    from cairn.storage import CairnError

    if isinstance(exc, CairnError):
        from cairn.cli.hints import with_hint

        print(f"error: {printable_lines(with_hint(exc))}", file=sys.stderr)
        return 1
    if isinstance(exc, TimeoutError | OSError):  # a missing spec file, an unwritable -o
        print(f"error: {printable_lines(str(exc))}", file=sys.stderr)
        return 1
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    message = " ".join(printable_lines(text).split())
    try:
        where = f"the traceback is in {_log_traceback(exc)}"
    except OSError as why:
        where = f"the traceback could not be saved ({why})"
    print(f"error: {message} ({where}; --debug prints it)", file=sys.stderr)
    return 1


def _log_traceback(exc: Exception) -> Path:
    """Append ``exc``'s traceback, with the time and command line, to the first writable
    file of ``_log_paths``; returns its path. Raises OSError when none is writable."""
    # Written by hand, not through logging's RotatingFileHandler: a handler reports its own
    # failures as a traceback on stderr, the one thing the last resort must not print.
    import shlex
    import time
    import traceback

    header = f"{time.strftime('%Y-%m-%d %H:%M:%S')} cairn {shlex.join(sys.argv[1:])}\n"
    text = header + "".join(traceback.format_exception(exc))
    failure = OSError("no folder to write the log in")
    for path in _log_paths():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > _LOG_BYTES:
                os.replace(path, path.with_name(path.name + ".1"))
            with path.open("a", encoding="utf-8") as log:
                log.write(text)
        except OSError as err:
            failure = err
            continue
        return path
    raise failure


def _log_paths() -> list[Path]:
    """Where the traceback may go, in order: the store folder's ``logs/cli.log`` when the
    store exists, then the user's state folder (XDG base directory specification)."""
    paths = []
    try:
        from cairn.client import find_home

        home, exists = find_home()
        if exists:
            paths.append(home / "logs" / "cli.log")
    except Exception:  # the library itself may be what failed; the state folder remains
        pass
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    paths.append(Path(state) / "cairn" / "cli.log")
    return paths
