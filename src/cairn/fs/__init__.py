"""``cairn://``: an fsspec filesystem over the face (cairn.api.protocol), so pandas,
pyarrow, DuckDB and anything else that takes an fsspec URL read and write versioned data.

What it owns:

- ``spec``: ``CairnFileSystem``, registered under the ``fsspec.specs`` entry point
  (pyproject.toml), so ``pandas.read_csv("cairn://training@master/iris.csv")`` works
  without importing cairn. It talks only to a ``ClientProtocol`` (``cairn.connect()``:
  embedded, or remote when ``CAIRN_URL`` or a saved context says so, as the CLI picks).
- ``blocks``: the in-process cache of file content, keyed by content hash.

Paths: ``REPO@AT/PATH`` (``cairn://`` stripped), where ``AT`` is anything a ref takes
after ``@`` (a branch, a commit id or unique prefix, ``master^2``); ``REPO/PATH`` is
master's head; ``""`` lists the repos. Names returned keep the ``AT`` the caller gave.

Invariants:

- A read pins the commit first (one ``files.get``), then reads by commit id, so one open
  file or ``cat_file`` sees one commit even while its branch moves.
- Content at a commit never changes, so cached blocks are keyed by the file's content
  hash and shared by every path, branch and commit holding those bytes; nothing is ever
  invalidated, only evicted (LRU, bounded in bytes).
- Writes name a branch. A commit id or an ancestor (``@master^``) is immutable and a
  write to it raises ``ReadOnlyRef`` (a ``PermissionError``) before any byte moves.
- Outside a transaction each call that writes is one commit per branch it touches: a
  closed file, ``rm`` (of many paths), and the bulk calls ``put``, ``copy``, ``mv`` and
  ``pipe`` (of many files). Inside ``with fs.transaction:`` nothing is written until the
  block ends, then each branch touched gets one commit holding every write, copy and
  delete; an exception in the block writes nothing. Pending writes wait in local
  temporary files (one open at a time), not in memory.
"""

import importlib
from typing import Any

__all__ = ["CairnFileSystem", "ReadOnlyRef"]


def __getattr__(name: str) -> Any:
    # fsspec imports this package by its entry point; the filesystem loads on first use.
    if name in __all__:
        value = getattr(importlib.import_module("cairn.fs.spec"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cairn.fs' has no attribute {name!r}")
