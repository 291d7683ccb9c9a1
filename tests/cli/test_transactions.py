"""``cairn start transaction`` / ``finish transaction`` (issue 15 §2): branch moves made
at once, so the pipeline that reads both repos runs once over both new heads."""

from __future__ import annotations

import pytest

from cairn.data import Ref
from cairn.pipelines import load_specs

from .conftest import Cairn, api, pfs, pipeline, seed

BOTH = ["bash", "-c", 'cat "$CAIRN_PFS/a/x" "$CAIRN_PFS/b/x" > "$CAIRN_PFS/out/both"']


@pytest.mark.embedded_only("transactions are kept by the embedded store's CLI")
def test_branch_moves_in_a_transaction_run_the_pipeline_once_over_both(cairn: Cairn) -> None:
    for repo in ("a", "b"):
        seed(cairn, repo, {"x": f"{repo}1"})
        seed(cairn, repo, {"x": f"{repo}2"}, branch="dev")
    spec = cairn.spec(pipeline("both", {"cross": [pfs("a", "/"), pfs("b", "/")]}, BOTH))
    with api(cairn) as client:  # set-up, not the subject: one CLI start-up less
        client._pipelines.create_pipelines(load_specs(spec.read_text()), cairn.root)

    tid = cairn("start", "transaction").stdout.strip()
    moved = cairn("create", "branch", "a@master", "--head", "dev")
    cairn("create", "branch", "b@master", "--head", "dev")
    cairn("finish", "transaction")

    assert "added to the transaction" in moved.stderr
    with api(cairn) as client:
        [done] = client.transactions.list()
        jobs = client._pipelines.list_jobs("both")
        out = b"".join(client.data.read_file(Ref("both", path="both")))
    assert done.id == tid and done.state == "finished" and len(done.requests) == 2
    assert len(jobs) == 1 and out == b"a2b2"  # one job, over both moves
