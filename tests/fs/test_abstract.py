"""fsspec's own abstract test classes (``fsspec.tests.abstract``): copy, get, put, open
and pipe, run over the embedded store. cairn has no empty folders (a folder exists while
it holds a file), as object stores, so ``supports_empty_directories`` is False."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path

import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.open import AbstractOpenTests
from fsspec.tests.abstract.pipe import AbstractPipeTests
from fsspec.tests.abstract.put import AbstractPutTests
from tests.fs.conftest import embedded, filesystem

from cairn.fs import CairnFileSystem


class CairnFixtures(AbstractFixtures):
    @pytest.fixture
    def fs(self, tmp_path: Path) -> Iterator[CairnFileSystem]:  # type: ignore[override]
        with embedded(tmp_path / "home") as client:
            client.repos.create("abstract")
            yield filesystem(client)

    @pytest.fixture
    def fs_join(self):  # type: ignore[no-untyped-def]
        return posixpath.join

    @pytest.fixture
    def fs_path(self) -> str:
        return "abstract@master/root"

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestCairnCopy(AbstractCopyTests, CairnFixtures):
    pass


class TestCairnGet(AbstractGetTests, CairnFixtures):
    pass


class TestCairnPut(AbstractPutTests, CairnFixtures):
    pass


class TestCairnOpen(AbstractOpenTests, CairnFixtures):
    pass


class TestCairnPipe(AbstractPipeTests, CairnFixtures):
    pass
