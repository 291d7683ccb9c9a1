"""The client's half of the pipeline routes (cairn.server.team.specs): ``create`` and
``update`` read the specs here, as the embedded client reads them
(cairn.api.embedded.pipelines.local_specs, so errors name the file and field alike), send
the folder their transforms run in as a code bundle (cairn.api.bundles; not again when
the server holds it), then the specs as values with the bundle's id."""

from __future__ import annotations

import builtins
import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import blake3

from cairn.api.bundles import pack
from cairn.api.embedded.pipelines import local_specs
from cairn.api.remote.client import RemoteSub
from cairn.api.wire import API_PREFIX, method
from cairn.pipelines import PipelineInfo, PipelineSpec

__all__ = ["RemotePipelinesBase"]

SpecLike = str | Path | PipelineSpec | Mapping[str, Any] | Iterable[Any]


class RemotePipelinesBase(RemoteSub):
    """The methods of PipelinesProtocol that carry local files; the generated class adds
    the rest."""

    def create(
        self, spec: SpecLike, *, spec_dir: str | Path | None = None, reprocess: bool = False
    ) -> builtins.list[PipelineInfo]:
        """PipelinesProtocol.create over the wire: the transforms run on the server in a
        copy of the spec's folder. Raises as embedded, and BundleError (a folder over
        the bundle limits)."""
        return self._write("create", spec, spec_dir, reprocess)

    def update(
        self, spec: SpecLike, *, spec_dir: str | Path | None = None, reprocess: bool = False
    ) -> builtins.list[PipelineInfo]:
        """PipelinesProtocol.update over the wire (see ``create``)."""
        return self._write("update", spec, spec_dir, reprocess)

    def _write(
        self, name: str, spec: SpecLike, spec_dir: str | Path | None, reprocess: bool
    ) -> builtins.list[PipelineInfo]:
        specs, folder = local_specs(spec, spec_dir)
        body = {
            "spec": [json.loads(s.canonical_json()) for s in specs],
            "code": self._send_code(folder),
            "reprocess": reprocess,
        }
        t = self._transport
        m = method("pipelines", name)
        answer = t.request("POST", m.path, json=body)
        made: builtins.list[PipelineInfo] = m.decode_result(answer.json()["result"])
        t.settled()
        return made

    def _send_code(self, folder: Path) -> str:
        """The id of ``folder``'s bundle, sent unless the server holds it."""
        t = self._transport
        with tempfile.TemporaryFile(prefix="cairn-code-") as f:
            pack(folder, f)
            f.seek(0)
            digest = blake3.blake3()
            while piece := f.read(1 << 20):
                digest.update(piece)
            bundle = digest.hexdigest()
            if t.request("GET", f"{API_PREFIX}/code/{bundle}").json()["present"]:
                return bundle
            f.seek(0)
            sent: str = t.request("POST", f"{API_PREFIX}/code", content=_pieces(f)).json()["id"]
        return sent


def _pieces(f: Any) -> Any:
    while piece := f.read(1 << 20):
        yield piece
