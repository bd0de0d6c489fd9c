"""Tumbling event-time windows on epoch milliseconds (Python ints: no overflow, unlike Faust's C code)."""

from __future__ import annotations


def window_start(ts_ms: int, size_ms: int) -> int:
    """Start of the window holding ts_ms, aligned to the epoch (so 60 s windows align to UTC minutes)."""
    return ts_ms - ts_ms % size_ms


def closes_at(start_ms: int, size_ms: int, lateness_ms: int) -> int:
    """The watermark at which the window [start, start+size) is final: end plus allowed lateness."""
    return start_ms + size_ms + lateness_ms


def live_from(now_ms: float, size_ms: int, lateness_ms: int) -> float:
    """The first window start that is *live*: still open by the wall clock, or closed less than one
    window ago (what dashboards watch). One definition for the whole product: stage 2 writes partial
    updates, refreshes at once and flushes finals at once only for live windows; anything older is
    historical (a replay, a catch-up) and gets only its final document."""
    return now_ms - closes_at(0, size_ms, lateness_ms) - size_ms
