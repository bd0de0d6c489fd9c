"""The worker's built-in live page, `GET /dashboard`: a dashboard for users without Kibana.

Why it is built this way:
- One read model: the page reads through clickagg.query's QueryClient (made by
  `QueryClient.from_settings`, so the worker's Elasticsearch security applies), the same exact sums,
  CTR ranking and completeness signal as `/api/*`, the CLI and the batch optimizer.
- Data and view are apart: this module gathers a Snapshot; app/dashboard_render.py turns it into
  HTML and inline SVG (pure functions, no I/O). The page's only script (app/static/dashboard.js)
  re-fetches the server-rendered fragment every few seconds; without JavaScript a meta refresh does.
- The window is the last N minutes *of data* (ending at the newest window in the index, never past
  now): a replay of archived events shows up just like live traffic. Minutes not complete yet are
  included and shown as open.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError

from clickagg.app.api import LazyClient
from clickagg.app.auth import guarded
from clickagg.app.dashboard_render import Assets, Snapshot, render_fragment, render_page
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.query import QueryClient, describe_error

DEFAULT_MINUTES = 30
MAX_MINUTES = 24 * 60
DEFAULT_TOP = 10
MAX_TOP = 100
DEFAULT_MIN_IMPRESSIONS = 20  # an article needs this many impressions to rank by CTR
SEGMENT_SERIES = 8  # busiest segments drawn in the CTR chart
REFRESH_SECONDS = 5


async def gather_snapshot(
    client: QueryClient,
    *,
    window_ms: int,
    minutes: int = DEFAULT_MINUTES,
    top: int = DEFAULT_TOP,
    min_impressions: int = DEFAULT_MIN_IMPRESSIONS,
    now_ms: int | None = None,
) -> Snapshot:
    """Everything the page shows, for the last `minutes` windows of data, read through `client`."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    base = Snapshot(
        index=client.index,
        generated_at=iso(now),
        window_ms=window_ms,
        minutes_requested=minutes,
        min_impressions=min_impressions,
    )
    rows = await client.latest_minutes(minutes, now_ms=now)
    if not rows:
        return base
    # the windows overlapping [first start, last start + 1): exactly the ones in `rows`
    since, until = rows[0].time_ms, rows[-1].time_ms + 1
    segments, articles = await asyncio.gather(
        client.ctr_by_segment(since, until, limit=SEGMENT_SERIES),
        client.top_articles_in_range(since, until, k=top, min_impressions=min_impressions),
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


def _int_param(request: Any, name: str, default: int, low: int, high: int) -> int:
    """A query parameter clamped to [low, high]; junk falls back to the default."""
    try:
        value = int(request.query.get(name, default))
    except (TypeError, ValueError):
        return default
    return max(low, min(high, value))


class LivePage:
    """The page's QueryClient (`QueryClient.from_settings`, made on first use inside the web server's
    loop, closed at shutdown) and the snapshot of one request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = LazyClient(settings)

    async def close(self) -> None:
        await self.client.close()

    async def snapshot(self, request: Any) -> Snapshot:
        minutes = _int_param(request, "minutes", DEFAULT_MINUTES, 1, MAX_MINUTES)
        top = _int_param(request, "top", DEFAULT_TOP, 1, MAX_TOP)
        min_impressions = _int_param(request, "min_impressions", DEFAULT_MIN_IMPRESSIONS, 0, 10**12)
        try:
            return await gather_snapshot(
                self.client.get(),
                window_ms=self.settings.window_ms,
                minutes=minutes,
                top=top,
                min_impressions=min_impressions,
            )
        except (TransportError, ApiError) as exc:  # Elasticsearch down or failing: say so, keep serving
            return Snapshot(
                index=self.settings.es_index,
                generated_at=iso(int(time.time() * 1000)),
                window_ms=self.settings.window_ms,
                minutes_requested=minutes,
                min_impressions=min_impressions,
                error=f"Elasticsearch query failed: {describe_error(exc)}"[:500],
            )


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
        return web.html(render_page(await page.snapshot(request), fragment_url, assets, REFRESH_SECONDS))

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
