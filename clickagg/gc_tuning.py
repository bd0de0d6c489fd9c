"""Cyclic garbage-collector thresholds for processes that hold millions of small live objects.

Why: the worker keeps every open window's counts (hundreds of thousands of lists and tuples) and
allocates a few objects per event. With CPython's default thresholds (700, 10, 10) a young collection
runs every 700 allocations and older generations are re-scanned as the window state churns: on the
5M-event benchmark that was a third of the worker's CPU (77k → 117k events/s once raised; see
BENCHMARKS.md). Reference counting still frees nearly everything immediately; the cyclic collector
still runs, every 50,000 allocations instead of 700, and full collections keep CPython's own rule
(only after the long-lived heap grew by a quarter), so reference cycles are still reclaimed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (50_000, 20, 10)


def tune() -> None:
    gc.set_threshold(*THRESHOLDS)


@contextmanager
def tuned() -> Iterator[None]:
    """The same thresholds for a block (the benchmark's in-process ceiling), then the old ones."""
    old = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
