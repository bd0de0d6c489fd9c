"""The hot loop's fast path agrees with the plain, per-record rules (parse_event + window math)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from clickagg.core.batch import LAST_TIME_MS, aggregate_batch
from clickagg.core.events import CLICK, IMPRESSION, parse_event
from clickagg.core.watermarks import SourceClock
from clickagg.core.windows import closes_at, window_start

USERS = {1: ("female", 3), 2: ("male", None), 3: (None, 7)}


def lookup(uid: int) -> tuple[str | None, int | None]:
    return USERS.get(uid, (None, None))


@dataclass
class Rec:
    value: bytes | None
    timestamp: int | None


def plain(
    records: list[Rec], clock: SourceClock, size: int, lateness: int, now: int, max_future: int
) -> tuple[dict[object, list[int]], list[str]]:
    acc: dict[object, list[int]] = {}
    reasons = []
    for r in records:
        parsed = parse_event(r.value)
        if isinstance(parsed, str):
            reasons.append(parsed)
            continue
        article, user, action, _ = parsed
        if r.timestamp is None or r.timestamp < 0:
            reasons.append("no_timestamp")
            continue
        if r.timestamp > LAST_TIME_MS - size:
            reasons.append("bad_timestamp")
            continue
        if r.timestamp > now + max_future:
            reasons.append("future")
            continue
        if closes_at(window_start(r.timestamp, size), size, lateness) <= clock.watermark:
            reasons.append("late")
            continue
        clock.observe(min(r.timestamp, now), now_ms=0)  # the watermark never passes the wall clock
        counts = acc.setdefault((window_start(r.timestamp, size), *lookup(user), article), [0, 0])
        if action == IMPRESSION:
            counts[0] += 1
        elif action == CLICK:
            counts[1] += 1
    return acc, reasons


values = st.one_of(
    st.builds(
        lambda a, u, act: orjson.dumps({"article_id": a, "user_id": u, "action": act}),
        st.one_of(st.integers(-2, 5), st.just(2**63), st.just("4"), st.none(), st.just(True)),
        st.integers(0, 4),
        st.sampled_from(["impression", "click", "share", 3]),
    ),
    st.binary(max_size=12),
    st.none(),
)
timestamps = st.one_of(
    st.integers(-5, 400_000),
    st.none(),
    st.sampled_from([LAST_TIME_MS - 60_000, LAST_TIME_MS - 59_999, LAST_TIME_MS, 2**63 - 1]),
)
records = st.lists(st.builds(Rec, values, timestamps), max_size=60)


@settings(max_examples=400)
@given(records, st.integers(-1, 300_000), st.integers(0, 350_000), st.sampled_from([0, 1000, 90_000]))
def test_fast_path_equals_plain_rules(recs: list[Rec], start_watermark: int, now: int, future: int) -> None:
    fast_clock, plain_clock = SourceClock(watermark=start_watermark), SourceClock(watermark=start_watermark)
    acc, rejected = aggregate_batch(recs, lookup, fast_clock, 60_000, 5_000, None, now, future)
    want_acc, want_reasons = plain(recs, plain_clock, 60_000, 5_000, now, future)
    assert acc == want_acc
    assert [reason for _, reason in rejected] == want_reasons
    assert fast_clock.watermark == plain_clock.watermark
