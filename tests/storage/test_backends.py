"""The registry of object store backends: lazy imports, unknown schemes, missing extras."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cairn.storage
from cairn.storage import StorageError, UnsupportedBackend, open_object_store
from cairn.storage.backends import BACKENDS

STORAGE = Path(cairn.storage.__file__).parent


def test_opening_file_and_memory_stores_loads_neither_s3_nor_boto3(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from cairn.storage import open_object_store\n"
        f"open_object_store({tmp_path.as_uri()!r}).put('k', b'v')\n"
        f"open_object_store({str(tmp_path / 'plain')!r}).put('k', b'v')\n"
        "open_object_store('memory://').put('k', b'v')\n"
        "print(sorted(m for m in ('cairn.storage.s3', 'boto3', 'botocore') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert proc.stdout.strip() == "[]"


def test_no_backend_module_imports_another() -> None:
    modules = {target.partition(":")[0] for target in (b.target for b in BACKENDS.values())}
    for module in modules:
        path = STORAGE / f"{module.rpartition('.')[2]}.py"
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        assert not imported & (modules - {module}), module


@pytest.mark.parametrize("url", ["gs://bucket", "http://example.com/x", "azure://c/p"])
def test_an_unknown_scheme_raises_unsupported_backend_naming_the_known_ones(url: str) -> None:
    with pytest.raises(UnsupportedBackend) as info:
        open_object_store(url)

    assert isinstance(info.value, StorageError)
    for scheme in ("file://", "memory://", "s3://"):
        assert scheme in str(info.value)


def test_without_boto3_an_s3_url_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the s3 extra were not installed, and cairn.storage.s3 never imported yet.
    for name in ("botocore", "botocore.session", "botocore.config", "botocore.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "cairn.storage.s3", raising=False)

    with pytest.raises(UnsupportedBackend) as info:
        open_object_store("s3://bucket/prefix")

    assert "cairn[s3]" in str(info.value)
