"""What changed between two model versions, from their recorded lineage.

``diff_models`` compares two versions' lineage (``cairn.ml.lineage.model_lineage``: the
training job's input commits and files, code hashes, environment, run) and returns one
JSON-able document (the ``--raw`` form of ``cairn diff model``)::

    {"old": {"model", "version", "ref", "training_job"}, "new": {...},
     "data": {"added": [file], "removed": [file], "modified": [{"old": file, "new": file}],
              "unchanged": n},           # file: {input, repo, commit, path, hash, size, rows}
     "code": {"added": {path: hash}, "removed": {...}, "modified": {path: [old, new]},
              "diffs": {path: unified diff text} (with code=True)},
     "environment": {dotted key: [old, new]},     # packages.numpy, python, cpu...
     "params": {name: [old, new]}, "metrics": {name: [old, new]} (every metric),
     "signature": {"old", "new", "changed"},
     "missing": [what could not be read, in words]}

Files are matched by input name and path; a file is modified when its BLAKE3 differs.
``rows`` counts the data rows of a CSV/TSV file (lines after the header) or a JSON
Lines file, read at the recorded commit; None for other formats. The code's contents are
not stored with a commit, only their hashes: ``--code`` diffs the text when a side's file
is in the pipeline's spec folder with that side's hash, and says which side it could not
find otherwise. Everything is read at the recorded commits, never at branch heads.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from cairn.data import NotFound, Ref
from cairn.data.paths import normalize

if TYPE_CHECKING:
    from cairn.ml.registry import Registry

__all__ = ["diff_models"]

_TABLES = (".csv", ".tsv", ".jsonl", ".ndjson")
_ROWS_UP_TO = 256 * 1024 * 1024  # bigger files are not read to count their rows


def diff_models(registry: Registry, old: str, new: str, *, code: bool = False) -> dict[str, Any]:
    """The document of the module doc for the versions ``old`` and ``new`` name
    (``NAME/V``, ``NAME@ALIAS``). Raises InvalidReference, NotFound (a version that does
    not exist)."""
    sides = [registry.lineage(old), registry.lineage(new)]
    missing: list[str] = []
    a, b = (s.get("training") or {} for s in sides)
    for side, lineage in zip(("old", "new"), sides, strict=True):
        if lineage.get("training") is None:
            missing.append(f"{side} v{lineage['version']} has no training lineage (a user's put)")
    doc: dict[str, Any] = {
        side: {
            "model": s["model"],
            "version": s["version"],
            "ref": s["ref"],
            "training_job": (s.get("training") or {}).get("job"),
            "input_commits": (s.get("training") or {}).get("input_commits"),
        }
        for side, s in zip(("old", "new"), sides, strict=True)
    }
    doc["data"] = _files(registry, a.get("input_files") or [], b.get("input_files") or [], missing)
    doc["code"] = _code(registry, a, b, code, missing)
    doc["environment"] = _changed(_flat(a.get("environment") or {}), _flat(b.get("environment")))
    runs = [s.get("run") or {} for s in sides]
    doc["params"] = _changed(runs[0].get("params") or {}, runs[1].get("params") or {})
    keys = sorted(set(runs[0].get("metrics") or {}) | set(runs[1].get("metrics") or {}))
    doc["metrics"] = {
        k: [(runs[0].get("metrics") or {}).get(k), (runs[1].get("metrics") or {}).get(k)]
        for k in keys
    }
    sigs = [registry.resolve(f"{s['model']}/{s['version']}").signature for s in sides]
    as_json = [None if s is None else _signature(s) for s in sigs]
    doc["signature"] = {"old": as_json[0], "new": as_json[1], "changed": as_json[0] != as_json[1]}
    doc["missing"] = missing
    return doc


def _signature(signature: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(signature) and not isinstance(signature, type):
        return asdict(signature)
    return signature


def _files(
    registry: Registry, old: list[dict[str, Any]], new: list[dict[str, Any]], missing: list[str]
) -> dict[str, Any]:
    before = {(f.get("input"), f["path"]): f for f in old}
    after = {(f.get("input"), f["path"]): f for f in new}
    out: dict[str, Any] = {"added": [], "removed": [], "modified": [], "unchanged": 0}
    for key in sorted(set(before) | set(after), key=str):
        x, y = before.get(key), after.get(key)
        if x is None and y is not None:
            out["added"].append(_file(registry, y, missing))
        elif y is None and x is not None:
            out["removed"].append(_file(registry, x, missing))
        elif x is not None and y is not None and x.get("hash") != y.get("hash"):
            out["modified"].append(
                {"old": _file(registry, x, missing), "new": _file(registry, y, missing)}
            )
        else:
            out["unchanged"] += 1
    return out


def _file(registry: Registry, f: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    out = {k: f.get(k) for k in ("input", "repo", "commit", "path", "hash", "size")}
    out["rows"] = None
    if not f["path"].lower().endswith(_TABLES) or (f.get("size") or 0) > _ROWS_UP_TO:
        return out
    ref = Ref(f["repo"], f["commit"], path=normalize(f["path"]))
    try:
        body = b"".join(registry.data.read_file(ref))
    except NotFound:
        missing.append(f"{f['repo']}@{f['commit']}:{f['path']} was deleted")
        return out
    lines = sum(1 for line in body.splitlines() if line.strip())
    header = not f["path"].lower().endswith((".jsonl", ".ndjson"))
    out["rows"] = max(lines - header, 0)
    return out


def _code(
    registry: Registry, a: dict[str, Any], b: dict[str, Any], text: bool, missing: list[str]
) -> dict[str, Any]:
    old, new = a.get("code") or {}, b.get("code") or {}
    out: dict[str, Any] = {
        "added": {p: h for p, h in new.items() if p not in old},
        "removed": {p: h for p, h in old.items() if p not in new},
        "modified": {p: [old[p], new[p]] for p in sorted(old) if p in new and old[p] != new[p]},
        "code_hash": [a.get("code_hash"), b.get("code_hash")],
    }
    if not text:
        return out
    folders = [_spec_dir(registry, a), _spec_dir(registry, b)]
    diffs = {}
    for path in sorted(set(out["modified"]) | set(out["added"]) | set(out["removed"])):
        sides = []
        for hashes, folder, label in ((old, folders[0], "old"), (new, folders[1], "new")):
            wanted = hashes.get(path)
            found = _text(folder, path, wanted) if wanted else ""
            if found is None:
                missing.append(
                    f"code {path} of the {label} version: its content ({str(wanted)[:12]}) is not "
                    "kept, and the pipeline's folder holds another version of it"
                )
            sides.append(found)
        if sides[0] is not None and sides[1] is not None:
            diffs[path] = "".join(
                difflib.unified_diff(
                    sides[0].splitlines(keepends=True),
                    sides[1].splitlines(keepends=True),
                    f"old/{path}",
                    f"new/{path}",
                )
            )
    out["diffs"] = diffs
    return out


def _spec_dir(registry: Registry, training: dict[str, Any]) -> Path | None:
    name = training.get("pipeline")
    if not name:
        return None
    try:
        folder = registry.pipelines.inspect_pipeline(name).spec_dir
    except NotFound:
        return None
    return Path(folder) if folder else None


def _text(folder: Path | None, path: str, wanted: str) -> str | None:
    """The file's text if the file at ``folder/path`` has the BLAKE3 ``wanted``."""
    if folder is None:
        return None
    local = Path(path) if Path(path).is_absolute() else folder / path
    try:
        body = local.read_bytes()
    except OSError:
        return None
    if blake3.blake3(body).hexdigest() != wanted:
        return None
    return body.decode("utf-8", "replace")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix.rstrip("."): value} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    }
