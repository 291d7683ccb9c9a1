"""Table files of a commit read as pandas frames: reference data and labels.

One reader per stored format: CSV (``.csv``), TSV (``.tsv``), Parquet (``.parquet``,
``.pq``) and JSON Lines (``.jsonl``, ``.ndjson``) files, chosen by extension and read with
pandas; other files are skipped (``read_table`` returns None). A file that does not parse
as its extension says is a MonitoringError naming the file and the format.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import pandas as pd

from cairn.data import DataStore, Ref
from cairn.data.paths import normalize
from cairn.monitoring.errors import MonitoringError

__all__ = ["FORMATS", "files_under", "read_table", "read_tables", "ref_text"]

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def read_table(
    data: DataStore, ref: Ref, formats: dict[str, str] | None = None
) -> pd.DataFrame | None:
    """The table in the file ``ref`` names (a finished commit's file), read with pandas by
    its extension (CSV, TSV, Parquet, JSON Lines; ``formats`` maps more extensions to
    one of ``"csv"``, ``"tsv"``, ``"parquet"``, ``"jsonl"``); None for another extension. Raises
    MonitoringError naming the file and format when it does not parse."""
    fmt = {**FORMATS, **(formats or {})}.get(PurePosixPath(ref.path or "").suffix.lower())
    if fmt is None:
        return None
    body = io.BytesIO(b"".join(data.read_file(ref)))
    where = ref_text(ref)
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(body, sep="," if fmt == "csv" else "\t")
        elif fmt == "parquet":
            frame = pd.read_parquet(body)
        else:
            frame = pd.read_json(body, lines=True)
    except (ValueError, ImportError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise MonitoringError(
            f"{where} cannot be read as {fmt} ({type(exc).__name__}: {exc}); fix the file or "
            "name readable data with --reference repo@commit:/path"
        ) from None
    if frame.empty or len(frame.columns) == 0:
        raise MonitoringError(f"{where} holds no rows as {fmt}; name other data with --reference")
    return frame


def ref_text(ref: Ref) -> str:
    """``repo@commit:/path``, the form every data command takes."""
    return f"{ref.repo}@{ref.commit}:/{(ref.path or '').lstrip('/')}"


def read_tables(data: DataStore, refs: list[Ref]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The tables of ``refs`` concatenated in order, the files read and the files skipped
    (each as ``repo@commit:/path``). Raises MonitoringError when none is a table."""
    frames, files, skipped = [], [], []
    for ref in refs:
        where = ref_text(ref)
        frame = read_table(data, ref)
        if frame is None:
            skipped.append(where)
            continue
        frames.append(frame)
        files.append(where)
    if not frames:
        raise MonitoringError(
            f"no table among {', '.join(skipped) or 'no files'}: cairn reads CSV, TSV, Parquet "
            "and JSON Lines (.csv .tsv .parquet .pq .jsonl .ndjson); name such data with "
            "--reference repo@commit:/path"
        )
    return pd.concat(frames, ignore_index=True), files, skipped


def files_under(data: DataStore, ref: Ref) -> list[Ref]:
    """Every file at or under ``ref``'s path, in path order."""
    path = normalize(ref.path or "/")
    found = [p for p, _ in data.walk_files(Ref(ref.repo, ref.commit, path=path))]
    return [Ref(ref.repo, ref.commit, path=normalize(p)) for p in sorted(found)]
