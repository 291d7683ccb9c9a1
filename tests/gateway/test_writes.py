"""Writes through the gateway with real boto3: PutObject (one commit on a branch,
refused on a commit), read back through cairn; DeleteObject; aws-chunked bodies with
trailing checksums, which boto3 sends over HTTPS."""

from __future__ import annotations

import base64
import hashlib
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from tests.gateway.conftest import gateway, s3_client
from tests.server.team.test_tls import _self_signed

from cairn.api.protocol import ClientProtocol
from cairn.data.errors import NotFound


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_put_is_one_commit_read_back_through_cairn(both: Any, client: ClientProtocol) -> None:
    answer = both.put_object(Bucket="training", Key="master/new/x.bin", Body=b"payload")
    head = client.commits.get("training@master")
    assert client.files.read("training@master:/new/x.bin") == b"payload"
    assert len(client.commits.list("training@master")) == 1
    both.put_object(Bucket="training", Key="master/new/y.bin", Body=b"")
    assert len(client.commits.list("training@master")) == 2
    assert client.files.read("training@master:/new/y.bin") == b""
    assert client.commits.get("training@master").parent == head.id
    got = both.get_object(Bucket="training", Key="master/new/x.bin")
    assert got["ETag"] == answer["ETag"]


def test_put_to_a_commit_or_ancestor_is_access_denied(both: Any, client: ClientProtocol) -> None:
    commit = client.files.put("training@master:/a.txt", b"1")
    client.files.put("training@master:/a.txt", b"2")
    for ref in [commit.id, commit.id[:10], "master^"]:
        with pytest.raises(ClientError) as exc:
            both.put_object(Bucket="training", Key=f"{ref}/a.txt", Body=b"3")
        assert _code(exc) == "AccessDenied", ref
        with pytest.raises(ClientError) as exc:
            both.delete_object(Bucket="training", Key=f"{ref}/a.txt")
        assert _code(exc) == "AccessDenied", ref
    assert len(client.commits.list("training@master")) == 2
    with pytest.raises(ClientError) as exc:
        both.put_object(Bucket="nope", Key="master/a.txt", Body=b"3")
    assert _code(exc) == "NoSuchBucket"


def test_put_to_a_new_branch_makes_it(s3: Any, local: ClientProtocol) -> None:
    s3.put_object(Bucket="training", Key="feature/a.txt", Body=b"f")
    assert local.files.read("training@feature:/a.txt") == b"f"


def test_delete_is_one_commit_and_missing_keys_are_no_op(s3: Any, local: ClientProtocol) -> None:
    local.files.put("training@master:/", {"a/b.txt": b"1", "a/c.txt": b"2"})
    s3.delete_object(Bucket="training", Key="master/a/b.txt")
    assert len(local.commits.list("training@master")) == 2
    with pytest.raises(NotFound):
        local.files.get("training@master:/a/b.txt")
    s3.delete_object(Bucket="training", Key="master/a/b.txt")  # gone already: S3 says 204
    s3.delete_object(Bucket="training", Key="master/a")  # a folder is no object
    assert local.files.read("training@master:/a/c.txt") == b"2"
    assert len(local.commits.list("training@master")) == 2


def test_wrong_digests_are_refused_and_write_nothing(s3: Any, local: ClientProtocol) -> None:
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="training", Key="master/a.txt", Body=b"data", ContentMD5=bad_md5)
    assert _code(exc) == "BadDigest"
    wrong = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="training", Key="master/a.txt", Body=b"data", ChecksumCRC32=wrong)
    assert _code(exc) == "BadDigest"
    with pytest.raises(NotFound):
        local.commits.get("training@master")
    good = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket="training", Key="master/a.txt", Body=b"data", ContentMD5=good)
    assert local.files.read("training@master:/a.txt") == b"data"


@pytest.fixture
def https_s3(local: ClientProtocol, tmp_path: Path) -> Iterator[Any]:
    """boto3 over HTTPS, where it sends PutObject bodies aws-chunked with a trailer."""
    cert, key = _self_signed(tmp_path)
    with gateway(local, tls=(cert, key)) as url:
        s3 = s3_client(url, verify=str(cert))
        yield s3
        s3.close()


