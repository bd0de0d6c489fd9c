"""`produce --file` is checked by the worker's own event rules before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickagg.produce import ProduceError, check_jsonl, jsonl_records

GOOD = b'{"article_id": 1, "user_id": 2, "action": "click"}'


def write(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_good_file_counts_its_events_and_skips_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, b"", GOOD + b"\r", b'{"article_id": "7", "user_id": 8, "action": "view"}')
    assert check_jsonl(path) == 3
    assert [value for _, value in jsonl_records(path)] == [
        GOOD,
        GOOD,
        b'{"article_id": "7", "user_id": 8, "action": "view"}',
    ]


def test_invalid_lines_refuse_the_file_saying_how_many_and_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, b'{"article_id": 1.5, "user_id": 2, "action": "click"}', b"[]", GOOD)
    with pytest.raises(
        ProduceError, match=r"2 of 4 lines are not valid events \(first: line 2: invalid_article_id\)"
    ):
        check_jsonl(path)
    assert check_jsonl(path, send_invalid=True) == 4  # asked for: they become dead letters


def test_event_time_field_is_judged_as_the_worker_would(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"article_id": 1, "user_id": 2, "action": "click", "ts": "not a time"}')
    assert check_jsonl(path) == 1
    with pytest.raises(ProduceError, match=r"1 of 1 lines .*line 1: "):
        check_jsonl(path, time_field="ts")


@pytest.mark.parametrize("kind", ["missing", "directory", "empty"])
def test_no_events_to_send_is_one_line(tmp_path: Path, kind: str) -> None:
    path = {"missing": tmp_path / "nope.jsonl", "directory": tmp_path, "empty": write(tmp_path, b"")}[kind]
    expected = {"missing": "no such file", "directory": "is a directory", "empty": "holds no events"}[kind]
    with pytest.raises(ProduceError, match=expected):
        check_jsonl(path)
