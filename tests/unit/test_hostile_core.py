"""Hostile inputs for the pure core: clock skew, extreme timestamps, oversized envelopes and dead letters."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from clickagg.core import dead_letters, envelope
from clickagg.core.batch import LAST_TIME_MS, aggregate_batch
from clickagg.core.watermarks import NO_WATERMARK, SourceClock
from clickagg.tables.window_state import WindowState

NOW = 1_764_000_000_000  # a wall clock, injected
MIN = 60_000


@dataclass
class Rec:
    value: bytes
    timestamp: int
    offset: int = 0


def ev(article: int = 1) -> bytes:
    return orjson.dumps({"article_id": article, "user_id": 1, "action": "impression"})


def no_one(uid: int) -> tuple[str | None, int | None]:
    return (None, None)


def run(recs: list[Rec], clock: SourceClock, now: int = NOW) -> list[str]:
    _, rejected = aggregate_batch(recs, no_one, clock, MIN, 5_000, None, now, 300_000)
    return [reason for _, reason in rejected]


def test_one_fast_clock_does_not_make_present_events_late() -> None:
    clock = SourceClock()
    present = [Rec(ev(), NOW - 2_000 + i) for i in range(100)]
    assert run([Rec(ev(), NOW + 90_000), *present], clock) == []
    assert clock.watermark == NOW  # capped at the wall clock, not NOW + 90 s
    # ... and the next batch, a second later, is not late either.
    assert run([Rec(ev(), NOW - 1_000)], clock, now=NOW + 1_000) == []


def test_far_future_and_out_of_range_timestamps_are_dead_letters() -> None:
    clock = SourceClock()
    year_2100 = 4_102_444_800_000
    recs = [Rec(ev(), NOW + 600_000), Rec(ev(), year_2100), Rec(ev(), LAST_TIME_MS + 1), Rec(ev(), 2**63 - 1)]
    assert run(recs, clock) == ["future", "future", "bad_timestamp", "bad_timestamp"]
    assert clock.watermark == NO_WATERMARK  # nothing moved it
    assert run([Rec(ev(), NOW - 1)], clock) == []  # every later event still counts


def test_a_future_event_counts_in_its_own_window_which_waits_for_the_wall_clock() -> None:
    clock = SourceClock()
    acc, rejected = aggregate_batch([Rec(ev(7), NOW + 200_000)], no_one, clock, MIN, 0, None, NOW)
    assert not rejected
    ((start, _, _, article),) = acc
    assert start == (NOW + 200_000) // MIN * MIN and article == 7
    assert clock.watermark == NOW < start  # its window cannot close before its time comes


def test_a_big_backlog_batch_splits_into_envelopes_that_fit_and_keep_every_row() -> None:
    windows: envelope.Windows = {
        w * MIN: [(None, None, a, 1, a % 2) for a in range(w * 30_000, (w + 1) * 30_000)] for w in range(2)
    }
    parts = envelope.encode(3, 4, 123_000, windows, max_bytes=100_000)
    assert len(parts) > 10 and all(len(p) <= 100_000 for p in parts)
    decoded = [envelope.decode(p) for p in parts]
    rows = [(start, *row) for e in decoded for start, rs in e["windows"] for row in rs]
    assert sorted(rows) == sorted((start, *row) for start, rs in windows.items() for row in rs)
    # Only the last carries the watermark: stage 2 applies rows before their marker.
    assert [e["wm"] for e in decoded] == [NO_WATERMARK] * (len(parts) - 1) + [123_000]
    assert {(e["src"], e["n"]) for e in decoded} == {(3, 4)}


def test_split_envelopes_applied_in_order_close_no_window_early() -> None:
    """Rows of window 0 in a later chunk must not arrive after window 0 closed on an earlier chunk."""
    windows: envelope.Windows = {0: [(None, None, a, 1, 0) for a in range(5000)], 10 * MIN: []}
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=0)
    for offset, part in enumerate(envelope.encode(0, 1, 10 * MIN, windows, max_bytes=20_000)):
        state.apply(offset, envelope.decode(part))
    state.close()
    finals = [w for w in state.take_writes() if w.final]
    assert len(finals) == 5000 and state.late_rows == 0


def test_small_envelopes_are_one_message() -> None:
    (one,) = envelope.encode(0, 1, 5, {0: [("f", 1, 2, 3, 4)]})
    assert envelope.decode(one) == {"v": 1, "src": 0, "n": 1, "wm": 5, "windows": [[0, [["f", 1, 2, 3, 4]]]]}


def test_the_flat_rows_envelope_of_older_versions_still_decodes() -> None:
    old = orjson.dumps({"src": 0, "n": 1, "wm": 5, "rows": [[0, "f", 1, 7, 2, 1], [0, "m", 2, 7, 1, 0]]})
    assert envelope.decode(old)["windows"] == [(0, [["f", 1, 7, 2, 1], ["m", 2, 7, 1, 0]])]


def headers() -> dead_letters.Headers:
    return dead_letters.source_headers("invalid_json", "events", 3, 12345, NOW)


def test_a_dead_letter_that_fits_is_sent_unchanged() -> None:
    letter = dead_letters.fit(b"x" * 1000, b"k", headers(), limit=1_048_588)
    assert letter == (b"x" * 1000, b"k", headers())


def test_a_dead_letter_too_big_for_the_topic_is_cut_with_its_size_and_hash() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    letter = dead_letters.fit(value, b"key", headers(), limit=1_048_588)
    assert dead_letters.size_of(*letter) <= 1_048_588
    assert letter.value is not None and value.startswith(letter.value) and len(letter.value) > 1_000_000
    got = dict(letter.headers)
    assert got["reason"] == b"invalid_json" and got["source.offset"] == b"12345"
    assert got["truncated.value"] == b"true"
    assert got["original.value.size"] == str(len(value)).encode()
    assert got["original.value.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert letter.key == b"key"


@settings(max_examples=200)
@given(
    st.one_of(st.none(), st.integers(0, 40_000)),
    st.one_of(st.none(), st.integers(0, 40_000)),
    st.integers(8_000, 50_000),
)
def test_every_dead_letter_fits_its_limit(value_len: int | None, key_len: int | None, limit: int) -> None:
    value = None if value_len is None else b"v" * value_len
    key = None if key_len is None else b"k" * key_len
    letter = dead_letters.fit(value, key, headers(), limit)
    assert dead_letters.size_of(*letter) <= limit
    assert (letter.value is None) == (value is None) and (letter.key is None) == (key is None)
    assert dict(letter.headers)["reason"] == b"invalid_json"
