"""OneInFlight: the stages' "next batch computes while the previous one's I/O runs, in order"."""

from __future__ import annotations

import asyncio

import pytest

from clickagg.aio import OneInFlight


async def test_jobs_run_one_at_a_time_and_in_order() -> None:
    inflight, order = OneInFlight(), []
    gate = asyncio.Event()

    async def job(name: str, wait: bool) -> None:
        order.append(f"{name} starts")
        if wait:
            await gate.wait()
        order.append(f"{name} ends")

    assert inflight.idle and not inflight.finished
    await inflight.start(job("first", wait=True))
    await asyncio.sleep(0)
    assert not inflight.idle and not inflight.finished  # running in the background
    second = asyncio.create_task(inflight.start(job("second", wait=False)))
    await asyncio.sleep(0.01)
    assert order == ["first starts"]  # the second waits for the first to end
    gate.set()
    await second
    await inflight.settle()
    assert order == ["first starts", "first ends", "second starts", "second ends"]
    assert inflight.idle


async def test_a_failed_job_is_raised_by_the_next_settle_or_start() -> None:
    inflight = OneInFlight()

    async def fails() -> None:
        raise RuntimeError("commit refused")

    await inflight.start(fails())
    await asyncio.sleep(0)
    assert inflight.finished
    with pytest.raises(RuntimeError, match="commit refused"):
        await inflight.settle()
    assert inflight.idle  # settled: the failure is reported once

    await inflight.start(fails())
    with pytest.raises(RuntimeError, match="commit refused"):
        await inflight.start(fails())
