"""Stage 2's state for one partials partition: open windows, their counts and applied versions.

Pure (no Kafka or Elasticsearch): the writer agent feeds it envelopes and asks it for documents.
A key's version is 1 + the partials offset of the last envelope applied to it, so applying is
idempotent (an envelope at or below the version is skipped) and every document written carries a
version that only grows: the same offset always yields the same counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from clickagg.core.days import NEVER
from clickagg.core.documents import document
from clickagg.core.keys import GroupKey, doc_id
from clickagg.core.watermarks import NO_WATERMARK, MinWatermark
from clickagg.core.windows import closes_at

# Per key within a window: [impressions, clicks, version]
Entry = list[int]
Rest = tuple[str | None, int | None, int]  # (gender, segment_id, article_id)


class LateRow(NamedTuple):
    """A row that reached a window already final, or a day past retention: never dropped silently,
    dead-lettered by stage 2 with its reason."""

    offset: int  # partials offset of its envelope
    source: int  # source partition
    window_start: int
    row: tuple[Any, ...]  # (gender, segment_id, article_id, impressions, clicks)
    reason: str = "late"  # or "expired"


class Write(NamedTuple):  # a tuple, not a frozen dataclass: ~1.4M are built per 5M events
    doc_id: str
    version: int
    source: dict[str, Any]
    window_start: int
    final: bool


HOUR_MS = 3_600_000
Hours = dict[int, dict[Rest, list[int]]]  # hour start -> key -> [impressions, clicks] of one envelope


def _sum_hour(hours: Hours, start: int, rows: list[Any]) -> None:
    bucket = hours.setdefault(start - start % HOUR_MS, {})
    for gender, segment, article, imp, clk in rows:
        rest = (gender, segment, article)
        counts = bucket.get(rest)
        if counts is None:
            bucket[rest] = [imp, clk]
        else:
            counts[0] += imp
            counts[1] += clk


def hour_envelope(envelope: dict[str, Any], hours: Hours) -> dict[str, Any]:
    """The envelope for the hourly state: one row per hour and key, with the minute envelope's marks.

    Summed per envelope first because a key's version is per envelope: two minutes of one hour
    in one envelope are one update of the hour's key, not two (the second would look applied).
    The hourly state is a WindowState with window_ms = HOUR_MS and replay_below = None, so rows
    for an hour already final are skipped silently (the minutes have dead-lettered any that were
    not replays) and its watermark, versions and closing follow the minutes' exactly: an hour is
    final when the watermark passes its end + lateness, i.e. when its last minute is final.
    """
    windows = [
        (hour, [(g, s, a, c[0], c[1]) for (g, s, a), c in rows.items()]) for hour, rows in hours.items()
    ]
    return {"src": envelope["src"], "n": envelope["n"], "wm": envelope["wm"], "windows": windows}


@dataclass
class WindowState:
    partition: int
    window_ms: int
    lateness_ms: int
    windows: dict[int, dict[Rest, Entry]] = field(default_factory=dict)
    # Per window: the keys changed since their last write, and the first offset of those changes.
    # (Per window, not per key: a row then costs a set insert instead of a 4-tuple and a dict entry.)
    dirty: dict[int, set[Rest]] = field(default_factory=dict)
    dirty_from: dict[int, int] = field(default_factory=dict)
    finals: list[Write] = field(default_factory=list)
    watermark: MinWatermark = field(default_factory=MinWatermark)
    closed_below: int = NO_WATERMARK  # windows whose close time <= this are final and dropped
    # Envelopes below this offset were applied before the restart (see clickagg.core.commit_meta):
    # their rows for final windows are replays, skipped. None: unknown (older metadata), all skipped.
    replay_below: int | None = 0
    version: int = 0  # 1 + the offset of the last envelope applied
    late: list[LateRow] = field(default_factory=list)  # taken by the writer with take_late()
    late_rows: int = 0
    # Windows starting before this are past retention (clickagg.core.days.expire_before_ms, set by
    # the writer from the clock before each batch): their rows are dead letters, reason expired.
    expire_before: int = NEVER

    def load(self, key: GroupKey, impressions: int, clicks: int, version: int) -> None:
        """Restore an open document read back from Elasticsearch after a restart or rebalance."""
        self.windows.setdefault(key[0], {})[(key[1], key[2], key[3])] = [impressions, clicks, version]

    def apply(self, offset: int, envelope: dict[str, Any], hours: Hours | None = None) -> None:
        """Add one envelope's rows, then record its watermark (rows precede their marker).

        Envelope rows come grouped by window (see clickagg.core.envelope). Windows are not closed
        here: the writer first proves it knows every source partition (a topic may have grown),
        then calls close().

        hours: when given, every row the minutes count is also summed into it by hour (see
        hour_envelope), replays included (the hourly state's own versions decide), dead letters
        never.
        """
        version = offset + 1
        span = self.window_ms + self.lateness_ms  # a window closes at start + span
        closed_below = self.closed_below
        windows, dirty, dirty_from = self.windows, self.dirty, self.dirty_from
        expire_before = self.expire_before
        for start, rows in envelope["windows"]:
            if start + span <= closed_below:
                # A replay (not dead-lettered now) was counted by this minute before the restart: the
                # hour gets it again and its own versions decide. That holds because a flush that
                # dead-letters rows writes every change first (the writer's rule), so the commit floor
                # passes them: no row dead-lettered before a restart is ever replayed.
                if not self._late(offset, envelope["src"], start, rows) and hours is not None:
                    _sum_hour(hours, start, rows)
                continue
            if start < expire_before:
                self._late(offset, envelope["src"], start, rows, "expired")
                continue
            if hours is not None:
                _sum_hour(hours, start, rows)
            bucket = windows.get(start)
            if bucket is None:
                bucket = windows[start] = {}
            changed = dirty.get(start)
            if changed is None:
                changed = dirty[start] = set()
            applied = False
            for gender, segment, article, imp, clk in rows:
                rest = (gender, segment, article)
                entry = bucket.get(rest)
                if entry is None:
                    bucket[rest] = [imp, clk, version]
                elif version > entry[2]:
                    entry[0] += imp
                    entry[1] += clk
                    entry[2] = version
                else:
                    continue  # already applied before the restart
                changed.add(rest)
                applied = True
            if applied and start not in dirty_from:
                dirty_from[start] = offset
        self.watermark.update(envelope["src"], envelope["wm"], envelope["n"])
        self.version = version

    def _late(self, offset: int, source: int, start: int, rows: list[Any], reason: str = "late") -> bool:
        """Dead-letter the rows (True), or skip them as a replay whose fate is decided (False)."""
        if self.replay_below is None or offset < self.replay_below:
            return False  # a replay of an envelope applied before the restart
        self.late_rows += len(rows)
        self.late.extend(LateRow(offset, source, start, tuple(row), reason) for row in rows)
        return True

    def has_late(self) -> bool:
        return bool(self.late)

    def take_late(self) -> list[LateRow]:
        late, self.late = self.late, []
        return late

    def know_sources(self, sources: int) -> None:
        """The source topic has (at least) this many partitions: each must report before a close."""
        if sources > self.watermark.sources:
            self.watermark.sources = sources

    def would_close(self) -> bool:
        """The watermark has passed the close time of an open window (cheap: a handful of windows)."""
        mark = self.watermark.current()
        if mark <= self.closed_below:
            return False
        return any(closes_at(s, self.window_ms, self.lateness_ms) <= mark for s in self.windows)

    def close(self) -> None:
        """Finalise every window whose close time the watermark has passed (see apply)."""
        mark = self.watermark.current()
        if mark <= self.closed_below:
            return
        self.closed_below = mark
        version = self.version
        for start in sorted(
            s for s in self.windows if closes_at(s, self.window_ms, self.lateness_ms) <= mark
        ):
            bucket = self.windows.pop(start)
            self.dirty.pop(start, None)
            self.dirty_from.pop(start, None)
            for (gender, segment, article), (imp, clk, applied) in bucket.items():
                key = (start, gender, segment, article)
                # At least the key's own version: a restored document may be newer than any
                # envelope applied since the restart.
                final_version = version if version > applied else applied
                self.finals.append(self._write(key, imp, clk, final_version, final=True))

    def _write(self, key: GroupKey, imp: int, clk: int, version: int, final: bool) -> Write:
        source = document(key, imp, clk, final, self.partition)
        return Write(doc_id(key), version, source, key[0], final)

    def take_writes(self, live_from_ms: float | None = None) -> list[Write]:
        """Documents to write now: changed keys of live windows, then every final.

        A window that starts before live_from_ms (historical data, e.g. a replay or a catch-up;
        see clickagg.core.windows.live_from) gets no partial updates, only its final document:
        partial writes are for live dashboards, and skipping them saves most Elasticsearch work when
        reading a backlog. Skipped keys stay dirty and hold back the commit offset (commit_floor).
        None: every changed key (a final pass before a shutdown or a rebalance).
        """
        writes = []
        for start, changed in self.dirty.items():
            if not changed or (live_from_ms is not None and start < live_from_ms):
                continue
            bucket = self.windows[start]
            for rest in changed:
                imp, clk, version = bucket[rest]
                writes.append(self._write((start, *rest), imp, clk, version, final=False))
            changed.clear()
            self.dirty_from.pop(start, None)
        writes.extend(self.finals)
        self.finals = []
        return writes

    def commit_floor(self, position: int) -> int:
        """The offset to commit: nothing below it may hold a change Elasticsearch has not got."""
        return min(position, min(self.dirty_from.values(), default=position))

    def open_keys(self) -> Iterable[GroupKey]:
        for start, bucket in self.windows.items():
            for gender, segment, article in bucket:
                yield (start, gender, segment, article)
