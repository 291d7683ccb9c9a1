"""Multipart uploads through the gateway with real boto3: the transfer manager's upload
of a big file is one commit; the low-level calls answer S3's codes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from cairn.api.protocol import ClientProtocol

MIB = 1 << 20


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_a_big_upload_in_parts_is_one_commit(both: Any, client: ClientProtocol) -> None:
    data = bytes(range(256)) * (11 * MIB // 256)  # 11 MiB: three parts of 5 MiB at most
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    both.upload_fileobj(io.BytesIO(data), "training", "master/big.bin", Config=config)
    assert client.files.read("training@master:/big.bin") == data
    assert len(client.commits.list("training@master")) == 1
    got = both.get_object(Bucket="training", Key="master/big.bin")
    assert got["ContentLength"] == len(data)


def test_parts_are_checked_listed_and_aborted(s3: Any, local: ClientProtocol) -> None:
    upload = s3.create_multipart_upload(Bucket="training", Key="master/m.bin")["UploadId"]
    one = s3.upload_part(
        Bucket="training", Key="master/m.bin", UploadId=upload, PartNumber=1, Body=b"a" * 10
    )
    two = s3.upload_part(
        Bucket="training", Key="master/m.bin", UploadId=upload, PartNumber=2, Body=b"b" * 5
    )
    listed = s3.list_parts(Bucket="training", Key="master/m.bin", UploadId=upload)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 10), (2, 5)]
    parts = [{"PartNumber": 1, "ETag": one["ETag"]}, {"PartNumber": 2, "ETag": two["ETag"]}]
    with pytest.raises(ClientError) as exc:  # part 1 is under 5 MiB and not the last
        s3.complete_multipart_upload(
            Bucket="training", Key="master/m.bin", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    assert _code(exc) == "EntityTooSmall"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket="training",
            Key="master/m.bin",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": one["ETag"]}]},
        )
    assert _code(exc) == "InvalidPart"
    s3.complete_multipart_upload(
        Bucket="training",
        Key="master/m.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [parts[1]]},
    )
    assert local.files.read("training@master:/m.bin") == b"b" * 5
    with pytest.raises(ClientError) as exc:  # completed: gone
        s3.list_parts(Bucket="training", Key="master/m.bin", UploadId=upload)
    assert _code(exc) == "NoSuchUpload"
    other = s3.create_multipart_upload(Bucket="training", Key="master/n.bin")["UploadId"]
    s3.abort_multipart_upload(Bucket="training", Key="master/n.bin", UploadId=other)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(
            Bucket="training", Key="master/n.bin", UploadId=other, PartNumber=1, Body=b"x"
        )
    assert _code(exc) == "NoSuchUpload"
    assert len(local.commits.list("training@master")) == 1


def test_an_upload_to_a_commit_is_refused_at_create(s3: Any, local: ClientProtocol) -> None:
    commit = local.files.put("training@master:/a.txt", b"1")
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(Bucket="training", Key=f"{commit.id}/m.bin")
    assert _code(exc) == "AccessDenied"


def test_an_upload_begun_by_one_gateway_is_listed_and_completed_by_another(
    tmp_path: Any,
) -> None:
    """Two gateways over two clients of one store, the first stopped mid-upload (as a
    restarted or second process): the parts live in the store, not in a gateway."""
    from tests.gateway.conftest import embedded, gateway, s3_client

    first_part = b"a" * (5 * MIB)
    with embedded(tmp_path / "home") as one, gateway(one) as url:
        one.repos.create("training")
        s3 = s3_client(url)
        upload = s3.create_multipart_upload(Bucket="training", Key="master/m.bin")["UploadId"]
        tag = s3.upload_part(
            Bucket="training", Key="master/m.bin", UploadId=upload, PartNumber=1, Body=first_part
        )["ETag"]
    with embedded(tmp_path / "home") as two, gateway(two) as url:
        s3 = s3_client(url)
        listed = s3.list_multipart_uploads(Bucket="training")["Uploads"]
        assert [(u["Key"], u["UploadId"]) for u in listed] == [("master/m.bin", upload)]
        # the upload's branch is no prefix of the bucket's listing
        assert "CommonPrefixes" not in s3.list_objects_v2(Bucket="training", Delimiter="/")
        source = {"Bucket": "training", "Key": "master/src.txt"}
        s3.put_object(Bucket="training", Key="master/src.txt", Body=b"0123456789")
        copied = s3.upload_part_copy(
            Bucket="training",
            Key="master/m.bin",
            UploadId=upload,
            PartNumber=2,
            CopySource=source,
            CopySourceRange="bytes=2-5",
        )["CopyPartResult"]["ETag"]
        parts = s3.list_parts(Bucket="training", Key="master/m.bin", UploadId=upload)["Parts"]
        assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MIB), (2, 4)]
        s3.complete_multipart_upload(
            Bucket="training",
            Key="master/m.bin",
            UploadId=upload,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": tag}, {"PartNumber": 2, "ETag": copied}]
            },
        )
        assert two.files.read("training@master:/m.bin") == first_part + b"2345"
        assert s3.list_multipart_uploads(Bucket="training").get("Uploads", []) == []
        assert [b.name for b in two.branches.list("training")] == ["master"]
