"""The suite's data, made from fixed seeds so every run and both tools see the same bytes.

- Small files (cases A and P): ``count`` files in folders of 200 (``d000/f000000.bin``),
  sizes uniform in 1-20 KiB. Even-numbered files are CSV-like text (rows cut from a pool
  of random records at a random offset, so they compress about 2:1 and no two are
  alike); odd-numbered ones are incompressible random bytes, like JPEGs.
- Changes to small files: ``count // 100`` existing files rewritten with new bytes of the
  same size, plus ``count // 100`` new files in the same folders.
- Large files (case B): ``n`` files of incompressible random bytes, and a 4 MiB piece
  that overwrites the middle of the first one.

Each generator takes a ``random.Random`` seeded by the caller.
"""

from __future__ import annotations

import random
from pathlib import Path

from suite_lib import KIB, MIB

PER_FOLDER = 200
_PIECE = 4 * MIB


def _csv_pool(rng: random.Random, size: int) -> bytes:
    words = [b"cat", b"dog", b"bird", b"car", b"tree", b"boat", b"person", b"chair"]
    rows = [b"id,label,x,y,w,h,score\n"]
    total = 0
    i = 0
    while total < size:
        row = b"%d,%s,%d,%d,%d,%d,%.4f\n" % (
            i,
            rng.choice(words),
            rng.randrange(4096),
            rng.randrange(4096),
            rng.randrange(512),
            rng.randrange(512),
            rng.random(),
        )
        rows.append(row)
        total += len(row)
        i += 1
    return b"".join(rows)


class SmallFiles:
    """Makes the small-file dataset and its change set (see the module doc)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._pool = _csv_pool(random.Random(seed ^ 0xC5F), 4 * MIB)

    def _content(self, rng: random.Random, index: int) -> bytes:
        size = rng.randint(1 * KIB, 20 * KIB)
        if index % 2:
            return rng.randbytes(size)
        start = rng.randrange(len(self._pool) - size)
        return self._pool[start : start + size]

    @staticmethod
    def rel(index: int) -> str:
        return f"d{index // PER_FOLDER:03d}/f{index:06d}.bin"

    def write(self, root: Path, count: int) -> int:
        """Write ``count`` files below ``root``; returns their total bytes."""
        rng = random.Random(self.seed)
        total = 0
        made: set[Path] = set()
        for i in range(count):
            path = root / self.rel(i)
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            data = self._content(rng, i)
            path.write_bytes(data)
            total += len(data)
        return total

    def changes(self, count: int) -> dict[str, bytes]:
        """The change set for a dataset of ``count`` files: relative path -> new bytes.
        ``count // 100`` modified files (spread evenly) and as many new ones."""
        k = max(1, count // 100)
        rng = random.Random(self.seed + 1)
        out: dict[str, bytes] = {}
        step = max(1, count // k)
        for j in range(k):
            i = (j * step) % count
            out[self.rel(i)] = self._content(rng, i)
        for j in range(k):
            # New files go into existing folders, spread evenly, with fresh names.
            folder = (j * max(1, count // PER_FOLDER) // k) if count >= PER_FOLDER else 0
            i = count + j
            out[f"d{folder:03d}/n{i:06d}.bin"] = self._content(rng, i)
        return out


def apply(root: Path, changes: dict[str, bytes]) -> None:
    """Write each changed file below ``root``."""
    for rel, data in changes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_random(path: Path, size: int, rng: random.Random) -> None:
    """``size`` incompressible bytes at ``path``, written in 4 MiB pieces."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(_PIECE, left)
            f.write(rng.randbytes(n))
            left -= n


def overwrite_middle(path: Path, data: bytes) -> bytes:
    """Overwrite ``len(data)`` bytes in the middle of ``path`` in place; returns the bytes
    that were there (write them back with this function to undo)."""
    size = path.stat().st_size
    at = max(0, size // 2 - len(data) // 2)
    with open(path, "r+b") as f:
        f.seek(at)
        old = f.read(len(data))
        f.seek(at)
        f.write(data)
    return old
