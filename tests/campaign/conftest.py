"""Fixtures of the reliability campaign (README, Reliability): seeded, bounded trials.

``CAIRN_CAMPAIGN_SEED`` changes the seed (default 18, the issue's number) to explore
other kill points; the trial counts are fixed so CI measures the README's figures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Runner, Tally

SEED = int(os.environ.get("CAIRN_CAMPAIGN_SEED", "18"))
TALLIES: list[Tally] = []


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o755)
    found = Runner(tmp_path / "store", work)
    yield found
    found.close()


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """The test's counts, printed in the terminal summary (``-rA`` or the campaign's
    own summary line) and checked for zero losses by the test itself."""
    found = Tally(request.node.name)
    yield found
    TALLIES.append(found)
    print(found.line())


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if TALLIES:
        terminalreporter.write_sep("-", "campaign")
        for t in TALLIES:
            terminalreporter.write_line(t.line())
