"""Read side for the batch optimizer: complete minutes, per-minute totals and top articles by CTR;
and for the live page: the last windows of data, open ones included, CTR by segment.

Everything here is exact: sums come from composite aggregations paged to the end (never from
shard-approximate `terms` counts), and rankings compare click-through rates as exact fractions.

"Complete" is the pipeline's completeness signal, not the per-document `final` flag: a window
starting at m is complete once every partials partition has published progress (index
`<ES_INDEX>-progress`) with m + window + lateness <= closed_below_ms. Only then are all of the
window's documents written and final, including those owned by partitions that closed it later
than others. Minutes without any event are complete by the same rule and report zero totals.

Resolutions. The same readers (composite aggregations, exact) run over one of two aliases: the
minute documents (`<ES_INDEX>`, windows of WINDOW_SECONDS) or the exact hourly rollups
(`<HOURLY_INDEX>`, Settings.hourly: documents of the same shape with `time` = the UTC hour start,
written by stage 2 from the same partials). There is no separate progress for hours: an hour
[h, h + 1 h) is complete exactly when every window in it is, i.e. h + 3_600_000 <= the minutes'
complete_before_ms (hour_completeness()). Reads take `resolution`:
- "minute" (the default everywhere, as before) and "hour": read that alias;
- "auto": totals per window (minutes(), ctr_by_segment()) come from hours when the range is longer
  than AUTO_HOURS_ABOVE_MS (6 h) and starts and ends on hour boundaries, else from minutes; rankings
  (top_articles(), top_by_segment(), top_articles_in_range()) keep the minute range exactly and read
  its whole hours from the rollups and the minutes before the first and after the last whole hour
  from minute documents (plan_pieces()), when the range is longer than 6 h. So "auto" gives the
  same numbers as "minute" over the same range, with at most 2 x 59 minutes of minute documents
  read; and it reads hours only after the rollups' first hour (an hour that began before HOURLY_INDEX
  was switched on may hold only part of its counts; earlier hours come from minutes). It assumes the
  minute documents of the edges are still there (RETENTION_DAYS); HOURLY_RETENTION_DAYS is longer.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import heapq
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from clickagg.core.documents import iso
from clickagg.es.errors import Forbidden, IndexMissing, NotFound, SearchEngineError
from clickagg.es.port import SearchEngine
from clickagg.es.schema import progress_index

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_INDEX = "clickstream-minutely"
DEFAULT_WINDOW_MS = 60_000
HOUR_MS = 3_600_000
# "auto" reads hours for ranges longer than this: below it the minute read is small anyway, and a
# 6 h range holds at most 2 x 59 minutes outside its whole hours against 240 or more inside them.
AUTO_HOURS_ABOVE_MS = 6 * HOUR_MS
RESOLUTIONS = ("minute", "hour", "auto")
MAX_WINDOWS = 7 * 24 * 60  # one request covers at most a week of one-minute windows
MAX_K = 10_000
PAGE_SIZE = 10_000  # composite page; well under search.max_buckets


class QueryError(ValueError):
    """A request that cannot be answered as asked (bad range, bad k, ...): the caller's mistake."""


class IncompleteRangeError(QueryError):
    """The requested windows are not all complete yet, so their numbers could still change."""


class Unknown(enum.Enum):
    """Filter value for rows whose user is not in the reference data (LEFT JOIN: gender/segment null)."""

    UNKNOWN = "null"


UNKNOWN = Unknown.UNKNOWN
GenderFilter = str | Unknown | None
SegmentFilter = int | Unknown | None


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionProgress:
    """One partials partition's published progress: windows closing at or before closed_below_ms are final."""

    partition: int
    partitions: int
    closed_below_ms: int
    window_ms: int
    lateness_ms: int
    updated_at: str | None


@dataclass(frozen=True)
class Completeness:
    """Every window starting before complete_before_ms is complete (None: nothing is known complete)."""

    complete_before_ms: int | None
    window_ms: int
    lateness_ms: int
    partitions_expected: int
    partitions: tuple[PartitionProgress, ...]
    missing_partitions: tuple[int, ...]
    resolution: str = "minute"  # "hour": hour_completeness(), window_ms = HOUR_MS

    @property
    def last_complete_minute_ms(self) -> int | None:
        """Start of the newest complete window (an hour's with resolution "hour")."""
        return None if self.complete_before_ms is None else self.complete_before_ms - self.window_ms

    def is_complete(self, window_start_ms: int) -> bool:
        return self.complete_before_ms is not None and window_start_ms < self.complete_before_ms

    def to_dict(self) -> dict[str, Any]:
        last = self.last_complete_minute_ms
        return {
            "complete_before": _iso_or_none(self.complete_before_ms),
            "complete_before_ms": self.complete_before_ms,
            "last_complete_minute": _iso_or_none(last),
            "last_complete_minute_ms": last,
            "last_complete_window": _iso_or_none(last),
            "last_complete_window_ms": last,
            "resolution": self.resolution,
            "window_ms": self.window_ms,
            "lateness_ms": self.lateness_ms,
            "partitions_expected": self.partitions_expected,
            "missing_partitions": list(self.missing_partitions),
            "partitions": [asdict(p) for p in self.partitions],
        }


