"""Asyncio helpers shared by the stages."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


async def quietly(step: Awaitable[Any], timeout_s: float = 10.0) -> None:
    """Cleanup that must neither hang nor mask the original error (the broker may be gone)."""
    try:
        await asyncio.wait_for(step, timeout_s)
    except Exception as exc:
        log.warning("cleanup step failed: %r", exc)


class StageStuck(Exception):
    """A stage made no progress within its bound: it fails, closes its clients and restarts fresh."""


class OneInFlight:
    """At most one background job in flight (a stage 1 transaction, a stage 2 flush).

    Why: both stages compute the next batch while the previous one's I/O runs, but those I/O steps
    must stay in order (a commit may not overtake an earlier one). A job's failure is raised by the
    next settle(), so the stage fails, restarts and replays from its last commit.
    """

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None

    async def start(self, job: Coroutine[Any, Any, None]) -> None:
        """Wait for the previous job (raising its failure), then run this one in the background."""
        try:
            await self.settle()
        except BaseException:
            job.close()  # never started: the stage replays it from its last commit
            raise
        self.task = asyncio.create_task(job)

    async def settle(self) -> None:
        """Wait for the job in flight, if any; its failure is raised here."""
        if self.task is not None:
            task, self.task = self.task, None
            await task

    @property
    def idle(self) -> bool:
        return self.task is None

    @property
    def finished(self) -> bool:
        """A job ran to its end (or failed) and was not settled yet."""
        return self.task is not None and self.task.done()


class Backoff:
    """The one retry schedule: first_s, doubling, at most max_s, jittered (so that several workers
    retrying one service do not knock in step). Every retry loop of the product uses it."""

    def __init__(self, first_s: float = 0.5, max_s: float = 10.0, jitter: bool = True) -> None:
        self.first_s, self.max_s, self.jitter = first_s, max_s, jitter
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.first_s * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0) if self.jitter else delay

    def reset(self) -> None:
        self.attempt = 0

    async def sleep(self, until: asyncio.Event | None = None) -> None:
        """Wait the next delay (or until `until` is set: a stopping worker does not sleep on)."""
        delay = self.next_delay()
        if until is None:
            await asyncio.sleep(delay)
            return
        try:
            await asyncio.wait_for(until.wait(), delay)
        except TimeoutError:
            pass
