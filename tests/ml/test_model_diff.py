"""``diff_models``'s code section: contents are not stored with a commit, only hashes, so
a text diff is shown only where the pipeline's folder still holds a side's version."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import blake3

from cairn.ml.model_diff import _code


def _registry(folder: Path) -> SimpleNamespace:
    pipeline = SimpleNamespace(spec_dir=str(folder))
    return SimpleNamespace(pipelines=SimpleNamespace(inspect_pipeline=lambda name: pipeline))


def test_code_diff_shows_text_where_the_folder_holds_that_version(tmp_path: Path) -> None:
    old_text, new_text = "C = 1.0\nfit()\n", "C = 0.1\nfit()\n"
    (tmp_path / "train.py").write_text(new_text)
    old_hash = blake3.blake3(old_text.encode()).hexdigest()
    new_hash = blake3.blake3(new_text.encode()).hexdigest()
    a = {"pipeline": "train", "code": {"train.py": old_hash}, "code_hash": "a"}
    b = {"pipeline": "train", "code": {"train.py": new_hash, "util.py": "f" * 64}}
    missing: list[str] = []
    out = _code(_registry(tmp_path), a, b, True, missing)
    assert out["modified"] == {"train.py": [old_hash, new_hash]}
    assert out["added"] == {"util.py": "f" * 64} and out["removed"] == {}
    # The old train.py is gone from the folder: no text diff, and it says which side.
    assert out["diffs"] == {}
    assert len(missing) == 2  # old train.py's content, new util.py's content

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "train.py").write_text(old_text)
    both = _code(_registry(tmp_path / "old"), a, {**a, "code": {"train.py": old_hash}}, True, [])
    assert both["modified"] == {} and both["diffs"] == {}
    shown = _code(
        SimpleNamespace(
            pipelines=SimpleNamespace(
                inspect_pipeline=lambda name: SimpleNamespace(
                    spec_dir=str(tmp_path / ("old" if name == "train-old" else ""))
                )
            )
        ),
        {**a, "pipeline": "train-old"},
        {**b, "code": {"train.py": new_hash}},
        True,
        [],
    )
    assert shown["diffs"]["train.py"].splitlines()[2:] == [
        "@@ -1,2 +1,2 @@",
        "-C = 1.0",
        "+C = 0.1",
        " fit()",
    ]
