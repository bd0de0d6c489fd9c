"""HTTP read API on the worker's web server, for batch optimizers that poll over HTTP.

The request→response logic is plain async functions of (QueryClient, query parameters) returning
(status, JSON body), so it is tested without a web server; register() only wires them to Faust
pages. Parameters are strict (unknown names are refused) so a typo is a 400, not a silent default.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from clickagg.app import openapi
from clickagg.app.auth import guarded
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.es.errors import SearchEngineError
from clickagg.query import (
    DEFAULT_MIN_IMPRESSIONS,
    MAX_K,
    MAX_MIN_IMPRESSIONS,
    MAX_WINDOWS,
    RESOLUTIONS,
    QueryClient,
    QueryError,
    describe_error,
    filter_label,
    parse_gender,
    parse_segment,
    parse_time,
)

log = logging.getLogger(__name__)

Body = dict[str, Any]
Result = tuple[int, Body]
Handler = Callable[[QueryClient, Mapping[str, str]], Awaitable[Result]]


PARAMS: dict[str, frozenset[str]] = {
    "/api/minutes/latest": frozenset({"n"}),
    "/api/minutes": frozenset({"from", "to", "resolution"}),
    "/api/top": frozenset({"minutes", "k", "gender", "segment", "min_impressions", "resolution"}),
    "/api/top/segments": frozenset({"minutes", "k", "gender", "min_impressions", "resolution"}),
    "/api/completeness": frozenset({"resolution"}),
    "/api/openapi.json": frozenset(),
}


class BadRequest(Exception):
    """A parameter problem, answered with 400 and this message."""


def _params(query: Mapping[str, str], path: str) -> dict[str, str]:
    allowed = PARAMS[path]
    unknown = sorted(set(query) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "none"
        raise BadRequest(f"unknown parameter(s) {', '.join(unknown)}; expected: {expected}")
    return {name: query[name] for name in allowed if name in query}


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be in {low}..{high}, got {value}")
    return value


def _time(params: Mapping[str, str], name: str) -> int:
    raw = params.get(name)
    if not raw:
        raise BadRequest(f"{name} is required (ISO 8601 or epoch milliseconds)")
    try:
        return parse_time(raw)
    except QueryError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def _resolution(params: Mapping[str, str], allowed: tuple[str, ...] = RESOLUTIONS) -> str:
    """`resolution`: minute (default), hour or auto (clickagg.query's module doc)."""
    raw = params.get("resolution") or "minute"
    if raw not in allowed:
        raise BadRequest(f"resolution must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


async def latest(client: QueryClient, query: Mapping[str, str]) -> Result:
    params = _params(query, "/api/minutes/latest")
    n = _int(params, "n", 5, 1, MAX_WINDOWS)
    rows = await client.latest_complete_minutes(n)
    return 200, {"minutes": [r.to_dict() for r in rows]}


async def minute_range(client: QueryClient, query: Mapping[str, str]) -> Result:
    params = _params(query, "/api/minutes")
    start, end = _time(params, "from"), _time(params, "to")
    resolution = _resolution(params)
    if end <= start:
        raise BadRequest("to must be after from")
    rows = await client.minutes(start, end, resolution)
    return 200, {
        "from": iso(start),
        "to": iso(end),
        "from_ms": start,
        "to_ms": end,
        "resolution": rows[0].resolution if rows else resolution,
        "minutes": [r.to_dict() for r in rows],
    }


def _top_query(params: Mapping[str, str], with_segment: bool) -> dict[str, Any]:
    try:
        gender = parse_gender(params.get("gender"))
        segment = parse_segment(params.get("segment")) if with_segment else None
    except QueryError as exc:
        raise BadRequest(str(exc)) from None
    resolution = _resolution(params)
    minutes = _int(params, "minutes", 5, 1, MAX_WINDOWS * 60 if resolution != "minute" else MAX_WINDOWS)
    if resolution == "hour" and minutes % 60:
        raise BadRequest(f"with resolution hour, minutes must be a multiple of 60, got {minutes}")
    return {
        "minutes": minutes,
        "k": _int(params, "k", 10, 1, MAX_K),
        "gender": gender,
        "segment": segment,
        "min_impressions": _int(params, "min_impressions", DEFAULT_MIN_IMPRESSIONS, 0, MAX_MIN_IMPRESSIONS),
        "resolution": resolution,
    }


async def top(client: QueryClient, query: Mapping[str, str]) -> Result:
    params = _params(query, "/api/top")
    q = _top_query(params, with_segment=True)
    result = await client.top_articles(**q)
    echo = {**q, "gender": filter_label(q["gender"]), "segment": filter_label(q["segment"])}
    return 200, {**result.to_dict(), "query": echo}


async def top_by_segment(client: QueryClient, query: Mapping[str, str]) -> Result:
    params = _params(query, "/api/top/segments")
    q = _top_query(params, with_segment=False)
    del q["segment"]
    result = await client.top_by_segment(**q)
    return 200, {**result.to_dict(), "query": {**q, "gender": filter_label(q["gender"])}}


async def completeness(client: QueryClient, query: Mapping[str, str]) -> Result:
    resolution = _resolution(_params(query, "/api/completeness"), ("minute", "hour"))
    return 200, (await client.completeness(resolution)).to_dict()


async def openapi_document(client: QueryClient, query: Mapping[str, str]) -> Result:
    _params(query, "/api/openapi.json")
    return 200, openapi.document()


ROUTES: dict[str, Handler] = {
    "/api/minutes/latest": latest,
    "/api/minutes": minute_range,
    "/api/top": top,
    "/api/top/segments": top_by_segment,
    "/api/completeness": completeness,
    "/api/openapi.json": openapi_document,
}


async def respond(handler: Handler, client: QueryClient, query: Mapping[str, str]) -> Result:
    """Run one handler, turning caller mistakes into 400 and Elasticsearch trouble into 503."""
    try:
        return await handler(client, query)
    except (BadRequest, QueryError) as exc:
        return 400, {"error": str(exc)}
    except SearchEngineError as exc:
        log.warning("read API: the search engine failed: %s", describe_error(exc))
        return 503, {"error": f"search engine failed: {describe_error(exc)}"}


class LazyClient:
    """Creates the QueryClient on the first request, inside the web server's running event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: QueryClient | None = None

    def get(self) -> QueryClient:
        if self.client is None:
            self.client = QueryClient.from_settings(self.settings)
        return self.client

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


def register(app: Any, pipeline_or_settings: Any) -> LazyClient:
    """Add the /api/* pages to a Faust app; accepts Settings or the worker's Pipeline (its .s)."""
    settings: Settings = getattr(pipeline_or_settings, "s", pipeline_or_settings)
    lazy = LazyClient(settings)
    for path, handler in ROUTES.items():
        _page(app, path, handler, lazy, guarded(settings))

    @app.on_before_shutdown.connect
    async def close_read_api(sender: Any, *args: Any, **kwargs: Any) -> None:
        await lazy.close()

    return lazy


def _page(app: Any, path: str, handler: Handler, lazy: LazyClient, guard: Any) -> None:
    async def view(web: Any, request: Any) -> Any:
        status, body = await respond(handler, lazy.get(), request.query)
        return web.json(body, status=status)

    view.__name__ = "api_" + handler.__name__
    app.page(path, name=view.__name__)(guard(view))
