"""Logging for every command: LOG_LEVEL, LOG_FORMAT=text|json, on stderr, client libraries kept quiet.

Why one module: the worker (whose logging Faust sets up, through mode) and the short commands
(produce, query, bench) must write the same format, carry the same filter (clickagg.log_quiet) and
never print a client library's traceback at INFO. JSON lines are ECS documents (`ecs-logging`), the
format Filebeat, Elastic Agent and most log pipelines read without a custom parser.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from clickagg.log_quiet import QuietLibraries

LIBRARIES = ("aiokafka", "elastic_transport", "opensearch", "urllib3", "faust.transport", "faust.tables")
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"


def handler(fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A stderr handler with clickagg's formatter and the client-library filter."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if fmt.lower() == "json":
        import ecs_logging

        out.setFormatter(ecs_logging.StdlibFormatter())
    else:
        out.setFormatter(logging.Formatter(TEXT_FORMAT))
    out.addFilter(QuietLibraries())
    return out


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """For the short commands: one handler on the root logger, replacing any other."""
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(handler(fmt))
    root.setLevel(level.upper())
    quiet_libraries()


def quiet_libraries() -> None:
    """Client libraries from WARNING up: their INFO and DEBUG lines (one per HTTP request, per fetch)
    would bury the worker's own, even when debugging; their warnings and errors pass log_quiet's filter."""
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def for_faust(level: str = "INFO") -> dict[str, Any]:
    """faust.Worker keyword arguments: no handler of mode's own (the app gets `handler()` as loghandlers).

    The dictConfig keeps the loggers that already exist (mode's default would disable them).
    """
    return {
        "loglevel": level.upper(),
        "logging_config": {
            "version": 1,
            "disable_existing_loggers": False,
            "root": {"level": level.upper(), "handlers": []},
        },
    }


def debugging(level: str | None = None) -> bool:
    """Tracebacks are for LOG_LEVEL=DEBUG (or --debug); otherwise errors are one line."""
    return (level or "").upper() == "DEBUG" or logging.getLogger().isEnabledFor(logging.DEBUG)
