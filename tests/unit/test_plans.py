"""The stages' timing decisions (clickagg.core.plans, clickagg.core.windows.live_from), without Kafka
or Elasticsearch: the clock is an argument."""

from __future__ import annotations

from clickagg.core.plans import FlushPlan, IdlePlan, any_live
from clickagg.core.windows import live_from

MIN = 60_000


def test_flush_every_interval_or_when_finals_pile_up_or_a_live_window_closed() -> None:
    plan = FlushPlan(interval_s=1.0, max_pending_finals=50_000, last_flush=10.0)
    assert not plan.due(10.5, pending_finals=10, live_window_closed=False)
    assert plan.due(11.0, pending_finals=10, live_window_closed=False)  # the interval
    assert plan.due(10.1, pending_finals=50_000, live_window_closed=False)  # bounded memory
    assert plan.due(10.1, pending_finals=1, live_window_closed=True)  # a complete minute, at once
    plan.flushed(11.0)
    assert not plan.due(11.5, pending_finals=0, live_window_closed=False)


def test_idle_looks_at_most_once_a_second_and_picks_partitions_quiet_for_the_timeout() -> None:
    plan = IdlePlan(every_s=1.0, idle_ms=3000)
    assert plan.look_now(100.0) and not plan.look_now(100.5) and plan.look_now(101.0)
    last = {"p0": 10_000, "p1": 12_500, "p2": None}
    assert plan.quiet(last, wall_ms=15_000) == ["p0", "p2"]  # never-seen partitions are quiet too


def test_live_is_open_or_closed_less_than_a_window_ago() -> None:
    now = 10 * MIN + 30_000  # 10:30 into the epoch, lateness 5 s
    first = live_from(now, MIN, 5000)
    assert first == now - (MIN + 5000) - MIN
    assert any_live([9 * MIN], first)  # closed at 10:05, 25 s ago: live
    assert not any_live([8 * MIN], first)  # closed at 9:05, 85 s ago: historical
    assert not any_live([], first)
