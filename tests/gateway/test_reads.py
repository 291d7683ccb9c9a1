"""Reads through the gateway with real boto3: buckets, listings, GetObject with ranges
and conditions, HeadObject, and S3's error codes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from cairn.api.protocol import ClientProtocol


def _keys(page: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in page.get("Contents", [])]


def _prefixes(page: dict[str, Any]) -> list[str]:
    return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_buckets_are_repos_and_head_bucket_tells_which_exist(both: Any) -> None:
    assert [b["Name"] for b in both.list_buckets()["Buckets"]] == ["training"]
    both.head_bucket(Bucket="training")
    with pytest.raises(ClientError) as exc:
        both.head_bucket(Bucket="nope")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_get_reads_a_branch_and_an_old_commit_with_ranges(
    both: Any, client: ClientProtocol
) -> None:
    data = bytes(range(256)) * 40
    old = client.files.put("training@master:/d/blob.bin", data)
    client.files.put("training@master:/d/blob.bin", b"new")
    assert both.get_object(Bucket="training", Key="master/d/blob.bin")["Body"].read() == b"new"
    key = f"{old.id}/d/blob.bin"
    whole = both.get_object(Bucket="training", Key=key)
    assert whole["Body"].read() == data
    assert whole["ContentLength"] == len(data)
    part = both.get_object(Bucket="training", Key=key, Range="bytes=100-299")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 100-299/{len(data)}"
    assert part["Body"].read() == data[100:300]
    tail = both.get_object(Bucket="training", Key=key, Range="bytes=-10")
    assert tail["Body"].read() == data[-10:]
    rest = both.get_object(Bucket="training", Key=key, Range=f"bytes={len(data) - 5}-")
    assert rest["Body"].read() == data[-5:]
    past = both.get_object(Bucket="training", Key=key, Range="bytes=10-999999")
    assert past["Body"].read() == data[10:]
    with pytest.raises(ClientError) as exc:
        both.get_object(Bucket="training", Key=key, Range=f"bytes={len(data)}-")
    assert _code(exc) == "InvalidRange"


def test_missing_keys_and_buckets_raise_s3_codes(both: Any, client: ClientProtocol) -> None:
    client.files.put("training@master:/a/b.txt", b"x")
    for key in ["master/nope.txt", "master/a", "nobranch/a/b.txt", "master", "master/"]:
        with pytest.raises(ClientError) as exc:
            both.get_object(Bucket="training", Key=key)
        assert _code(exc) == "NoSuchKey", key
    with pytest.raises(both.exceptions.NoSuchKey):
        both.get_object(Bucket="training", Key="master/nope.txt")
    with pytest.raises(ClientError) as exc:
        both.get_object(Bucket="nope", Key="master/a/b.txt")
    assert _code(exc) == "NoSuchBucket"
    with pytest.raises(ClientError) as exc:
        both.list_objects_v2(Bucket="nope")
    assert _code(exc) == "NoSuchBucket"
    with pytest.raises(ClientError) as exc:
        both.head_object(Bucket="training", Key="master/nope.txt")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_etags_are_stable_per_content(s3: Any, local: ClientProtocol) -> None:
    local.files.put("training@master:/", {"one.txt": b"same", "two.txt": b"same", "3.txt": b"o"})
    local.branches.create("training@dev", "master")
    local.files.put("training@dev:/one.txt", b"changed")
    etag = s3.head_object(Bucket="training", Key="master/one.txt")["ETag"]
    assert s3.head_object(Bucket="training", Key="master/two.txt")["ETag"] == etag
    assert s3.get_object(Bucket="training", Key="dev/two.txt")["ETag"] == etag
    assert s3.head_object(Bucket="training", Key="dev/one.txt")["ETag"] != etag
    assert s3.head_object(Bucket="training", Key="master/3.txt")["ETag"] != etag
    listed = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="training")["Contents"]}
    assert listed["master/one.txt"] == listed["master/two.txt"] == etag


def test_head_object_gives_size_time_and_type(s3: Any, local: ClientProtocol) -> None:
    commit = local.files.put("training@master:/t/iris.csv", b"a,b\n1,2\n")
    head = s3.head_object(Bucket="training", Key="master/t/iris.csv")
    assert head["ContentLength"] == 8
    assert head["ContentType"] == "text/csv"
    assert head["AcceptRanges"] == "bytes"
    assert int(head["LastModified"].timestamp()) == int(commit.finished or commit.created)


def test_conditional_gets(s3: Any, local: ClientProtocol) -> None:
    local.files.put("training@master:/a.txt", b"abc")
    head = s3.head_object(Bucket="training", Key="master/a.txt")
    etag, when = head["ETag"], head["LastModified"]
    assert s3.get_object(Bucket="training", Key="master/a.txt", IfMatch=etag)["Body"].read()
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="training", Key="master/a.txt", IfMatch='"0000"')
    assert _code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="training", Key="master/a.txt", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="training", Key="master/a.txt", IfModifiedSince=when)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(
            Bucket="training",
            Key="master/a.txt",
            IfUnmodifiedSince=when.replace(year=when.year - 1),
        )
    assert _code(exc) == "PreconditionFailed"


@pytest.fixture
def tree(s3: Any, local: ClientProtocol) -> Any:
    local.files.put(
        "training@master:/",
        {
            "a.txt": b"1",
            "b/c.txt": b"22",
            "b/d/e.txt": b"333",
            "b/da.txt": b"4444",
            "z.txt": b"5",
        },
    )
    local.branches.create("training@dev", "master")
    local.branches.create("training@empty")  # no commit: nothing to list
    return s3


def test_list_with_a_delimiter_walks_branches_then_folders(tree: Any) -> None:
    top = tree.list_objects_v2(Bucket="training", Delimiter="/")
    assert _keys(top) == [] and _prefixes(top) == ["dev/", "master/"]
    root = tree.list_objects_v2(Bucket="training", Prefix="master/", Delimiter="/")
    assert _keys(root) == ["master/a.txt", "master/z.txt"]
    assert _prefixes(root) == ["master/b/"]
    assert root["KeyCount"] == 3
    sub = tree.list_objects_v2(Bucket="training", Prefix="master/b/d", Delimiter="/")
    assert _keys(sub) == ["master/b/da.txt"] and _prefixes(sub) == ["master/b/d/"]
    branches = tree.list_objects_v2(Bucket="training", Prefix="ma", Delimiter="/")
    assert _prefixes(branches) == ["master/"]


def test_list_without_a_delimiter_is_every_key_below_the_prefix(tree: Any) -> None:
    below = tree.list_objects_v2(Bucket="training", Prefix="master/b/d")
    assert _keys(below) == ["master/b/d/e.txt", "master/b/da.txt"]
    sizes = {o["Key"]: o["Size"] for o in below["Contents"]}
    assert sizes == {"master/b/d/e.txt": 3, "master/b/da.txt": 4}
    everything = _keys(tree.list_objects_v2(Bucket="training"))
    assert len(everything) == 10 and everything == sorted(everything)
    assert everything[0] == "dev/a.txt"
    other = tree.list_objects_v2(Bucket="training", Prefix="master/b", Delimiter=".")
    assert _prefixes(other) == ["master/b/c.", "master/b/d/e.", "master/b/da."]
    assert tree.list_objects_v2(Bucket="training", Prefix="nobranch/")["KeyCount"] == 0


def test_list_pages_with_continuation_tokens_and_start_after(tree: Any) -> None:
    pages = tree.get_paginator("list_objects_v2").paginate(
        Bucket="training", Prefix="master/", PaginationConfig={"PageSize": 2}
    )
    seen = [_keys(p) for p in pages]
    assert seen == [
        ["master/a.txt", "master/b/c.txt"],
        ["master/b/d/e.txt", "master/b/da.txt"],
        ["master/z.txt"],
    ]
    first = tree.list_objects_v2(Bucket="training", Prefix="master/", Delimiter="/", MaxKeys=2)
    assert first["IsTruncated"] and _keys(first) == ["master/a.txt"]
    assert _prefixes(first) == ["master/b/"]
    second = tree.list_objects_v2(
        Bucket="training",
        Prefix="master/",
        Delimiter="/",
        ContinuationToken=first["NextContinuationToken"],
    )
    assert not second["IsTruncated"] and _keys(second) == ["master/z.txt"]
    after = tree.list_objects_v2(Bucket="training", Prefix="master/", StartAfter="master/b/da.txt")
    assert _keys(after) == ["master/z.txt"]
    with pytest.raises(ClientError) as exc:
        tree.list_objects_v2(Bucket="training", ContinuationToken="%%%")
    assert _code(exc) == "InvalidArgument"


def test_list_objects_v1_pages_with_markers(tree: Any) -> None:
    first = tree.list_objects(Bucket="training", Prefix="master/", MaxKeys=3)
    assert first["IsTruncated"] and len(first["Contents"]) == 3
    rest = tree.list_objects(Bucket="training", Prefix="master/", Marker=_keys(first)[-1])
    assert _keys(first) + _keys(rest) == [
        "master/a.txt",
        "master/b/c.txt",
        "master/b/d/e.txt",
        "master/b/da.txt",
        "master/z.txt",
    ]


def test_keys_with_spaces_and_unicode_list_and_read(s3: Any, local: ClientProtocol) -> None:
    local.files.put("training@master:/dir with space/é+x.txt", b"u")
    listed = _keys(s3.list_objects_v2(Bucket="training", Prefix="master/dir with space/"))
    assert listed == ["master/dir with space/é+x.txt"]
    assert s3.get_object(Bucket="training", Key=listed[0])["Body"].read() == b"u"


def test_a_large_object_streams_whole_and_in_ranges_across_pieces(
    s3: Any, local: ClientProtocol
) -> None:
    data = bytes(range(251)) * (40_000)  # about 10 MB: three of the gateway's 4 MiB pieces
    local.files.put("training@master:/big.bin", data)
    assert s3.get_object(Bucket="training", Key="master/big.bin")["Body"].read() == data
    lo, hi = (4 << 20) - 5, (8 << 20) + 5  # crosses two piece boundaries
    part = s3.get_object(Bucket="training", Key="master/big.bin", Range=f"bytes={lo}-{hi}")
    assert part["Body"].read() == data[lo : hi + 1]


def test_pyarrow_reads_a_partitioned_dataset_and_writes_and_reads_back_through_the_gateway(
    local: ClientProtocol,
) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from tests.gateway.conftest import gateway

    table = pa.table({"x": list(range(100))})
    parts = {}
    for name in ["a", "b"]:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        parts[f"iris/part={name}/0.parquet"] = sink.getvalue().to_pybytes()
    local.files.put("training@master:/", parts)
    with gateway(local) as url:
        fs = pafs.S3FileSystem(
            access_key="any",
            secret_key="any",
            endpoint_override=url,
            scheme="http",
            region="us-east-1",
        )
        got = ds.dataset("training/master/iris", filesystem=fs, format="parquet").to_table()
        assert got.num_rows == 200
        assert fs.get_file_info("training/master/iris").type == pafs.FileType.Directory
        with fs.open_output_stream("training/master/written.txt") as out:  # multipart
            out.write(b"from pyarrow")
        pq.write_table(table, "training/master/out/t.parquet", filesystem=fs)
        assert pq.read_table("training/master/out/t.parquet", filesystem=fs).equals(table)
        with fs.open_output_stream("training/master/out/t.csv") as out:
            pacsv.write_csv(table, out)
        with fs.open_input_file("training/master/out/t.csv") as stream:
            assert pacsv.read_csv(stream).equals(table)
    assert local.files.read("training@master:/written.txt") == b"from pyarrow"


def test_virtual_host_style_requests_name_the_bucket_in_the_host(local: ClientProtocol) -> None:
    import httpx
    from tests.gateway.conftest import gateway

    local.files.put("training@master:/a.csv", b"x,y\n")
    with gateway(local) as url:
        port = url.rsplit(":", 1)[1]
        host = {"Host": f"training.localhost:{port}"}
        assert httpx.get(f"{url}/master/a.csv", headers=host).content == b"x,y\n"
        listed = httpx.get(f"{url}/?list-type=2&prefix=master/", headers=host)
        assert b"<Key>master/a.csv</Key>" in listed.content
        assert httpx.put(f"{url}/master/b.csv", content=b"b\n", headers=host).is_success
        missing = httpx.get(f"{url}/master/a.csv", headers={"Host": f"nope.localhost:{port}"})
        assert missing.status_code == 404 and b"<Code>NoSuchBucket</Code>" in missing.content
        # another name is path-style: the first segment is the bucket
        assert httpx.get(f"{url}/training/master/a.csv").content == b"x,y\n"
    assert local.files.read("training@master:/b.csv") == b"b\n"


def test_pachyderm_branch_dot_repo_buckets_name_a_branch(both: Any, client: ClientProtocol) -> None:
    """``BRANCH.REPO`` buckets (Pachyderm's names): keys are paths of that branch, listed,
    read, written, copied and deleted without the ``BRANCH/`` of the lakeFS layout."""
    client.files.put("training@master:/data/a.csv", b"a\n")
    client.files.put("training@master:/data/b.csv", b"b\n")
    client.repos.create("v1.2")  # a repo named with a dot is that repo, not a branch
    client.files.put("v1.2@master:/x.txt", b"x")
    listed = both.list_objects_v2(Bucket="master.training", Prefix="data/", Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == ["data/a.csv", "data/b.csv"]
    top = both.list_objects_v2(Bucket="master.training", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["data/"]
    pages = both.get_paginator("list_objects").paginate(
        Bucket="master.training", PaginationConfig={"PageSize": 1}
    )
    assert [o["Key"] for page in pages for o in page["Contents"]] == ["data/a.csv", "data/b.csv"]
    assert both.get_object(Bucket="master.training", Key="data/a.csv")["Body"].read() == b"a\n"
    both.put_object(Bucket="dev.training", Key="new.txt", Body=b"n")  # makes branch dev
    assert client.files.read("training@dev:/new.txt") == b"n"
    both.copy_object(
        Bucket="master.training",
        Key="copied.csv",
        CopySource={"Bucket": "master.training", "Key": "data/b.csv"},
    )
    assert client.files.read("training@master:/copied.csv") == b"b\n"
    gone = both.delete_objects(
        Bucket="master.training", Delete={"Objects": [{"Key": "data/a.csv"}]}
    )
    assert [d["Key"] for d in gone["Deleted"]] == ["data/a.csv"]
    assert [o["Key"] for o in both.list_objects_v2(Bucket="v1.2")["Contents"]] == ["master/x.txt"]
    started = both.create_multipart_upload(Bucket="master.training", Key="m.bin")
    assert started["Key"] == "m.bin"
    uploads = both.list_multipart_uploads(Bucket="master.training")["Uploads"]
    assert [u["Key"] for u in uploads] == ["m.bin"]
    named = {"Bucket": "master.training", "Key": "m.bin", "UploadId": started["UploadId"]}
    tag = both.upload_part(PartNumber=1, Body=b"m", **named)["ETag"]
    done = both.complete_multipart_upload(
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": tag}]}, **named
    )
    assert done["Key"] == "m.bin"
    assert client.files.read("training@master:/m.bin") == b"m"
    with pytest.raises(ClientError) as exc:
        both.get_object(Bucket="master.nosuchrepo", Key="a.csv")
    assert exc.value.response["Error"]["Code"] == "NoSuchBucket"
