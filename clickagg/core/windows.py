"""Tumbling event-time windows on epoch milliseconds (Python ints: no overflow, unlike Faust's C code)."""

from __future__ import annotations


def window_start(ts_ms: int, size_ms: int) -> int:
    """Start of the window holding ts_ms, aligned to the epoch (so 60 s windows align to UTC minutes)."""
    return ts_ms - ts_ms % size_ms


def closes_at(start_ms: int, size_ms: int, lateness_ms: int) -> int:
    """The watermark at which the window [start, start+size) is final: end plus allowed lateness."""
    return start_ms + size_ms + lateness_ms
