"""The read side's pure parts: time parsing, the completeness rule, exact CTR ranking, live ranges and segments."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from fractions import Fraction

import pytest

from clickagg.query import (
    AUTO_HOURS_ABOVE_MS,
    UNKNOWN,
    QueryError,
    check_resolution,
    completeness_from_progress,
    filter_label,
    hour_completeness,
    parse_gender,
    parse_segment,
    parse_time,
    plan_pieces,
    range_resolution,
    rank_articles,
    recent_window_starts,
    segment_series,
    window_starts,
)

W, L = 60_000, 10_000


def progress(
    partition: int, partitions: int, closed: int, window: int = W, lateness: int = L
) -> dict[str, object]:
    return {
        "partition": partition,
        "partitions": partitions,
        "closed_below_ms": closed,
        "window_ms": window,
        "lateness_ms": lateness,
        "updated_at": "2026-01-27T00:00:00.000Z",
    }


def test_parse_time_accepts_iso_and_epoch_ms() -> None:
    ms = int(datetime(2026, 1, 27, 10, 5, tzinfo=UTC).timestamp()) * 1000
    assert parse_time("2026-01-27T10:05:00Z") == ms
    assert parse_time("2026-01-27T10:05:00.000+00:00") == ms
    assert parse_time("2026-01-27T11:05:00+01:00") == ms
    assert parse_time("2026-01-27T10:05") == ms  # no offset: UTC
    assert parse_time(str(ms)) == ms
    assert parse_time(" 1769508300123 ") == 1769508300123
    assert parse_time("2026-01-27T10:05:00.123999Z") == ms + 123  # floor to the millisecond
    for bad in ("yesterday", "", "10:05", "2026-13-01T00:00:00Z", "1.5e12"):
        with pytest.raises(QueryError):
            parse_time(bad)


def test_filters_parse_null_as_unknown_users() -> None:
    assert parse_gender(None) is None and parse_gender("") is None
    assert parse_gender("null") is UNKNOWN and parse_gender("female") == "female"
    assert parse_segment("7") == 7 and parse_segment("null") is UNKNOWN and parse_segment(None) is None
    with pytest.raises(QueryError, match="segment"):
        parse_segment("seven")
    assert filter_label(UNKNOWN) == "null" and filter_label(3) == 3 and filter_label(None) is None


def test_completeness_matches_the_rule_for_every_window() -> None:
    """Brute force: window m is complete iff m + window + lateness <= min closed over all partitions."""
    rng = random.Random(5)
    for _ in range(300):
        window = rng.choice([1_000, 60_000, 300_000])
        lateness = rng.choice([0, 1, 5_000, 10_000, 59_999, 120_000])
        partitions = rng.randrange(1, 5)
        closed = [rng.randrange(10_000_000, 10_900_000) for _ in range(partitions)]
        comp = completeness_from_progress(
            [progress(p, partitions, c, window, lateness) for p, c in enumerate(closed)]
        )
        assert comp.partitions_expected == partitions and comp.missing_partitions == ()
        for m in range(9_000_000 // window * window, 11_000_000, window):
            assert comp.is_complete(m) == (m + window + lateness <= min(closed)), (
                m,
                window,
                lateness,
                closed,
            )
        assert comp.last_complete_minute_ms is not None
        assert comp.last_complete_minute_ms + window + lateness <= min(closed)
        assert comp.last_complete_minute_ms + 2 * window + lateness > min(closed)


def test_completeness_exact_boundary() -> None:
    m = 1_700_000_040_000 // W * W
    at = completeness_from_progress([progress(0, 1, m + W + L)])
    assert at.is_complete(m) and not at.is_complete(m + W) and at.complete_before_ms == m + W
    below = completeness_from_progress([progress(0, 1, m + W + L - 1)])
    assert not below.is_complete(m) and below.complete_before_ms == m


def test_completeness_needs_every_partition() -> None:
    docs = [progress(0, 3, 10 * W), progress(2, 3, 10 * W)]
    comp = completeness_from_progress(docs)
    assert comp.complete_before_ms is None and comp.missing_partitions == (1,)
    assert not comp.is_complete(0)
    assert completeness_from_progress([]).complete_before_ms is None
    # a partition count that grew: the old docs do not vouch for the new partitions
    grown = completeness_from_progress([progress(0, 1, 10 * W), progress(1, 2, 10 * W)])
    assert grown.complete_before_ms is not None
    grown = completeness_from_progress([progress(0, 2, 10 * W)])
    assert grown.missing_partitions == (1,) and grown.complete_before_ms is None


def test_completeness_takes_the_most_conservative_settings() -> None:
    closed = 100 * W
    comp = completeness_from_progress(
        [progress(0, 2, closed, W, 5_000), progress(1, 2, closed + W, W, 30_000)]
    )
    assert comp.lateness_ms == 30_000
    assert comp.complete_before_ms == (closed - W - 30_000) // W * W + W


def _oracle_rank(rows: list[tuple[int, int, int]], k: int, min_imp: int) -> list[tuple[int, int, int]]:
    kept = [r for r in rows if r[1] >= max(min_imp, 1)]
    return sorted(kept, key=lambda r: (-Fraction(r[2], r[1]), -r[1], r[0]))[:k]


def test_rank_articles_is_exact_with_ties() -> None:
    rows = [(5, 10, 5), (3, 10, 5), (9, 20, 10), (1, 3, 0), (2, 0, 4), (7, 7, 7), (8, 1, 1)]
    top = rank_articles(rows, k=5, min_impressions=2)
    assert [(a.article_id, a.impressions, a.clicks) for a in top] == [
        (7, 7, 7),
        (9, 20, 10),
        (3, 10, 5),
        (5, 10, 5),
        (1, 3, 0),
    ]
    assert top[0].ctr == 1.0 and top[1].ctr == 0.5
    assert [a.article_id for a in rank_articles(rows, k=10)] == [7, 8, 9, 3, 5, 1]  # 0 impressions: no CTR


def test_rank_articles_against_brute_force() -> None:
    rng = random.Random(11)
    for _ in range(200):
        rows = [
            (a, rng.randrange(0, 30), rng.randrange(0, 10))
            for a in rng.sample(range(1, 2**62), rng.randrange(0, 60))
        ]
        k, min_imp = rng.randrange(1, 20), rng.randrange(0, 8)
        got = [(a.article_id, a.impressions, a.clicks) for a in rank_articles(rows, k, min_imp)]
        assert got == _oracle_rank(rows, k, min_imp)


def test_rank_distinguishes_ctrs_closer_than_float_precision() -> None:
    big = 10**17
    rows = [(1, big + 1, big), (2, big, big - 1)]  # both round to the same double
    assert float(Fraction(big, big + 1)) == float(Fraction(big - 1, big))
    assert [a.article_id for a in rank_articles(rows, 2)] == [1, 2]  # 1 - 1/(b+1) > 1 - 1/b


def test_window_starts_cover_the_overlapping_windows() -> None:
    assert list(window_starts(0, 3 * W, W)) == [0, W, 2 * W]
    assert list(window_starts(W + 1, 2 * W + 1, W)) == [W, 2 * W]
    assert list(window_starts(W, W + 1, W)) == [W]
    assert len(window_starts(0, 10**15, W)) == -(-(10**15) // W)  # sized without building it


def test_recent_window_starts_end_at_the_newest_data_never_past_now() -> None:
    now = 100 * W + 12_345
    assert list(recent_window_starts(97 * W + 5, now, 3, W)) == [95 * W, 96 * W, 97 * W]
    assert list(recent_window_starts(97 * W, now, 1, W)) == [97 * W]
    # documents in the future (a producer clock ahead): the window ends with now's
    assert list(recent_window_starts(140 * W, now, 2, W)) == [99 * W, 100 * W]
    assert len(recent_window_starts(97 * W, now, 1440, W)) == 1440


def _oracle_series(
    rows: list[tuple[int | None, int, int, int]], starts: list[int], limit: int
) -> list[tuple[int | None, int, int, list[tuple[int, int, int]]]]:
    per: dict[int | None, dict[int, list[int]]] = {}
    for seg, start, imp, clk in rows:
        if start in starts:
            cell = per.setdefault(seg, {}).setdefault(start, [0, 0])
            cell[0] += imp
            cell[1] += clk
    out = []
    for seg, cells in per.items():
        windows = [(s, *cells.get(s, [0, 0])) for s in starts]
        out.append((seg, sum(w[1] for w in windows), sum(w[2] for w in windows), windows))
    out.sort(key=lambda r: (-r[1], r[0] is None, r[0] if r[0] is not None else 0))
    return out[:limit]


def test_segment_series_against_brute_force() -> None:
    rng = random.Random(17)
    for _ in range(200):
        starts = [m * W for m in range(rng.randrange(1, 6), rng.randrange(7, 12))]
        rows = [
            (
                rng.choice([None, 1, 2, 3, 40]),
                rng.choice([*starts, starts[-1] + W]),
                rng.randrange(0, 50),
                rng.randrange(0, 9),
            )
            for _ in range(rng.randrange(0, 40))
        ]
        limit = rng.randrange(1, 6)
        got = segment_series(rows, starts, limit)
        want = _oracle_series(rows, starts, limit)
        assert [
            (s.segment_id, s.impressions, s.clicks, [(w.time_ms, w.impressions, w.clicks) for w in s.windows])
            for s in got
        ] == want
        for s in got:
            assert s.ctr == (s.clicks / s.impressions if s.impressions else None)
            assert all(w.ctr == (w.clicks / w.impressions if w.impressions else None) for w in s.windows)


def test_segment_series_ties_zeros_and_the_null_segment() -> None:
    starts = [0, W, 2 * W]
    rows = [(2, W, 10, 1), (None, 0, 10, 5), (1, 2 * W, 6, 0), (1, 0, 4, 4), (7, 3 * W, 99, 9)]
    series = segment_series(rows, starts, limit=8)
    # equal impressions: lower id first, null last; window 3W is outside the range and not counted
    assert [(s.segment_id, s.impressions) for s in series] == [(1, 10), (2, 10), (None, 10)]
    assert [(w.time, w.impressions, w.clicks, w.ctr) for w in series[1].windows] == [
        ("1970-01-01T00:00:00.000Z", 0, 0, None),
        ("1970-01-01T00:01:00.000Z", 10, 1, 0.1),
        ("1970-01-01T00:02:00.000Z", 0, 0, None),
    ]
    assert series[0].to_dict()["windows"][2] == {
        "time": "1970-01-01T00:02:00.000Z", "time_ms": 2 * W, "impressions": 6, "clicks": 0, "ctr": 0.0,
    }  # fmt: skip
    assert [s.segment_id for s in segment_series(rows, starts, limit=2)] == [1, 2]
    assert segment_series([], starts, limit=3) == []


H = 3_600_000


def test_hours_are_complete_exactly_when_every_window_in_them_is() -> None:
    """Brute force over the progress rule: hour h is complete iff each window starting in [h, h + H) is."""
    rng = random.Random(13)
    for _ in range(300):
        window = rng.choice([1_000, 60_000, 300_000, 600_000])
        lateness = rng.choice([0, 5_000, 10_000, 59_999, 120_000])
        partitions = rng.randrange(1, 4)
        closed = [rng.randrange(30 * H, 34 * H) for _ in range(partitions)]
        minutes = completeness_from_progress(
            [progress(p, partitions, c, window, lateness) for p, c in enumerate(closed)]
        )
        hours = hour_completeness(minutes)
        assert (hours.resolution, hours.window_ms, minutes.resolution) == ("hour", H, "minute")
        assert (hours.partitions, hours.lateness_ms) == (minutes.partitions, minutes.lateness_ms)
        for h in range(28 * H, 36 * H, H):
            every_window = all(
                m + window + lateness <= min(closed)
                for m in range(h // window * window, h + H, window)
                if m >= h
            )
            assert hours.is_complete(h) == every_window, (h, window, lateness, closed)
        assert hours.to_dict()["resolution"] == "hour"
        assert hours.to_dict()["last_complete_window_ms"] == hours.last_complete_minute_ms


def test_hour_completeness_boundaries() -> None:
    h = 1_700_000_000_000 // H * H
    exactly = completeness_from_progress([progress(0, 1, h + H + L)])  # minutes complete before h + H
    assert exactly.complete_before_ms == h + H
    assert hour_completeness(exactly).complete_before_ms == h + H and hour_completeness(exactly).is_complete(
        h
    )
    one_short = completeness_from_progress([progress(0, 1, h + H + L - 1)])  # h's last minute is open
    assert one_short.complete_before_ms == h + H - W
    assert hour_completeness(one_short).complete_before_ms == h and not hour_completeness(
        one_short
    ).is_complete(h)
    nothing = hour_completeness(
        completeness_from_progress([progress(0, 2, h + H + L)])
    )  # partition 1 missing
    assert nothing.complete_before_ms is None and nothing.last_complete_minute_ms is None
    assert not nothing.is_complete(0) and nothing.missing_partitions == (1,)


def test_resolution_values_are_checked() -> None:
    assert check_resolution(None) == check_resolution("") == "minute"
    assert [check_resolution(r) for r in ("minute", "hour", "auto")] == ["minute", "hour", "auto"]
    for bad in ("Minute", "hours", "day", " hour"):
        with pytest.raises(QueryError, match="resolution must be one of minute, hour, auto"):
            check_resolution(bad)
    with pytest.raises(QueryError, match="one of minute, hour, got 'auto'"):
        check_resolution("auto", ("minute", "hour"))


def test_auto_reads_totals_from_hours_only_for_long_aligned_ranges() -> None:
    day = 20_000 * 24 * H
    assert range_resolution("auto", day, day + 7 * H, hourly=True) == "hour"
    assert range_resolution("auto", day, day + 6 * H, hourly=True) == "minute"  # not longer than 6 h
    assert range_resolution("auto", day + W, day + 7 * H + W, hourly=True) == "minute"  # not on hours
    assert range_resolution("auto", day, day + 7 * H + W, hourly=True) == "minute"
    assert range_resolution("auto", day, day + 7 * H, hourly=False) == "minute"  # rollups off
    assert range_resolution("minute", day, day + 70 * H, hourly=True) == "minute"
    assert range_resolution("hour", day + 1, day + 2, hourly=True) == "hour"
    with pytest.raises(QueryError, match="HOURLY_INDEX is empty"):
        range_resolution("hour", day, day + H, hourly=False)
    with pytest.raises(QueryError, match="resolution must be one of"):
        range_resolution("week", day, day + H, hourly=True)


def test_auto_pieces_cover_the_range_exactly_with_whole_hours_from_the_rollups() -> None:
    rng = random.Random(21)
    for _ in range(2000):
        start = rng.randrange(0, 200 * H) // W * W
        end = start + rng.randrange(1, 40 * H) // W * W + W
        hours_from = rng.choice([None, 0, start, start + rng.randrange(0, 50 * H), 10**15])
        pieces = plan_pieces(start, end, hours_from)
        # in order, no gap, no overlap, exactly [start, end)
        assert pieces[0][1] == start and pieces[-1][2] == end
        assert all(a[2] == b[1] for a, b in zip(pieces, pieces[1:], strict=False))
        assert all(a < b for _, a, b in pieces)
        for kind, a, b in pieces:
            if kind == "hour":  # whole hours, after the rollups' first usable hour, in a long range
                assert a % H == 0 and b % H == 0 and end - start > AUTO_HOURS_ABOVE_MS
                assert hours_from is not None and a >= hours_from
            else:
                assert kind == "minute"
        hour_pieces = [p for p in pieces if p[0] == "hour"]
        assert len(hour_pieces) <= 1
        if end - start > AUTO_HOURS_ABOVE_MS and hours_from is not None:
            first = max(-(-start // H) * H, -(-hours_from // H) * H)
            if first < end // H * H:  # some whole hour is usable: it is read from the rollups
                assert hour_pieces == [("hour", first, end // H * H)]
        minute_ms = sum(b - a for kind, a, b in pieces if kind == "minute")
        if hours_from is not None and hours_from <= start and hour_pieces:
            assert minute_ms < 2 * H  # only the edges come from minute documents
    assert plan_pieces(5, 5, 0) == []
    assert plan_pieces(0, 7 * H, 0) == [("hour", 0, 7 * H)]
    assert plan_pieces(W, 8 * H - W, 0) == [
        ("minute", W, H),
        ("hour", H, 7 * H),
        ("minute", 7 * H, 8 * H - W),
    ]
    assert plan_pieces(0, 7 * H, None) == [("minute", 0, 7 * H)]
    assert plan_pieces(0, 6 * H, 0) == [("minute", 0, 6 * H)]
