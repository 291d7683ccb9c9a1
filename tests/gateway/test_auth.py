"""SigV4 with S3 keys cairn issues: with auth active on the store, boto3 signing with a
key acts with its user's roles; unsigned, wrongly signed or unknown-key requests get S3's
errors. With auth off any key is accepted (the other gateway tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.gateway.conftest import gateway

from cairn.api.protocol import ClientProtocol
from cairn.catalog.auth import AuthStore


def _s3(url: str, key: str, secret: str, **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def served(local: ClientProtocol) -> Iterator[tuple[str, AuthStore]]:
    store = AuthStore(local.data.catalog)  # type: ignore[attr-defined]
    local.files.put("training@master:/a.csv", b"x,y\n")
    with gateway(local, keys=store) as url:
        yield url, store


def test_any_key_is_accepted_until_auth_is_activated(served: tuple[str, AuthStore]) -> None:
    url, store = served
    assert _s3(url, "whoever", "whatever").get_object(Bucket="training", Key="master/a.csv")
    unsigned = _s3(url, "x", "x", signature_version=UNSIGNED)
    assert unsigned.get_object(Bucket="training", Key="master/a.csv")["Body"].read()
    store.activate()
    with pytest.raises(ClientError) as exc:
        unsigned.get_object(Bucket="training", Key="master/a.csv")
    assert _code(exc) == "AccessDenied"


def test_keys_sign_as_their_user_with_their_roles(
    served: tuple[str, AuthStore], local: ClientProtocol, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url, store = served
    store.activate()
    local.repos.create("private")
    store.set_role("repo", "training", "ann", "repoReader")
    admin_key, admin_secret = store.create_s3_key("root")
    key, secret = store.create_s3_key("ann")
    admin, ann = _s3(url, admin_key.id, admin_secret), _s3(url, key.id, secret)

    admin.put_object(Bucket="training", Key="master/b.csv", Body=b"by root\n")
    assert ann.get_object(Bucket="training", Key="master/b.csv")["Body"].read() == b"by root\n"
    assert [b["Name"] for b in ann.list_buckets()["Buckets"]] == ["training"]
    assert {b["Name"] for b in admin.list_buckets()["Buckets"]} == {"training", "private"}
    with pytest.raises(ClientError) as exc:
        ann.put_object(Bucket="training", Key="master/c.csv", Body=b"no\n")
    assert _code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        ann.get_object(Bucket="private", Key="master/c.csv")
    assert _code(exc) in ("AccessDenied", "NoSuchBucket")
    with pytest.raises(ClientError) as exc:  # before any part is spooled
        ann.create_multipart_upload(Bucket="training", Key="master/big.bin")
    assert _code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        ann.delete_object(Bucket="training", Key="master/a.csv")
    assert _code(exc) == "AccessDenied"
    store.set_role("repo", "training", "ann", "repoWriter")
    ann.put_object(Bucket="training", Key="master/c.csv", Body=b"yes\n")
    assert local.files.read("training@master:/c.csv") == b"yes\n"
    puts = [e for e in local.events.list() if e.kind == "data.files.put"]  # type: ignore[attr-defined]
    assert [e.actor for e in puts][-2:] == ["root", "ann"]  # as a server's routes record
    # an upload's parts are kept in the store as ann's writes: a writer's key completes it
    upload = ann.create_multipart_upload(Bucket="training", Key="master/m.bin")["UploadId"]
    named = {"Bucket": "training", "Key": "master/m.bin", "UploadId": upload}
    tag = ann.upload_part(PartNumber=1, Body=b"part", **named)["ETag"]
    assert [u["UploadId"] for u in ann.list_multipart_uploads(Bucket="training")["Uploads"]] == [
        upload
    ]
    ann.complete_multipart_upload(
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": tag}]}, **named
    )
    assert local.files.read("training@master:/m.bin") == b"part"

    with pytest.raises(ClientError) as exc:
        _s3(url, key.id, secret + "x").get_object(Bucket="training", Key="master/a.csv")
    assert _code(exc) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as exc:
        _s3(url, "CAIRN000000000000000", secret).get_object(Bucket="training", Key="master/a.csv")
    assert _code(exc) == "InvalidAccessKeyId"
    assert secret not in caplog.text and admin_secret not in caplog.text


def test_presigned_urls_are_checked(served: tuple[str, AuthStore]) -> None:
    url, store = served
    store.activate()
    key, secret = store.create_s3_key("root")
    signer = _s3(url, key.id, secret, signature_version="s3v4")
    signed = signer.generate_presigned_url(
        "get_object", Params={"Bucket": "training", "Key": "master/a.csv"}, ExpiresIn=60
    )
    assert httpx.get(signed).content == b"x,y\n"
    forged = signed.replace("master/a.csv", "master/b.csv")
    answer = httpx.get(forged)
    assert answer.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in answer.content
    stale = signed.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    assert httpx.get(stale).status_code == 403
    v2 = _s3(url, key.id, secret, signature_version="s3").generate_presigned_url(
        "get_object", Params={"Bucket": "training", "Key": "master/a.csv"}
    )
    assert b"<Code>AccessDenied</Code>" in httpx.get(v2).content