def test_aws_chunked_bodies_with_trailing_checksums(https_s3: Any, local: ClientProtocol) -> None:
    sent: dict[str, str] = {}

    def record(request: Any, **kwargs: Any) -> None:
        sent.update(
            (k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
        )

    https_s3.meta.events.register("before-send.s3.PutObject", record)
    data = bytes(range(256)) * 5000  # several chunks of boto3's aws-chunked writer
    https_s3.put_object(Bucket="training", Key="master/big.bin", Body=io.BytesIO(data))
    assert "aws-chunked" in sent["Content-Encoding"]
    assert sent["X-Amz-Trailer"] == "x-amz-checksum-crc32"
    assert local.files.read("training@master:/big.bin") == data
    for algorithm in ["SHA256", "SHA1"]:
        https_s3.put_object(
            Bucket="training",
            Key="master/s.bin",
            Body=io.BytesIO(b"s"),
            ChecksumAlgorithm=algorithm,
        )
        assert local.files.read("training@master:/s.bin") == b"s"


def test_crc32c_is_checked_and_unknown_checksums_refused(s3: Any, local: ClientProtocol) -> None:
    # botocore itself needs awscrt for CRC32C, so the requests are made by hand.
    url = s3.meta.endpoint_url + "/training/master/c.bin"
    crc32c = base64.b64encode((0xE3069283).to_bytes(4, "big")).decode()  # of b"123456789"
    wrong = httpx.put(url, content=b"12345678", headers={"x-amz-checksum-crc32c": crc32c})
    assert wrong.status_code == 400 and b"<Code>BadDigest</Code>" in wrong.content
    unknown = httpx.put(url, content=b"c", headers={"x-amz-checksum-md4": "AAAAAA=="})
    assert unknown.status_code == 501 and b"<Code>NotImplemented</Code>" in unknown.content
    with pytest.raises(NotFound):
        local.commits.get("training@master")
    right = httpx.put(url, content=b"123456789", headers={"x-amz-checksum-crc32c": crc32c})
    assert right.status_code == 200
    assert local.files.read("training@master:/c.bin") == b"123456789"


def test_delete_objects_is_one_commit_per_branch(both: Any, client: ClientProtocol) -> None:
    first = client.files.put("training@master:/", {"a.txt": b"1", "b.txt": b"2", "c.txt": b"3"})
    client.branches.create("training@dev", "master")
    answer = both.delete_objects(
        Bucket="training",
        Delete={
            "Objects": [
                {"Key": k}
                for k in ["master/a.txt", "master/b.txt", "master/gone.txt", "dev/c.txt"]
                + [f"{first.id}/c.txt"]
            ]
        },
    )
    deleted = sorted(d["Key"] for d in answer["Deleted"])
    assert deleted == ["dev/c.txt", "master/a.txt", "master/b.txt", "master/gone.txt"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [
        (f"{first.id}/c.txt", "AccessDenied")
    ]
    assert len(client.commits.list("training@master")) == 2
    assert [f.path for f in client.files.list("training@master:/")] == ["/c.txt"]
    assert [f.path for f in client.files.list("training@dev:/")] == ["/a.txt", "/b.txt"]
    quiet = both.delete_objects(
        Bucket="training", Delete={"Objects": [{"Key": "master/c.txt"}], "Quiet": True}
    )
    assert "Deleted" not in quiet and "Errors" not in quiet


def test_copy_object_copies_a_pinned_source_without_bytes(
    both: Any, client: ClientProtocol
) -> None:
    old = client.files.put("training@master:/src.txt", b"old")
    client.files.put("training@master:/src.txt", b"new")
    client.repos.create("other")
    answer = both.copy_object(
        Bucket="other", Key="master/copied.txt", CopySource=f"training/{old.id}/src.txt"
    )
    assert client.files.read("other@master:/copied.txt") == b"old"
    head = both.head_object(Bucket="other", Key="master/copied.txt")
    assert answer["CopyObjectResult"]["ETag"] == head["ETag"]
    both.copy_object(
        Bucket="training",
        Key="master/dst.txt",
        CopySource={"Bucket": "training", "Key": "master/src.txt"},
    )
    assert client.files.read("training@master:/dst.txt") == b"new"
    with pytest.raises(ClientError) as exc:
        both.copy_object(Bucket="training", Key="master/x.txt", CopySource="training/master/no.txt")
    assert _code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        both.copy_object(
            Bucket="training", Key=f"{old.id}/x.txt", CopySource="training/master/src.txt"
        )
    assert _code(exc) == "AccessDenied"
