"""The worker's built-in live page, `GET /dashboard`: a dashboard for users without Kibana.

Why it is built this way:
- One read model: the page reads through clickagg.query's QueryClient (made by
  `QueryClient.from_settings`, so the worker's search-engine security applies), the same exact sums,
  CTR ranking and completeness signal as `/api/*`, the CLI and the batch optimizer.
- Data and view are apart: this module parses the request and gathers a Snapshot;
  app/dashboard_render.py turns it into HTML and inline SVG (pure functions, no I/O). The page's only
  script (app/static/dashboard.js) re-fetches the server-rendered fragment every few seconds; without
  JavaScript a meta refresh does.
- The window is the last N minutes *of data* (ending at the newest window in the index, never past
  now): a replay of archived events shows up just like live traffic. Minutes not complete yet are
  included and shown as open.
- The controls on the page are plain GET parameters, checked like the read API's: `minutes`
  (1..1440), `top` (1..100), `min_impressions`, `gender` and `segment` (the last two filter the
  top-articles ranking; empty means any, `null` users missing from the reference data) and `view`:
  `minute` (default: the last `minutes` minutes) or `hour`, "last 7 days, hourly": the last 168
  hours of the exact hourly rollups (HOURLY_INDEX), read through the same QueryClient at resolution
  "hour" (totals per hour, CTR by segment per hour, top articles over the 7 days), each hour
  complete when every minute in it is. A view of its own, not a second chart on every refresh: 7 days
  of hourly documents are far more to sum than 30 minutes, so they are read only when asked for. A
  bad value or an unknown name is a 400 whose page says which and keeps the form, not a silent default.

HTTP status, documented for probes and people alike: 200 with data; 400 for bad parameters;
503 when the search engine is unreachable or fails, for `/dashboard` (the whole page, still
rendered, with one human sentence saying what is wrong and that it retries), `/dashboard/fragment`
and `/dashboard/data.json` (`error` holds the same sentence). Never a stack trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from clickagg.app.api import LazyClient
from clickagg.app.auth import guarded
from clickagg.app.dashboard_render import Assets, Controls, Snapshot, render_fragment, render_page
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.es.errors import SearchEngineError
from clickagg.query import (
    DEFAULT_MIN_IMPRESSIONS,
    HOUR_MS,
    MAX_MIN_IMPRESSIONS,
    QueryClient,
    QueryError,
    parse_gender,
    parse_segment,
)

# What a search-engine failure raises on its way up from QueryClient, for the page and the optimizer
# poller. Since QueryClient reads through the search-engine port (clickagg.es.port), only the port's
# base class: the adapters translate elasticsearch-py's and opensearch-py's own errors (the original
# chained as __cause__). One tuple, so a client class that ever needs catching again is one line.
SEARCH_ENGINE_ERRORS: tuple[type[Exception], ...] = (SearchEngineError,)

DEFAULT_MINUTES = 30
MAX_MINUTES = 24 * 60
DEFAULT_TOP = 10
MAX_TOP = 100
SEGMENT_SERIES = 8  # busiest segments drawn in the CTR chart
REFRESH_SECONDS = 5
HOURLY_VIEW_HOURS = 7 * 24  # view=hour: the last 7 days of hourly rollups
VIEWS = ("minute", "hour")
PARAMETERS = frozenset({"minutes", "top", "min_impressions", "gender", "segment", "view"})


class BadParameter(ValueError):
    """A query parameter the page cannot use; `name` is the control to point at (None: the URL)."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be a whole number, got {raw!r}", name) from None
    if not low <= value <= high:
        raise BadParameter(f"{name} must be in {low}..{high}, got {value}", name)
    return value


