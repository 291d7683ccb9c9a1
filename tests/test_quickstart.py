"""The README's quickstart runs on scikit-image's photographs and shows incremental skips."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("skimage")


@pytest.mark.slow
def test_quickstart_processes_only_new_photographs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CAIRN_HOME"}
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "quickstart" / "run.sh"), str(tmp_path / "qs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    m = re.search(
        r"edges: processed (\d+) new photographs, skipped (\d+) already done", result.stdout
    )
    assert m, result.stdout[-3000:]
    processed, skipped = int(m.group(1)), int(m.group(2))
    assert processed > 0 and skipped > 0
    assert "from input files:" in result.stdout  # the lineage of one edge map
    assert (tmp_path / "qs" / "montage.png").stat().st_size > 10_000
    from PIL import Image

    with Image.open(tmp_path / "qs" / "montage.png") as montage:
        rows = -(-(processed + skipped) // 4)
        assert montage.size == (4 * 192, rows * 96)
