"""The live page's view: pure functions from a Snapshot to HTML, inline SVG and JSON. No I/O.

app/dashboard.py gathers the Snapshot through clickagg.query (the one read model: its MinuteTotals,
SegmentSeries and ArticleStat, exact sums, the completeness signal) and hands in the page's static
assets; everything here is a function of its arguments, so it is tested without Elasticsearch, a web
server or a browser (tests/unit/test_dashboard_render.py).

Charts are inline SVG: no build step, no CDN, no JavaScript library. A minute still counting (not
complete by the pipeline's signal, clickagg.query, and with documents not final yet) is drawn as
open: a lighter, outlined bar labelled "open" and dashed lines into it (clicks, and each segment's
CTR), so the filling newest minute reads as "open", not as a dip in traffic.

The hourly view (view=hour, "last 7 days, hourly") is the same fragment over Snapshot.resolution
"hour": rows are hours of the hourly rollups, the words say hours, the time axis marks days.

Layout: one column below 900 px; below 560 px (a phone, 420 px and up) the tiles go two by two,
tables scroll sideways inside their card instead of widening the page, and chart text is drawn
larger so that it stays readable when the SVG is scaled down (tests/integration/test_live_page.py
checks 420 px in Chromium).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickagg.core.documents import iso
from clickagg.query import DEFAULT_MIN_IMPRESSIONS, ArticleStat, MinuteTotals, SegmentSeries

UNKNOWN_SEGMENT = "unknown"  # segment_id null: the user is not in the reference data (LEFT JOIN)
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
DASHED = ' stroke-dasharray="5 4"'  # an SVG presentation attribute: the stylesheet sets no dash
DEFAULT_MINUTES = 30
MAX_MINUTES = 24 * 60
DEFAULT_TOP = 10
MAX_TOP = 100
GENDER_SUGGESTIONS = ("female", "male", "null")  # a datalist: any other gender can be typed
VIEW_CHOICES = (("minute", "last minutes"), ("hour", "last 7 days, hourly"))


# --------------------------------------------------------------------------- the input


@dataclass(frozen=True)
class Assets:
    """The page's stylesheet and script, inlined so the page needs no other request."""

    css: str
    js: str


@dataclass(frozen=True)
class Controls:
    """The page's controls: what it was asked for (checked by app/dashboard.py), or, when refused,
    what was typed (`typed`) and which control was wrong (`invalid`, None: the URL itself)."""

    minutes: int = DEFAULT_MINUTES
    top: int = DEFAULT_TOP
    min_impressions: int = DEFAULT_MIN_IMPRESSIONS
    gender: str = ""  # "": any; "null": users not in the reference data
    segment: str = ""  # "": any; "null": as for gender; else an integer segment id
    view: str = "minute"  # "hour": the last 7 days of hourly rollups
    typed: tuple[tuple[str, str], ...] = ()
    invalid: str | None = None

    @classmethod
    def refused(cls, typed: dict[str, str], invalid: str | None) -> Controls:
        return cls(typed=tuple(sorted(typed.items())), invalid=invalid)

    def form_values(self) -> dict[str, str]:
        if self.typed:
            return dict(self.typed)
        return {
            "minutes": str(self.minutes),
            "top": str(self.top),
            "min_impressions": str(self.min_impressions),
            "gender": self.gender,
            "segment": self.segment,
            "view": self.view,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "top": self.top,
            "min_impressions": self.min_impressions,
            "gender": self.gender or None,
            "segment": self.segment or None,
            "view": self.view,
        }