def parse_controls(query: Mapping[str, str], hourly: bool = True) -> Controls:
    """The page's parameters, checked: a BadParameter names the first one that is wrong.

    `hourly`: the deployment has hourly rollups (HOURLY_INDEX not empty); without them view=hour
    is refused.
    """
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise BadParameter(
            f"unknown parameter(s) {', '.join(unknown)}; the page takes {', '.join(sorted(PARAMETERS))}"
        )
    view = query.get("view", "").strip() or "minute"
    if view not in VIEWS:
        raise BadParameter(f"view must be minute or hour, got {view!r}", "view")
    if view == "hour" and not hourly:
        raise BadParameter(
            "view hour needs the hourly rollups, which are off (HOURLY_INDEX is empty)", "view"
        )
    gender = query.get("gender", "").strip()
    segment = query.get("segment", "").strip()
    try:
        parse_segment(segment)
    except QueryError as exc:
        raise BadParameter(str(exc), "segment") from None
    return Controls(
        minutes=_int(query, "minutes", DEFAULT_MINUTES, 1, MAX_MINUTES),
        top=_int(query, "top", DEFAULT_TOP, 1, MAX_TOP),
        min_impressions=_int(query, "min_impressions", DEFAULT_MIN_IMPRESSIONS, 0, MAX_MIN_IMPRESSIONS),
        gender=gender,
        segment=segment,
        view=view,
    )


def raw_controls(query: Mapping[str, str]) -> dict[str, str]:
    """What the user typed, to put back into the form when it was refused."""
    return {name: str(query.get(name, "")) for name in PARAMETERS}


