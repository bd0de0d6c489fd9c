"""Client libraries' log lines, at most one per kind every 30 s, without tracebacks unless debugging.

Why: while Kafka was down for 15 s, aiokafka wrote ~3,900 ERROR lines ("Unable connect to node",
"Unable to update metadata", ...), and elastic_transport wrote a traceback per retried request
during an Elasticsearch outage. The worker's own health lines (clickagg.health) already say what is
down, since when and when it is back; the libraries' lines stay as evidence, rate-limited per
(logger, message template), with a count of what was held back.

Two kinds of lines say nothing to an operator at INFO and are only shown with LOG_LEVEL=DEBUG:
Faust's and mode's start-up and shutdown chatter ("[^--Monitor]: Starting...", twenty lines a start;
the worker says itself when it is ready and where), and aiokafka's "Group Coordinator Request failed:
CoordinatorNotAvailableError" that every new consumer group meets in its first seconds while the broker
creates `__consumer_offsets` (a real outage after that is reported by clickagg.health).
"""

from __future__ import annotations

import logging
import time

NOISY = ("aiokafka", "elastic_transport", "opensearch", "urllib3", "kafka")
CHATTY = ("faust", "mode")  # below WARNING: start-up and shutdown steps
REDIRECT = "mode.redirect"  # what the process prints (Faust turns stdout/stderr into this logger): kept
EVERY_S = 30.0
STARTUP_S = 60.0  # a new group's coordinator is "not available" for a few seconds: normal, not news


def _starting_coordinator(record: logging.LogRecord) -> bool:
    return record.name.startswith("aiokafka") and "CoordinatorNotAvailable" in record.getMessage()


class QuietLibraries(logging.Filter):
    def __init__(
        self, every_s: float = EVERY_S, clock: object = time.monotonic, startup_s: float = STARTUP_S
    ) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self.quiet_until = clock() + startup_s  # type: ignore[operator]
        self.last: dict[tuple[str, object], float] = {}
        self.held: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        chatty = (
            record.name.startswith(CHATTY) and record.levelno < logging.WARNING and record.name != REDIRECT
        )
        if not chatty and not record.name.startswith(NOISY):
            return True
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True  # debugging: everything, tracebacks included
        if chatty:
            return False
        now = self.clock()  # type: ignore[operator]
        if now < self.quiet_until and _starting_coordinator(record):
            return False
        key = (record.name, record.msg)
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
    """On every handler of the root logger (records of child loggers only meet handlers' filters).

    clickagg.logs already puts the filter on the handler it makes; this covers any other handler.
    """
    quiet = QuietLibraries()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietLibraries) for f in handler.filters):
            handler.addFilter(quiet)
