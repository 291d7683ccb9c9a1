"""The reference side of a check: a version's training data (through its lineage, or a
named commit) as a frame, both sides matched on the model's input columns, and the
version's own outputs on the reference (see ``cairn.monitoring.monitor``, steps 1 and 4)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from cairn.data import DataStore, Ref, parse_ref
from cairn.data.paths import normalize
from cairn.ml import signature as signatures
from cairn.ml.models import ModelVersion
from cairn.ml.registry import Registry
from cairn.monitoring.errors import DriftInputError, MonitoringError
from cairn.monitoring.tables import files_under, read_tables, ref_text

__all__ = [
    "REFERENCE_PREDICTIONS",
    "as_outputs",
    "match_columns",
    "reference_frame",
    "reference_outputs",
]

REFERENCE_PREDICTIONS = 100_000  # reference rows predicted for the output comparison


def reference_frame(
    data: DataStore, registry: Registry, version: ModelVersion, reference: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference rows of ``version`` and where they came from (``MonitorReport
    .reference`` without ``predictions``). The frame holds every column of the files (the
    caller picks the signature's). ``reference`` is ``repo@branch-or-commit[:/path]``; a
    branch is resolved to its head once. Raises NotFound, MonitoringError (see module)."""
    if reference is not None:
        ref = parse_ref(reference)
        commit = data.resolve(Ref(ref.repo, ref.commit, ref.ancestry)).id
        pinned = Ref(ref.repo, commit, path=normalize(ref.path or "/"))
        frame, files, skipped = read_tables(data, files_under(data, pinned))
        info: dict[str, Any] = {"source": "named", "ref": ref_text(pinned)}
    else:
        lineage = registry.lineage(f"{version.name}/{version.version}")
        training = lineage.get("training")
        if not training:
            raise MonitoringError(
                f"{version.name} v{version.version} ({version.ref}) was not written by a "
                "pipeline, so cairn does not know its training data; name it with "
                "--reference repo@commit:/path"
            )
        inputs = training.get("input_files") or []
        if not inputs:
            raise MonitoringError(
                f"the lineage of {version.name} v{version.version} names no input files "
                f"(pipeline {training.get('pipeline')!r}); name the training data with "
                "--reference repo@commit:/path"
            )
        refs = [Ref(f["repo"], f["commit"], path=normalize(f["path"])) for f in inputs]
        frame, files, skipped = read_tables(data, refs)
        info = {"source": "lineage", "ref": [ref_text(r) for r in refs]}
    info.update(files=files, skipped=skipped, rows=len(frame))
    return frame, info


def match_columns(
    version: ModelVersion, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Both sides on the model's input columns, named alike, and a note on how they were
    matched (None for a named signature)."""
    sig = version.signature
    if sig is None:
        shared = [c for c in reference.columns if c in set(current.columns)]
        if not shared:
            raise DriftInputError(
                f"{version.name} v{version.version} has no signature and the reference and the "
                "log share no column name; register the model with --signature"
            )
        note = (
            f"the model has no signature: compared the {len(shared)} columns the reference "
            "and the log share"
        )
        return reference[shared], current[shared], note
    names = signatures.columns(sig) or []
    if sig.get("positional"):
        numeric = [
            c
            for c in reference.columns
            if pd.api.types.is_numeric_dtype(reference[c].dtype)
            and not pd.api.types.is_bool_dtype(reference[c].dtype)
        ]
        if len(numeric) < len(names) or current.shape[1] < len(names):
            raise MonitoringError(
                f"{version.name} v{version.version} takes {len(names)} columns by position; the "
                f"reference has {len(numeric)} numeric columns and the log {current.shape[1]}; "
                "name the data with --reference"
            )
        picked = numeric[: len(names)]
        ref = reference[picked].set_axis(names, axis=1)
        cur = current.iloc[:, : len(names)].set_axis(names, axis=1)
        note = (
            f"positional signature: the model's {len(names)} inputs are the reference's first "
            f"{len(names)} numeric columns ({', '.join(map(str, picked[:5]))}"
            f"{', ...' if len(picked) > 5 else ''}) and the log's first {len(names)} columns"
        )
        return ref, cur, note
    missing = [n for n in names if n not in reference.columns]
    if missing:
        raise MonitoringError(
            f"the reference lacks {len(missing)} input column(s) of the model's signature "
            f"({', '.join(map(repr, missing[:5]))}{', ...' if len(missing) > 5 else ''}); "
            "name the training data with --reference repo@commit:/path"
        )
    absent = [n for n in names if n not in current.columns]
    if absent:
        raise DriftInputError(
            f"the logged requests lack the model's input column(s) "
            f"{', '.join(map(repr, absent[:5]))}; were they sent by position?"
        )
    return reference[names], current[names], None


def _evenly(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    step = math.ceil(len(frame) / limit)
    return frame.iloc[::step]


def reference_outputs(
    data: DataStore,
    version: ModelVersion,
    inputs: pd.DataFrame,
    full: pd.DataFrame,
    label_column: str,
    cache_dir: Path,
) -> tuple[Any, str]:
    """The version's outputs on the reference (or its labels column) and which it was."""
    from cairn.ml import flavors

    sample = _evenly(inputs, REFERENCE_PREDICTIONS)
    try:
        model = flavors.load(version, flavors.fetch(data, version, cache_dir))
        try:
            outputs = model.predict(signatures.enforce(version.signature, sample))
        finally:
            model.close()
        return outputs, "model"
    except Exception as exc:  # noqa: BLE001 - any model failure falls back to the labels
        why = f"{type(exc).__name__}: {exc}"
    for column in dict.fromkeys((label_column, "target")):
        if column in full.columns:
            return full[column], f"labels:{column} (the model did not predict: {why})"
    return None, f"unavailable: the model did not predict ({why}) and no labels column"


def as_outputs(outputs: Any, like: pd.DataFrame) -> pd.DataFrame:
    """The reference outputs as a frame with the logged outputs' column names."""
    if isinstance(outputs, pd.DataFrame):
        frame = outputs.reset_index(drop=True)
    elif isinstance(outputs, pd.Series):
        frame = outputs.reset_index(drop=True).to_frame()
    else:
        values = outputs.tolist() if hasattr(outputs, "tolist") else list(outputs)
        if values and isinstance(values[0], (list, tuple)):
            frame = pd.DataFrame(values)
        else:
            frame = pd.DataFrame({0: values})
    if frame.shape[1] == like.shape[1] and list(frame.columns) != list(like.columns):
        frame = frame.set_axis(list(like.columns), axis=1)
    return frame
