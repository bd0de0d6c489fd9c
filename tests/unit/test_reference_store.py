"""ReferenceStore with local files: initial load, reload on change, keeping the last good copy."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from clickagg.reference_data import (
    EmptySource,
    LocalFileSource,
    ReferenceDataError,
    ReferenceStore,
    S3Source,
    UserTable,
    open_source,
)
from clickagg.reference_data.sources import parse_s3_url

GOOD_V1 = b"101,female,1\n102,male,2\n"
GOOD_V2 = b"user_id,gender,segment_id\n101,male,7\n103,female,3\n"
MALFORMED = b"101,female,1\nthis is not,a csv\nneither,is,this,one\n102,male,2\n"


def write(path: Path, data: bytes, *, mtime_ns: int | None = None) -> None:
    """Rewrite in place and force a distinct mtime (file systems may have coarse timestamps)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(data)
    stamp = mtime_ns if mtime_ns is not None else max(before + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def ref_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    write(path, GOOD_V1)
    return path


def test_initial_load_and_lookup(ref_file: Path) -> None:
    store = ReferenceStore(str(ref_file))
    table = store.load_initial()
    assert table is store.table
    assert store.lookup(101) == ("female", 1)
    assert store.lookup(102) == ("male", 2)
    assert store.lookup(999) == (None, None)
    assert store.users == 2
    assert store.version == LocalFileSource(ref_file).version()
    assert store.reloads_ok == 0 and store.reloads_failed == 0 and store.last_error is None
    assert store.stats()["users"] == 2


def test_reload_when_the_file_changes(ref_file: Path) -> None:
    swapped: list[UserTable] = []
    store = ReferenceStore(ref_file, on_swap=swapped.append)
    store.load_initial()
    old_table, old_version = store.table, store.version
    assert swapped == [old_table]

    assert store.maybe_reload() is False  # unchanged: nothing to do
    assert store.table is old_table

    write(ref_file, GOOD_V2)
    assert store.maybe_reload() is True
    assert store.version != old_version
    assert store.lookup(101) == ("male", 7)
    assert store.lookup(102) == (None, None)
    assert store.lookup(103) == ("female", 3)
    assert store.users == 2 and store.reloads_ok == 1
    assert swapped[-1] is store.table and len(swapped) == 2
    # the old table is untouched: a reader holding it for its batch sees one consistent version
    assert old_table.lookup(101) == ("female", 1) and old_table.lookup(103) == (None, None)

    assert store.maybe_reload() is False


def test_same_size_rewrite_is_detected_by_mtime(ref_file: Path) -> None:
    store = ReferenceStore(ref_file)
    store.load_initial()
    write(ref_file, GOOD_V1.replace(b"female,1", b"female,9"))  # same length
    assert store.maybe_reload() is True
    assert store.lookup(101) == ("female", 9)


def test_replacement_by_rename_keeping_an_old_mtime_is_detected(ref_file: Path, tmp_path: Path) -> None:
    store = ReferenceStore(ref_file)
    store.load_initial()
    old_mtime = ref_file.stat().st_mtime_ns
    new = tmp_path / "users.csv.tmp"
    new.write_bytes(GOOD_V1.replace(b"male,2", b"male,5"))  # same size
    os.utime(new, ns=(old_mtime, old_mtime))  # as `cp -p` / `mv` of a backup would
    os.replace(new, ref_file)
    assert store.maybe_reload() is True
    assert store.lookup(102) == ("male", 5)


def test_malformed_replacement_keeps_the_last_good_copy(ref_file: Path) -> None:
    store = ReferenceStore(ref_file)
    good = store.load_initial()
    good_version = store.version

    write(ref_file, MALFORMED)
    assert store.maybe_reload() is False
    assert store.table is good and store.version == good_version
    assert store.lookup(101) == ("female", 1)
    assert store.reloads_failed == 1 and store.reloads_ok == 0
    assert store.last_error is not None
    assert "refused" in store.last_error and "2 of 4 rows" in store.last_error
    assert [(b.line, b.reason) for b in store.last_bad_rows] == [
        (2, "expected 3 fields (user_id,gender,segment_id), got 2"),
        (3, "expected 3 fields (user_id,gender,segment_id), got 4"),
    ]
    assert store.last_bad_count == 2 and store.last_total_rows == 4

    # the refused version is not re-read on every poll
    assert store.maybe_reload() is False
    assert store.reloads_failed == 1

    write(ref_file, GOOD_V2)
    assert store.maybe_reload() is True
    assert store.lookup(103) == ("female", 3)
    assert store.last_error is None and store.last_bad_rows == [] and store.reloads_ok == 1


def test_a_few_bad_rows_are_tolerated_and_reported(ref_file: Path) -> None:
    lines = [f"{i},female,{i % 5}" for i in range(1, 200)] + ["oops,1,2"]
    write(ref_file, "\n".join(lines).encode())
    store = ReferenceStore(ref_file, max_bad_ratio=0.01)
    store.load_initial()
    assert store.users == 199
    assert store.last_bad_count == 1
    assert store.last_bad_rows[0].line == 200


def test_configurable_threshold(ref_file: Path) -> None:
    write(ref_file, MALFORMED)
    assert ReferenceStore(ref_file, max_bad_ratio=0.5).load_initial().lookup(102) == ("male", 2)
    with pytest.raises(ReferenceDataError, match="refused"):
        ReferenceStore(ref_file, max_bad_ratio=0.4).load_initial()


def test_initial_load_fails_loudly(tmp_path: Path) -> None:
    store = ReferenceStore(tmp_path / "missing.csv")
    with pytest.raises(ReferenceDataError, match="not found"):
        store.load_initial()
    assert store.last_error is not None and "not found" in store.last_error

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"garbage\nmore garbage\n")
    with pytest.raises(ReferenceDataError, match="2 of 2 rows"):
        ReferenceStore(bad).load_initial()

    with pytest.raises(ReferenceDataError, match="directory"):
        ReferenceStore(tmp_path).load_initial()


