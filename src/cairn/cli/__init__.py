"""The ``cairn`` command: pachctl's verbs and ``repo@branch:/path`` syntax over cairn.Client.

Each command parses its arguments, calls one Client method and formats the
result: a table (``--raw`` for JSON) or plain lines. Errors print one line on
standard error and exit with status 1; nothing is half done.
"""

from __future__ import annotations

import os
import sys

from cairn.cli import (  # noqa: F401  (registers commands)
    admin_commands,
    data_commands,
    deploy_commands,
    loop_commands,
    model_commands,
    monitor_commands,
    pipeline_commands,
    run_commands,
    serve_commands,
)
from cairn.cli.hints import with_hint
from cairn.cli.output import app, err, printable_lines
from cairn.storage import CairnError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: run the app, turning cairn errors into one line and exit 1."""
    try:
        app()
    except CairnError as exc:
        err.print(f"error: {printable_lines(with_hint(exc))}", markup=False)
        sys.exit(1)
    except (TimeoutError, OSError) as exc:  # a missing spec file, an unwritable -o, ...
        err.print(f"error: {printable_lines(str(exc))}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
