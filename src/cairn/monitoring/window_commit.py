"""The training data a retraining cycle commits: the drift window's labelled rows
(``source: window``) or a named source copied as it is.

Both are idempotent: redone after a crash, a commit that already holds the same bytes
(or the same file hash) is reused, not made again.
"""

from __future__ import annotations

import io
from typing import Any

from cairn.data import DataStore, NotFound, Ref, parse_ref
from cairn.data.paths import normalize
from cairn.monitoring.errors import LoopError
from cairn.monitoring.labels import join_labels, read_labels
from cairn.monitoring.rules import MonitorRule, RetrainAction
from cairn.monitoring.windows import read_window

__all__ = ["commit_source", "commit_window"]


def commit_window(
    data: DataStore, rule: MonitorRule, retrain: RetrainAction, window: dict[str, Any], cycle: int
) -> tuple[str, dict[str, Any]]:
    frame = read_window(
        data,
        rule.deployment_name,
        repo=rule.log_repo,
        commit=window["log_commit"],
        since=window["since"],
        until=window["until"],
        last=window["last"],
    )
    labels = read_labels(data, retrain.labels or "", retrain.label_column)
    joined = join_labels(frame.inputs, frame.requests, labels, retrain.label_column)
    labelled = joined[joined["_label"].notna()].drop(columns=["_label"])
    labelled[retrain.label] = joined.loc[labelled.index, "_label"].to_numpy()
    if labelled.empty:
        raise LoopError(
            f"none of the window's {len(frame)} rows has a label in {retrain.labels}; "
            "write request_id,label rows there so the window can train a model"
        )
    to = parse_ref(retrain.to)
    folder = (to.path or "").rstrip("/")
    path = retrain.to.endswith("/") or not folder
    dest = f"{folder}/window-{rule.name}-{cycle}.csv" if path else folder
    body = labelled.to_csv(index=False).encode()
    branch = to.commit or "master"
    try:
        existing = data.resolve(Ref(to.repo, branch))
        same = b"".join(data.read_file(Ref(to.repo, existing.id, path=normalize(dest))))
    except NotFound:
        existing, same = None, None
    if existing is not None and same == body:
        commit = existing.id  # committed before a crash: reuse it
    else:
        commit = data.put_files(
            to.repo,
            branch,
            [(dest, io.BytesIO(body))],
            description=f"monitor {rule.name}: window of cycle {cycle}",
        ).id
    return commit, {"path": dest, "rows": len(frame), "labelled": len(labelled)}


def commit_source(data: DataStore, retrain: RetrainAction) -> tuple[str, dict[str, Any]]:
    src = parse_ref(retrain.source)
    to = parse_ref(retrain.to)
    src_commit = data.resolve(src).id
    base = normalize(src.path) if src.path else ""
    dest = normalize(to.path) if to.path else ""
    files = [p for p, _ in data.walk_files(Ref(src.repo, src_commit, path=base or None))]
    if not files:
        raise LoopError(f"{retrain.source} holds no files to commit")
    is_dir = data.inspect_file(Ref(src.repo, src_commit, path=base or None)).type == "dir"
    branch = to.commit or "master"
    target = dest
    if not is_dir and (retrain.to.endswith("/") or not dest):
        target = f"{dest}/{base.rpartition('/')[2]}".strip("/")
    try:
        head = data.resolve(Ref(to.repo, branch))
        have = data.inspect_file(Ref(to.repo, head.id, path=target or None)).hash
        want = data.inspect_file(Ref(src.repo, src_commit, path=base or None)).hash
        commit = head.id if have == want else None
    except NotFound:
        commit = None
    if commit is None:
        commit = data.copy_file(
            Ref(src.repo, src_commit, path=base or None), to.repo, branch, target or "/"
        ).id
    return commit, {
        "source": f"{src.repo}@{src_commit}",
        "path": "/" + target,
        "files": len(files),
    }