@dataclass(frozen=True)
class MinuteTotals:
    """Totals of one window over all genders, segments and articles.

    `final` says every document present is marked final; `complete` is the stronger signal that no
    document of the window will be added or changed any more.
    """

    time: str
    time_ms: int
    impressions: int
    clicks: int
    ctr: float | None
    documents: int
    final_documents: int
    final: bool
    complete: bool
    resolution: str = "minute"  # "hour": the totals of an hour from the hourly rollups

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArticleStat:
    article_id: int
    impressions: int
    clicks: int
    ctr: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TopArticles:
    """Top articles over the complete windows [from_ms, to_ms) (both None when none is complete)."""

    from_ms: int | None
    to_ms: int | None
    articles: tuple[ArticleStat, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**_range_dict(self.from_ms, self.to_ms), "articles": [a.to_dict() for a in self.articles]}


@dataclass(frozen=True)
class SegmentTop:
    segment_id: int | None  # None: users missing from the reference data
    articles: tuple[ArticleStat, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"segment_id": self.segment_id, "articles": [a.to_dict() for a in self.articles]}


@dataclass(frozen=True)
class TopBySegment:
    """Top articles per segment over the complete windows [from_ms, to_ms); segments ascending, null last."""

    from_ms: int | None
    to_ms: int | None
    segments: tuple[SegmentTop, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**_range_dict(self.from_ms, self.to_ms), "segments": [s.to_dict() for s in self.segments]}


@dataclass(frozen=True)
class WindowCounts:
    """Impressions and clicks of one window within a slice of the data (one segment, ...)."""

    time: str
    time_ms: int
    impressions: int
    clicks: int
    ctr: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SegmentSeries:
    """One segment's totals over a range of windows and its counts in each of them (zeros included)."""

    segment_id: int | None  # None: users missing from the reference data
    impressions: int
    clicks: int
    ctr: float | None
    windows: tuple[WindowCounts, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment_id": self.segment_id,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "ctr": self.ctr,
            "windows": [w.to_dict() for w in self.windows],
        }


def _iso_or_none(ms: int | None) -> str | None:
    return None if ms is None else iso(ms)


def _range_dict(from_ms: int | None, to_ms: int | None) -> dict[str, Any]:
    return {"from": _iso_or_none(from_ms), "to": _iso_or_none(to_ms), "from_ms": from_ms, "to_ms": to_ms}


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit-tested without Elasticsearch)
# ---------------------------------------------------------------------------------------------

_EPOCH_MS = re.compile(r"-?\d+")


def parse_time(value: str) -> int:
    """Epoch milliseconds from epoch ms digits or ISO 8601 (a time without offset is taken as UTC)."""
    text = value.strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"not an ISO 8601 time or epoch milliseconds: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)  # exact integer arithmetic, no float rounding
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_gender(value: str | None) -> GenderFilter:
    """'' or None: any gender; 'null': users not in the reference data; anything else: that gender."""
    if value is None or value == "":
        return None
    return UNKNOWN if value == "null" else value


