"""The one retry schedule (clickagg.aio.Backoff)."""

from __future__ import annotations

import asyncio

from clickagg.aio import Backoff


def test_doubles_from_first_to_max_and_resets() -> None:
    b = Backoff(first_s=0.5, max_s=4.0, jitter=False)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_jitter_stays_within_half_to_full_delay() -> None:
    b = Backoff(first_s=1.0, max_s=8.0)
    for expected in (1.0, 2.0, 4.0, 8.0, 8.0):
        assert expected / 2 <= b.next_delay() <= expected


def test_a_stopping_event_cuts_the_sleep_short() -> None:
    async def run() -> float:
        stop = asyncio.Event()
        b = Backoff(first_s=30.0, jitter=False)
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.05, stop.set)
        await b.sleep(stop)
        return loop.time() - started

    assert asyncio.run(run()) < 5
