"""Daily indices and retention (clickagg.core.days), and the `expired` rule in both stages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from clickagg.core import days
from clickagg.core.batch import aggregate_batch
from clickagg.core.days import DAY_MS, NEVER
from clickagg.core.watermarks import SourceClock
from clickagg.tables.window_state import WindowState


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_a_window_lives_in_the_index_of_its_start_day() -> None:
    assert days.daily_index("m", ms("2026-11-30T23:59:00")) == "m-2026.11.30"
    assert days.daily_index("m", ms("2026-12-01T00:00:00")) == "m-2026.12.01"
    assert days.daily_index("m", 0) == "m-1970.01.01"
    assert days.daily_index("m", ms("9999-12-31T23:59:00")) == "m-9999.12.31"


@given(st.integers(0, ms("9999-12-31T23:59:59") // DAY_MS))
def test_day_names_round_trip_and_match_the_template_patterns(day: int) -> None:
    name = days.daily_index("clicks", day * DAY_MS)
    assert days.day_of_index("clicks", name) == day
    patterns = days.index_patterns("clicks")
    assert any(name.startswith(p[:-1]) for p in patterns)


def test_other_names_are_not_daily_indices() -> None:
    for name in (
        "m-progress",
        "m",
        "m-2026.13.01",
        "m-2026.1.1",
        "mx-2026.12.01",
        "m-2026.12.01-old",
        "m-hourly-2026.12.01",
    ):
        assert days.day_of_index("m", name) is None, name
    assert not any("m-progress".startswith(p[:-1]) for p in days.index_patterns("m"))


def test_expiry_and_deletion_edges() -> None:
    now = ms("2026-12-01T10:00:00")
    assert days.expire_before_ms(now, 30) == ms("2026-11-01T00:00:00")
    assert days.expire_before_ms(now, 0) == NEVER
    assert days.delete_before_day(now, 30) == days.day_of(ms("2026-10-31T00:00:00"))
    assert days.delete_before_day(now, 0) is None
    names = ["m-2026.10.30", "m-2026.10.31", "m-2026.11.01", "m-2026.12.01", "m-progress", "n-2020.01.01"]
    # 10.31 expired today but keeps its grace day; 10.30 goes
    assert days.to_delete("m", names, now, 30) == ["m-2026.10.30"]
    assert days.to_delete("m", names, now, 0) == []


def test_nothing_is_deleted_that_still_accepts_events() -> None:
    """Every day retention deletes expired a whole day earlier: no worker writes into it any more."""
    for hour in range(0, 24 * 5):
        now = ms("2026-12-01T00:00:00") + hour * 3_600_000
        for r in (1, 2, 30):
            before = days.delete_before_day(now, r)
            assert before is not None
            last_deleted_day_end = before * DAY_MS
            assert last_deleted_day_end <= days.expire_before_ms(now - DAY_MS, r)


class Rec(NamedTuple):
    value: bytes
    timestamp: int


def test_stage1_dead_letters_expired_events_and_counts_the_rest() -> None:
    now = ms("2026-12-01T10:00:00")
    cutoff = days.expire_before_ms(now, 2)  # 2026-11-29T00:00
    records = [
        Rec(b'{"article_id":1,"user_id":1,"action":"click"}', cutoff - 1),
        Rec(b'{"article_id":1,"user_id":1,"action":"click"}', cutoff),
        Rec(b'{"article_id":2,"user_id":1,"action":"impression"}', now - 1000),
    ]
    acc, rejected = aggregate_batch(
        records, lambda u: (None, None), SourceClock(), 60_000, 10_000, None, now, expire_before_ms=cutoff
    )
    assert [(r.timestamp, why) for r, why in rejected] == [(cutoff - 1, "expired")]
    assert sum(c[0] + c[1] for c in acc.values()) == 2


def test_stage2_dead_letters_rows_of_expired_days_once_and_skips_their_replays() -> None:
    state = WindowState(0, 60_000, 10_000)
    state.expire_before = 120_000
    env: dict[str, Any] = {
        "src": 0,
        "n": 1,
        "wm": 60_000,
        "windows": [[60_000, [["f", 1, 7, 2, 1]]], [120_000, [["m", 2, 8, 1, 0]]]],
    }
    state.apply(5, env)
    late = state.take_late()
    assert [(r.window_start, r.reason, r.row) for r in late] == [(60_000, "expired", ("f", 1, 7, 2, 1))]
    assert 60_000 not in state.windows and state.windows[120_000] == {("m", 2, 8): [1, 0, 6]}
    restarted = WindowState(0, 60_000, 10_000, replay_below=6)
    restarted.expire_before = 120_000
    restarted.apply(5, env)  # the same envelope again after a restart: its fate was decided
    assert restarted.take_late() == []


def test_an_event_expires_when_its_minute_or_its_hour_day_is_gone() -> None:
    now = ms("2026-12-01T10:00:00")
    assert days.expire_before_all_ms(now, (30, 400)) == days.expire_before_ms(now, 30)
    assert days.expire_before_all_ms(now, (0, 400)) == days.expire_before_ms(now, 400)  # minutes kept forever
    assert days.expire_before_all_ms(now, (0, 0)) == NEVER
    assert days.expire_before_all_ms(now, (30, 7)) == days.expire_before_ms(now, 7)
