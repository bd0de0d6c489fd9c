"""Readiness and the state-change log: what the worker can honestly say about itself.

Observed: /readyz said ready while Elasticsearch was down, while stage 1 crash-looped and while
stage 2 was stuck, and an Elasticsearch outage wrote 1,841 log lines and 108 tracebacks in 40 s.
So the decisions live here, pure and fed the time (`now` is monotonic seconds): a dependency is up
or down with its cause; a stage is running, or failed (restarting) with its cause, and knows when it
last made progress and whether input is waiting. Every report returns the one line to log, or None:
a line when a state changes, and one every LOG_EVERY_S while it stays bad.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("clickagg.health")

LOG_EVERY_S = 30.0
STALL_S = 60.0  # input waiting and no progress for this long: the stage is stuck
RECOVERED_S = 15.0  # a restarted stage is well again once it has run this long (not a crash loop)


@dataclass
class _Condition:
    bad_since: float | None = None
    cause: str = ""
    logged_at: float = 0.0


@dataclass
class _Stage:
    running: bool = False
    started_at: float = 0.0
    progressed_at: float | None = None
    waiting: int = 0  # records in its input beyond its position


@dataclass
class Health:
    conditions: dict[str, _Condition] = field(default_factory=dict)
    stages: dict[str, _Stage] = field(default_factory=dict)

    # -- dependencies (kafka, elasticsearch) and stage failures ------------------------------------
    def bad(self, name: str, cause: str, now: float) -> str | None:
        c = self.conditions.setdefault(name, _Condition())
        if c.bad_since is None:
            c.bad_since, c.cause, c.logged_at = now, cause, now
            return f"{name}: {cause}"
        c.cause = cause
        if now - c.logged_at >= LOG_EVERY_S:
            c.logged_at = now
            return f"{name}: still failing after {now - c.bad_since:.0f}s: {cause}"
        return None

    def good(self, name: str, now: float) -> str | None:
        c = self.conditions.get(name)
        if c is None or c.bad_since is None:
            return None
        took = now - c.bad_since
        c.bad_since, c.cause = None, ""
        return f"{name}: back after {took:.0f}s"

    # -- stages ------------------------------------------------------------------------------------
    def expect(self, stage: str) -> None:
        """A stage that will run: not ready until it has (a worker that only started is not ready)."""
        self.stages.setdefault(stage, _Stage())

    def stage_failed(self, stage: str, cause: str, now: float) -> str | None:
        self.stages.setdefault(stage, _Stage()).running = False
        return self.bad(stage, cause, now)

    def stage_running(self, stage: str, now: float) -> None:
        s = self.stages.setdefault(stage, _Stage())
        if not s.running:
            s.running, s.started_at = True, now
            s.progressed_at = now  # a fresh start is not a stall

    def progressed(self, stage: str, now: float) -> str | None:
        s = self.stages.setdefault(stage, _Stage())
        s.progressed_at = now
        if now - s.started_at < RECOVERED_S:
            return None  # its failure stands until it has run a while: a crash loop stays visible
        return self.good(stage, now)

    def input_waiting(self, stage: str, records: int) -> None:
        self.stages.setdefault(stage, _Stage()).waiting = records

    # -- the answer --------------------------------------------------------------------------------
    def readiness(self, now: float) -> tuple[bool, dict[str, Any]]:
        reasons: dict[str, str] = {}
        for name, c in self.conditions.items():
            if c.bad_since is not None:
                reasons[name] = f"{c.cause} (for {now - c.bad_since:.0f}s)"
        for name, s in self.stages.items():
            if not s.running:
                reasons.setdefault(name, "not running")
            elif name in reasons:
                reasons[name] = "restarted after: " + reasons[name]
            elif s.waiting and s.progressed_at is not None and now - s.progressed_at >= STALL_S:
                reasons[name] = (
                    f"no progress for {now - s.progressed_at:.0f}s with {s.waiting} records waiting"
                )
        return not reasons, reasons


HEALTH = Health()


# -- the thin I/O side: the process's clock and log -------------------------------------------------
def note_bad(name: str, cause: str) -> None:
    line = HEALTH.bad(name, cause, time.monotonic())
    if line:
        log.warning(line)


def note_good(name: str) -> None:
    line = HEALTH.good(name, time.monotonic())
    if line:
        log.info(line)


def note_progress(stage: str, waiting: int | None = None) -> None:
    now = time.monotonic()
    HEALTH.stage_running(stage, now)
    if waiting is not None:
        HEALTH.input_waiting(stage, waiting)
    line = HEALTH.progressed(stage, now)
    if line:
        log.info(line)


def note_stage_failed(stage: str, exc: BaseException, retry_in_s: float) -> None:
    cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    line = HEALTH.stage_failed(stage, cause, time.monotonic())
    if line:
        log.warning("%s; restarting it in %.0fs", line, retry_in_s)
    log.debug("%s failed", stage, exc_info=exc)