def test_file_deleted_then_restored(ref_file: Path) -> None:
    store = ReferenceStore(ref_file)
    store.load_initial()
    content = ref_file.read_bytes()
    ref_file.unlink()
    assert store.maybe_reload() is False
    assert store.maybe_reload() is False
    assert store.reloads_failed == 2  # read errors are retried (and counted) on every poll
    assert store.last_error is not None and "not found" in store.last_error
    assert store.lookup(101) == ("female", 1)

    write(ref_file, content + b"104,other,4\n")
    assert store.maybe_reload() is True
    assert store.lookup(104) == ("other", 4) and store.last_error is None


def test_empty_file_is_refused_unless_allowed(ref_file: Path, tmp_path: Path) -> None:
    store = ReferenceStore(ref_file)
    store.load_initial()
    write(ref_file, b"")
    assert store.maybe_reload() is False
    assert store.users == 2 and store.last_error is not None and "no valid rows" in store.last_error

    allowing = ReferenceStore(ref_file, allow_empty=True)
    assert len(allowing.load_initial()) == 0


@pytest.mark.parametrize("location", [None, "", "   "])
def test_no_location_means_an_empty_table(location: str | None) -> None:
    store = ReferenceStore(location)
    assert isinstance(store.source, EmptySource)
    table = store.load_initial()
    assert len(table) == 0 and store.users == 0 and store.version == "empty"
    assert store.lookup(101) == (None, None)
    assert store.maybe_reload() is False
    assert store.reloads_failed == 0


def test_file_changing_while_being_read_is_an_error(ref_file: Path) -> None:
    write(ref_file, GOOD_V1 * 50)
    source = LocalFileSource(ref_file, chunk_bytes=64)
    with source.open() as snapshot:
        chunks = iter(snapshot)
        next(chunks)
        with open(ref_file, "ab") as f:
            f.write(b"105,male,5\n")
        with pytest.raises(ReferenceDataError, match="changed while being read"):
            list(chunks)


def test_sources_and_locations(tmp_path: Path) -> None:
    assert isinstance(open_source(str(tmp_path / "a.csv")), LocalFileSource)
    local = open_source(f"file://{tmp_path}/a%20b.csv")
    assert isinstance(local, LocalFileSource) and local.path == f"{tmp_path}/a b.csv"
    s3 = open_source("s3://bucket/dir/users.csv")
    assert isinstance(s3, S3Source) and (s3.bucket, s3.key) == ("bucket", "dir/users.csv")
    assert parse_s3_url("S3://b/k?x#y") == ("b", "k?x#y")
    for bad in ("s3://bucket", "s3://bucket/", "s3:///key", "s3://bucket/dir/"):
        with pytest.raises(ReferenceDataError):
            parse_s3_url(bad)
    with pytest.raises(ReferenceDataError, match="unsupported"):
        open_source("http://example.com/users.csv")
    path = tmp_path / "x.csv"
    path.write_bytes(GOOD_V1)
    assert LocalFileSource(path).read_bytes()[1] == GOOD_V1


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll a condition for up to 10 s (the store exposes counters, not events)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 10 s")


async def test_poll_forever_reloads_in_the_background(ref_file: Path) -> None:
    swap_threads: list[int] = []
    store = ReferenceStore(ref_file, on_swap=lambda table: swap_threads.append(threading.get_ident()))
    store.load_initial()
    task = asyncio.create_task(store.poll_forever(0.02))
    try:
        write(ref_file, MALFORMED)
        await wait_for(lambda: store.reloads_failed == 1)
        assert store.lookup(101) == ("female", 1)

        write(ref_file, GOOD_V2)
        await wait_for(lambda: store.reloads_ok == 1)
        assert store.lookup(103) == ("female", 3)
        # the swap callback runs on the event loop thread, not in the parsing thread
        assert swap_threads[-1] == threading.get_ident()
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_poll_forever_rejects_a_bad_interval(ref_file: Path) -> None:
    with pytest.raises(ValueError):
        await ReferenceStore(ref_file).poll_forever(0)


def test_on_swap_errors_do_not_break_reloads(ref_file: Path) -> None:
    def explode(table: UserTable) -> None:
        raise RuntimeError("boom")

    store = ReferenceStore(ref_file, on_swap=explode)
    store.load_initial()
    write(ref_file, GOOD_V2)
    assert store.maybe_reload() is True
    assert store.lookup(103) == ("female", 3)