@dataclass(frozen=True)
class Snapshot:
    """Everything the page shows: the last `minutes_requested` windows of data, oldest first."""

    index: str
    generated_at: str  # ISO-8601 UTC
    window_ms: int
    minutes_requested: int
    min_impressions: int
    minutes: tuple[MinuteTotals, ...] = ()  # empty: the index holds no documents yet
    segments: tuple[SegmentSeries, ...] = ()
    articles: tuple[ArticleStat, ...] = ()
    error: str | None = None  # the search engine failed: the page says so and the script keeps old data
    controls: Controls = Controls()
    bad_request: str | None = None  # the parameters were refused: the page says why, shows no data
    resolution: str = "minute"  # "hour": `minutes` are hours of the hourly rollups (view=hour)

    @property
    def unit(self) -> str:
        """What one row is, in words: minute or hour."""
        return "hour" if self.resolution == "hour" else "minute"

    @property
    def since_ms(self) -> int | None:
        """Start of the oldest window shown."""
        return self.minutes[0].time_ms if self.minutes else None

    @property
    def until_ms(self) -> int | None:
        """Start of the newest window shown."""
        return self.minutes[-1].time_ms if self.minutes else None

    @property
    def impressions(self) -> int:
        return sum(m.impressions for m in self.minutes)

    @property
    def clicks(self) -> int:
        return sum(m.clicks for m in self.minutes)

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def open_minutes(self) -> int:
        """Windows still counting (state 'open')."""
        return sum(1 for m in self.minutes if minute_state(m) == "open")

    @property
    def incomplete_minutes(self) -> int:
        """Windows not complete: their numbers, and so the ranking, can still change."""
        return sum(1 for m in self.minutes if not m.complete)

    def as_json(self) -> dict[str, Any]:
        """`/dashboard/data.json`: the page's own field names (impression, click, segment label)."""
        return {
            "index": self.index,
            "generated_at": self.generated_at,
            "window_ms": self.window_ms,
            "resolution": self.resolution,
            "minutes_requested": self.minutes_requested,
            "min_impressions": self.min_impressions,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "impression": self.impressions,
            "click": self.clicks,
            "ctr": self.ctr,
            "open_minutes": self.open_minutes,
            "incomplete_minutes": self.incomplete_minutes,
            "minutes": [_minute_json(m) for m in self.minutes],
            "segments": [_segment_json(s) for s in self.segments],
            "articles": [
                {"article_id": a.article_id, "impression": a.impressions, "click": a.clicks, "ctr": a.ctr}
                for a in self.articles
            ],
            "query": None if self.bad_request else self.controls.as_json(),
            "error": self.bad_request or self.error,
        }


def _minute_json(m: MinuteTotals) -> dict[str, Any]:
    return {
        "time": m.time,
        "epoch_ms": m.time_ms,
        "impression": m.impressions,
        "click": m.clicks,
        "ctr": m.ctr,
        "documents": m.documents,
        "open_documents": m.documents - m.final_documents,
        "final": m.final and m.documents > 0,  # documents present and all of them final
        "complete": m.complete,  # the pipeline's signal: no document of the window changes any more
    }


def _segment_json(s: SegmentSeries) -> dict[str, Any]:
    return {
        "segment": segment_label(s.segment_id),
        "impression": s.impressions,
        "click": s.clicks,
        "ctr": s.ctr,
        "points": [
            {"epoch_ms": w.time_ms, "impression": w.impressions, "click": w.clicks, "ctr": w.ctr}
            for w in s.windows
        ],
    }


def segment_label(segment_id: int | None) -> str:
    return UNKNOWN_SEGMENT if segment_id is None else str(segment_id)


def minute_state(m: MinuteTotals) -> str:
    """How the page shows one minute.

    'complete': the pipeline's signal, no document of it changes any more; 'open': still counting
    (not complete, some document not final); 'final': not complete yet, but every document present
    is final (another partials partition may not have closed it yet, or no progress is published
    for the index); 'empty': no document.
    """
    if not m.documents:
        return "empty"
    if m.complete:
        return "complete"
    return "final" if m.final else "open"


# --------------------------------------------------------------------------- formatting

_esc = html.escape


def _num(n: int) -> str:
    return f"{n:,}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M")


def _when(ms: int, resolution: str = "minute") -> str:
    """A window's start in a table or tooltip: 14:05 for a minute, 12-01 14:00 for an hour."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(
        "%m-%d %H:00" if resolution == "hour" else "%H:%M"
    )


def _short(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def nice_ceiling(value: float) -> float:
    """Smallest 1/2/2.5/5 × 10^k at or above value: round axis maxima."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


