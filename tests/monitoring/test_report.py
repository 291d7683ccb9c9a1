"""The drift report: a terminal table, and one HTML file that shows everything offline."""

import base64
import io
from html.parser import HTMLParser

import pandas as pd
import pytest
from rich.console import Console
from sklearn.datasets import load_wine

from cairn.monitoring import compute_drift
from cairn.monitoring.report import drift_table, ordered, render_html, write_html


@pytest.fixture(scope="module")
def windows():
    X, y = load_wine(return_X_y=True, as_frame=True)
    frame = X.assign(cultivar=y.map({0: "barolo", 1: "grignolino", 2: "barbera"}))
    ref, cur = frame[y < 2], frame[y > 0]
    return compute_drift(ref, cur), ref, cur


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.links, self.scripts, self.text = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs)
        if tag == "script":
            self.scripts += 1
        if tag in ("link", "iframe") or (tag in ("img", "script") and "src" in attrs):
            self.links.append(attrs.get("src") or attrs.get("href"))

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_is_one_self_contained_file(windows, tmp_path):
    result, ref, cur = windows
    path = write_html(tmp_path / "drift.html", result, ref, cur, title="wine <drift>")
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.scripts == 0
    assert all(src.startswith("data:image/png;base64,") for src in page.links)
    assert len(page.images) == len(result.features)
    for image in page.images:
        png = base64.b64decode(image["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    text = " ".join(page.text)
    assert "wine <drift>" in text  # escaped in the file, the title as given once parsed
    for feature in result.features:
        assert feature.name in text
    assert "DRIFT" in text


def test_html_report_lists_drifting_features_first(windows):
    result, ref, cur = windows
    names = [f.name for f in ordered(result)]
    n = len(result.drifted_features)
    assert set(names[:n]) == set(result.drifted_features)
    html = render_html(result, ref, cur, max_plots=2)
    assert html.count("data:image/png;base64,") == 2
    positions = [html.index(f"<h3>{name} ") for name in names]
    assert positions == sorted(positions)


def test_terminal_table_shows_every_feature_and_the_verdict(windows):
    result, _, _ = windows
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(drift_table(result))
    text = out.getvalue()
    assert text.splitlines()[0].startswith("DRIFT:")
    for feature in result.features:
        assert feature.name in text
    assert text.count("DRIFT") == len(result.drifted_features) + 1


def test_report_of_windows_without_drift(windows):
    _, ref, _ = windows
    result = compute_drift(ref, ref)
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(drift_table(result))
    assert out.getvalue().startswith("no drift")
    assert "DRIFT" not in render_html(result, ref, ref, max_plots=0).replace("no drift", "")
    assert isinstance(pd.read_json(io.StringIO(result.to_json()), typ="series"), pd.Series)
