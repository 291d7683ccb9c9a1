"""pachctl's verbs and options that Pachyderm's examples and tutorials use (issue 15, section
3): ``validate pipeline``, ``create pipeline --dry-run``, ``draw pipeline``, ``edit
pipeline``, ``list pipeline --spec``, ``list job ID``/``--state``, ``list commit --all``,
``diff file --name-only``, ``delete file -r``, ``logs --since``/``-f``, ``-o json|yaml``
and the Kubernetes-only verbs that answer that they do not apply."""

from __future__ import annotations

import functools
import http.server
import io
import json
import sys
import tarfile
import threading
from pathlib import Path

import yaml

from cairn.cli.pachctl_commands import dag_lines

from .conftest import Cairn, pfs, pipeline, seed

COPY = ["bash", "-c", 'cp -r "$CAIRN_PFS"/*/* "$CAIRN_PFS/out/"; echo copied']


def _two_stage(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "alpha", "b.txt": "beta"})
    cairn.spec(
        pipeline("first", pfs("words"), COPY),
        pipeline("second", pfs("first"), COPY),
        name="dag.json",
    )


def test_validate_pipeline_checks_offline_and_names_the_wrong_field(cairn: Cairn) -> None:
    cairn("init", check=False)  # remote: the server made the store already
    good = cairn.spec(pipeline("first", pfs("nowhere"), COPY), name="good.json")
    # validate is offline: an input repo that does not exist is the store's business
    proc = cairn("validate", "pipeline", "-f", str(good))
    assert "first: valid" in proc.stderr
    bad = pipeline("first", pfs("words"), COPY)
    bad["parallelism_spec"] = {"constant": "many"}
    cairn.spec(bad, name="bad.json")
    proc = cairn.fails("validate", "pipeline", "-f", "bad.json")
    assert "parallelism_spec" in proc.stderr
    assert cairn.raw("list", "pipeline") == []


def test_create_pipeline_dry_run_stores_nothing_and_names_missing_repos(cairn: Cairn) -> None:
    _two_stage(cairn)
    proc = cairn("create", "pipeline", "-f", "dag.json", "--dry-run")
    assert "would create pipeline first (reads words)" in proc.stdout
    assert "would create pipeline second (reads first)" in proc.stdout
    assert cairn.raw("list", "pipeline") == []
    cairn.spec(pipeline("third", pfs("missing"), COPY), name="missing.json")
    proc = cairn("create", "pipeline", "-f", "missing.json", "--dry-run", check=False)
    assert proc.returncode == 1
    assert "input repo 'missing' does not exist" in proc.stderr
    cairn("create", "pipeline", "-f", "dag.json")
    proc = cairn("create", "pipeline", "-f", "dag.json", "--dry-run", check=False)
    assert proc.returncode == 1 and "'first' already exists" in proc.stderr


def test_draw_pipeline_shows_the_dag_from_its_input_repos(cairn: Cairn) -> None:
    _two_stage(cairn)
    cairn("create", "pipeline", "-f", "dag.json")
    lines = cairn("draw", "pipeline").stdout.splitlines()
    assert lines == ["words", "└─▶ first", "    └─▶ second"]
    assert cairn.raw("draw", "pipeline") == {"first": ["second"], "words": ["first"]}


def test_dag_lines_print_a_diamond_once_and_mark_the_meeting_node() -> None:
    edges = {"raw": ["clean", "stats"], "clean": ["model"], "stats": ["model"]}
    assert dag_lines(edges, ["raw"]) == [
        "raw",
        "├─▶ clean",
        "│   └─▶ model",
        "└─▶ stats",
        "    └─▶ model  (above)",
    ]


def test_list_pipeline_spec_and_output_formats(cairn: Cairn) -> None:
    _two_stage(cairn)
    cairn("create", "pipeline", "-f", "dag.json")
    specs = json.loads(cairn("list", "pipeline", "--spec").stdout)
    assert sorted(s["pipeline"]["name"] for s in specs) == ["first", "second"]
    as_yaml = yaml.safe_load(cairn("list", "repo", "-o", "yaml").stdout)
    as_json = json.loads(cairn("list", "repo", "--output=json").stdout)
    assert as_yaml == as_json
    assert {r["name"] for r in as_yaml} == {"words", "first", "second"}
    proc = cairn("list", "repo", "-o", "xml", check=False)
    assert proc.returncode == 2 and "'xml'" in proc.stderr


def test_list_job_by_id_and_by_state(cairn: Cairn) -> None:
    _two_stage(cairn)
    cairn("create", "pipeline", "-f", "dag.json")
    job = cairn.jobs("first")[0]["id"]
    # jobs of one cause share their id (pachctl's job set): the id lists both pipelines'
    both = cairn.raw("list", "job", job[:10])
    assert sorted(j["pipeline"] for j in both) == ["first", "second"]
    assert [j["id"] for j in cairn.raw("list", "job", f"first@{job}")] == [job]
    assert len(cairn.raw("list", "job", "--state", "success")) == 2
    assert cairn.raw("list", "job", "--state", "failure") == []


