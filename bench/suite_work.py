#!/usr/bin/env python3
"""Case P's transform: about 1 ms of CPU per input file, one output file per input file.

The work is a hash chain: SHA-256 of the file, then ``rounds`` more SHA-256 of the
digest; the output is the final digest in hex. ``rounds`` is calibrated once per run by
the suite so that one file costs about 1 ms, and given to both tools on the command
line, so both do exactly the same work.

Modes:

- ``dvc IN OUT ROUNDS``: every file below IN, outputs at the same relative paths below
  OUT (the command of DVC's one stage);
- ``datum ROUNDS``: one cairn datum, inputs below ``$CAIRN_PFS/<input>``, outputs below
  ``$CAIRN_PFS/out`` (process per datum, cairn's default);
- ``batch ROUNDS``: cairn's datum batching (``transform.datum_batching: true``): one
  process loops over ``cairn.sdk.datums()``, each step with that datum's inputs in place.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def work(data: bytes, rounds: int) -> bytes:
    """The digest after ``rounds`` extra SHA-256 steps, hex, with a newline."""
    h = hashlib.sha256(data).digest()
    for _ in range(rounds):
        h = hashlib.sha256(h).digest()
    return h.hex().encode() + b"\n"


def process(src: Path, dst: Path, rounds: int) -> int:
    """Every file below ``src`` -> the same relative path below ``dst``; returns the count."""
    n = 0
    for dirpath, _dirs, names in os.walk(src):
        for name in names:
            path = Path(dirpath) / name
            out = dst / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(work(path.read_bytes(), rounds))
            n += 1
    return n


def _cairn_inputs(pfs: Path) -> list[Path]:
    return [p for p in pfs.iterdir() if p.name != "out" and p.is_dir()]


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "dvc":
        process(Path(argv[2]), Path(argv[3]), int(argv[4]))
        return
    rounds = int(argv[2])
    pfs = Path(os.environ["CAIRN_PFS"])
    if mode == "datum":
        for inp in _cairn_inputs(pfs):
            process(inp, pfs / "out", rounds)
    elif mode == "batch":
        from cairn.sdk import datums

        for _datum_id in datums():
            for inp in _cairn_inputs(pfs):
                process(inp, pfs / "out", rounds)
    else:
        sys.exit(f"unknown mode {mode!r}: dvc, datum or batch")


if __name__ == "__main__":
    main(sys.argv)
