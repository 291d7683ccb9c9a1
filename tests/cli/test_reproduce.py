"""``cairn reproduce PIPELINE@JOB [--datum ID]`` (issue 15, section 4): a finished job's
datums run again into scratch from the recorded inputs, spec version and code, each output
file compared by BLAKE3; exit 0 only when all are identical."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import Cairn, pfs, pipeline, seed

ROOT = Path(__file__).resolve().parents[2]


def _job(cairn: Cairn, name: str) -> str:
    return str(cairn.jobs(name)[0]["id"])


def test_quickstart_edges_job_reproduces_byte_for_byte(cairn: Cairn) -> None:
    skimage = pytest.importorskip("skimage")
    photos = Path(os.path.dirname(skimage.__file__)) / "data"
    shutil.copy(ROOT / "examples" / "quickstart" / "edges.py", cairn.root / "edges.py")
    seed(
        cairn,
        "images",
        {n: (photos / n).read_bytes() for n in ("phantom.png", "microaneurysms.png")},
    )
    spec = (ROOT / "examples" / "quickstart" / "pipelines.yaml").read_text()
    cairn.write("edges.yaml", spec.split("\n---\n")[0])
    cairn("create", "pipeline", "-f", "edges.yaml")
    job = _job(cairn, "edges")
    proc = cairn("reproduce", f"edges@{job}")
    assert "reproduced byte for byte: 4 of 4 files identical" in proc.stderr
    assert proc.stdout.count("identical") == 4
    report = cairn.raw("reproduce", f"edges@{job}")
    assert report["identical"] and report["datums"] == 2
    assert {f["path"] for f in report["files"]} == {
        "/phantom.png",
        "/phantom.pgm",
        "/microaneurysms.png",
        "/microaneurysms.pgm",
    }
    one = cairn.raw("list", "datum", f"edges@{job}")[0]["id"]
    single = cairn.raw("reproduce", f"edges@{job}", "--datum", one[:12])
    assert single["datums"] == 1 and len(single["files"]) == 2 and single["identical"]
    # nothing was committed: the output branch still has the job's one commit
    assert len(cairn.raw("list", "commit", "edges@master")) == 1


def test_reproduce_reports_a_file_that_differs_and_exits_1(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "alpha"})
    cmd = [
        "bash",
        "-c",
        'cp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"; date +%N > "$CAIRN_PFS/out/now"',
    ]
    cairn.spec(pipeline("stamp", pfs("words"), cmd))
    cairn("create", "pipeline", "-f", "spec.json")
    proc = cairn("reproduce", f"stamp@{_job(cairn, 'stamp')}", check=False)
    assert proc.returncode == 1
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[1:]}
    assert rows == {"/a.txt": "identical", "/now": "different"}
    assert "NOT reproduced: 1 of 2 files identical" in proc.stderr


def test_reproduce_refuses_when_the_code_changed_since(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "alpha"})
    cairn.write("copy.sh", 'cp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"\n')
    cairn.spec(pipeline("copier", pfs("words"), ["bash", "copy.sh"]))
    cairn("create", "pipeline", "-f", "spec.json")
    job = _job(cairn, "copier")
    cairn("reproduce", f"copier@{job}")
    cairn.write("copy.sh", 'cp "$CAIRN_PFS"/words/* "$CAIRN_PFS/out/"; echo x\n')
    cairn("update", "pipeline", "-f", "spec.json")  # remote: sends the edited folder
    proc = cairn.fails("reproduce", f"copier@{job}")
    assert "its code changed since it ran: copy.sh (edited)" in proc.stderr
    proc = cairn.fails("reproduce", "copier@nosuchjob")
    assert "not found" in proc.stderr