def test_list_commit_all_lists_every_commit_of_the_repo(cairn: Cairn) -> None:
    seed(cairn, "words", {"a.txt": "1"}, {"b.txt": "2"})
    seed(cairn, "words", {"c.txt": "3"}, branch="dev")
    on_master = cairn.raw("list", "commit", "words@master")
    every = cairn.raw("list", "commit", "words@master", "--all")
    assert len(on_master) == 2 and len(every) == 3


def test_diff_file_name_only_and_delete_file_r(cairn: Cairn) -> None:
    seed(cairn, "words", {"keep.txt": "1", "dir/x.txt": "2", "dir/y.txt": "3"})
    cairn("delete", "file", "words@master:/dir", "-r")
    names = cairn("diff", "file", "words@master", "--name-only").stdout.split()
    assert sorted(names) == ["/dir/x.txt", "/dir/y.txt"]
    assert [f["path"] for f in cairn.raw("list", "file", "words@master")] == ["/keep.txt"]


def test_logs_since_prints_every_recent_job_and_follow_ends_with_the_job(
    cairn: Cairn,
) -> None:
    _two_stage(cairn)
    cairn("create", "pipeline", "-f", "dag.json")
    cairn.put("words@master:/c.txt", "gamma")
    jobs = cairn.jobs("first")
    assert len(jobs) == 2
    recent = cairn("logs", "-p", "first", "--since", "1h").stdout
    assert all(f"first@{j['id']}" in recent for j in jobs)
    old = cairn("logs", "-p", "first", "--since", "0s").stdout
    assert "==" not in old
    followed = cairn("logs", "-p", "first", "-f", timeout=30).stdout
    assert f"first@{jobs[0]['id']}" in followed and "copied" in followed


def test_edit_pipeline_updates_it_with_what_the_editor_saved(cairn: Cairn) -> None:
    _two_stage(cairn)
    cairn("create", "pipeline", "-f", "dag.json")
    editor = cairn.write(
        "editor.py",
        "import sys, yaml\n"
        "p = sys.argv[1]\n"
        "spec = yaml.safe_load(open(p))\n"
        "spec['description'] = 'edited'\n"
        "open(p, 'w').write(yaml.safe_dump(spec))\n",
    )
    cairn("edit", "pipeline", "first", "--editor", f"{sys.executable} {editor}")
    info = cairn.raw("inspect", "pipeline", "first")
    assert info["version"] == 2 and info["spec"]["description"] == "edited"
    proc = cairn("edit", "pipeline", "first", "--editor", "true")
    assert "unchanged" in proc.stderr
    assert cairn.raw("inspect", "pipeline", "first")["version"] == 2


def test_kubernetes_verbs_say_they_do_not_apply(cairn: Cairn) -> None:
    for verb in ("port-forward", "deploy"):
        proc = cairn(verb)
        assert "Kubernetes" in proc.stderr


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_put_file_untar_full_path_and_input_file(cairn: Cairn) -> None:
    seed(cairn, "data", {"keep.txt": "k"})
    _tar(cairn.root / "a.tgz", {"img/1.png": b"one", "notes.txt": b"n"})
    cairn("put", "file", "data@master:/x", "-f", "a.tgz", "--untar")
    assert cairn.get("data@master:/x/img/1.png") == b"one"
    assert cairn.get("data@master:/x/notes.txt") == b"n"
    cairn.write("deep/er/f.txt", "full")
    cairn("put", "file", "data@master", "-f", "deep/er/f.txt", "--full-path")
    assert cairn.get("data@master:/deep/er/f.txt") == b"full"
    cairn.write("one.txt", "1")
    cairn.write("two.txt", "2")
    cairn.write("list.txt", "one.txt\n# a comment\n\ntwo.txt\n")
    cairn("put", "file", "data@master:/listed/", "-i", "list.txt", "-c", "-p", "4")
    assert cairn.get("data@master:/listed/two.txt") == b"2"
    _tar(cairn.root / "evil.tgz", {"../escape.txt": b"x"})
    cairn.fails("put", "file", "data@master:/y", "-f", "evil.tgz", "--untar")
    assert not (cairn.root.parent / "escape.txt").exists()
    cairn.fails("put", "file", "data@master", "-f", "../one.txt", "--full-path")


def test_put_file_fetches_an_http_url(cairn: Cairn, tmp_path: Path) -> None:
    seed(cairn, "data", {"keep.txt": "k"})
    served = tmp_path / "www"
    served.mkdir()
    (served / "iris.csv").write_text("a,b\n1,2\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/iris.csv"
        try:
            cairn("put", "file", "data@master:/csv/", "-f", url)
        finally:
            httpd.shutdown()
    assert cairn.get("data@master:/csv/iris.csv") == b"a,b\n1,2\n"


def test_an_output_repo_lists_empty_before_its_first_job(cairn: Cairn) -> None:
    cairn("create", "repo", "empty")
    cairn.spec(pipeline("copier", pfs("empty"), COPY), name="copier.json")
    cairn("create", "pipeline", "-f", "copier.json")
    assert cairn.raw("list", "file", "copier@master") == []
    assert cairn.raw("glob", "file", "copier@master:/*") == []
    assert [b["name"] for b in cairn.raw("list", "branch", "copier")] == ["master"]
    cairn.fails("get", "file", "copier@master:/nothing.txt")
