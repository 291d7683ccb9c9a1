"""The web console over the quickstarts' store (tests/console/store.py): every page over
HTTP (Starlette's TestClient), and the issue's journeys in headless Chromium (Debian's
``chromium``, driven by Playwright; no browser is downloaded). Screenshots of each page go
to tmp/artifacts/console/ (not committed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("skimage")
pytest.importorskip("sklearn")

from tests.console.store import ROOT, Store, environment, shared  # noqa: E402

ARTIFACTS = ROOT / "tmp" / "artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    saved = {k: os.environ.get(k) for k in ("CAIRN_SANDBOX", "PATH", "CAIRN_HOME", "CAIRN_URL")}
    os.environ.update(environment())
    os.environ.pop("CAIRN_HOME", None)
    os.environ.pop("CAIRN_URL", None)
    base = tmp_path_factory.getbasetemp()
    session = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    try:
        made = shared(session, tmp_path_factory.mktemp("console") / "home")
        yield made
        made.client.data.catalog.dispose()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def http(store: Store) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from cairn.console.app import create_console_app

    with TestClient(create_console_app(store.client)) as client:
        yield client


# -- pages over HTTP ---------------------------------------------------------------------


def test_the_dag_draws_inputs_pipelines_outputs_models_and_deployments(http, store):
    page = http.get("/")
    assert page.status_code == 200
    edges = set(re.findall(r'data-from="([^"]+)" data-to="([^"]+)"', page.text))
    assert {
        ("repo:images", "pipeline:edges"),
        ("pipeline:edges", "repo:edges"),
        ("repo:edges", "pipeline:montage"),
        ("repo:images", "pipeline:montage"),
        ("pipeline:montage", "repo:montage"),
        ("repo:training", "pipeline:train"),
        ("repo:train", "model:cancer"),
        ("model:cancer", "deployment:cancer"),
    } <= edges
    assert 'class="node kind-pipeline state-success" data-id="pipeline:edges"' in page.text


def test_a_folder_paginates_and_a_file_page_previews_text_csv_and_images(http):
    first = http.get("/repos/many/at/master/folder/")
    assert first.status_code == 200
    assert first.text.count("/repos/many/at/master/folder/f") == 50
    assert "page 1 of 3 (120 rows)" in first.text and "?page=2" in first.text
    last = http.get("/repos/many/at/master/folder/?page=3")
    assert last.text.count("/repos/many/at/master/folder/f") == 20
    csv = http.get("/repos/training/at/master/part-1.csv")
    assert "<th>mean radius</th>" in csv.text
    text = http.get("/repos/montage/at/master/montage.txt")
    assert '<pre class="text">' in text.text
    image = http.get("/repos/images/at/master/astronaut.png")
    assert '<img class="preview" src="/repos/images/raw/master/astronaut.png?inline=1"' in (
        image.text
    )
    raw = http.get("/repos/images/raw/master/astronaut.png?inline=1")
    assert raw.headers["content-type"] == "image/png" and raw.content[:4] == b"\x89PNG"
    download = http.get("/repos/images/raw/master/astronaut.png")
    assert download.headers["content-disposition"].startswith("attachment")


def test_a_repo_lists_commits_with_the_job_that_made_them_and_diffs_two(http, store):
    repo = http.get("/repos/edges")
    assert repo.status_code == 200 and f"/jobs/edges/{store.second_job}" in repo.text
    added = http.get("/repos/images/diff?new=master")
    assert "13 change(s)" in added.text
    changed = http.get("/repos/notes/diff?new=master")
    assert '<span class="del">-two</span>' in changed.text
    assert '<span class="add">+2</span>' in changed.text


def test_a_job_page_counts_datums_and_a_datum_shows_its_log(http, store):
    job = http.get(f"/jobs/edges/{store.second_job}")
    assert '<dd data-count="processed">13</dd>' in job.text
    assert '<dd data-count="skipped">13</dd>' in job.text
    datum = store.client.jobs.datums(f"edges@{store.second_job}")
    done = next(d for d in datum if str(d.state) == "success")
    page = http.get(f"/jobs/edges/{store.second_job}/datums/{done.id}")
    name = done.inputs[0]["path"].lstrip("/")
    assert f"{name}: 512x512" in page.text or f"{name}:" in page.text
    # the text a running datum's page polls, with the job's state to stop on
    logs = http.get(f"/jobs/edges/{store.second_job}/logs.txt?datum={done.id[:12]}")
    assert logs.headers["x-cairn-job-state"] == "success" and "[cairn] attempt 1" in logs.text
    skipped = http.get(f"/jobs/edges/{store.second_job}?state=skipped")
    assert skipped.text.count(f"/jobs/edges/{store.second_job}/datums/") == 13
    # the filter is named in the heading and marked current (the badge macro once hid it)
    assert "<h2>Datums skipped</h2>" in skipped.text and "Macro" not in skipped.text
    assert '<a href="?state=skipped" aria-current="page">' in skipped.text
    assert "<h2>Datums</h2>" in job.text
    spec = http.get("/pipelines/edges")
    assert "cmd:\n  - python3\n  - edges.py" in spec.text


def test_lineage_of_a_file_and_of_a_model(http, store):
    page = http.get("/lineage/file/edges/master/astronaut.png")
    assert re.search(r"images@[0-9a-f]{12}:/astronaut.png", page.text)
    model = http.get("/lineage/model/cancer/1")
    assert "part-1.csv" in model.text and "part-2.csv" not in model.text


def test_runs_filter_compare_and_chart(http, store):
    runs = http.get("/runs?q=rows>400")
    assert store.runs[1] in runs.text and store.runs[0] not in runs.text
    compare = http.get(f"/runs/compare?run={store.runs[0]}&run={store.runs[1]}")
    assert compare.status_code == 200
    assert '<tr class="differs"><th>param rows</th>' in compare.text
    assert compare.text.count('<polyline class="line" data-series=') >= 2


def test_models_deployments_and_monitoring_pages(http, store):
    assert "champion" in http.get("/models/cancer").text
    deployment = http.get("/deployments/cancer")
    assert 'data-target="champion">100%' in deployment.text
    monitors = http.get("/monitors")
    assert "monitor.drift" in monitors.text and "feature(s) drifted" in monitors.text
    event = http.get(f"/events/{store.drift_event}")
    assert '<table id="features">' in event.text and "mean radius" in event.text
    assert http.get("/monitors/cancer-drift").status_code == 200
    assert http.get("/repos/nope").status_code == 404


# -- in the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def console_url(store: Store) -> Iterator[str]:
    import socket

    import uvicorn

    from cairn.console.app import create_console_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_console_app(store.client), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("CAIRN_REQUIRE_BACKENDS") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, console_url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=console_url)
    # the console must work with no network beyond its server
    context.route(re.compile(r"^(?!" + re.escape(console_url) + ").*"), lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_browser_dag_shows_images_edges_montage_and_opens_a_node(page):
    page.goto("/")
    for a, b in [
        ("repo:images", "pipeline:edges"),
        ("pipeline:edges", "repo:edges"),
        ("repo:edges", "pipeline:montage"),
    ]:
        assert page.locator(f'svg.dag path.edge[data-from="{a}"][data-to="{b}"]').count() == 1
    assert page.locator('svg.dag a.node[data-id="pipeline:montage"]').is_visible()
    shot(page, "dag")
    # keyboard: Tab reaches the edges node, Enter opens it
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('data-id')") == "pipeline:edges":
            break
    else:
        pytest.fail("Tab never reached the edges node")
    page.keyboard.press("Enter")
    page.wait_for_url("**/pipelines/edges")
    shot(page, "pipeline")


def test_browser_job_page_shows_13_processed_and_13_skipped(page, store):
    page.goto("/pipelines/edges")
    page.click(f'a[href="/jobs/edges/{store.second_job}"]')
    assert page.locator('dd[data-count="processed"]').inner_text() == "13"
    assert page.locator('dd[data-count="skipped"]').inner_text() == "13"
    shot(page, "job")
    page.locator("table a.mono").first.click()
    assert "[cairn] attempt 1" in page.locator("#log").inner_text()
    shot(page, "datum")


def test_browser_lineage_of_an_edge_map_reaches_astronaut_png(page):
    page.goto("/repos/edges")
    page.click("text=browse files at master")
    page.click('a:text-is("astronaut.png")')
    assert page.locator("img.preview").evaluate("img => img.naturalWidth") > 0
    shot(page, "file")
    page.click("text=Lineage")
    upstream = page.locator("#upstream").inner_text()
    assert re.search(r"images@[0-9a-f]{12}:/astronaut.png", upstream)
    shot(page, "lineage")


def test_browser_two_runs_compare_with_charts(page, store):
    page.goto("/runs")
    for run in store.runs:
        page.check(f'input[value="{run}"]')
    page.click("text=Compare the chosen runs")
    page.wait_for_url("**/runs/compare?**")
    assert page.locator("#comparison thead th").count() == 3
    assert page.locator("tr.differs").count() >= 1
    assert page.locator("svg.chart polyline").count() >= 2
    shot(page, "compare")


def test_browser_canary_from_the_page_changes_inspect_deployment(page, store):
    page.goto("/deployments/cancer")
    page.fill('form[action="/deployments/cancer/canary"] input[name="target"]', "challenger")
    page.fill('input[name="percent"]', "25")
    page.click("#canary")
    page.wait_for_url("**/deployments/cancer?done=*")
    assert page.locator('td[data-target="challenger"]').inner_text() == "25%"
    shot(page, "deployment")
    env = {**os.environ, "CAIRN_HOME": str(store.home)}
    env.pop("CAIRN_URL", None)
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "cairn"), "inspect", "deployment", "cancer", "--raw"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    routes = {r["target"]: r["weight"] for r in json.loads(shown.stdout)["policy"]["routes"]}
    assert routes["challenger"] == pytest.approx(25) or routes["challenger"] == pytest.approx(0.25)
    page.click("#rollback")
    page.wait_for_url("**/deployments/cancer?done=*")
    assert page.locator('td[data-target="champion"]').inner_text() == "100%"


def test_browser_drift_event_shows_its_features(page, store):
    page.goto("/monitors")
    page.click(f'a[href="/events/{store.drift_event}"]')
    rows = page.locator("#features tbody tr")
    assert rows.count() >= 1
    assert "mean radius" in page.locator("#features").inner_text()
    assert page.locator("svg.chart rect.bar").count() == rows.count()
    shot(page, "drift-event")


def test_browser_pages_fit_a_phone_and_long_names_wrap(browser, console_url, store):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=console_url)
    page = context.new_page()
    try:
        for path, name in [
            ("/", "phone-dag"),
            (f"/jobs/edges/{store.second_job}", "phone-job"),
            ("/lineage/file/montage/master/montage.pgm", "phone-lineage"),
            ("/deployments/cancer", "phone-deployment"),
        ]:
            page.goto(path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{path} is {overflow}px wider than the phone"
            shot(page, name)
    finally:
        context.close()
