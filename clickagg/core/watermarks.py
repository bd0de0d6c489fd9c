"""Event-time watermarks: per source partition (stage 1) and the minimum over all of them (stage 2).

Clocks are injected (`now_ms` arguments) so tests drive time; nothing here reads the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

NO_WATERMARK = -1  # before any record: nothing is late and no window can close


@dataclass
class SourceClock:
    """Watermark of one source partition: the highest event time seen, advanced on idleness.

    It is persisted with the committed offset, so a restarted task resumes with the same value and
    judges lateness exactly as the crashed one would have.
    """

    watermark: int = NO_WATERMARK
    last_record_wall_ms: int | None = None

    def observe(self, ts_ms: int, now_ms: int) -> None:
        if ts_ms > self.watermark:
            self.watermark = ts_ms
        self.last_record_wall_ms = now_ms

    def advance_if_idle(self, now_ms: int, idle_ms: int, caught_up: bool) -> bool:
        """A caught-up partition quiet for idle_ms moves its watermark to (wall time - idle_ms).

        This is how the last window of a quiet stream closes. Returns True when it moved.
        """
        if not caught_up:
            return False
        if self.last_record_wall_ms is None:
            self.last_record_wall_ms = now_ms
        if now_ms - self.last_record_wall_ms < idle_ms:
            return False
        target = now_ms - idle_ms
        if target > self.watermark:
            self.watermark = target
            return True
        return False


@dataclass
class MinWatermark:
    """Stage 2's watermark: the minimum of the latest marker from every source partition."""

    sources: int = 0
    marks: dict[int, int] = field(default_factory=dict)

    def update(self, source: int, watermark: int, sources: int) -> None:
        self.sources = max(self.sources, sources)
        if watermark > self.marks.get(source, NO_WATERMARK):
            self.marks[source] = watermark

    def current(self) -> int:
        """NO_WATERMARK until every source partition has reported once."""
        if self.sources == 0 or any(s not in self.marks for s in range(self.sources)):
            return NO_WATERMARK
        return min(self.marks[s] for s in range(self.sources))

    def snapshot(self) -> dict[str, int]:
        return {"n": self.sources, **{str(k): v for k, v in self.marks.items()}}

    @classmethod
    def restore(cls, data: Mapping[str, int]) -> MinWatermark:
        marks = {int(k): int(v) for k, v in data.items() if k != "n"}
        return cls(sources=int(data.get("n", 0)), marks=marks)
