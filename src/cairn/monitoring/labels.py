"""Late labels: the one reader of a labels repo, and their join to logged requests.

A labels repo holds table files (``cairn.monitoring.tables``: CSV, TSV, Parquet, JSON
Lines; ``.json`` is read as JSON Lines too) with a ``request_id`` column (the prediction
log's) and a label column. Files are read in path order, so a later file's label for a
request corrects an earlier one; files without both columns are skipped. ``cairn monitor
--labels`` and the monitoring loop (window commits, live canary metrics) both read
through ``read_labels``.
"""

from __future__ import annotations

import pandas as pd

from cairn.data import DataStore, Ref, parse_ref
from cairn.data.paths import normalize
from cairn.monitoring.errors import DriftInputError, MonitoringError
from cairn.monitoring.tables import files_under, read_table

__all__ = ["join_labels", "read_labels"]

_MORE_FORMATS = {".json": "jsonl"}


def read_labels(
    data: DataStore, spec: str, column: str = "label", *, required: bool = False
) -> pd.DataFrame:
    """``request_id`` (str) and ``column`` of every labels file at ``spec``
    (``REPO[@BRANCH-OR-COMMIT][:/path]``, a branch resolved once), in path order.

    Without ``required`` a repo with no such file gives an empty frame; with it, no table
    file is a MonitoringError and no file holding both columns a DriftInputError naming
    the columns seen. Raises NotFound (repo, branch, path), MonitoringError (a file that
    does not parse as its extension says)."""
    ref = parse_ref(spec)
    commit = data.resolve(Ref(ref.repo, ref.commit, ref.ancestry)).id
    refs = files_under(data, Ref(ref.repo, commit, path=normalize(ref.path or "/")))
    tables = [t for t in (read_table(data, r, _MORE_FORMATS) for r in refs) if t is not None]
    frames = [t[["request_id", column]] for t in tables if {"request_id", column} <= set(t.columns)]
    if required and not tables:
        raise MonitoringError(
            f"labels {spec}: no JSON Lines, CSV or Parquet file with request_id and {column!r}"
        )
    if required and not frames:
        seen = list(dict.fromkeys(c for t in tables for c in t.columns))
        raise DriftInputError(
            f"labels {spec}: no file with columns request_id and {column!r} "
            f"(columns: {seen[:8]}); set --label-column"
        )
    if not frames:
        return pd.DataFrame({"request_id": pd.Series([], dtype=str), column: []})
    return pd.concat(frames, ignore_index=True).astype({"request_id": str})


def join_labels(
    inputs: pd.DataFrame, requests: pd.DataFrame, labels: pd.DataFrame, column: str = "label"
) -> pd.DataFrame:
    """The window's inputs with a ``_label`` column from ``labels[column]``: a request's
    k-th row takes its k-th label; a single-row request its last label (a correction).
    ``requests`` is ``cairn.monitoring.windows.Window.requests``."""
    labs = labels[["request_id", column]].set_axis(["request_id", "label"], axis=1)
    labs = labs.assign(_pos=labs.groupby("request_id").cumcount())
    sizes = requests.groupby("request_id").size()
    single = labs["request_id"].map(sizes).eq(1)
    labs = pd.concat([labs[~single], labs[single].groupby("request_id").tail(1).assign(_pos=0)])
    keys = (
        requests[["request_id", "row"]].astype({"request_id": str}).rename(columns={"row": "_pos"})
    )
    joined = keys.merge(labs, on=["request_id", "_pos"], how="left")
    return inputs.reset_index(drop=True).assign(_label=joined["label"].to_numpy())
