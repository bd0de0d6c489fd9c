"""Client libraries' log lines, at most one per kind every 30 s, without tracebacks unless debugging.

Why: while Kafka was down for 15 s, aiokafka wrote ~3,900 ERROR lines ("Unable connect to node",
"Unable to update metadata", ...), and elastic_transport wrote a traceback per retried request
during an Elasticsearch outage. The worker's own health lines (clickagg.health) already say what is
down, since when and when it is back; the libraries' lines stay as evidence, rate-limited per
(logger, message template), with a count of what was held back.
"""

from __future__ import annotations

import logging
import time

NOISY = ("aiokafka", "elastic_transport", "opensearch", "urllib3", "kafka")
EVERY_S = 30.0


class QuietLibraries(logging.Filter):
    def __init__(self, every_s: float = EVERY_S, clock: object = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self.last: dict[tuple[str, object], float] = {}
        self.held: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(NOISY):
            return True
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True  # debugging: everything, tracebacks included
        key = (record.name, record.msg)
        now = self.clock()  # type: ignore[operator]
        if now - self.last.get(key, -1e18) < self.every_s:
            self.held[key] = self.held.get(key, 0) + 1
            return False
        self.last[key] = now
        held = self.held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.every_s:.0f}s)"
        record.exc_info, record.exc_text = None, None
        return True


def install() -> None:
    """On every handler of the root logger (records of child loggers only meet handlers' filters)."""
    quiet = QuietLibraries()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietLibraries) for f in handler.filters):
            handler.addFilter(quiet)
