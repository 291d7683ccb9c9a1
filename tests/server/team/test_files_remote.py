"""Chunk-aware uploads through ``cairn server``: an edit in the middle of a big file sends
about the edited bytes, a remote put stores what an embedded put stores, and an upload
cut off half way changes nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import blake3
import httpcore
import httpx
import pytest

from cairn.api.remote.client import RemoteClient
from cairn.client import Client
from cairn.data import parse_ref

MiB = 1 << 20


def _chunk_bytes_sent(client: RemoteClient) -> list[int]:
    """A list that grows by the body size of every chunk upload ``client`` sends."""
    sent: list[int] = []

    def count(request: httpx.Request) -> None:
        if request.url.path == "/api/v1/chunks":
            sent.append(len(request.content))

    client.transport.http.event_hooks["request"].append(count)
    return sent


def _chunks(home: Path, ref: str) -> tuple[str, list[tuple[str, int]]]:
    """(content hash, [(chunk hash, size)]) of the file at ``ref`` in the store at ``home``."""
    client = Client(home, auto_run=False)
    try:
        [(_, entry)] = list(client.data.walk_files(parse_ref(ref)))
        return entry.content.hash, [(c.hash, c.size) for c in entry.content.chunks]
    finally:
        client.data.catalog.dispose()


def test_an_edit_in_the_middle_sends_about_the_edit_and_stores_what_embedded_does(
    remote: tuple[RemoteClient, Path], tmp_path: Path
) -> None:
    client, home = remote
    client.repos.create("videos")
    rng = os.urandom
    original = bytearray(rng(64 * MiB))
    client.files.put("videos@master:/v.bin", bytes(original))

    edited = original
    edited[30 * MiB : 34 * MiB] = rng(4 * MiB)
    sent = _chunk_bytes_sent(client)
    info = client.files.put("videos@master:/v.bin", bytes(edited))
    assert 4 * MiB <= sum(sent) <= 8 * MiB, sum(sent)  # frames: the edit and its two edges

    embedded_home = tmp_path / "embedded"
    embedded = Client(embedded_home, auto_run=False)
    try:
        embedded.repos.create("videos")
        embedded.files.put("videos@master:/v.bin", bytes(edited))
    finally:
        embedded.data.catalog.dispose()
    remote_chunks = _chunks(home, f"videos@{info.id}:/v.bin")
    assert remote_chunks == _chunks(embedded_home, "videos@master:/v.bin")
    assert client.files.read("videos@master:/v.bin") == bytes(edited)


def test_a_client_that_disconnects_half_way_leaves_the_store_unchanged(
    remote: tuple[RemoteClient, Path],
) -> None:
    client, home = remote
    client.repos.create("r")
    before = client.files.put("r@master:/a.txt", b"kept")
    data = os.urandom(16 * MiB)
    avg = client.transport.request("GET", "/api/v1/chunking").json()["avg_size"]
    frames = []
    for i in range(0, len(data), avg):  # frames as the client sends them (any cut will do)
        piece = data[i : i + avg]
        digest = blake3.blake3(piece).digest()
        frames.append(digest + len(piece).to_bytes(4, "big") + piece)

    class CutOff(Exception):
        pass

    def half_then_gone() -> Iterator[bytes]:
        yield from frames[: len(frames) // 2]
        yield frames[len(frames) // 2][:1000]  # and stop inside a frame
        raise CutOff

    with pytest.raises(CutOff):
        client.transport.http.post(
            "/api/v1/chunks", params={"ref": "r@master"}, content=half_then_gone()
        )
    assert client.branches.get("r@master").head == before.id
    assert [c.id for c in client.commits.list("r")] == [before.id]
    store = Client(home, auto_run=False)
    try:
        assert not store.fsck().problems
    finally:
        store.data.catalog.dispose()
    # The same file put again afterwards is whole.
    client.files.put("r@master:/b.bin", data)
    assert client.files.read("r@master:/b.bin") == data


def test_frames_that_arrive_cut_anywhere_are_stored_whole(
    remote: tuple[RemoteClient, Path],
) -> None:
    client, _home = remote
    client.repos.create("r")
    avg = client.transport.request("GET", "/api/v1/chunking").json()["avg_size"]
    pieces = [os.urandom(n) for n in (10, avg, 3 * avg, 7, avg // 2, 4 * avg)]
    body = b"".join(blake3.blake3(p).digest() + len(p).to_bytes(4, "big") + p for p in pieces)
    step = 65_537  # a prime: the pieces end inside headers and inside chunks

    def trickle() -> Iterator[bytes]:
        for i in range(0, len(body), step):
            yield body[i : i + step]

    answer = client.transport.http.post(
        "/api/v1/chunks", params={"ref": "r@master"}, content=trickle()
    )
    assert answer.json() == {"stored": len(pieces)}
    files = [
        {
            "path": f"{i}.bin",
            "hash": blake3.blake3(p).hexdigest(),
            "size": len(p),
            "chunks": [[blake3.blake3(p).hexdigest(), len(p)]],
        }
        for i, p in enumerate(pieces)
    ]
    whole = b"".join(pieces)
    files.append(
        {
            "path": "all.bin",
            "hash": blake3.blake3(whole).hexdigest(),
            "size": len(whole),
            "chunks": [[blake3.blake3(p).hexdigest(), len(p)] for p in pieces],
        }
    )
    client.transport.request(
        "POST", "/api/v1/files/commit", json={"ref": "r@master:/", "files": files}
    )
    assert client.files.read("r@master:/all.bin") == whole
    assert [client.files.read(f"r@master:/{i}.bin") for i in range(len(pieces))] == pieces


def test_a_download_reads_the_socket_in_large_pieces(
    remote: tuple[RemoteClient, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _home = remote
    client.repos.create("r")
    data = os.urandom(16 * MiB)
    client.files.put("r@master:/big.bin", data)
    reads: list[int] = []
    original = httpcore.SyncBackend.connect_tcp

    def connect(self: httpcore.SyncBackend, *args: object, **kwargs: object) -> object:
        stream = original(self, *args, **kwargs)
        read = stream.read

        def counted(max_bytes: int, timeout: float | None = None) -> bytes:
            reads.append(max_bytes)
            return read(max_bytes, timeout)

        stream.read = counted  # type: ignore[method-assign]
        return stream

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect)
    with RemoteClient(client.transport.url, auto_run=False) as fresh:
        [written] = fresh.files.download("r@master:/big.bin", tmp_path / "big.bin")
    assert written.read_bytes() == data
    assert min(reads) >= 1 << 20
    assert len(reads) < 16 * MiB // (64 << 10)  # httpcore alone reads 64 KiB at a time