# --------------------------------------------------------------------------- charts


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

    def x_labels(self, times: Sequence[int], resolution: str = "minute") -> str:
        n = len(times)
        every = max(1, math.ceil(n / 8))
        out = []
        for i, t in enumerate(times):
            if resolution == "hour":
                # each day's first hour (its date), plus the newest hour; a day too close to it gives way
                label = _hhmm(t) if i == n - 1 else datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%m-%d")
                show = i == n - 1 or (t % 86_400_000 == 0 and n - 1 - i >= 8)
            else:
                # every k-th minute, plus the newest one; a k-th label too close to it gives way
                label = _hhmm(t)
                show = i == n - 1 or (i % every == 0 and n - 1 - i >= every / 2)
            if show:
                out.append(
                    f'<text x="{self.x(i, n):.1f}" y="{self.height - 10}" text-anchor="middle">{label}</text>'
                )
        return "".join(out)

    def y_axis(
        self, maximum: float, fmt: Callable[[float], str], side: str = "left", grid: bool = True
    ) -> str:
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


def line_runs(settled: Sequence[bool]) -> list[tuple[bool, int, int]]:
    """Split a line through n points into runs (solid, first, last) of points, sharing their ends.

    A step between two points is solid when neither minute is open, dashed when either is.
    """
    runs: list[tuple[bool, int, int]] = []
    for i in range(1, len(settled)):
        solid = settled[i - 1] and settled[i]
        if runs and runs[-1][0] == solid:
            runs[-1] = (solid, runs[-1][1], i)
        else:
            runs.append((solid, i - 1, i))
    return runs


