"""A canary secret value (``transform.secrets``, and a stored value pasted into
``transform.env``) never appears in what cairn prints: every command's output, error
messages included, embedded and through a ``cairn server`` (its raw HTTP answers too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.team_server import team_server

CANARY = "canary-9f2e7c41-secret"
CAIRN = str(Path(sys.executable).with_name("cairn"))


def cli(work: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([CAIRN, *args], cwd=work, env=env, capture_output=True, text=True)
    # the command line itself holds the value (create secret --from-literal): not output
    return f"$ cairn {args[0]} ... -> {done.returncode}\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_a_canary_secret_is_in_no_output(tmp_path: Path, mode: str) -> None:
    work, home = tmp_path / "work", tmp_path / "store"
    work.mkdir()
    work.chmod(0o755)
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_CONFIG_DIR": str(tmp_path / "cfg")}
    for name in ("CAIRN_URL", "CAIRN_TOKEN", "CAIRN_CONTEXT"):
        env.pop(name, None)
    (work / "a.txt").write_text("a")
    use = (
        'printf %s "$API_TOKEN" > "$CAIRN_PFS/out/token"; echo "token is $API_TOKEN"; '
        'echo "to stderr $API_TOKEN $PASTED" >&2; '
        '[ -e "$CAIRN_PFS/in/fail" ] && { echo "failing with $API_TOKEN" >&2; exit 3; }; true'
    )
    spec = {
        "pipeline": {"name": "use"},
        "transform": {
            "cmd": ["bash", "-c", use],
            "env": {"PASTED": CANARY},
            "secrets": [{"name": "api", "key": "token", "env_var": "API_TOKEN"}],
        },
        "input": {"pfs": {"repo": "in", "glob": "/*"}},
    }
    (work / "use.json").write_text(json.dumps(spec))
    outputs = [cli(work, env, "init")]
    assert "-> 0" in outputs[0]

    def session(url: str | None) -> None:
        e = {**env, **({"CAIRN_URL": url} if url else {})}
        run = [
            ("create", "secret", "api", "--from-literal", f"token={CANARY}"),
            ("create", "repo", "in"),
            ("put", "file", "in@master:/a.txt", "-f", "a.txt"),
            ("create", "pipeline", "-f", "use.json"),
            ("put", "file", "in@master:/fail", "-f", "a.txt"),  # a datum fails
            ("list", "pipeline"),
            ("list", "pipeline", "--raw"),
            ("inspect", "pipeline", "use"),
            ("inspect", "pipeline", "use", "--raw"),
            ("list", "job"),
            ("list", "job", "--raw"),
            ("logs", "-p", "use"),
            ("logs", "-p", "use", "--raw"),
            ("list", "commit", "use", "--raw"),
            ("inspect", "commit", "use@master", "--raw"),
            ("lineage", "use@master", "--raw"),
            ("lineage", "use@master:/token"),
            ("list", "event", "--raw"),
            ("list", "secret", "--raw"),
            ("update", "pipeline", "-f", "use.json", "--reprocess"),
            ("wait", "commit", "use@master"),
            ("rerun", "pipeline", "use"),
        ]
        for args in run:
            outputs.append(cli(work, e, *args))
        if url:
            for path in ("/api/v1/pipelines", "/api/v1/jobs", "/api/v1/events"):
                answer = httpx.get(url + path, timeout=30)
                outputs.append(f"GET {path} -> {answer.status_code}\n{answer.text}")

    if mode == "embedded":
        session(None)
    else:
        with team_server(home) as url:
            session(url)
    # the transform got the value (in its output, which is the repo's business)
    got = cli(work, env, "get", "file", "use@master:/token")
    assert CANARY in got
    leaks = [text for text in outputs if CANARY in text]
    assert len(outputs) >= 23
    assert leaks == []
    assert any("token is ***" in text for text in outputs)