def _where(settings: Settings) -> str:
    """The engine's address for a message: the Cloud ID's name or the URL without credentials."""
    if settings.elastic_cloud_id:
        return "the Elastic Cloud deployment (ELASTIC_CLOUD_ID)"
    parts = urlsplit(settings.elasticsearch_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")) or "ELASTICSEARCH_URL"


def _network_reason(text: str) -> str:
    lowered = text.lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("connect call failed", "connection refused"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("temporary failure in name resolution", "host name not found"),
        ("timed out", "no answer in time"),
        ("timeout", "no answer in time"),
        ("certificate", "TLS certificate not accepted"),
        ("tlserror", "TLS handshake failed"),
        ("sslerror", "TLS handshake failed"),
        ("handshake", "TLS handshake failed"),
    ):
        if needle in lowered:
            return reason
    return "no answer"


def engine_failure(exc: BaseException, settings: Settings) -> str:
    """One sentence a person can act on for a search-engine failure: what, where, what to check.

    Only the address (never credentials) and a short cause; the library's text, which repeats
    class names and socket internals, stays in the debug log.
    """
    where = _where(settings)
    status = getattr(exc, "status", None)
    if status is None:  # no HTTP answer (the port's Unreachable): why, from its text
        cause = _network_reason(f"{exc} {getattr(exc, 'reason', '')}")
        hint = " (check ELASTICSEARCH_CA_CERTS / ELASTICSEARCH_SSL_FINGERPRINT)" if "TLS" in cause else ""
        return (
            f"The search engine at {where} cannot be reached ({cause}){hint}; the worker keeps what it "
            "counts in Kafka until it answers, so no count is lost"
        )
    if status in (401, 403):
        return (
            f"The search engine at {where} refused the credentials (HTTP {status}): check "
            "ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME / ELASTICSEARCH_PASSWORD"
        )
    reason = " ".join(str(getattr(exc, "reason", "") or exc).split())[:160]
    return f"The search engine at {where} failed the query (HTTP {status}: {reason})"


async def gather_snapshot(
    client: QueryClient,
    *,
    window_ms: int,
    controls: Controls | None = None,
    now_ms: int | None = None,
) -> Snapshot:
    """Everything the page shows, for the last `controls.minutes` windows of data (view hour: the last
    HOURLY_VIEW_HOURS hours of the hourly rollups), read through `client`."""
    c = controls or Controls()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    hourly = c.view == "hour"
    resolution = "hour" if hourly else "minute"
    count = HOURLY_VIEW_HOURS if hourly else c.minutes
    base = Snapshot(
        index=client.alias(resolution),
        generated_at=iso(now),
        window_ms=HOUR_MS if hourly else window_ms,
        minutes_requested=count,
        min_impressions=c.min_impressions,
        controls=c,
        resolution=resolution,
    )
    rows = await client.latest_minutes(count, now_ms=now, resolution=resolution)
    if not rows:
        return base
    # the windows overlapping [first start, last start + 1): exactly the ones in `rows`
    since, until = rows[0].time_ms, rows[-1].time_ms + 1
    segments, articles = await asyncio.gather(
        client.ctr_by_segment(since, until, limit=SEGMENT_SERIES, resolution=resolution),
        client.top_articles_in_range(
            since,
            until,
            k=c.top,
            gender=parse_gender(c.gender),
            segment=parse_segment(c.segment),
            min_impressions=c.min_impressions,
            resolution=resolution,
        ),
    )
    return replace(base, minutes=tuple(rows), segments=tuple(segments), articles=articles)


@cache
def load_assets() -> Assets:
    """The stylesheet and script from app/static, read once."""
    static = resources.files("clickagg.app").joinpath("static")
    return Assets(
        css=static.joinpath("dashboard.css").read_text(encoding="utf-8"),
        js=static.joinpath("dashboard.js").read_text(encoding="utf-8"),
    )


class LivePage:
    """The page's QueryClient (`QueryClient.from_settings`, made on first use inside the web server's
    loop, closed at shutdown) and the snapshot of one request, with its HTTP status."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = LazyClient(settings)

    async def close(self) -> None:
        await self.client.close()

    def _empty(self, **fields: Any) -> Snapshot:
        return Snapshot(
            index=self.settings.es_index,
            generated_at=iso(int(time.time() * 1000)),
            window_ms=self.settings.window_ms,
            minutes_requested=fields.pop("minutes_requested", DEFAULT_MINUTES),
            min_impressions=fields.pop("min_impressions", DEFAULT_MIN_IMPRESSIONS),
            **fields,
        )

    async def snapshot(self, request: Any) -> tuple[int, Snapshot]:
        query = {str(k): str(v) for k, v in request.query.items()}
        try:
            controls = parse_controls(query, hourly=bool(self.settings.hourly))
        except BadParameter as exc:
            return 400, self._empty(
                controls=Controls.refused(raw_controls(query), exc.name), bad_request=str(exc)
            )
        try:
            snap = await gather_snapshot(
                self.client.get(), window_ms=self.settings.window_ms, controls=controls
            )
        except SEARCH_ENGINE_ERRORS as exc:  # down or failing: say so in words, keep serving
            return 503, self._empty(
                minutes_requested=controls.minutes,
                min_impressions=controls.min_impressions,
                controls=controls,
                error=engine_failure(exc, self.settings),
            )
        return 200, snap


def register(app: Any, settings: Settings) -> LivePage:
    """Add `/dashboard`, `/dashboard/fragment` and `/dashboard/data.json` to the worker's web server."""
    page = LivePage(settings)
    guard = guarded(settings)
    assets = load_assets()

    @app.page("/dashboard")
    @guard
    async def dashboard(web: Any, request: Any) -> Any:
        query = request.query_string
        fragment_url = "/dashboard/fragment" + (f"?{query}" if query else "")
        status, s = await page.snapshot(request)
        return web.html(render_page(s, fragment_url, assets, REFRESH_SECONDS), status=status)

    @app.page("/dashboard/fragment")
    @guard
    async def dashboard_fragment(web: Any, request: Any) -> Any:
        status, s = await page.snapshot(request)
        return web.html(render_fragment(s), status=status)

    @app.page("/dashboard/data.json")
    @guard
    async def dashboard_data(web: Any, request: Any) -> Any:
        status, s = await page.snapshot(request)
        return web.json(s.as_json(), status=status)

    @app.on_before_shutdown.connect
    async def close_dashboard_client(sender: Any, *args: Any, **kwargs: Any) -> None:
        await page.close()

    return page