def traffic_chart(minutes: Sequence[MinuteTotals]) -> str:
    """Impressions as bars (left axis), clicks as a line (right axis); open minutes lighter and dashed.

    Rows of the hourly rollups (resolution "hour") are drawn the same way, one bar an hour.
    """
    f = _Frame()
    resolution = minutes[0].resolution if minutes else "minute"
    n = len(minutes)
    imp_max = nice_ceiling(max((m.impressions for m in minutes), default=0))
    clk_max = nice_ceiling(max((m.clicks for m in minutes), default=0))
    bar_w = max(1.0, f.plot_w / max(n, 1) * 0.7)
    parts = [
        f'<svg class="chart" viewBox="0 0 {f.width} {f.height}" role="img" '
        f'aria-label="Impressions and clicks per {resolution}">',
        f.y_axis(imp_max, _short),
        f.y_axis(clk_max, _short, side="right", grid=False),
    ]
    for i, m in enumerate(minutes):
        x, y = f.x(i, n), f.y(m.impressions, imp_max)
        still = minute_state(m) == "open"
        parts.append(
            f'<rect class="{"bar open" if still else "bar"}" x="{x - bar_w / 2:.1f}" y="{y:.1f}" '
            f'width="{bar_w:.1f}" height="{f.top + f.plot_h - y:.1f}"><title>{_when(m.time_ms, resolution)} UTC: '
            f"{_num(m.impressions)} impressions, {_num(m.clicks)} clicks"
            f"{' (open: still counting)' if still else ''}</title></rect>"
        )
        # said in words too: a short bar here is a window still filling, not a dip; once per run of
        # open windows (hours side by side in the hourly view), over its newest bar
        last_of_run = i == n - 1 or minute_state(minutes[i + 1]) != "open"
        if still and last_of_run:
            parts.append(
                f'<text class="open-label" x="{x:.1f}" y="{min(y, f.top + f.plot_h) - 4:.1f}" '
                'text-anchor="middle">open</text>'
            )
    points = [f"{f.x(i, n):.1f},{f.y(m.clicks, clk_max):.1f}" for i, m in enumerate(minutes)]
    for solid, first, last in line_runs([minute_state(m) != "open" for m in minutes]):
        dash = "" if solid else DASHED
        parts.append(f'<polyline class="clicks"{dash} points="{" ".join(points[first : last + 1])}"/>')
    parts.append(f.x_labels([m.time_ms for m in minutes], resolution))
    parts.append(
        f'<text class="axis-title" x="2" y="{f.top - 12}">impressions</text>'
        f'<text class="axis-title clicks-text" x="{f.width - f.right + 6}" y="{f.top - 12}">clicks</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def segment_chart(
    series: Sequence[SegmentSeries], still_open: Sequence[bool] = (), resolution: str = "minute"
) -> str:
    """CTR per segment and minute as lines; a minute without impressions breaks the line.

    `still_open[i]` says window i is still counting: the line into it is dashed, as in the traffic
    chart, since its CTR is of a partial minute.
    """
    f = _Frame(right=24)
    times = [w.time_ms for w in series[0].windows] if series else []
    n = len(times)
    peak = max((w.ctr or 0.0 for s in series for w in s.windows), default=0.0)
    maximum = nice_ceiling(peak * 100) / 100 if peak > 0 else 0.01
    parts = [
        f'<svg class="chart" viewBox="0 0 {f.width} {f.height}" role="img" aria-label="CTR by segment">',
        f.y_axis(maximum, lambda v: f"{v * 100:g}%"),
    ]
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        runs: list[list[tuple[str, bool]]] = [[]]  # (point, settled) between minutes without impressions
        for i, w in enumerate(s.windows):
            if w.ctr is None:
                runs.append([])
                continue
            settled = not (i < len(still_open) and still_open[i])
            runs[-1].append((f"{f.x(i, n):.1f},{f.y(w.ctr, maximum):.1f}", settled))
        for run in runs:
            if len(run) == 1:
                x, y = run[0][0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>')
                continue
            for solid, first, last in line_runs([settled for _, settled in run]):
                points = " ".join(point for point, _ in run[first : last + 1])
                dash = "" if solid else DASHED
                parts.append(f'<polyline class="series" stroke="{color}"{dash} points="{points}"/>')
    parts.append(f.x_labels(times, resolution))
    parts.append("</svg>")
    legend = "".join(
        f'<li data-segment="{_esc(segment_label(s.segment_id))}"><span class="swatch" '
        f'style="background:{PALETTE[k % len(PALETTE)]}"></span>segment {_esc(segment_label(s.segment_id))} '
        f"<b>{_pct(s.ctr)}</b> <small>{_num(s.clicks)} / {_num(s.impressions)}</small></li>"
        for k, s in enumerate(series)
    )
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


# --------------------------------------------------------------------------- tables

_TAGS = {
    "complete": '<span class="tag final">complete</span>',
    "final": '<span class="tag final" title="every document final; completeness not confirmed yet">final</span>',
    "open": '<span class="tag open">open</span>',
    "empty": '<span class="tag empty">no data</span>',
}


def minutes_table(minutes: Sequence[MinuteTotals]) -> str:
    resolution = minutes[0].resolution if minutes else "minute"
    unit = "hour" if resolution == "hour" else "minute"
    rows = []
    for m in reversed(minutes):  # newest first
        state = minute_state(m)
        rows.append(
            f'<tr data-time="{m.time}" data-impression="{m.impressions}" data-click="{m.clicks}" '
            f'data-complete="{str(m.complete).lower()}" data-state="{state}"><td>{_when(m.time_ms, resolution)}</td>'
            f'<td class="num">{_num(m.impressions)}</td><td class="num">{_num(m.clicks)}</td>'
            f'<td class="num">{_pct(m.ctr)}</td><td>{_TAGS[state]}</td></tr>'
        )
    return (
        f'<table id="minutes-table"><thead><tr><th>{unit} (UTC)</th><th class="num">impressions</th>'
        '<th class="num">clicks</th><th class="num">CTR</th><th>state</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def articles_table(articles: Sequence[ArticleStat], min_impressions: int, filtered: bool = False) -> str:
    if not articles:
        among = " among these users" if filtered else ""
        return (
            f'<p class="empty">No article has {min_impressions}+ impressions{among} in this window yet.</p>'
        )
    best = max(a.ctr for a in articles) or 1.0
    rows = "".join(
        f'<tr data-article="{a.article_id}" data-impression="{a.impressions}" data-click="{a.clicks}">'
        f'<td class="num">{rank}</td><td class="id">{a.article_id}</td>'
        f'<td class="num">{_num(a.impressions)}</td><td class="num">{_num(a.clicks)}</td>'
        f'<td class="ctr"><span class="meter" style="width:{a.ctr / best * 100:.1f}%"></span>'
        f"<span>{_pct(a.ctr)}</span></td></tr>"
        for rank, a in enumerate(articles, start=1)
    )
    return (
        '<table id="articles-table"><thead><tr><th class="num">#</th><th>article_id</th>'
        '<th class="num">impressions</th><th class="num">clicks</th><th>CTR</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


# --------------------------------------------------------------------------- the controls

_FIELDS = (
    # name, label, input attributes, hint
    ("minutes", "minutes", f'type="number" min="1" max="{MAX_MINUTES}" step="1"', f"1..{MAX_MINUTES}"),
    ("top", "top articles", f'type="number" min="1" max="{MAX_TOP}" step="1"', f"1..{MAX_TOP}"),
    ("min_impressions", "min. impressions", 'type="number" min="0" step="1"', "to rank by CTR"),
    ("gender", "gender", 'type="text" list="genders" placeholder="any"', "null: not in reference data"),
    ("segment", "segment", 'type="text" placeholder="any" pattern="-?[0-9]+|null"', "an id, or null"),
)


def render_controls(c: Controls) -> str:
    """A plain GET form: the range and ranking parameters, visible and editable, no script needed."""
    values = c.form_values()
    fields = []
    for name, label, attrs, hint in _FIELDS:
        invalid = ' aria-invalid="true" class="invalid"' if c.invalid == name else ""
        fields.append(
            f'<label for="ctl-{name}"><span>{label}</span><input id="ctl-{name}" name="{name}" {attrs} '
            f'value="{_esc(values.get(name, ""))}" aria-describedby="hint-{name}"{invalid}>'
            f'<small id="hint-{name}">{_esc(hint)}</small></label>'
        )
    genders = "".join(f'<option value="{g}">' for g in GENDER_SUGGESTIONS)
    view = values.get("view", "minute")
    options = "".join(
        f'<option value="{value}"{" selected" if view == value else ""}>{label}</option>'
        for value, label in VIEW_CHOICES
    )
    invalid = ' aria-invalid="true" class="invalid"' if c.invalid == "view" else ""
    fields.insert(
        0,
        f'<label for="ctl-view"><span>view</span><select id="ctl-view" name="view" '
        f'aria-describedby="hint-view"{invalid}>{options}</select>'
        '<small id="hint-view">hourly: exact rollups</small></label>',
    )
    return (
        '<form id="controls" method="get" action="" aria-label="What the page shows">'
        f'{"".join(fields)}<datalist id="genders">{genders}</datalist>'
        '<button type="submit">Show</button>'
        '<p class="hint">gender and segment filter the top-articles ranking; totals and charts '
        "cover every user</p></form>"
    )


def _filters(c: Controls) -> str:
    parts = [f"{name} {value}" for name, value in (("gender", c.gender), ("segment", c.segment)) if value]
    return ", ".join(parts)


# --------------------------------------------------------------------------- the page


def render_fragment(s: Snapshot) -> str:
    """The live part of the page, re-fetched by the page's script every few seconds."""
    if s.bad_request:
        return (
            f'<p class="notice error" role="alert">This page cannot show that: {_esc(s.bad_request)}. '
            "Change the value above and press Show.</p>"
        )
    if s.error:
        return (
            f'<p class="notice error" role="alert">{_esc(s.error)}. Nothing to show until it answers; '
            "this page tries again by itself every few seconds.</p>"
        )
    if s.since_ms is None or s.until_ms is None:
        return f'<p class="notice">Index <code>{_esc(s.index)}</code> holds no documents yet.</p>'
    complete = len(s.minutes) - s.incomplete_minutes
    u = s.unit
    last = _when(s.until_ms, s.resolution) if u == "hour" else _hhmm(s.until_ms)
    window = f"{iso(s.since_ms)[:16].replace('T', ' ')} – {last} UTC"
    still_open = (
        f" · {s.open_minutes} open {u}{'s' if s.open_minutes != 1 else ''}, still counting"
        if s.open_minutes
        else ""
    )
    tiles = (
        f'<div class="tile"><span>impressions</span><b id="total-impression" data-value="{s.impressions}">'
        f"{_num(s.impressions)}</b></div>"
        f'<div class="tile"><span>clicks</span><b id="total-click" data-value="{s.clicks}">{_num(s.clicks)}</b></div>'
        f'<div class="tile"><span>CTR</span><b id="total-ctr">{_pct(s.ctr)}</b></div>'
        f'<div class="tile"><span>complete {u}s</span><b id="complete-minutes">{complete} / {len(s.minutes)}</b></div>'
    )
    filters = _filters(s.controls)
    ranking_note = (
        f"; can still change: {s.incomplete_minutes} of its {u}s "
        f"{'is' if s.incomplete_minutes == 1 else 'are'} not complete yet"
        if s.incomplete_minutes
        else ""
    )
    heading = (
        f"Last {len(s.minutes)} hours (7 days) of the hourly rollups in <code>{_esc(s.index)}</code>"
        if u == "hour"
        else f"Last {len(s.minutes)} minutes of data in <code>{_esc(s.index)}</code>"
    )
    return (
        f'<section class="summary" data-since="{iso(s.since_ms)}" data-until="{iso(s.until_ms)}" '
        f'data-resolution="{s.resolution}">'
        f'<p class="window">{heading}: '
        f"{window}{still_open}</p>{tiles}</section>"
        f'<section class="card" id="traffic"><h2>Impressions and clicks per {u}</h2>'
        '<p class="hint"><span class="swatch bar-swatch"></span>impressions (left axis) '
        '<span class="swatch clicks-swatch"></span>clicks (right axis) · '
        f"lighter bar, dashed line: {u} still open</p>"
        f'<div class="split"><div>{traffic_chart(s.minutes)}</div>'
        f'<div class="scroll scroll-x">{minutes_table(s.minutes)}</div></div></section>'
        '<div class="row">'
        '<section class="card" id="segments"><h2>CTR by segment</h2>'
        f'<p class="hint">sum(click) / sum(impression) per segment and {u}, busiest segments</p>'
        f"{segment_chart(s.segments, [minute_state(m) == 'open' for m in s.minutes], s.resolution)}</section>"
        '<section class="card" id="top-articles"><h2>Top articles by CTR</h2>'
        f'<p class="hint">articles with at least {s.min_impressions} impressions in the window'
        f"{'; ' + _esc(filters) if filters else ''}{ranking_note}</p>"
        f'<div class="scroll-x">{articles_table(s.articles, s.min_impressions, bool(filters))}</div>'
        "</section>"
        "</div>"
    )


def render_page(s: Snapshot, fragment_url: str, assets: Assets, refresh_seconds: int) -> str:
    """The whole page: styles and the refresh script inlined, so it needs no other request.

    Refused parameters stop the refresh (the same request would be refused again) until the form
    is sent; a failing search engine does not (the script retries and keeps the last good numbers).
    """
    refresh = 0 if s.bad_request else refresh_seconds
    if s.bad_request:
        status = '<span id="status" class="stale">not shown: fix the parameters</span>'
    elif s.error:
        status = f'<span id="status" class="stale">search engine failed · retrying every {refresh_seconds} s</span>'
    else:
        status = f'<span id="status" class="ok">rendered {s.generated_at[11:19]} UTC</span>'
    query = fragment_url[fragment_url.index("?") :] if "?" in fragment_url else ""
    meta = f'<noscript><meta http-equiv="refresh" content="{refresh}"></noscript>' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>clickagg · live · {_esc(s.index)}</title>"
        f"{meta}<style>{assets.css}</style></head>"
        f'<body data-fragment-url="{_esc(fragment_url)}" data-refresh-ms="{refresh * 1000}" '
        'data-refreshes="0">'
        f"<header><h1>clickagg <span>live</span></h1>{status}</header>"
        f"{render_controls(s.controls)}"
        f'<main id="live">{render_fragment(s)}</main>'
        "<footer>Exact sums over every document in the search engine, read through the read API's model "
        "(clickagg.query); a minute is complete when the pipeline says no document of it changes any "
        "more, an hour when every minute in it is. "
        f'JSON: <a href="/dashboard/data.json{_esc(query)}">/dashboard/data.json</a></footer>'
        f"<script>{assets.js}</script></body></html>"
    )
