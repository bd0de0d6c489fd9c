"""Reference data from S3, against moto's standalone S3 server over real HTTP on 127.0.0.1.

Needs no Kafka or Elasticsearch (so it is not marked ``integration``): only moto[server], a dev
dependency. Covers: load through S3Source, reload when the ETag changes, refusing a malformed
replacement while keeping the last good copy, clear errors for a missing key or bucket.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from clickagg.reference_data import ReferenceDataError, ReferenceStore, S3Source, open_source

GOOD_V1 = b"101,female,1\n102,male,2\n"
GOOD_V2 = b"101,male,7\n103,female,3\n"
MALFORMED = b"101,female,1\nnot,a,valid,row\nx,y,z\n102,male,2\n"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client for the moto server, with throwaway credentials (moto accepts any)."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return boto3.session.Session().client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"refdata-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def put(s3: Any, bucket: str, key: str, body: bytes) -> str:
    return str(s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]).strip('"')


def test_load_reload_by_etag_and_refuse_malformed(s3: Any, bucket: str, s3_endpoint: str) -> None:
    etag1 = put(s3, bucket, "ref/users.csv", GOOD_V1)
    source = S3Source(f"s3://{bucket}/ref/users.csv", endpoint_url=s3_endpoint)
    store = ReferenceStore(source)

    store.load_initial()
    assert store.version == etag1
    assert store.lookup(101) == ("female", 1)
    assert store.lookup(102) == ("male", 2)
    assert store.lookup(103) == (None, None)
    assert store.maybe_reload() is False  # same ETag: nothing downloaded

    etag2 = put(s3, bucket, "ref/users.csv", GOOD_V2)
    assert etag2 != etag1
    assert store.maybe_reload() is True
    assert store.version == etag2
    assert store.lookup(101) == ("male", 7)
    assert store.lookup(102) == (None, None)
    assert store.lookup(103) == ("female", 3)
    assert store.reloads_ok == 1

    good_table = store.table
    put(s3, bucket, "ref/users.csv", MALFORMED)
    assert store.maybe_reload() is False
    assert store.table is good_table and store.version == etag2
    assert store.lookup(101) == ("male", 7)
    assert store.reloads_failed == 1
    assert store.last_error is not None and "refused" in store.last_error
    assert [b.line for b in store.last_bad_rows] == [2, 3]
    assert store.maybe_reload() is False and store.reloads_failed == 1  # not re-downloaded

    etag4 = put(s3, bucket, "ref/users.csv", GOOD_V1 + b"104,other,\n")
    assert store.maybe_reload() is True
    assert store.version == etag4 and store.lookup(104) == ("other", None)
    assert store.last_error is None


def test_large_object_streams_in_chunks(s3: Any, bucket: str, s3_endpoint: str) -> None:
    rows = b"".join(b"%d,%s,%d\n" % (i * 3, b"female" if i % 2 else b"male", i % 50) for i in range(100_000))
    etag = put(s3, bucket, "big.csv", b"user_id,gender,segment_id\n" + rows)
    source = S3Source(f"s3://{bucket}/big.csv", endpoint_url=s3_endpoint, chunk_bytes=64 * 1024)
    with source.open() as snapshot:
        assert snapshot.version == etag
        chunks = list(snapshot)
    assert len(chunks) > 10
    store = ReferenceStore(source)
    store.load_initial()
    assert store.users == 100_000
    assert store.lookup(0) == ("male", 0)
    assert store.lookup(3 * 99_999) == ("female", 99_999 % 50)
    assert store.lookup(1) == (None, None)


def test_endpoint_from_environment(
    s3: Any, bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    etag = put(s3, bucket, "users.csv", GOOD_V1)
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_endpoint)
    source = open_source(f"s3://{bucket}/users.csv")
    assert isinstance(source, S3Source) and source.endpoint_url == s3_endpoint
    assert source.version() == etag
    assert source.read_bytes() == (etag, GOOD_V1)


def test_missing_key_and_bucket_are_clear_errors(s3: Any, bucket: str, s3_endpoint: str) -> None:
    missing_key = S3Source(f"s3://{bucket}/nope.csv", endpoint_url=s3_endpoint)
    with pytest.raises(ReferenceDataError, match="not found"):
        missing_key.version()
    with pytest.raises(ReferenceDataError, match="not found"):
        ReferenceStore(missing_key).load_initial()

    missing_bucket = S3Source("s3://no-such-bucket-refdata/users.csv", endpoint_url=s3_endpoint)
    with pytest.raises(ReferenceDataError, match="no-such-bucket-refdata"):
        missing_bucket.version()
    with pytest.raises(ReferenceDataError, match="does not exist"):
        missing_bucket.open()


def test_object_deleted_after_load_keeps_the_table(s3: Any, bucket: str, s3_endpoint: str) -> None:
    put(s3, bucket, "users.csv", GOOD_V1)
    store = ReferenceStore(S3Source(f"s3://{bucket}/users.csv", endpoint_url=s3_endpoint))
    store.load_initial()
    s3.delete_object(Bucket=bucket, Key="users.csv")
    assert store.maybe_reload() is False
    assert store.reloads_failed == 1 and store.last_error is not None and "not found" in store.last_error
    assert store.lookup(102) == ("male", 2)


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll a condition for up to 10 s (the store exposes counters, not events)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 10 s")


async def test_poll_forever_picks_up_a_new_object(s3: Any, bucket: str, s3_endpoint: str) -> None:
    put(s3, bucket, "users.csv", GOOD_V1)
    store = ReferenceStore(S3Source(f"s3://{bucket}/users.csv", endpoint_url=s3_endpoint))
    store.load_initial()
    task = asyncio.create_task(store.poll_forever(0.05))
    try:
        await asyncio.to_thread(put, s3, bucket, "users.csv", GOOD_V2)
        await wait_for(lambda: store.reloads_ok == 1)
        assert store.lookup(103) == ("female", 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