def parse_segment(value: str | None) -> SegmentFilter:
    """'' or None: any segment; 'null': users not in the reference data; else an integer segment id."""
    if value is None or value == "":
        return None
    if value == "null":
        return UNKNOWN
    try:
        return int(value)
    except ValueError:
        raise QueryError(f"segment must be an integer or 'null', got {value!r}") from None


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a search-engine failure (the port's errors carry status and reason)."""
    if isinstance(exc, SearchEngineError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def filter_label(value: GenderFilter | SegmentFilter) -> str | int | None:
    """JSON form of a filter: the value, 'null' for unknown users, None for no filter."""
    return value.value if isinstance(value, Unknown) else value


def completeness_from_progress(
    docs: Iterable[Mapping[str, Any]], default_window_ms: int = DEFAULT_WINDOW_MS
) -> Completeness:
    """Apply the completeness rule to the progress documents (one per partials partition).

    Window and lateness are the largest any partition reports, so a configuration change can only
    make the answer more conservative, never claim a window early.
    """
    progress = sorted(
        (
            PartitionProgress(
                partition=int(d["partition"]),
                partitions=int(d["partitions"]),
                closed_below_ms=int(d["closed_below_ms"]),
                window_ms=int(d["window_ms"]),
                lateness_ms=int(d["lateness_ms"]),
                updated_at=d.get("updated_at"),
            )
            for d in docs
        ),
        key=lambda p: p.partition,
    )
    expected = max((p.partitions for p in progress), default=0)
    relevant = [p for p in progress if p.partition < expected]
    present = {p.partition for p in relevant}
    missing = tuple(p for p in range(expected) if p not in present)
    window = max((p.window_ms for p in relevant), default=default_window_ms)
    lateness = max((p.lateness_ms for p in relevant), default=0)
    complete_before = None
    if expected and not missing and window > 0:
        closed = min(p.closed_below_ms for p in relevant)
        # m is complete iff m + window + lateness <= closed; the last such aligned m, plus one window.
        complete_before = (closed - window - lateness) // window * window + window
    return Completeness(complete_before, window, lateness, expected, tuple(progress), missing)


def hour_completeness(minutes: Completeness, hour_ms: int = HOUR_MS) -> Completeness:
    """Completeness of the hourly rollups, from the minutes' (the same progress documents).

    An hour [h, h + hour_ms) is complete exactly when every window starting in it is, i.e. when
    h + hour_ms <= minutes.complete_before_ms; so hours are complete before the last hour boundary
    at or before it. None stays None (nothing known complete).
    """
    before = minutes.complete_before_ms
    return replace(
        minutes,
        complete_before_ms=None if before is None else before // hour_ms * hour_ms,
        window_ms=hour_ms,
        resolution="hour",
    )


def check_resolution(value: str | None, allowed: Sequence[str] = RESOLUTIONS) -> str:
    """The resolution asked for ('' or None: "minute"), or a QueryError naming the choices."""
    if value is None or value == "":
        return "minute"
    if value not in allowed:
        raise QueryError(f"resolution must be one of {', '.join(allowed)}, got {value!r}")
    return value


def range_resolution(resolution: str, from_ms: int, to_ms: int, hourly: bool, hour_ms: int = HOUR_MS) -> str:
    """The resolution, "minute" or "hour", of a read of totals per window over [from_ms, to_ms).

    "auto" picks hours when rollups exist (`hourly`), the range is longer than AUTO_HOURS_ABOVE_MS
    and both ends are hour boundaries (so the hours cover exactly the range asked for); minutes
    otherwise. "hour" without rollups is a QueryError.
    """
    resolution = check_resolution(resolution)
    if resolution == "hour" and not hourly:
        raise QueryError("resolution hour needs the hourly rollups, which are off (HOURLY_INDEX is empty)")
    if resolution != "auto":
        return resolution
    aligned = from_ms % hour_ms == 0 and to_ms % hour_ms == 0
    return "hour" if hourly and aligned and to_ms - from_ms > AUTO_HOURS_ABOVE_MS else "minute"


def plan_pieces(
    from_ms: int, to_ms: int, hours_from_ms: int | None, hour_ms: int = HOUR_MS
) -> list[tuple[str, int, int]]:
    """Split [from_ms, to_ms) into ("minute" | "hour", start, end) pieces for "auto" rankings.

    The whole hours inside the range, at or after hours_from_ms (None: no usable rollups), come from
    hours; what lies before and after them from minutes. Pieces are in time order, do not overlap
    and cover the range exactly; ranges up to AUTO_HOURS_ABOVE_MS stay one minute piece.
    """
    if to_ms <= from_ms:
        return []
    if hours_from_ms is None or to_ms - from_ms <= AUTO_HOURS_ABOVE_MS:
        return [("minute", from_ms, to_ms)]
    first = max(-(-from_ms // hour_ms) * hour_ms, -(-hours_from_ms // hour_ms) * hour_ms)
    last = to_ms // hour_ms * hour_ms
    if first >= last:
        return [("minute", from_ms, to_ms)]
    pieces = [("minute", from_ms, first), ("hour", first, last), ("minute", last, to_ms)]
    return [(kind, a, b) for kind, a, b in pieces if a < b]


def _ctr_order(a: ArticleStat, b: ArticleStat) -> int:
    """CTR descending (compared exactly by cross-multiplying), impressions descending, article_id ascending."""
    left, right = a.clicks * b.impressions, b.clicks * a.impressions
    if left != right:
        return -1 if left > right else 1
    if a.impressions != b.impressions:
        return -1 if a.impressions > b.impressions else 1
    return (a.article_id > b.article_id) - (a.article_id < b.article_id)


_CTR_KEY = functools.cmp_to_key(_ctr_order)


# Articles need this many impressions in the ranked range to be ranked by CTR (the top-articles
# methods' default, and the HTTP API's, the CLI's, the optimizer poller's and the live page's).
# A floor, not a smoothed CTR: every CTR reported stays the reference SQL's exact sum(click) /
# sum(impression) and the ranking an exact comparison of those fractions; an article's eligibility
# depends on its own impressions only, not on a prior that would need tuning per segment and hour.
# 20: a 1-impression (or 19-impression) article cannot win with one lucky click, while a fresh
# article on a quiet segment still gets ranked within minutes. Pass 0 (or 1) to rank everything.
DEFAULT_MIN_IMPRESSIONS = 20
MAX_MIN_IMPRESSIONS = 2**62


def rank_articles(
    rows: Iterable[tuple[int, int, int]], k: int, min_impressions: int = 0
) -> tuple[ArticleStat, ...]:
    """Top k of (article_id, impressions, clicks) with at least min_impressions impressions.

    CTR needs impressions, so at least one is always required. The callers pass their floor
    (DEFAULT_MIN_IMPRESSIONS unless asked otherwise); this pure function keeps 0 as its default.
    """
    floor = max(min_impressions, 1)
    stats = (ArticleStat(a, i, c, c / i) for a, i, c in rows if i >= floor)
    return tuple(heapq.nsmallest(k, stats, key=_CTR_KEY))


def window_starts(from_ms: int, to_ms: int, window_ms: int) -> range:
    """Starts of the windows overlapping [from_ms, to_ms), oldest first (a range: sized before it is built)."""
    return range(from_ms // window_ms * window_ms, to_ms, window_ms)


def recent_window_starts(newest_ms: int, now_ms: int, n: int, window_ms: int) -> range:
    """The n windows ending with the one holding newest_ms, or now_ms's when newest_ms is later, oldest first."""
    end = min(newest_ms, now_ms) // window_ms * window_ms + window_ms
    return range(end - n * window_ms, end, window_ms)


def segment_series(
    rows: Iterable[tuple[int | None, int, int, int]], starts: Sequence[int], limit: int
) -> list[SegmentSeries]:
    """Per-segment series from (segment_id, window start, impressions, clicks) sums.

    The `limit` segments with most impressions (ties: lower segment id first, the null segment last),
    each with every window of `starts`, zeros where it has no documents. Sums add up, so one segment
    and window may come in several rows; rows for windows not in `starts` are not counted.
    """
    slot = {start: i for i, start in enumerate(starts)}
    cells: dict[int | None, list[list[int]]] = {}
    for segment, start, imp, clk in rows:
        i = slot.get(start)
        if i is None:
            continue
        cell = cells.setdefault(segment, [[0, 0] for _ in starts])[i]
        cell[0] += imp
        cell[1] += clk
    totals = {seg: (sum(c[0] for c in cs), sum(c[1] for c in cs)) for seg, cs in cells.items()}
    order = sorted(cells, key=lambda seg: (-totals[seg][0], seg is None, seg or 0))[:limit]
    return [
        SegmentSeries(
            segment_id=seg,
            impressions=totals[seg][0],
            clicks=totals[seg][1],
            ctr=_ratio(*totals[seg]),
            windows=tuple(
                WindowCounts(iso(start), start, imp, clk, _ratio(imp, clk))
                for start, (imp, clk) in zip(starts, cells[seg], strict=True)
            ),
        )
        for seg in order
    ]


def _ratio(impressions: int, clicks: int) -> float | None:
    return clicks / impressions if impressions else None


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueryError(f"{name} must be an integer in {low}..{high}, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------


class QueryClient:
    """Async read API over one clickagg index (and its `-progress` companion), and its hourly rollups.

    Pass a URL (the engine is asked what it is, the client created and closed here) or a
    clickagg.es.port.SearchEngine you own. `hourly` is the hourly rollups' alias (Settings.hourly;
    None or "": rollups off, resolution "hour" refused, "auto" reads minutes). Every read takes
    `resolution` (see the module doc), default "minute".
    Before reading windows that just became complete it refreshes the alias read once: the progress
    document is indexed after the final documents, but the indices refresh independently, so
    without it a reader could see the progress before the documents it vouches for.
    """

    def __init__(
        self,
        es: str | SearchEngine,
        index: str = DEFAULT_INDEX,
        *,
        hourly: str | None = None,
        refresh_on_advance: bool = True,
        page_size: int = PAGE_SIZE,
    ) -> None:
        for name in (index, hourly or "-"):
            if not name or any(c in name for c in ",*"):
                raise QueryError(f"the index must be one index or alias name, got {name!r}")
        if hourly and hourly in (index, progress_index(index)):
            raise QueryError(
                f"the hourly alias must differ from the index and its progress index, got {hourly!r}"
            )
        self._owns = isinstance(es, str)
        self.es = _engine_for(es) if isinstance(es, str) else es
        self.index = index
        self.hourly = hourly or None
        self.progress_index = progress_index(index)
        self.page_size = page_size
        self._refresh = refresh_on_advance
        self._refreshed_before: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> QueryClient:
        """The client a worker or the CLI uses: URL or Cloud ID, authentication and TLS from Settings,
        ES_INDEX and the hourly rollups' alias (Settings.hourly, "" when HOURLY_INDEX is off)."""
        from clickagg.es import engines

        options.setdefault("hourly", getattr(settings, "hourly", None) or None)
        client = cls(engines.search_engine(settings, timeout_s=30), settings.es_index, **options)
        client._owns = True
        return client

    async def close(self) -> None:
        if self._owns:
            await self.es.close()

    async def __aenter__(self) -> QueryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def alias(self, resolution: str = "minute") -> str:
        """The alias read at a resolution ("minute" or "hour"; QueryError for hours when they are off)."""
        if check_resolution(resolution, ("minute", "hour")) == "hour":
            if not self.hourly:
                raise QueryError(
                    "resolution hour needs the hourly rollups, which are off (HOURLY_INDEX is empty)"
                )
            return self.hourly
        return self.index

    async def require_index(self, resolution: str = "minute") -> None:
        """Raise IndexMissing when the alias read at `resolution` does not exist: reads would make it
        look empty ("auto" needs the minutes; it reads hours only where the rollups have some)."""
        name = self.alias("minute" if check_resolution(resolution) == "auto" else resolution)
        if not await self.es.exists(name):
            raise IndexMissing(f"index {name} does not exist", 404, "index_not_found_exception")

    # -- completeness ----------------------------------------------------------------------

    async def completeness(self, resolution: str = "minute") -> Completeness:
        """The complete-up-to time and each partition's progress; for "hour", hour_completeness()."""
        alias = self.alias(resolution)
        try:
            resp = await self.es.search(self.progress_index, {"size": 10_000, "query": {"match_all": {}}})
        except NotFound:
            comp = completeness_from_progress([])
        else:
            comp = completeness_from_progress(hit["_source"] for hit in resp["hits"]["hits"])
        return hour_completeness(comp) if alias != self.index else comp

    async def _visible_at(self, resolution: str) -> Completeness:
        return await self._visible(await self.completeness(resolution))

    async def _visible(self, comp: Completeness) -> Completeness:
        """Make the documents of newly complete windows searchable before they are read (see class doc)."""
        alias = self.alias(comp.resolution)
        before = comp.complete_before_ms
        last = self._refreshed_before.get(alias)
        advanced = before is not None and (last is None or before > last)
        if self._refresh and advanced and before is not None:
            try:
                await self.es.refresh(alias, ignore_unavailable=True)
            except Forbidden:
                log.warning("no permission to refresh %s; reads may lag the progress signal", alias)
                self._refresh = False
            self._refreshed_before[alias] = before
        return comp

    # -- per-window totals -----------------------------------------------------------------

    async def minutes(self, from_ms: int, to_ms: int, resolution: str = "minute") -> list[MinuteTotals]:
        """Totals of every window overlapping [from_ms, to_ms), oldest first, empty windows as zeros.

        resolution "hour": hourly windows from the rollups; "auto": hours when the range is longer
        than 6 h and on hour boundaries, minutes otherwise (range_resolution()); each row says which.
        """
        if to_ms <= from_ms:
            raise QueryError("the range is empty: 'to' must be after 'from'")
        comp = await self._visible_at(range_resolution(resolution, from_ms, to_ms, bool(self.hourly)))
        return await self._minutes(window_starts(from_ms, to_ms, comp.window_ms), comp)

    async def latest_complete_minutes(self, n: int = 1, resolution: str = "minute") -> list[MinuteTotals]:
        """The last n complete windows ("hour": hours), oldest first (empty when nothing is complete yet)."""
        _check_int("n", n, 1, MAX_WINDOWS)
        comp = await self._visible_at(resolution)
        if comp.complete_before_ms is None:
            return []
        end, w = comp.complete_before_ms, comp.window_ms
        return await self._minutes(range(end - n * w, end, w), comp)

    async def _minutes(self, starts: Sequence[int], comp: Completeness) -> list[MinuteTotals]:
        _check_windows(len(starts))
        if not starts:
            return []
        w = comp.window_ms
        found: dict[int, tuple[int, int, int, int]] = {}
        aggs = {
            "impression": {"sum": {"field": "impression"}},
            "click": {"sum": {"field": "click"}},
            "final": {"filter": {"term": {"final": True}}},
        }
        query = {"range": {"time": {"gte": starts[0], "lt": starts[-1] + w, "format": "epoch_millis"}}}
        sources = [{"time": {"terms": {"field": "time"}}}]
        async for bucket in self._composite(query, sources, aggs, self.alias(comp.resolution)):
            found[int(bucket["key"]["time"])] = (
                int(bucket["impression"]["value"]),
                int(bucket["click"]["value"]),
                int(bucket["doc_count"]),
                int(bucket["final"]["doc_count"]),
            )
        rows = []
        for start in starts:
            imp, clk, docs, finals = found.get(start, (0, 0, 0, 0))
            rows.append(
                MinuteTotals(
                    time=iso(start),
                    time_ms=start,
                    impressions=imp,
                    clicks=clk,
                    ctr=(clk / imp) if imp else None,
                    documents=docs,
                    final_documents=finals,
                    final=docs == finals,
                    complete=comp.is_complete(start),
                    resolution=comp.resolution,
                )
            )
        return rows

    async def final_minutes(self, after_ms: int | None = None, limit: int = MAX_WINDOWS) -> list[int]:
        """Starts of the complete windows after `after_ms` (exclusive), oldest first, at most `limit`.

        With after_ms None the list begins at the earliest window holding documents. This is what a
        poller needs to process every complete minute exactly once, empty ones included.
        """
        _check_int("limit", limit, 1, 10 * MAX_WINDOWS)
        comp = await self._visible(await self.completeness())  # earliest_minute must see the documents
        if comp.complete_before_ms is None:
            return []
        w = comp.window_ms
        if after_ms is None:
            first = await self.earliest_minute()
            if first is None:
                return []
        else:
            first = after_ms // w * w + w
        return list(range(first, comp.complete_before_ms, w)[:limit])

    async def earliest_minute(self, resolution: str = "minute") -> int | None:
        """Start of the oldest window ("hour": hour) with any document, or None for an empty index."""
        return await self._time_bound("min", self.alias(resolution))

    async def latest_minute(self, resolution: str = "minute") -> int | None:
        """Start of the newest window ("hour": hour) with any document, or None for an empty index."""
        return await self._time_bound("max", self.alias(resolution))

    async def _time_bound(self, how: str, alias: str) -> int | None:
        resp = await self.es.search(alias, {"size": 0, "aggs": {"t": {how: {"field": "time"}}}})
        value = (resp.get("aggregations") or {}).get("t", {}).get("value")
        return None if value is None else int(value)

    async def latest_minutes(
        self, n: int = 30, now_ms: int | None = None, resolution: str = "minute"
    ) -> list[MinuteTotals]:
        """The last n windows of data ("hour": hours), open ones included, oldest first, empty ones as zeros.

        They end with the newest window holding documents (the window of now_ms, default the
        wall clock, if documents lie in the future), so a replay of archived events shows like live
        traffic. Each row says whether it is complete; a window still open can grow. Empty when the
        index holds no documents. For a live view; a batch job wants latest_complete_minutes().
        """
        _check_int("n", n, 1, MAX_WINDOWS)
        comp = await self._visible_at(resolution)
        newest = await self.latest_minute(resolution)
        if newest is None:
            return []
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return await self._minutes(recent_window_starts(newest, now, n, comp.window_ms), comp)

    async def _windows(self, from_ms: int, to_ms: int, resolution: str) -> range:
        """Starts of the windows overlapping [from_ms, to_ms) at a resolution ("minute" or "hour"),
        made visible first like minutes() does."""
        if to_ms <= from_ms:
            raise QueryError("the range is empty: 'to' must be after 'from'")
        comp = await self._visible_at(resolution)
        starts = window_starts(from_ms, to_ms, comp.window_ms)
        _check_windows(len(starts))
        return starts

    async def ctr_by_segment(
        self, from_ms: int, to_ms: int, limit: int = 8, resolution: str = "minute"
    ) -> list[SegmentSeries]:
        """Impressions, clicks and CTR per segment and window over the windows overlapping [from_ms, to_ms).

        Open windows are included (minutes() says which are complete). The `limit` segments with
        most impressions, the null segment (users not in the reference data) competing like any
        other; every window of the range in each, zeros included. Exact sums, like every read here.
        Windows of the resolution, "auto" choosing as minutes() does.
        """
        _check_int("limit", limit, 1, MAX_K)
        resolution = range_resolution(resolution, from_ms, max(to_ms, from_ms + 1), bool(self.hourly))
        starts = await self._windows(from_ms, to_ms, resolution)
        sources: list[dict[str, Any]] = [
            {"segment": {"terms": {"field": "segment_id", "missing_bucket": True}}},
            {"time": {"terms": {"field": "time"}}},
        ]
        span = (starts[0], starts[-1] + starts.step)
        rows = [
            (None if key["segment"] is None else int(key["segment"]), int(key["time"]), imp, clk)
            async for key, imp, clk in self._article_sums(span, None, None, sources, self.alias(resolution))
        ]
        return segment_series(rows, starts, limit)

    # -- top articles ----------------------------------------------------------------------

    async def _complete_range(
        self, minutes: int, end_ms: int | None, resolution: str
    ) -> tuple[int, int] | None:
        """[start, end) of the last `minutes` complete minutes (windows), ending at end_ms if given.

        "hour": the last minutes / 60 complete hours (minutes a multiple of 60, end_ms an hour
        boundary). "auto": the minute range, up to MAX_WINDOWS hours long when rollups exist.
        """
        resolution = check_resolution(resolution)
        hours = resolution == "hour" or (resolution == "auto" and self.hourly is not None)
        _check_int("minutes", minutes, 1, MAX_WINDOWS * 60 if hours else MAX_WINDOWS)
        if resolution == "hour" and minutes % 60:
            raise QueryError(f"with resolution hour, minutes must be a multiple of 60, got {minutes}")
        comp = await self._visible_at("hour" if resolution == "hour" else "minute")
        if comp.complete_before_ms is None:
            if end_ms is not None:
                raise IncompleteRangeError("no window is complete yet")
            return None
        w = comp.window_ms
        end = comp.complete_before_ms if end_ms is None else end_ms
        if end % w:
            raise QueryError(f"end_ms must be a window boundary (a multiple of {w} ms), got {end}")
        if end > comp.complete_before_ms:
            raise IncompleteRangeError(
                f"windows up to {iso(end)} are not complete yet (complete before {iso(comp.complete_before_ms)})"
            )
        return end - minutes * (60_000 if resolution == "hour" else w), end

    async def _pieces(self, span: tuple[int, int], resolution: str) -> list[tuple[str, int, int]]:
        """Where the ranked sums of [start, end) are read: one alias, or for "auto" plan_pieces()."""
        resolution = check_resolution(resolution)
        if resolution != "auto":
            self.alias(resolution)
            return [(resolution, *span)]
        if not self.hourly:
            return [("minute", *span)]
        hours_from = None
        if span[1] - span[0] > AUTO_HOURS_ABOVE_MS:
            await self._visible_at("hour")  # before the first hour is looked for, as before any read
            first = await self.earliest_minute("hour")
            # the rollups' first hour may have begun before they were switched on: minutes for it
            hours_from = None if first is None else first + HOUR_MS
        return plan_pieces(*span, hours_from)

    async def _ranked_sums(
        self,
        span: tuple[int, int],
        resolution: str,
        gender: GenderFilter,
        segment: SegmentFilter,
        sources: list[dict[str, Any]],
    ) -> dict[tuple[Any, ...], list[int]]:
        """(impressions, clicks) per composite key over the range, its pieces' sums added up."""
        sums: dict[tuple[Any, ...], list[int]] = {}
        names = [next(iter(s)) for s in sources]
        for kind, start, end in await self._pieces(span, resolution):
            async for key, imp, clk in self._article_sums(
                (start, end), gender, segment, sources, self.alias(kind)
            ):
                cell = sums.setdefault(tuple(key[n] for n in names), [0, 0])
                cell[0] += imp
                cell[1] += clk
        return sums

    async def top_articles(
        self,
        minutes: int = 5,
        k: int = 10,
        gender: GenderFilter = None,
        segment: SegmentFilter = None,
        min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
        end_ms: int | None = None,
        resolution: str = "minute",
    ) -> TopArticles:
        """Top k articles by CTR (sum clicks / sum impressions) over the last `minutes` complete windows.

        `end_ms` (a window boundary, exclusive) pins the range instead of "the newest complete";
        it must not reach past the complete ones. Ties: more impressions first, then lower article_id.
        resolution "hour": the last minutes / 60 complete hours, from the rollups; "auto": the same
        range and numbers as "minute", its whole hours read from the rollups (module doc).
        """
        _check_int("k", k, 1, MAX_K)
        _check_int("min_impressions", min_impressions, 0, MAX_MIN_IMPRESSIONS)
        span = await self._complete_range(minutes, end_ms, resolution)
        if span is None:
            return TopArticles(None, None, ())
        sources = [{"article": {"terms": {"field": "article_id"}}}]
        sums = await self._ranked_sums(span, resolution, gender, segment, sources)
        rows = [(int(key[0]), imp, clk) for key, (imp, clk) in sums.items()]
        return TopArticles(span[0], span[1], rank_articles(rows, k, min_impressions))

    async def top_by_segment(
        self,
        minutes: int = 1,
        k: int = 10,
        gender: GenderFilter = None,
        min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
        end_ms: int | None = None,
        resolution: str = "minute",
    ) -> TopBySegment:
        """Top k articles by CTR within each segment (null segment included) over complete windows."""
        _check_int("k", k, 1, MAX_K)
        _check_int("min_impressions", min_impressions, 0, MAX_MIN_IMPRESSIONS)
        span = await self._complete_range(minutes, end_ms, resolution)
        if span is None:
            return TopBySegment(None, None, ())
        sources: list[dict[str, Any]] = [
            {"segment": {"terms": {"field": "segment_id", "missing_bucket": True}}},
            {"article": {"terms": {"field": "article_id"}}},
        ]
        per_segment: dict[int | None, list[tuple[int, int, int]]] = {}
        for (seg, article), (imp, clk) in (
            await self._ranked_sums(span, resolution, gender, None, sources)
        ).items():
            per_segment.setdefault(None if seg is None else int(seg), []).append((int(article), imp, clk))
        order = sorted(per_segment, key=lambda s: (s is None, s or 0))
        segments = tuple(SegmentTop(s, rank_articles(per_segment[s], k, min_impressions)) for s in order)
        return TopBySegment(span[0], span[1], tuple(s for s in segments if s.articles))

    async def top_articles_in_range(
        self,
        from_ms: int,
        to_ms: int,
        k: int = 10,
        gender: GenderFilter = None,
        segment: SegmentFilter = None,
        min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
        resolution: str = "minute",
    ) -> tuple[ArticleStat, ...]:
        """Top k articles by CTR over the windows overlapping [from_ms, to_ms), open ones included.

        The sums and the ranking of top_articles() (exact, same tie-breaks), for a live view of a
        range that may still grow: minutes() says which of its windows are complete. "hour": the
        hours overlapping the range; "auto": the minutes overlapping it, whole hours from the rollups.
        """
        _check_int("k", k, 1, MAX_K)
        _check_int("min_impressions", min_impressions, 0, MAX_MIN_IMPRESSIONS)
        resolution = check_resolution(resolution)
        if resolution == "auto" and self.hourly:
            if to_ms <= from_ms:
                raise QueryError("the range is empty: 'to' must be after 'from'")
            w = (await self._visible_at("minute")).window_ms
            span = (from_ms // w * w, -(-to_ms // w) * w)
            _check_windows((span[1] - span[0]) // HOUR_MS)
        else:
            starts = await self._windows(from_ms, to_ms, "minute" if resolution == "auto" else resolution)
            span = (starts[0], starts[-1] + starts.step)
        sources = [{"article": {"terms": {"field": "article_id"}}}]
        sums = await self._ranked_sums(span, resolution, gender, segment, sources)
        return rank_articles(
            [(int(key[0]), imp, clk) for key, (imp, clk) in sums.items()], k, min_impressions
        )

    async def _article_sums(
        self,
        span: tuple[int, int],
        gender: GenderFilter,
        segment: SegmentFilter,
        sources: list[dict[str, Any]],
        index: str,
    ) -> AsyncIterator[tuple[dict[str, Any], int, int]]:
        """Yield (composite key, impressions, clicks) for the documents of the range and filters."""
        filters: list[dict[str, Any]] = [
            {"range": {"time": {"gte": span[0], "lt": span[1], "format": "epoch_millis"}}}
        ]
        must_not: list[dict[str, Any]] = []
        for field, value in (("gender", gender), ("segment_id", segment)):
            if isinstance(value, Unknown):
                must_not.append({"exists": {"field": field}})
            elif value is not None:
                filters.append({"term": {field: value}})
        query = {"bool": {"filter": filters, "must_not": must_not}}
        aggs = {"impression": {"sum": {"field": "impression"}}, "click": {"sum": {"field": "click"}}}
        async for bucket in self._composite(query, sources, aggs, index):
            yield bucket["key"], int(bucket["impression"]["value"]), int(bucket["click"]["value"])

    async def _composite(
        self, query: dict[str, Any], sources: list[dict[str, Any]], aggs: dict[str, Any], index: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Every bucket of a composite aggregation on `index`, page by page: exact, however many there are."""
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": self.page_size, "sources": sources}
            if after is not None:
                composite["after"] = after
            resp = await self.es.search(
                index, {"size": 0, "query": query, "aggs": {"c": {"composite": composite, "aggs": aggs}}}
            )
            result = (resp.get("aggregations") or {}).get("c")
            if not result:
                return
            for bucket in result["buckets"]:
                yield bucket
            after = result.get("after_key")
            if after is None or len(result["buckets"]) < self.page_size:
                return


def _check_windows(n: int) -> None:
    if n > MAX_WINDOWS:
        raise QueryError(
            f"the range holds {n} windows; at most {MAX_WINDOWS} per request "
            "(a longer range: resolution hour or auto, which read the hourly rollups)"
        )


def _engine_for(url: str) -> SearchEngine:
    from clickagg.config import Settings
    from clickagg.es import engines

    return engines.search_engine(Settings(elasticsearch_url=url), timeout_s=30)


class SyncQueryClient:
    """Blocking twin of QueryClient for batch jobs, on a private event loop (one client, one loop)."""

    def __init__(self, es_url: str | Any, index: str = DEFAULT_INDEX, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = (
            QueryClient(es_url, index, **options)
            if isinstance(es_url, str)
            else es_url  # a built QueryClient
        )

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SyncQueryClient:
        """URL or Cloud ID, authentication and TLS from Settings (clickagg.clients), like the worker."""
        return cls(QueryClient.from_settings(settings, **options))

    def _run(self, step: Awaitable[T]) -> T:
        return self._loop.run_until_complete(step)

    def completeness(self, resolution: str = "minute") -> Completeness:
        return self._run(self._client.completeness(resolution))

    def latest_complete_minutes(self, n: int = 1, resolution: str = "minute") -> list[MinuteTotals]:
        return self._run(self._client.latest_complete_minutes(n, resolution))

    def minutes(self, from_ms: int, to_ms: int, resolution: str = "minute") -> list[MinuteTotals]:
        return self._run(self._client.minutes(from_ms, to_ms, resolution))

    def final_minutes(self, after_ms: int | None = None, limit: int = MAX_WINDOWS) -> list[int]:
        return self._run(self._client.final_minutes(after_ms, limit))

    def earliest_minute(self, resolution: str = "minute") -> int | None:
        return self._run(self._client.earliest_minute(resolution))

    def latest_minute(self, resolution: str = "minute") -> int | None:
        return self._run(self._client.latest_minute(resolution))

    def latest_minutes(
        self, n: int = 30, now_ms: int | None = None, resolution: str = "minute"
    ) -> list[MinuteTotals]:
        return self._run(self._client.latest_minutes(n, now_ms, resolution))

    def ctr_by_segment(
        self, from_ms: int, to_ms: int, limit: int = 8, resolution: str = "minute"
    ) -> list[SegmentSeries]:
        return self._run(self._client.ctr_by_segment(from_ms, to_ms, limit, resolution))

    def top_articles_in_range(
        self,
        from_ms: int,
        to_ms: int,
        k: int = 10,
        gender: GenderFilter = None,
        segment: SegmentFilter = None,
        min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
        resolution: str = "minute",
    ) -> tuple[ArticleStat, ...]:
        return self._run(
            self._client.top_articles_in_range(
                from_ms, to_ms, k, gender, segment, min_impressions, resolution
            )
        )

    def top_articles(
        self,
        minutes: int = 5,
        k: int = 10,
        gender: GenderFilter = None,
        segment: SegmentFilter = None,
        min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
        end_ms: int | None = None,
        resolution: str = "minute",
    ) -> TopArticles:
        return self._run(
            self._client.top_articles(minutes, k, gender, segment, min_impressions, end_ms, resolution)
        )

    def top_by_segment(
        self,
        minutes: int = 1,
        k: int = 10,
        gender: GenderFilter = None,
        min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
        end_ms: int | None = None,
        resolution: str = "minute",
    ) -> TopBySegment:
        return self._run(self._client.top_by_segment(minutes, k, gender, min_impressions, end_ms, resolution))

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._client.close())
            self._loop.close()

    def __enter__(self) -> SyncQueryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
