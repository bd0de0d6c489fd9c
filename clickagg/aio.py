"""Asyncio helpers shared by the stages."""

from __future__ import annotations

import asyncio
import logging
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
