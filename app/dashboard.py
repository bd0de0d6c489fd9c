"""The worker's built-in live page, `GET /dashboard`: a dashboard for users without Kibana.

Why it is built this way:
- Data access is plain async functions over an `AsyncElasticsearch` returning dataclasses, so the
  numbers can be tested without a browser and reused by `/dashboard/data.json`.
- Charts are inline SVG rendered here in Python: no build step, no CDN, no JavaScript library. The
  page's only script (app/static/dashboard.js) re-fetches the server-rendered fragment every few
  seconds, so rendering lives in one place; without JavaScript a meta refresh does the same.
- The window is the last N minutes *of data* (ending at the newest `time` in the index, capped at
  now): a replay of archived events shows up just like live traffic.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from clickagg import clients
from clickagg.app.auth import guarded
from clickagg.config import Settings
from clickagg.query import rank_articles

DEFAULT_MINUTES = 30
MAX_MINUTES = 24 * 60
DEFAULT_TOP = 10
DEFAULT_MIN_IMPRESSIONS = 20  # an article needs this many impressions to rank by CTR
ARTICLE_CANDIDATES = 2000  # most-seen articles considered for the CTR ranking
SEGMENT_SERIES = 8  # busiest segments drawn in the CTR chart
REFRESH_SECONDS = 5
UNKNOWN_SEGMENT = "unknown"  # segment_id null: the user is not in the reference data (LEFT JOIN)

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class MinuteTotals:
    time: str  # window start, ISO-8601 UTC
    epoch_ms: int
    impression: int
    click: int
    documents: int
    open_documents: int  # documents not yet final: the minute can still grow

    @property
    def ctr(self) -> float | None:
        return self.click / self.impression if self.impression else None

    @property
    def final(self) -> bool:
        return self.documents > 0 and self.open_documents == 0


@dataclass(frozen=True)
class SegmentPoint:
    epoch_ms: int
    impression: int
    click: int

    @property
    def ctr(self) -> float | None:
        return self.click / self.impression if self.impression else None


@dataclass(frozen=True)
class SegmentSeries:
    segment: str  # segment_id as text, or UNKNOWN_SEGMENT for null
    impression: int
    click: int
    points: list[SegmentPoint]

    @property
    def ctr(self) -> float | None:
        return self.click / self.impression if self.impression else None


@dataclass(frozen=True)
class ArticleRow:
    article_id: int
    impression: int
    click: int

    @property
    def ctr(self) -> float:
        return self.click / self.impression if self.impression else 0.0


@dataclass(frozen=True)
class Snapshot:
    index: str
    generated_at: str
    window_ms: int
    minutes_requested: int
    min_impressions: int
    since_ms: int | None = None  # None: the index holds no documents yet
    until_ms: int | None = None
    minutes: list[MinuteTotals] = field(default_factory=list)
    segments: list[SegmentSeries] = field(default_factory=list)
    articles: list[ArticleRow] = field(default_factory=list)
    index_missing: bool = False  # the worker has not created the index yet: not an error
    error: str | None = None  # Elasticsearch failed: the page says so and the script keeps old data

    @property
    def impression(self) -> int:
        return sum(m.impression for m in self.minutes)

    @property
    def click(self) -> int:
        return sum(m.click for m in self.minutes)

    def as_json(self) -> dict[str, Any]:
        """Plain data for `/dashboard/data.json`, derived values (ctr, final) included."""
        out = asdict(self)
        out["impression"], out["click"] = self.impression, self.click
        out["ctr"] = self.click / self.impression if self.impression else None
        for row, m in zip(out["minutes"], self.minutes, strict=True):
            row["ctr"], row["final"] = m.ctr, m.final
        for row, s in zip(out["segments"], self.segments, strict=True):
            row["ctr"] = s.ctr
            for point, p in zip(row["points"], s.points, strict=True):
                point["ctr"] = p.ctr
        for row, a in zip(out["articles"], self.articles, strict=True):
            row["ctr"] = a.ctr
        return out


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_filter(since_ms: int, until_ms: int) -> dict[str, Any]:
    return {"range": {"time": {"gte": since_ms, "lte": until_ms, "format": "epoch_millis"}}}


def _histogram(since_ms: int, until_ms: int, window_ms: int) -> dict[str, Any]:
    """Per-window buckets, empty ones included, so charts show quiet minutes as zero, not as gaps."""
    return {
        "date_histogram": {
            "field": "time",
            "fixed_interval": f"{window_ms // 1000}s",
            "min_doc_count": 0,
            "extended_bounds": {"min": since_ms, "max": until_ms},
        },
        "aggs": {"impression": {"sum": {"field": "impression"}}, "click": {"sum": {"field": "click"}}},
    }


async def latest_window_ms(es: AsyncElasticsearch, index: str, now_ms: int | None = None) -> int | None:
    """Start of the newest window in the index (capped at now), or None when it holds no documents."""
    resp = await es.search(index=index, size=0, aggs={"latest": {"max": {"field": "time"}}})
    value = resp["aggregations"]["latest"]["value"]
    if value is None:
        return None
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return min(int(value), now_ms)


async def minute_totals(
    es: AsyncElasticsearch, index: str, since_ms: int, until_ms: int, window_ms: int
) -> list[MinuteTotals]:
    """Impressions and clicks per window, with how many of its documents are still open."""
    hist = _histogram(since_ms, until_ms, window_ms)
    hist["aggs"]["open"] = {"filter": {"term": {"final": False}}}
    resp = await es.search(
        index=index, size=0, query=_time_filter(since_ms, until_ms), aggs={"per_minute": hist}
    )
    return [
        MinuteTotals(
            time=iso(int(b["key"])),
            epoch_ms=int(b["key"]),
            impression=int(b["impression"]["value"]),
            click=int(b["click"]["value"]),
            documents=int(b["doc_count"]),
            open_documents=int(b["open"]["doc_count"]),
        )
        for b in resp["aggregations"]["per_minute"]["buckets"]
    ]


async def segment_ctr(
    es: AsyncElasticsearch,
    index: str,
    since_ms: int,
    until_ms: int,
    window_ms: int,
    limit: int = SEGMENT_SERIES,
) -> list[SegmentSeries]:
    """Clicks / impressions per segment and window for the `limit` segments with most impressions.

    Null segments (users missing from the reference data) are a series of their own.
    """
    per_segment = {
        "impression": {"sum": {"field": "impression"}},
        "click": {"sum": {"field": "click"}},
        "per_minute": _histogram(since_ms, until_ms, window_ms),
    }
    resp = await es.search(
        index=index,
        size=0,
        query=_time_filter(since_ms, until_ms),
        aggs={
            "segments": {
                "terms": {"field": "segment_id", "size": limit, "order": {"impression": "desc"}},
                "aggs": per_segment,
            },
            "unknown": {"missing": {"field": "segment_id"}, "aggs": per_segment},
        },
    )
    aggs = resp["aggregations"]
    buckets = [(str(b["key"]), b) for b in aggs["segments"]["buckets"]]
    if aggs["unknown"]["doc_count"]:
        buckets.append((UNKNOWN_SEGMENT, aggs["unknown"]))
    series = [
        SegmentSeries(
            segment=label,
            impression=int(b["impression"]["value"]),
            click=int(b["click"]["value"]),
            points=[
                SegmentPoint(int(p["key"]), int(p["impression"]["value"]), int(p["click"]["value"]))
                for p in b["per_minute"]["buckets"]
            ],
        )
        for label, b in buckets
    ]
    series.sort(key=lambda s: (-s.impression, s.segment))
    return series[:limit]


async def top_articles(
    es: AsyncElasticsearch,
    index: str,
    since_ms: int,
    until_ms: int,
    limit: int = DEFAULT_TOP,
    min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
    candidates: int = ARTICLE_CANDIDATES,
) -> list[ArticleRow]:
    """Articles by CTR (sum click / sum impression), among those with at least `min_impressions`.

    Elasticsearch sums per article for the `candidates` most-seen articles; the CTR ranking is done
    here, because pipeline aggregations (bucket_selector, bucket_sort) live in a module that not
    every Elasticsearch node has. Ties break by impressions, then by the lower id: a stable order.
    """
    resp = await es.search(
        index=index,
        size=0,
        query=_time_filter(since_ms, until_ms),
        aggs={
            "articles": {
                "terms": {"field": "article_id", "size": candidates, "order": {"impression": "desc"}},
                "aggs": {
                    "impression": {"sum": {"field": "impression"}},
                    "click": {"sum": {"field": "click"}},
                },
            }
        },
    )
    sums = (
        (int(b["key"]), int(b["impression"]["value"]), int(b["click"]["value"]))
        for b in resp["aggregations"]["articles"]["buckets"]
    )
    # The read side's ranking (exact CTR comparison, same tie-breaks), so both rank alike.
    return [
        ArticleRow(a.article_id, a.impressions, a.clicks) for a in rank_articles(sums, limit, min_impressions)
    ]


async def snapshot(
    es: AsyncElasticsearch,
    index: str,
    *,
    window_seconds: int = 60,
    minutes: int = DEFAULT_MINUTES,
    top: int = DEFAULT_TOP,
    min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
    now_ms: int | None = None,
) -> Snapshot:
    """Everything the page shows, for the last `minutes` windows of data."""
    window_ms = window_seconds * 1000
    base = Snapshot(
        index=index,
        generated_at=iso(int(time.time() * 1000)),
        window_ms=window_ms,
        minutes_requested=minutes,
        min_impressions=min_impressions,
    )
    try:
        latest = await latest_window_ms(es, index, now_ms)
    except NotFoundError:
        return Snapshot(**{**_fields(base), "index_missing": True})
    if latest is None:
        return base
    until = latest // window_ms * window_ms
    since = until - (minutes - 1) * window_ms
    per_minute, segments, articles = await asyncio.gather(
        minute_totals(es, index, since, until, window_ms),
        segment_ctr(es, index, since, until, window_ms),
        top_articles(es, index, since, until, limit=top, min_impressions=min_impressions),
    )
    return Snapshot(
        **{
            **_fields(base),
            "since_ms": since,
            "until_ms": until,
            "minutes": per_minute,
            "segments": segments,
            "articles": articles,
        }
    )


def _fields(s: Snapshot) -> dict[str, Any]:
    return {name: getattr(s, name) for name in s.__dataclass_fields__}


# --------------------------------------------------------------------------- rendering

_esc = html.escape


def _num(n: int) -> str:
    return f"{n:,}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M")


def nice_ceiling(value: float) -> float:
    """Smallest 1/2/2.5/5 × 10^k at or above value: round axis maxima."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


