"""The live reference data of a worker: the current UserTable, reloaded when its source changes.

Readers never lock: the table is immutable and replaced by a single attribute assignment, so a reader
sees either the old table or the new one, never a mix. A reader that wants one consistent view for a
whole batch grabs ``store.table`` once and uses it for the batch.

A new version that cannot be read, or is malformed (too many bad rows, or no rows at all), never
replaces a good table: the store keeps serving the last good copy and records why. A version refused
for its content is not re-read until it changes again; a read error (network, permissions) is retried
on the next poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .csv_parse import DEFAULT_MAX_BAD_RATIO, DEFAULT_MAX_BAD_ROWS_KEPT, BadRow, ParseResult, parse_csv
from .errors import ReferenceDataError, ReferenceDataRejected
from .sources import EmptySource, Source, open_source
from .table import Row, UserTable

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 30.0


@dataclass(frozen=True, slots=True)
class _Loaded:
    version: str
    result: ParseResult
    seconds: float


class ReferenceStore:
    """Holds the current UserTable and swaps in new versions of its source.

    Plain attributes, for metrics and health endpoints:

    * ``table``: the current UserTable (empty until ``load_initial``);
    * ``version``: version token of the loaded data (None before the first load);
    * ``users``: users in the current table;
    * ``reloads_ok`` / ``reloads_failed``: successful reloads after the initial load / failed attempts
      (a failed version check counts, a refused version counts once);
    * ``last_error``: why the latest attempt failed; None again once the source is readable and what
      it holds is loaded;
    * ``last_bad_rows`` / ``last_bad_count`` / ``last_total_rows``: from the most recent parse,
      whether its version was accepted (rows skipped) or refused (rows to fix);
    * ``loaded_at`` (epoch seconds) and ``last_load_seconds`` of the current table.
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | Source | None = None,
        *,
        max_bad_ratio: float = DEFAULT_MAX_BAD_RATIO,
        max_bad_rows_kept: int = DEFAULT_MAX_BAD_ROWS_KEPT,
        allow_empty: bool = False,
        on_swap: Callable[[UserTable], None] | None = None,
    ) -> None:
        self.source: Source = location if isinstance(location, Source) else open_source(location)
        self.max_bad_ratio = max_bad_ratio
        self.max_bad_rows_kept = max_bad_rows_kept
        # No location at all is a choice (everything joins to null); an empty *file* is usually a
        # broken export, so it is refused unless explicitly allowed.
        self.allow_empty = allow_empty or isinstance(self.source, EmptySource)
        self.on_swap = on_swap
        self.table: UserTable = UserTable.empty()
        self.version: str | None = None
        self.users = 0
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_bad_rows: list[BadRow] = []
        self.last_bad_count = 0
        self.last_total_rows = 0
        self.loaded_at: float | None = None
        self.last_load_seconds: float | None = None
        self._refused_version: str | None = None
        self._lock = threading.Lock()  # one load at a time; readers never take it

    # -- reads ------------------------------------------------------------------------------------

    def lookup(self, user_id: int) -> Row:
        """(gender, segment_id) from the current table; (None, None) for unknown users."""
        return self.table.lookup(user_id)

    @property
    def location(self) -> str:
        return self.source.location

    def stats(self) -> dict[str, object]:
        """A JSON-friendly summary for health endpoints and logs."""
        return {
            "location": self.location,
            "version": self.version,
            "users": self.users,
            "reloads_ok": self.reloads_ok,
            "reloads_failed": self.reloads_failed,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_bad_count": self.last_bad_count,
            "last_total_rows": self.last_total_rows,
            "last_bad_rows": [str(b) for b in self.last_bad_rows[:10]],
            "loaded_at": self.loaded_at,
            "last_load_seconds": self.last_load_seconds,
            "table_bytes": self.table.nbytes,
        }

    # -- loading ----------------------------------------------------------------------------------

    def load_initial(self) -> UserTable:
        """Load the first version, or raise ReferenceDataError: a worker must not start without it."""
        with self._lock:
            try:
                loaded = self._load()
            except ReferenceDataError as exc:
                self._record_failure(exc, count=False)
                raise
        self._install(loaded, initial=True)
        return self.table

    def maybe_reload(self) -> bool:
        """Reload if the source's version changed; True if a new table was swapped in. Never raises.

        Synchronous (it parses in the calling thread); from asyncio use ``poll_forever`` or
        ``await asyncio.to_thread(store.maybe_reload)``.
        """
        loaded = self._fetch_if_changed()
        if loaded is None:
            return False
        self._install(loaded, initial=False)
        return True

    async def poll_forever(self, interval_s: float = DEFAULT_POLL_INTERVAL_S) -> None:
        """Check for a new version every ``interval_s`` seconds until cancelled.

        Reading and parsing run in a thread so the event loop keeps serving; the swap and the
        ``on_swap`` callback happen on the event loop thread.
        """
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        while True:
            await asyncio.sleep(interval_s)
            try:
                loaded = await asyncio.to_thread(self._fetch_if_changed)
            except Exception as exc:  # a bug, not bad data; keep polling with the last good table
                log.exception("reference data: reload check crashed")
                self._record_failure(exc)
                continue
            if loaded is not None:
                self._install(loaded, initial=False)

    def _fetch_if_changed(self) -> _Loaded | None:
        """Read and parse the source if its version changed; None if unchanged or failed (recorded)."""
        if not self._lock.acquire(blocking=False):
            return None  # a load is already running; it will pick up the newest version
        try:
            try:
                version = self.source.version()
            except ReferenceDataError as exc:
                self._record_failure(exc)
                return None
            if version == self.version:
                # readable again, and holding what we serve (maybe after a refused version was undone)
                self.last_error = None
                self._refused_version = None
                return None
            if version == self._refused_version:
                return None  # still the version we refused: nothing new to learn
            try:
                return self._load()
            except ReferenceDataError as exc:
                self._record_failure(exc)
                return None
            except Exception as exc:  # e.g. MemoryError or a bug: never take the worker down
                log.exception("reference data: unexpected error while loading %s", self.location)
                self._record_failure(exc)
                return None
        finally:
            self._lock.release()

    def _load(self) -> _Loaded:
        started = time.perf_counter()
        with self.source.open() as snapshot:
            version = snapshot.version
            try:
                result = parse_csv(
                    snapshot,
                    max_bad_ratio=self.max_bad_ratio,
                    max_bad_rows_kept=self.max_bad_rows_kept,
                    source=self.location,
                )
            except ReferenceDataRejected as exc:
                self._refused(version, exc.bad_rows, exc.bad_count, exc.total_rows)
                raise
        if len(result.table) == 0 and not self.allow_empty:
            self._refused(version, result.bad_rows, result.bad_count, result.total_rows)
            raise ReferenceDataRejected(
                f"{self.location}: refused, it holds no valid rows ({result.total_rows} rows, "
                f"{result.bad_count} bad); an empty file is more likely a broken export than real data",
                bad_rows=result.bad_rows,
                bad_count=result.bad_count,
                total_rows=result.total_rows,
            )
        return _Loaded(version, result, time.perf_counter() - started)

    def _refused(self, version: str, bad_rows: list[BadRow], bad_count: int, total_rows: int) -> None:
        self._refused_version = version
        self.last_bad_rows = bad_rows
        self.last_bad_count = bad_count
        self.last_total_rows = total_rows

    def _record_failure(self, exc: BaseException, *, count: bool = True) -> None:
        if count:
            self.reloads_failed += 1
        self.last_error = str(exc) or type(exc).__name__
        self.last_error_at = time.time()
        if count:  # the initial load raises instead: its caller says it once (the worker: one line, exit 1)
            log.warning("reference data: keeping version %s: %s", self.version, self.last_error)

    def _install(self, loaded: _Loaded, *, initial: bool) -> None:
        result = loaded.result
        table = result.table
        self.table = table  # the atomic swap: readers see the old or the new table, nothing else
        self.version = loaded.version
        self.users = len(table)
        self.last_bad_rows = result.bad_rows
        self.last_bad_count = result.bad_count
        self.last_total_rows = result.total_rows
        self.loaded_at = time.time()
        self.last_load_seconds = loaded.seconds
        self.last_error = None
        self._refused_version = None
        if not initial:
            self.reloads_ok += 1
        log.info(
            "reference data: loaded %s version %s: %d users, %d rows, %d bad, %d duplicate ids, %.2fs",
            self.location,
            loaded.version,
            len(table),
            result.total_rows,
            result.bad_count,
            result.duplicates,
            loaded.seconds,
        )
        if self.on_swap is not None:
            try:
                self.on_swap(table)
            except Exception:
                log.exception("reference data: on_swap callback failed")
