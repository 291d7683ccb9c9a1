"""Secret values never reach a caller of ``cairn server`` who is not a clusterAdmin: a
canary value, stored as a secret after it got into a job's log, a spec's env, a run's
params, an alias's reason and an error message, is looked for in the raw HTTP answers a
reader and a writer receive (cairn.server.team.masking)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.server.team.test_auth_matrix import _skops_model
from tests.team_server import team_server

from cairn.api.remote.client import RemoteClient

CANARY = 'canary-"7f3\\q9"-value'  # a quote and a backslash: escaped in JSON


@dataclass
class Fixture:
    url: str
    tokens: dict[str, str]
    run: str


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """A server with its worker and auth active, where the canary got into a job's log, a
    spec, a run's params and an alias's history before it became a secret."""
    home = tmp_path_factory.mktemp("masking") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAIRN_SANDBOX", "none")
        with team_server(home) as url:
            with RemoteClient(url, auto_run=False) as anyone:
                root_token = anyone.auth.activate()
            with RemoteClient(url, root_token, auto_run=True) as root:
                root.repos.create("words")
                spec = {
                    "pipeline": {"name": "echo"},
                    "description": f"prints {CANARY}",
                    "input": {"pfs": {"repo": "words", "glob": "/*"}},
                    "transform": {
                        "cmd": ["sh", "-c", 'printf "%s\\n" "$PASTED"'],
                        "env": {"PASTED": CANARY},
                    },
                }
                answer = httpx.post(
                    f"{url}/api/v1/pipelines/create",
                    json={"spec": spec},
                    headers={"Authorization": f"Bearer {root_token}"},
                )
                assert answer.status_code == 200, answer.text
                root.files.put("words@master:/a.txt", b"alpha")  # waits for the job
                root.files.put("words@master:/model.skops", _skops_model())
                root.models.register("cancer", "words@master:/model.skops")
                root.models.set_alias("cancer@champion", 1, reason=f"because {CANARY}")
                run = root.runs.create("tuned").id
                root.runs.log(run, params={"password": CANARY})
                root.secrets.create("leaked", {"value": CANARY})
                tokens = {"admin": root_token}
                for who, role in (("reader", "repoReader"), ("writer", "repoWriter")):
                    tokens[who] = root.auth.create_token(who)[1]
                    for repo in ("words", "echo"):
                        root.auth.set_role("repo", repo, who, role)
                    root.auth.set_role("model", "cancer", who, role)
            yield Fixture(url, tokens, run)


def _answers(f: Fixture, who: str) -> list[httpx.Response]:
    calls: list[tuple[str, dict[str, object]]] = [
        ("pipelines/get", {"name": "echo"}),
        ("pipelines/list", {}),
        ("jobs/logs", {"ref": "echo"}),
        ("jobs/list", {"pipeline": "echo"}),
        ("runs/get", {"ref": f.run}),
        ("runs/list", {}),
        ("models/alias_history", {"spec": "cancer@champion"}),
        ("events/list", {}),
        ("repos/get", {"name": CANARY}),  # an error that quotes what it was given
    ]
    headers = {"Authorization": f"Bearer {f.tokens[who]}"}
    with httpx.Client(base_url=f.url, headers=headers, timeout=60) as http:
        return [http.post(f"/api/v1/{path}", json=body) for path, body in calls]


@pytest.mark.parametrize("who", ["reader", "writer"])
def test_no_answer_to_a_non_admin_holds_a_secret_value(fixture: Fixture, who: str) -> None:
    answers = _answers(fixture, who)

    assert [a.status_code for a in answers[:-1]] == [200] * (len(answers) - 1)
    assert answers[-1].status_code in (400, 404, 422)
    leaks = [a.request.url.path for a in answers if b"7f3" in a.content]
    assert not leaks, f"the canary reached {who} in {leaks}"
    masked = [a for a in answers if b"***" in a.content]
    assert len(masked) >= 5  # logs, spec, run params, alias reason, the error


def test_the_admin_sees_values_as_stored(fixture: Fixture) -> None:
    answers = _answers(fixture, "admin")

    holding = [a.request.url.path for a in answers if b"7f3" in a.content]
    assert "/api/v1/pipelines/get" in holding
    assert "/api/v1/runs/get" in holding


def test_the_remote_client_reads_masked_values_as_a_reader(fixture: Fixture) -> None:
    with RemoteClient(fixture.url, fixture.tokens["reader"], auto_run=False) as reader:
        logs = reader.jobs.logs("echo")
        spec = reader.pipelines.get("echo").spec
    assert any("***" in entry.text for entry in logs)
    assert not any("7f3" in entry.text for entry in logs)
    assert spec.transform.env == {"PASTED": "***"}
