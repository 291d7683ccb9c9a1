"""What the CLI needs from the face, so that each command is one call: the atomic
create-and-change of a deployment's policy, upload and download progress, broken
pipelines, and the ``cairn run`` loop."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from cairn.api.protocol import ClientProtocol
from cairn.client import Client
from cairn.data import NotFound
from cairn.serving.errors import PolicyError


@pytest.fixture
def registered(client: ClientProtocol) -> None:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = sio.dumps(LogisticRegression(max_iter=3000).fit(x, y))
    client.repos.create("models")
    client.files.put("models@master:/model.skops", model)
    client.models.register("cancer", "models@master:/model.skops")
    client.models.set_alias("cancer@champion", 1)


def test_apply_with_a_model_creates_the_deployment_and_the_change_together(
    client: ClientProtocol, registered: None
) -> None:
    done = client.deployments.apply("web", shadow=["1"], model="cancer", reason="start")
    assert (done.model, done.revision, done.policy.shadow) == ("cancer", 2, ["1"])
    history = client.deployments.history("web")
    assert [(h.revision, h.reason) for h in history] == [(1, "created"), (2, "start")]
    # the deployment exists now: the same call changes it, with the model checked
    again = client.deployments.apply("web", shadow=[], model="cancer")
    assert (again.revision, again.policy.shadow) == (3, [])


def test_apply_with_a_model_creates_nothing_when_the_change_is_refused(
    client: ClientProtocol, registered: None
) -> None:
    with pytest.raises(PolicyError):
        client.deployments.apply("web", canary=("challenger", 10), model="cancer")
    with pytest.raises(NotFound):  # before: created by the first step, left behind
        client.deployments.get("web")
    with pytest.raises(NotFound):
        client.deployments.apply("web", shadow=["1"])  # no model: nothing to create


def test_a_whole_policy_with_a_model_creates_the_deployment(
    client: ClientProtocol, registered: None
) -> None:
    policy = {"routes": [{"target": "1", "weight": 100}]}
    done = client.deployments.apply("web", policy=policy, model="cancer")
    assert done.policy.targets() == ["1"]
    assert [h.revision for h in client.deployments.history("web")] == [1, 2]


def test_upload_and_download_report_their_progress(client: ClientProtocol, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a" * 1000)
    (folder / "b.txt").write_bytes(b"b" * 24)
    (folder / "link").symlink_to("/etc/hostname")  # a link out of the folder: left out
    client.repos.create("r")
    heard: list[object] = []
    commit = client.files.upload(
        "r@master:/d",
        [folder],
        recursive=True,
        progress=lambda n: heard.append(n),
        on_plan=lambda total, count: heard.append(("plan", total, count)),
        on_stored=lambda: heard.append("stored"),
        on_skipped=lambda entries: heard.append(("skipped", [e.path for e in entries])),
    )
    assert heard[0][0] == "skipped" and heard[0][1][0].endswith("link")
    assert heard[1] == ("plan", 1024, 2)
    assert sum(n for n in heard if isinstance(n, int)) == 1024
    assert heard[-1] == "stored"
    got: list[int] = []
    written = client.files.download(f"r@{commit.id}:/d", tmp_path / "out", progress=got.append)
    assert sorted(p.name for p in written) == ["a.txt", "b.txt"]
    assert sum(got) == 1024


def test_broken_lists_pipelines_whose_spec_cannot_be_read(client: ClientProtocol) -> None:
    assert client.pipelines.broken() == []


def test_run_forever_runs_what_is_stale_and_reports_monitor_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_SANDBOX", "none")
    monkeypatch.delenv("CAIRN_HOME", raising=False)
    home = tmp_path / "home"
    writer = Client(home, auto_run=False)  # another process's puts: nothing runs them
    writer.repos.create("words")
    spec = {
        "pipeline": {"name": "upper"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {
            "cmd": ["sh", "-c", 'tr a-z A-Z < "$CAIRN_PFS"/words/w.txt > "$CAIRN_PFS"/out/u']
        },
    }
    writer.pipelines.create(spec, spec_dir=tmp_path)
    writer.files.put("words@master:/w.txt", b"hi")
    assert writer.jobs.list("upper") == []
    runner = Client(home, auto_run=True)
    runner.run_forever(once=True, allow_unconfined=True)
    [job] = runner.jobs.list("upper")
    assert job.state == "success", job.reason
    assert runner.files.read("upper@master:/u") == b"HI"
    assert runner._pipelines.allow_unconfined  # reached the service, not the face

    def broken_tick() -> None:
        raise RuntimeError("tick failed")

    runner.tick_monitors = broken_tick  # type: ignore[method-assign]
    errors: list[Exception] = []
    runner.run_forever(once=True, on_error=errors.append)
    assert [str(e) for e in errors] == ["tick failed"]
    with pytest.raises(RuntimeError):
        runner.run_forever(once=True)
    for c in (writer, runner):
        c.data.catalog.dispose()


def test_files_put_from_a_stream(client: ClientProtocol) -> None:
    client.repos.create("s")
    client.files.put("s@master:/x", io.BytesIO(b"x"))
    assert client.files.read("s@master:/x") == b"x"
