"""The stages' timing decisions as pure objects fed the time: when to flush, when to look for idleness.

Why: the stage loops read the clock in many places and had no unit tests, so their decisions were
only covered end to end. Each decision here takes `now` (monotonic seconds) and returns what to do;
the agents only do the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")


@dataclass
class FlushPlan:
    """Stage 2 writes its changed documents and commits at most every `interval_s`, sooner when
    `max_pending_finals` final documents wait (bounded memory) or a live window just closed (its
    final documents go out at once: a complete minute is searchable ~0.2 s after it closes)."""

    interval_s: float
    max_pending_finals: int
    last_flush: float = 0.0

    def due(self, now: float, pending_finals: int, live_window_closed: bool) -> bool:
        return (
            now - self.last_flush >= self.interval_s
            or pending_finals >= self.max_pending_finals
            or live_window_closed
        )

    def flushed(self, now: float) -> None:
        self.last_flush = now


@dataclass
class IdlePlan:
    """Stage 1 looks for quiet partitions at most every `every_s` (each look asks the broker for end
    offsets); a partition is quiet when no record came for `idle_ms` of wall time."""

    every_s: float = 1.0
    idle_ms: int = 30_000
    last_look: float = float("-inf")

    def look_now(self, now: float) -> bool:
        if now - self.last_look < self.every_s:
            return False
        self.last_look = now
        return True

    def quiet(self, last_record_wall_ms: Mapping[K, int | None], wall_ms: int) -> list[K]:
        return [
            key for key, last in last_record_wall_ms.items() if last is None or wall_ms - last >= self.idle_ms
        ]


def any_live(window_starts: Iterable[int], live_from_ms: float) -> bool:
    return any(start >= live_from_ms for start in window_starts)
