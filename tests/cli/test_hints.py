"""Library messages say what is wrong; the CLI adds the command to run (cairn.cli.hints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.cli.hints import HINTS, with_hint
from cairn.client import Client
from cairn.data import AlreadyExists, NotFound
from cairn.pipelines import Pipelines


def test_a_library_error_names_no_command_and_the_cli_adds_it(tmp_path: Path) -> None:
    client = Client(tmp_path / "home", auto_run=False)
    try:
        with pytest.raises(NotFound) as missing:
            client.pipelines.get("nosuch")
        assert "cairn " not in str(missing.value)
        assert with_hint(missing.value) == (
            "pipeline 'nosuch' not found; `cairn list pipeline` shows them"
        )
        client.repos.create("r")
        with pytest.raises(AlreadyExists) as exists:
            client.repos.create("r")
        assert with_hint(exists.value) == str(exists.value)  # nothing to add
        with pytest.raises(NotFound) as no_repo:
            client.files.put("nosuch@master:/a", b"x")
        assert "cairn " not in str(no_repo.value)
        assert with_hint(no_repo.value).endswith("`cairn list repo` shows the repos")
    finally:
        client.data.catalog.dispose()


def test_every_hint_formats_with_the_names_its_kind_carries() -> None:
    names = {"name": "x", "key": "k", "model": "m", "source": "s", "alias": "a", "ref": "r@b"}
    for kind, template in HINTS.items():
        assert "cairn" in template or "--" in template or "-r" in template, kind
        template.format(**names)


def test_library_messages_quote_no_cli_command() -> None:
    root = Path(Pipelines.__module__.replace(".", "/")).parts[0]
    src = Path(__import__(root).__file__).parent
    quoted = [
        f"{path.relative_to(src)}:{n}"
        for path in sorted(src.rglob("*.py"))
        if path.parts[len(src.parts)] not in ("cli", "server")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "`cairn " in line
        and not line.lstrip().startswith(("#", '"""', "``"))
        and ('f"' in line or line.lstrip().startswith('"'))
    ]
    assert quoted == []
