"""``cairn gc`` and ``cairn fsck`` end to end."""

from __future__ import annotations

import random

from .conftest import Cairn, seed


def objects_in(cairn: Cairn) -> set[str]:
    root = cairn.home / "objects"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_gc_reclaims_a_deleted_repo_and_fsck_stays_clean(cairn: Cairn):
    rng = random.Random(3)
    seed(cairn, "keep", {"a.bin": rng.randbytes(5000)})
    seed(cairn, "drop", {f"f{i}.bin": rng.randbytes(3000 + i) for i in range(20)})
    cairn("delete", "repo", "drop")
    before = objects_in(cairn)

    dry = cairn.raw("gc", "--grace", "0", "--dry-run")
    assert dry["dry_run"] and dry["bytes_removed"] > 0
    assert objects_in(cairn) == before

    young = cairn.raw("gc")  # default grace: everything here is a second old
    assert young["objects_removed"] == 0 and young["kept_young"] > 0

    done = cairn.raw("gc", "--grace", "0")
    assert done["objects_removed"] == dry["objects_removed"] > 0
    assert set(done["removed"]) >= {"chunk", "pack", "tree"}
    assert objects_in(cairn) < before
    assert cairn.get("keep@master:/a.bin") == random.Random(3).randbytes(5000)

    report = cairn.raw("fsck")
    assert report["ok"] and report["problems"] == []
    plain = cairn("fsck")
    assert "0 problem(s)" in plain.stdout


def test_fsck_reports_damage_and_exits_1(cairn: Cairn):
    seed(cairn, "r", {"a.bin": random.Random(1).randbytes(4000)})
    tree = next(k for k in objects_in(cairn) if k.startswith("trees/"))
    (cairn.home / "objects" / tree).unlink()
    proc = cairn("fsck", "--raw", check=False)
    assert proc.returncode == 1
    assert "missing-tree" in proc.stdout
    table = cairn("fsck", check=False)
    assert table.returncode == 1 and "missing-tree" in table.stdout


def test_gc_rejects_a_bad_grace(cairn: Cairn):
    proc = cairn("gc", "--grace", "soon", check=False)
    assert proc.returncode == 2
    assert "not a duration" in proc.stderr


def test_gc_takes_the_durations_every_field_takes(cairn: Cairn):
    # gc --grace refused Go durations that datum_timeout accepts (issue 10).
    cairn("create", "repo", "scratch")  # a store to collect (a read never creates one)
    for grace in ("1m30s", "1h30m", "2d", "90"):
        report = cairn.raw("gc", "--grace", grace, "--dry-run")
        assert report["dry_run"]
    proc = cairn("gc", "--grace", "-1h", check=False)
    assert proc.returncode == 2
