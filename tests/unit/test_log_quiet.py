"""Client libraries' log lines are rate-limited per kind and lose their tracebacks (not ours)."""

from __future__ import annotations

import logging

from clickagg.log_quiet import QuietLibraries


def record(name: str, msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ConnectionError("refused")
        except ConnectionError as err:
            exc_info = (type(err), err, err.__traceback__)
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def test_one_line_per_kind_every_30s_with_a_count_and_no_traceback() -> None:
    now = [0.0]
    quiet = QuietLibraries(clock=lambda: now[0])
    passed = []
    for i in range(100):
        now[0] = i * 0.5  # 50 s of an outage, two lines a second
        r = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused", exc=True)
        if quiet.filter(r):
            passed.append(r)
    assert len(passed) == 2
    assert passed[0].exc_info is None and passed[1].getMessage().endswith(
        "(59 more like this in the last 30s)"
    )
    other = record("aiokafka.client", "Unable to update metadata from %s", [1])
    assert quiet.filter(other)  # another kind of line has its own budget


def test_our_own_lines_are_never_touched() -> None:
    quiet = QuietLibraries(clock=lambda: 0.0)
    lines = [record("clickagg.health", "elasticsearch: refused", exc=True) for _ in range(5)]
    assert all(quiet.filter(r) for r in lines) and lines[0].exc_info is not None