@dataclass(frozen=True)
class _Frame:
    """Plot geometry shared by the charts: pixel positions for window index and value."""

    width: int = 760
    height: int = 240
    left: int = 64
    right: int = 64
    top: int = 24
    bottom: int = 30

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom

    def x(self, i: float, n: int) -> float:
        return self.left + (i + 0.5) * self.plot_w / max(n, 1)

    def y(self, value: float, maximum: float) -> float:
        return self.top + self.plot_h * (1 - value / maximum)

    def x_labels(self, times: list[int]) -> str:
        n = len(times)
        every = max(1, math.ceil(n / 8))
        out = []
        for i, t in enumerate(times):
            # every k-th minute, plus the newest one; a k-th label too close to it gives way
            if i == n - 1 or (i % every == 0 and n - 1 - i >= every / 2):
                out.append(
                    f'<text x="{self.x(i, n):.1f}" y="{self.height - 10}" text-anchor="middle">{_hhmm(t)}</text>'
                )
        return "".join(out)

    def y_axis(self, maximum: float, fmt: Any, side: str = "left", grid: bool = True) -> str:
        out = []
        leading = maximum / 10 ** math.floor(math.log10(maximum))
        # round tick values: 0.5k steps up to 2.5k, not 625s
        steps = 5 if min(abs(leading - 2.5), abs(leading - 5)) < 1e-6 else 4
        for k in range(steps + 1):
            value = maximum * k / steps
            y = self.y(value, maximum)
            if grid:
                out.append(
                    f'<line class="grid" x1="{self.left}" x2="{self.width - self.right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                )
            if side == "left":
                out.append(f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(value)}</text>')
            else:
                out.append(
                    f'<text x="{self.width - self.right + 6}" y="{y + 4:.1f}" text-anchor="start">{fmt(value)}</text>'
                )
        return "".join(out)


def _short(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def traffic_chart(minutes: list[MinuteTotals]) -> str:
    """Impressions as bars (left axis), clicks as a line (right axis); open minutes drawn lighter."""
    f = _Frame()
    n = len(minutes)
    imp_max = nice_ceiling(max((m.impression for m in minutes), default=0))
    clk_max = nice_ceiling(max((m.click for m in minutes), default=0))
    bar_w = max(1.0, f.plot_w / max(n, 1) * 0.7)
    parts = [
        f'<svg class="chart" viewBox="0 0 {f.width} {f.height}" role="img" '
        f'aria-label="Impressions and clicks per minute">',
        f.y_axis(imp_max, _short),
        f.y_axis(clk_max, _short, side="right", grid=False),
    ]
    for i, m in enumerate(minutes):
        x, y = f.x(i, n), f.y(m.impression, imp_max)
        cls = "bar" if m.final or not m.documents else "bar open"
        parts.append(
            f'<rect class="{cls}" x="{x - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{f.top + f.plot_h - y:.1f}"><title>{_hhmm(m.epoch_ms)} UTC: '
            f"{_num(m.impression)} impressions, {_num(m.click)} clicks"
            f"{'' if m.final or not m.documents else ' (open)'}</title></rect>"
        )
    points = " ".join(f"{f.x(i, n):.1f},{f.y(m.click, clk_max):.1f}" for i, m in enumerate(minutes))
    if points:
        parts.append(f'<polyline class="clicks" points="{points}"/>')
    parts.append(f.x_labels([m.epoch_ms for m in minutes]))
    parts.append(
        f'<text class="axis-title" x="2" y="{f.top - 12}">impressions</text>'
        f'<text class="axis-title clicks-text" x="{f.width - f.right + 6}" y="{f.top - 12}">clicks</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def segment_chart(series: list[SegmentSeries]) -> str:
    """CTR per segment and minute as lines; a minute without impressions breaks the line."""
    f = _Frame(right=24)
    times = [p.epoch_ms for p in series[0].points] if series else []
    n = len(times)
    peak = max((p.ctr or 0.0 for s in series for p in s.points), default=0.0)
    maximum = nice_ceiling(peak * 100) / 100 if peak > 0 else 0.01
    parts = [
        f'<svg class="chart" viewBox="0 0 {f.width} {f.height}" role="img" aria-label="CTR by segment">',
        f.y_axis(maximum, lambda v: f"{v * 100:g}%"),
    ]
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, p in enumerate(s.points):
            ctr = p.ctr
            if ctr is None:
                runs.append([])
                continue
            runs[-1].append(f"{f.x(i, n):.1f},{f.y(ctr, maximum):.1f}")
        for run in runs:
            if len(run) == 1:
                x, y = run[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>')
            elif run:
                parts.append(f'<polyline class="series" stroke="{color}" points="{" ".join(run)}"/>')
    parts.append(f.x_labels(times))
    parts.append("</svg>")
    legend = "".join(
        f'<li data-segment="{_esc(s.segment)}"><span class="swatch" style="background:{PALETTE[k % len(PALETTE)]}">'
        f"</span>segment {_esc(s.segment)} <b>{_pct(s.ctr)}</b> "
        f"<small>{_num(s.click)} / {_num(s.impression)}</small></li>"
        for k, s in enumerate(series)
    )
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


def minutes_table(minutes: list[MinuteTotals]) -> str:
    rows = []
    for m in reversed(minutes):  # newest first
        if m.final:
            state = '<span class="tag final">final</span>'
        elif m.documents:
            state = '<span class="tag open">open</span>'
        else:
            state = '<span class="tag empty">no data</span>'
        rows.append(
            f'<tr data-time="{m.time}" data-impression="{m.impression}" data-click="{m.click}" '
            f'data-final="{str(m.final).lower()}"><td>{_hhmm(m.epoch_ms)}</td>'
            f'<td class="num">{_num(m.impression)}</td><td class="num">{_num(m.click)}</td>'
            f'<td class="num">{_pct(m.ctr)}</td><td>{state}</td></tr>'
        )
    return (
        '<table id="minutes-table"><thead><tr><th>minute (UTC)</th><th class="num">impressions</th>'
        '<th class="num">clicks</th><th class="num">CTR</th><th>state</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def articles_table(articles: list[ArticleRow], min_impressions: int) -> str:
    if not articles:
        return f'<p class="empty">No article has {min_impressions}+ impressions in this window yet.</p>'
    best = max(a.ctr for a in articles) or 1.0
    rows = "".join(
        f'<tr data-article="{a.article_id}" data-impression="{a.impression}" data-click="{a.click}">'
        f'<td class="num">{rank}</td><td class="id">{a.article_id}</td>'
        f'<td class="num">{_num(a.impression)}</td><td class="num">{_num(a.click)}</td>'
        f'<td class="ctr"><span class="meter" style="width:{a.ctr / best * 100:.1f}%"></span>'
        f"<span>{_pct(a.ctr)}</span></td></tr>"
        for rank, a in enumerate(articles, start=1)
    )
    return (
        '<table id="articles-table"><thead><tr><th class="num">#</th><th>article_id</th>'
        '<th class="num">impressions</th><th class="num">clicks</th><th>CTR</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def render_fragment(s: Snapshot) -> str:
    """The live part of the page, re-fetched by the page's script every few seconds."""
    if s.error:
        return f'<p class="notice error">{_esc(s.error)}</p>'
    if s.index_missing:
        return f'<p class="notice">Index <code>{_esc(s.index)}</code> does not exist yet.</p>'
    if s.until_ms is None or s.since_ms is None:
        return f'<p class="notice">Index <code>{_esc(s.index)}</code> holds no documents yet.</p>'
    ctr = s.click / s.impression if s.impression else None
    complete = sum(1 for m in s.minutes if m.final)
    with_data = sum(1 for m in s.minutes if m.documents)
    window = f"{iso(s.since_ms)[:16].replace('T', ' ')} – {_hhmm(s.until_ms)} UTC"
    tiles = (
        f'<div class="tile"><span>impressions</span><b id="total-impression" data-value="{s.impression}">'
        f"{_num(s.impression)}</b></div>"
        f'<div class="tile"><span>clicks</span><b id="total-click" data-value="{s.click}">{_num(s.click)}</b></div>'
        f'<div class="tile"><span>CTR</span><b id="total-ctr">{_pct(ctr)}</b></div>'
        f'<div class="tile"><span>complete minutes</span><b id="complete-minutes">{complete} / {with_data}</b></div>'
    )
    return (
        f'<section class="summary" data-since="{iso(s.since_ms)}" data-until="{iso(s.until_ms)}">'
        f'<p class="window">Last {len(s.minutes)} minutes of data in <code>{_esc(s.index)}</code>: '
        f"{window}</p>{tiles}</section>"
        '<section class="card" id="traffic"><h2>Impressions and clicks per minute</h2>'
        '<p class="hint"><span class="swatch bar-swatch"></span>impressions (left axis) '
        '<span class="swatch clicks-swatch"></span>clicks (right axis) · lighter bars: minute still open</p>'
        f'<div class="split"><div>{traffic_chart(s.minutes)}</div>'
        f'<div class="scroll">{minutes_table(s.minutes)}</div></div></section>'
        '<div class="row">'
        '<section class="card" id="segments"><h2>CTR by segment</h2>'
        '<p class="hint">sum(click) / sum(impression) per segment and minute, busiest segments</p>'
        f"{segment_chart(s.segments)}</section>"
        '<section class="card" id="top-articles"><h2>Top articles by CTR</h2>'
        f'<p class="hint">articles with at least {s.min_impressions} impressions in the window</p>'
        f"{articles_table(s.articles, s.min_impressions)}</section>"
        "</div>"
    )


def _static(name: str) -> str:
    return resources.files("clickagg.app").joinpath("static", name).read_text(encoding="utf-8")


def render_page(s: Snapshot, fragment_url: str, refresh_seconds: int = REFRESH_SECONDS) -> str:
    """The whole page: styles and the refresh script are inlined, so it needs no other request."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>clickagg · live · {_esc(s.index)}</title>"
        f'<noscript><meta http-equiv="refresh" content="{refresh_seconds}"></noscript>'
        f"<style>{_static('dashboard.css')}</style></head>"
        f'<body data-fragment-url="{_esc(fragment_url)}" data-refresh-ms="{refresh_seconds * 1000}" '
        'data-refreshes="0">'
        "<header><h1>clickagg <span>live</span></h1>"
        f'<span id="status" class="ok">rendered {s.generated_at[11:19]} UTC</span></header>'
        f'<main id="live">{render_fragment(s)}</main>'
        "<footer>Exact per-minute counts from Elasticsearch, written by the clickagg worker. "
        'JSON: <a href="/dashboard/data.json">/dashboard/data.json</a></footer>'
        f"<script>{_static('dashboard.js')}</script></body></html>"
    )


# --------------------------------------------------------------------------- web


def _int_param(request: Any, name: str, default: int, low: int, high: int) -> int:
    """A query parameter clamped to [low, high]; junk falls back to the default."""
    try:
        value = int(request.query.get(name, default))
    except (TypeError, ValueError):
        return default
    return max(low, min(high, value))


class LivePage:
    """Holds the page's own Elasticsearch client, created on first use and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._es: AsyncElasticsearch | None = None

    @property
    def es(self) -> AsyncElasticsearch:
        if self._es is None:
            self._es = clients.es_async(self.settings, request_timeout=10)
        return self._es

    async def close(self) -> None:
        if self._es is not None:
            await self._es.close()
            self._es = None

    async def snapshot(self, request: Any) -> Snapshot:
        try:
            return await snapshot(
                self.es,
                self.settings.es_index,
                window_seconds=self.settings.window_seconds,
                minutes=_int_param(request, "minutes", DEFAULT_MINUTES, 1, MAX_MINUTES),
                top=_int_param(request, "top", DEFAULT_TOP, 1, 100),
                min_impressions=_int_param(request, "min_impressions", DEFAULT_MIN_IMPRESSIONS, 0, 10**12),
            )
        except Exception as exc:  # Elasticsearch down or failing: say so on the page, keep serving
            return Snapshot(
                index=self.settings.es_index,
                generated_at=iso(int(time.time() * 1000)),
                window_ms=self.settings.window_ms,
                minutes_requested=DEFAULT_MINUTES,
                min_impressions=DEFAULT_MIN_IMPRESSIONS,
                error=f"Elasticsearch query failed: {type(exc).__name__}: {exc}"[:500],
            )


def register(app: Any, settings: Settings) -> LivePage:
    """Add `/dashboard`, `/dashboard/fragment` and `/dashboard/data.json` to the worker's web server."""
    page = LivePage(settings)
    guard = guarded(settings)

    @app.page("/dashboard")
    @guard
    async def dashboard(web: Any, request: Any) -> Any:
        query = request.query_string
        fragment_url = "/dashboard/fragment" + (f"?{query}" if query else "")
        return web.html(render_page(await page.snapshot(request), fragment_url))

    @app.page("/dashboard/fragment")
    @guard
    async def dashboard_fragment(web: Any, request: Any) -> Any:
        s = await page.snapshot(request)
        return web.html(render_fragment(s), status=503 if s.error else 200)

    @app.page("/dashboard/data.json")
    @guard
    async def dashboard_data(web: Any, request: Any) -> Any:
        s = await page.snapshot(request)
        return web.json(s.as_json(), status=503 if s.error else 200)

    @app.on_before_shutdown.connect
    async def close_dashboard_client(sender: Any, *args: Any, **kwargs: Any) -> None:
        await page.close()

    return page
