"""The read side of the hourly rollups against the real Elasticsearch and OpenSearch (each test runs on
both): hour totals, top articles by hour, completeness per resolution and the "auto" choice, through
QueryClient, the CLI, the HTTP API and the live page's "last 7 days, hourly" view.

No worker writes hours here: the test indexes its own documents, minute documents into
`<minutes>-YYYY.MM.DD` (the alias's template adds them) and hourly documents of the same shape into
`<hourly>-YYYY.MM.DD` indices it creates itself behind the hourly alias, across a UTC midnight. The
hourly documents are the sums of the minute documents per (hour, gender, segment, article), as stage 2
computes them from the same partials, so every expected value below is a plain Python sum over the
minute documents the test wrote, and "auto" must give exactly the minute answer.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web as aioweb

from clickagg.app import api, dashboard
from clickagg.config import Settings
from clickagg.core.days import daily_index
from clickagg.core.documents import DOCUMENT_MAPPING, iso
from clickagg.es import schema
from clickagg.es.engines import search_engine
from clickagg.es.port import SearchEngine
from clickagg.query import (
    DEFAULT_MIN_IMPRESSIONS,
    UNKNOWN,
    IncompleteRangeError,
    QueryClient,
    QueryError,
    SyncQueryClient,
    parse_time,
)
from tests.integration.conftest import free_port
from tests.integration.test_live_page import (
    ARTIFACTS,
    NARROW,
    AiohttpApp,
    chromium_path,
    open_in_chromium,
    png_size,
)
from tests.integration.test_query_api import closing, drop, run_cli, set_progress

M, H = 60_000, 3_600_000
BASE = 1_740_859_200_000  # 2025-03-01T20:00:00Z: hours 0..9 run past midnight into 2025-03-02
HOURS = 10
COMPLETE_BEFORE = BASE + 7 * H + 30 * M  # minutes before 03:30 complete, so hours before 03:00
GROUPS = [("female", 1), ("female", 2), ("male", 1), ("male", 3), (None, None)]

Doc = dict[str, Any]
Keep = Callable[[Doc], bool]


def doc(
    start: int, gender: str | None, segment: int | None, article: int, imp: int, clk: int, final: bool
) -> Doc:
    return {
        "time": iso(start),
        "gender": gender,
        "segment_id": segment,
        "article_id": article,
        "impression": imp,
        "click": clk,
        "ctr": clk / imp if imp else None,
        "final": final,
        "owner_partition": 60 + article % 3,  # no real worker owns these partitions
    }


def minute_docs(seed: int) -> list[Doc]:
    """A few minutes of every hour, random rows in each; some open minutes after COMPLETE_BEFORE."""
    rng = random.Random(seed)
    docs = []
    for hour in range(HOURS):
        for m in sorted(rng.sample(range(60), 4)):
            start = BASE + hour * H + m * M
            for gender, segment in GROUPS:
                for article in rng.sample(range(1001, 1021), rng.randrange(3, 9)):
                    imp = rng.randrange(0, 80)
                    clk = rng.randrange(0, imp + 3)
                    final = start < COMPLETE_BEFORE or rng.random() < 0.5
                    docs.append(doc(start, gender, segment, article, imp, clk, final))
    return docs


def hour_of(d: Doc) -> int:
    return ms(d) // H * H


def rollup(docs: Iterable[Doc], scale: Callable[[int, int], int] = lambda hour, n: n) -> list[Doc]:
    """Hourly documents: the minute documents summed per (hour, gender, segment, article); final when
    the hour closed. `scale` changes an hour's counts (a partial first hour of late rollups)."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for d in docs:
        cell = sums.setdefault((hour_of(d), d["gender"], d["segment_id"], d["article_id"]), [0, 0])
        cell[0] += d["impression"]
        cell[1] += d["click"]
    return [
        doc(h, g, s, a, scale(h, imp), scale(h, clk), final=h + H <= COMPLETE_BEFORE)
        for (h, g, s, a), (imp, clk) in sorted(sums.items(), key=lambda kv: repr(kv[0]))
    ]


def ms(d: Doc) -> int:
    return parse_time(d["time"])


@dataclass
class Hourly:
    minutes: str  # the minute alias (ES_INDEX)
    hourly: str  # the hourly alias (HOURLY_INDEX)
    late: str  # a second hourly alias: rollups switched on during hour 4 (its counts partial)
    docs: list[Doc] = field(default_factory=list)
    hours: list[Doc] = field(default_factory=list)

    def sums(self, a: int, b: int, keep: Keep = lambda d: True) -> tuple[int, int]:
        rows = [d for d in self.docs if a <= ms(d) < b and keep(d)]
        return sum(d["impression"] for d in rows), sum(d["click"] for d in rows)

    def top(
        self, a: int, b: int, k: int, keep: Keep = lambda d: True, min_imp: int = 1
    ) -> list[tuple[int, int, int]]:
        per: dict[int, list[int]] = {}
        for d in self.docs:
            if a <= ms(d) < b and keep(d):
                cell = per.setdefault(d["article_id"], [0, 0])
                cell[0] += d["impression"]
                cell[1] += d["click"]
        rows = [(art, i, c) for art, (i, c) in per.items() if i >= max(min_imp, 1)]
        return sorted(rows, key=lambda r: (-Fraction(r[2], r[1]), -r[1], r[0]))[:k]

    def client(self, url: str, **options: Any) -> QueryClient:
        return QueryClient(url, self.minutes, hourly=options.pop("hourly", self.hourly), **options)


def in_segment(segment: int | None) -> Keep:
    return lambda d: d["segment_id"] == segment


def triples(articles: Iterable[Any]) -> list[tuple[int, int, int]]:
    return [(a.article_id, a.impressions, a.clicks) for a in articles]


async def bulk_days(es: SearchEngine, base: str, docs: list[Doc]) -> None:
    """Index documents into base's daily index of each one's time (the UTC day), ids as the worker's."""
    lines = []
    for d in docs:
        doc_id = f"{d['time']}|{d['gender']}|{d['segment_id']}|{d['article_id']}"
        lines += [
            orjson.dumps({"index": {"_index": daily_index(base, ms(d)), "_id": doc_id}}),
            orjson.dumps(d),
        ]
    for start in range(0, len(lines), 2000):
        resp = await es.bulk(b"\n".join(lines[start : start + 2000]) + b"\n", "errors,items.*.error")
        assert not resp.get("errors"), resp


async def hourly_indices(es: SearchEngine, alias: str, docs: list[Doc]) -> None:
    """`<alias>-YYYY.MM.DD` for each day of the documents, behind `alias`, not refreshed on their own
    (refresh_interval -1): the reader has to refresh the hourly alias itself before it reads."""
    for day in sorted({daily_index(alias, ms(d)) for d in docs}):
        await es.create_index(
            day,
            {
                "aliases": {alias: {}},
                "mappings": DOCUMENT_MAPPING,
                "settings": {"index": {"refresh_interval": "-1"}},
            },
        )
    await bulk_days(es, alias, docs)


async def drop_alias(es: SearchEngine, alias: str) -> None:
    for concrete in await es.indices(alias):
        await es.delete_index(concrete)
    await es.delete_index_template(schema.template_name(alias))


@pytest.fixture
async def data(engine_url: str) -> AsyncIterator[Hourly]:
    es = search_engine(Settings(elasticsearch_url=engine_url))
    name = "th" + uuid.uuid4().hex[:10]
    d = Hourly(f"{name}-minutely", f"{name}-hourly", f"{name}-late-hourly")
    try:
        await schema.install(es, d.minutes)
        d.docs = minute_docs(seed=31)
        await bulk_days(es, d.minutes, d.docs)
        await es.refresh(d.minutes)
        d.hours = rollup(d.docs)
        await hourly_indices(es, d.hourly, d.hours)
        late = [
            h
            for h in rollup(d.docs, lambda hour, n: n // 2 if hour == BASE + 4 * H else n)
            if ms(h) >= BASE + 4 * H
        ]
        await hourly_indices(es, d.late, late)
        await set_progress(es, d.minutes, closing(COMPLETE_BEFORE))
        yield d
    finally:
        for alias in (d.hourly, d.late):
            await drop_alias(es, alias)
        await drop(es, d.minutes)
        await es.close()


class Spy:
    """Which indices a client's searches went to."""

    def __init__(self, client: QueryClient) -> None:
        self.searched: list[str] = []
        search = client.es.search

        async def recording(index: str, body: Any, **kwargs: Any) -> Any:
            self.searched.append(index)
            return await search(index, body, **kwargs)

        client.es.search = recording  # type: ignore[method-assign]


# --------------------------------------------------------------------------- QueryClient


async def test_hour_totals_and_completeness_per_resolution(engine_url: str, data: Hourly) -> None:
    async with data.client(engine_url, page_size=7) as client:  # several composite pages
        minutes = await client.completeness()
        hours = await client.completeness("hour")
        assert (minutes.complete_before_ms, minutes.resolution, minutes.window_ms) == (
            COMPLETE_BEFORE,
            "minute",
            M,
        )
        assert (hours.complete_before_ms, hours.resolution, hours.window_ms) == (BASE + 7 * H, "hour", H)
        assert hours.last_complete_minute_ms == BASE + 6 * H and hours.partitions == minutes.partitions

        rows = await client.minutes(BASE - H, BASE + HOURS * H, "hour")  # the refresh makes them visible
        assert [r.time_ms for r in rows] == [BASE + i * H for i in range(-1, HOURS)]
        for r in rows:
            in_hour = [h for h in data.hours if ms(h) == r.time_ms]
            assert (r.impressions, r.clicks) == data.sums(r.time_ms, r.time_ms + H), r
            assert (r.documents, r.final_documents) == (len(in_hour), sum(h["final"] for h in in_hour))
            # an hour is complete exactly when every minute in it is
            assert r.complete == (r.time_ms + H <= COMPLETE_BEFORE) and r.resolution == "hour"
            assert r.time == iso(r.time_ms) and r.ctr == (r.clicks / r.impressions if r.impressions else None)
        assert rows[0].documents == 0 and rows[1].impressions > 0
        assert sum(r.impressions for r in rows) == sum(d["impression"] for d in data.docs)
        assert [r.complete for r in rows].count(True) == 8  # hours -1..6: 03:00 still has open minutes

        # the same minutes, read as minutes: complete up to 03:30, where the hour 03:00 is not yet
        in_seven = await client.minutes(BASE + 7 * H, BASE + 8 * H)
        assert [r.complete for r in in_seven] == [r.time_ms < COMPLETE_BEFORE for r in in_seven]
        assert any(r.complete for r in in_seven) and not rows[8].complete
        assert (sum(r.impressions for r in in_seven), sum(r.clicks for r in in_seven)) == (
            rows[8].impressions,
            rows[8].clicks,
        )

        # auto: hours for a long range on hour boundaries, minutes for a short or unaligned one
        assert await client.minutes(BASE, BASE + HOURS * H, "auto") == rows[1:]
        short = await client.minutes(BASE, BASE + 3 * H, "auto")
        assert len(short) == 180 and {r.resolution for r in short} == {"minute"}
        assert sum(r.impressions for r in short) == data.sums(BASE, BASE + 3 * H)[0]
        unaligned = await client.minutes(BASE + M, BASE + 8 * H, "auto")
        assert {r.resolution for r in unaligned} == {"minute"} and len(unaligned) == 8 * 60 - 1

        latest = await client.latest_complete_minutes(2, "hour")
        assert [(r.time_ms, r.impressions) for r in latest] == [
            (BASE + i * H, data.sums(BASE + i * H, BASE + (i + 1) * H)[0]) for i in (5, 6)
        ]
        assert await client.latest_minute("hour") == BASE + 9 * H
        assert await client.earliest_minute("hour") == BASE

        series = await client.ctr_by_segment(BASE, BASE + HOURS * H, resolution="hour")
        assert {s.segment_id for s in series} == {1, 2, 3, None}
        for s in series:
            assert [(w.time_ms, w.impressions, w.clicks) for w in s.windows] == [
                (t, *data.sums(t, t + H, in_segment(s.segment_id))) for t in range(BASE, BASE + HOURS * H, H)
            ]

        with pytest.raises(QueryError, match="at most 10080 per request"):
            await client.minutes(BASE - 200 * 24 * H, BASE, "minute")
        assert len(await client.minutes(BASE - 200 * 24 * H, BASE, "auto")) == 200 * 24  # hours: answerable

    def blocking() -> tuple[Any, ...]:
        with SyncQueryClient(engine_url, data.minutes, hourly=data.hourly) as sync:
            return sync.completeness("hour"), sync.minutes(BASE - H, BASE + HOURS * H, "hour")

    assert await asyncio.to_thread(blocking) == (hours, rows)


async def test_top_by_hour_and_auto_give_the_minutes_answer(engine_url: str, data: Hourly) -> None:
    def female(d: Doc) -> bool:
        return bool(d["gender"] == "female")

    unknown = in_segment(None)
    async with data.client(engine_url, page_size=5) as client:
        spy = Spy(client)
        # hour: the newest complete hours, 03:00 not yet, so [23:00, 03:00)
        top = await client.top_articles(minutes=240, k=8, min_impressions=1, resolution="hour")
        assert (top.from_ms, top.to_ms) == (BASE + 3 * H, BASE + 7 * H)
        assert triples(top.articles) == data.top(BASE + 3 * H, BASE + 7 * H, 8) and top.articles
        assert data.hourly in spy.searched and data.minutes not in spy.searched
        for kwargs, keep in (({"gender": "female"}, female), ({"segment": UNKNOWN}, unknown)):
            got = await client.top_articles(minutes=120, k=5, min_impressions=1, resolution="hour", **kwargs)
            assert triples(got.articles) == data.top(BASE + 5 * H, BASE + 7 * H, 5, keep), kwargs
        floored = await client.top_articles(minutes=600, k=50, end_ms=BASE + 7 * H, resolution="hour")
        assert triples(floored.articles) == data.top(
            BASE - 3 * H, BASE + 7 * H, 50, min_imp=DEFAULT_MIN_IMPRESSIONS
        )
        pinned = await client.top_articles(
            minutes=60, k=6, min_impressions=1, end_ms=BASE + 2 * H, resolution="hour"
        )
        assert (pinned.from_ms, triples(pinned.articles)) == (BASE + H, data.top(BASE + H, BASE + 2 * H, 6))

        by_segment = await client.top_by_segment(minutes=180, k=3, min_impressions=1, resolution="hour")
        assert (by_segment.from_ms, by_segment.to_ms) == (BASE + 4 * H, BASE + 7 * H)
        assert [s.segment_id for s in by_segment.segments] == [1, 2, 3, None]
        for seg in by_segment.segments:
            assert triples(seg.articles) == data.top(
                BASE + 4 * H, BASE + 7 * H, 3, in_segment(seg.segment_id)
            )

        # auto: the minute range [20:30, 03:30) and its numbers; whole hours from the rollups
        spy.searched.clear()
        auto = await client.top_articles(minutes=420, k=10, min_impressions=1, resolution="auto")
        assert data.hourly in spy.searched
        exact = await client.top_articles(minutes=420, k=10, min_impressions=1)
        assert auto == exact and (auto.from_ms, auto.to_ms) == (COMPLETE_BEFORE - 420 * M, COMPLETE_BEFORE)
        assert triples(auto.articles) == data.top(COMPLETE_BEFORE - 420 * M, COMPLETE_BEFORE, 10)
        seg_auto = await client.top_by_segment(
            minutes=400, k=4, gender="male", min_impressions=1, resolution="auto"
        )
        assert seg_auto == await client.top_by_segment(minutes=400, k=4, gender="male", min_impressions=1)
        # longer than minutes can answer (a week of windows): auto still can, exactly
        month = await client.top_articles(minutes=30 * 24 * 60, k=10, min_impressions=1, resolution="auto")
        assert triples(month.articles) == data.top(0, COMPLETE_BEFORE, 10)
        with pytest.raises(QueryError, match="minutes must be an integer in 1..10080"):
            await client.top_articles(minutes=30 * 24 * 60)

        # open hours included: the live view's ranking
        in_range = await client.top_articles_in_range(
            BASE, BASE + HOURS * H, k=10, min_impressions=1, resolution="hour"
        )
        assert triples(in_range) == data.top(BASE, BASE + HOURS * H, 10)
        since, until = BASE + 5 * M, BASE + 9 * H + 55 * M
        assert await client.top_articles_in_range(since, until, k=10, resolution="auto") == (
            await client.top_articles_in_range(since, until, k=10)
        )

        with pytest.raises(QueryError, match="minutes must be a multiple of 60, got 90"):
            await client.top_articles(minutes=90, resolution="hour")
        with pytest.raises(QueryError, match="window boundary"):
            await client.top_articles(minutes=60, end_ms=BASE + 2 * H + M, resolution="hour")
        with pytest.raises(IncompleteRangeError):
            await client.top_articles(minutes=60, end_ms=BASE + 8 * H, resolution="hour")
        with pytest.raises(QueryError, match="resolution must be one of minute, hour, auto"):
            await client.top_articles(resolution="day")

    # Rollups switched on during hour 4 (its document holds part of the hour): hour reads show what
    # the rollups hold, auto does not trust their first hour and still gives the minutes' answer.
    async with data.client(engine_url, hourly=data.late) as late:
        partial = await late.minutes(BASE + 4 * H, BASE + 5 * H, "hour")
        assert partial[0].impressions < data.sums(BASE + 4 * H, BASE + 5 * H)[0]
        auto = await late.top_articles(minutes=420, k=20, min_impressions=1, resolution="auto")
        assert triples(auto.articles) == data.top(COMPLETE_BEFORE - 420 * M, COMPLETE_BEFORE, 20)

    # Rollups off: hour is refused, auto reads minutes
    async with data.client(engine_url, hourly=None) as off:
        with pytest.raises(QueryError, match="HOURLY_INDEX is empty"):
            await off.completeness("hour")
        with pytest.raises(QueryError, match="HOURLY_INDEX is empty"):
            await off.top_articles(minutes=60, resolution="hour")
        assert await off.top_articles(minutes=420, min_impressions=1, resolution="auto") == exact
        assert {r.resolution for r in await off.minutes(BASE, BASE + 7 * H, "auto")} == {"minute"}


# --------------------------------------------------------------------------- the CLI


async def test_cli_with_resolution_hour(engine_url: str, data: Hourly) -> None:
    def cli(*argv: str, code: int = 0) -> Any:
        proc = run_cli(engine_url, data.minutes, *argv, "--hourly-index", data.hourly)
        assert proc.returncode == code, proc.stderr
        return proc.stdout if code == 0 else proc.stderr

    rows = orjson.loads(
        await asyncio.to_thread(
            cli, "range", "--resolution", "hour", "--from", iso(BASE), "--to", iso(BASE + HOURS * H), "--json"
        )
    )
    assert [(r["time_ms"], r["impressions"], r["clicks"], r["complete"], r["resolution"]) for r in rows] == [
        (t, *data.sums(t, t + H), t + H <= COMPLETE_BEFORE, "hour") for t in range(BASE, BASE + HOURS * H, H)
    ]
    auto = orjson.loads(
        await asyncio.to_thread(
            cli, "range", "--resolution", "auto", "--from", str(BASE), "--to", str(BASE + 8 * H), "--json"
        )
    )
    assert auto == rows[:8]
    table = (
        await asyncio.to_thread(
            cli, "range", "--resolution", "hour", "--from", str(BASE), "--to", str(BASE + 2 * H)
        )
    ).splitlines()
    assert table[0].startswith("hour (UTC)") and table[1].split()[1] == str(data.sums(BASE, BASE + H)[0])

    top = orjson.loads(
        await asyncio.to_thread(
            cli,
            "top",
            "--resolution",
            "hour",
            "--minutes",
            "240",
            "--k",
            "5",
            "--min-impressions",
            "1",
            "--json",
        )
    )
    assert (top["from_ms"], top["to_ms"]) == (BASE + 3 * H, BASE + 7 * H)
    assert [(a["article_id"], a["impressions"], a["clicks"]) for a in top["articles"]] == data.top(
        BASE + 3 * H, BASE + 7 * H, 5
    )
    text = await asyncio.to_thread(cli, "top", "--resolution", "hour", "--minutes", "240", "--k", "5")
    assert "4 complete hour(s) [2025-03-01T23:00:00.000Z, 2025-03-02T03:00:00.000Z)" in text
    auto_top = orjson.loads(
        await asyncio.to_thread(cli, "top", "--resolution", "auto", "--minutes", "420", "--k", "5", "--json")
    )
    minute_top = orjson.loads(await asyncio.to_thread(cli, "top", "--minutes", "420", "--k", "5", "--json"))
    assert auto_top == minute_top and auto_top["articles"]

    comp = orjson.loads(await asyncio.to_thread(cli, "completeness", "--resolution", "hour", "--json"))
    assert (comp["resolution"], comp["complete_before_ms"], comp["last_complete_window_ms"]) == (
        "hour",
        BASE + 7 * H,
        BASE + 6 * H,
    )
    text = await asyncio.to_thread(cli, "completeness", "--resolution", "hour")
    assert "complete before 2025-03-02T03:00:00.000Z (last complete hour 2025-03-02T02:00:00.000Z)" in text

    def missing() -> Any:
        return run_cli(engine_url, data.minutes, "range", "--resolution", "hour", "--from", "0", "--to", str(H),
                       "--hourly-index", data.hourly + "-nope")  # fmt: skip

    proc = await asyncio.to_thread(missing)
    assert proc.returncode == 1 and f"HOURLY_INDEX {data.hourly}-nope does not exist" in proc.stderr
    err = await asyncio.to_thread(cli, "top", "--resolution", "hour", "--minutes", "90", code=2)
    assert "--minutes must be a multiple of 60, got 90" in err


# --------------------------------------------------------------------------- HTTP API and live page


class ApiApp(AiohttpApp):
    """AiohttpApp that also takes the read API's `app.page(path, name=...)`."""

    def page(self, path: str, name: str | None = None) -> Any:
        return super().page(path)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


async def test_http_api_and_the_hourly_live_page(
    engine: str, engine_url: str, data: Hourly, tmp_path: Path
) -> None:
    """The read API and the live page served over real HTTP (aiohttp, Faust's web driver) with the
    worker's settings: resolution=hour answers, a bad resolution is a 400, view=hour shows 7 days."""
    chromium_path()
    settings = Settings(elasticsearch_url=engine_url, es_index=data.minutes, hourly_index=data.hourly)
    app = ApiApp()
    reads = api.register(app, settings)
    page = dashboard.register(app, settings)
    server = aioweb.Application()
    server.add_routes(app.routes)
    runner = aioweb.AppRunner(server)
    await runner.setup()
    port = free_port()
    await aioweb.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await get(
                http, f"{base}/api/minutes?from={iso(BASE)}&to={BASE + HOURS * H}&resolution=hour"
            )
            assert status == 200 and body["resolution"] == "hour", body
            assert [
                (m["time_ms"], m["impressions"], m["clicks"], m["complete"]) for m in body["minutes"]
            ] == [
                (t, *data.sums(t, t + H), t + H <= COMPLETE_BEFORE) for t in range(BASE, BASE + HOURS * H, H)
            ]
            status, body = await get(
                http, f"{base}/api/minutes?from={BASE}&to={BASE + 2 * H}&resolution=auto"
            )
            assert status == 200 and body["resolution"] == "minute" and len(body["minutes"]) == 120
            status, body = await get(
                http, f"{base}/api/top?minutes=240&k=5&min_impressions=1&resolution=hour"
            )
            assert status == 200 and (body["from_ms"], body["to_ms"]) == (BASE + 3 * H, BASE + 7 * H)
            assert [(a["article_id"], a["impressions"], a["clicks"]) for a in body["articles"]] == data.top(
                BASE + 3 * H, BASE + 7 * H, 5
            )
            assert body["query"]["resolution"] == "hour"
            status, body = await get(
                http, f"{base}/api/top/segments?minutes=60&k=2&min_impressions=1&resolution=hour"
            )
            assert status == 200 and [s["segment_id"] for s in body["segments"]] == [1, 2, 3, None]
            for s in body["segments"]:
                want = data.top(BASE + 6 * H, BASE + 7 * H, 2, in_segment(s["segment_id"]))
                assert [(a["article_id"], a["impressions"], a["clicks"]) for a in s["articles"]] == want
            status, auto = await get(http, f"{base}/api/top?minutes=420&k=5&resolution=auto")
            status_m, minute = await get(http, f"{base}/api/top?minutes=420&k=5")
            assert (status, status_m) == (200, 200) and auto["articles"] == minute["articles"]
            status, body = await get(http, f"{base}/api/completeness?resolution=hour")
            assert status == 200 and (body["resolution"], body["complete_before_ms"]) == (
                "hour",
                BASE + 7 * H,
            )

            status, body = await get(http, f"{base}/api/top?resolution=daily")
            assert (status, body) == (
                400,
                {"error": "resolution must be one of minute, hour, auto, got 'daily'"},
            )
            status, body = await get(http, f"{base}/api/top?resolution=hour&minutes=30")
            assert status == 400 and "multiple of 60, got 30" in body["error"]
            status, body = await get(http, f"{base}/api/openapi.json")
            params = {p["name"]: p for p in body["paths"]["/api/top"]["get"]["parameters"]}
            assert params["resolution"]["schema"]["enum"] == ["minute", "hour", "auto"]

            # the live page's "last 7 days, hourly": the 168 hours ending with the newest hour of data
            status, snap = await get(http, f"{base}/dashboard/data.json?view=hour&top=5&min_impressions=1")
            assert status == 200, snap
            assert (snap["resolution"], snap["window_ms"], len(snap["minutes"])) == ("hour", H, 168)
            assert snap["minutes"][-1]["epoch_ms"] == BASE + 9 * H
            assert {
                m["epoch_ms"]: (m["impression"], m["click"]) for m in snap["minutes"] if m["documents"]
            } == {t: data.sums(t, t + H) for t in range(BASE, BASE + HOURS * H, H)}
            assert [m["complete"] for m in snap["minutes"]] == [
                m["epoch_ms"] + H <= COMPLETE_BEFORE for m in snap["minutes"]
            ]
            assert (snap["impression"], snap["click"]) == data.sums(0, BASE + HOURS * H)
            assert [(a["article_id"], a["impression"], a["click"]) for a in snap["articles"]] == data.top(
                0, BASE + HOURS * H, 5
            )
            assert snap["query"]["view"] == "hour"
            status, refused = await get(http, f"{base}/dashboard/data.json?view=week")
            assert (status, refused["error"]) == (400, "view must be minute or hour, got 'week'")

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / (
            "live-page-hourly-420.png" if engine == "elasticsearch" else f"live-page-hourly-420-{engine}.png"
        )
        shot.unlink(missing_ok=True)
        measured = await open_in_chromium(
            tmp_path / "profile-hourly", f"{base}/dashboard?view=hour", NARROW, shot, True
        )
        assert measured["scrollWidth"] <= NARROW and measured["right"] <= NARROW + 0.5, measured
        assert measured["chartText"] is not None and measured["chartText"] >= 9, measured["chartText"]
        total = data.sums(0, BASE + HOURS * H)[0]
        assert f"{total:,}" in measured["text"] and "Last 168 hours (7 days)" in measured["text"]
        assert "Impressions and clicks per hour" in measured["text"]
        assert png_size(shot)[0] == NARROW and shot.stat().st_size > 30_000
    finally:
        await runner.cleanup()
        await page.close()
        await reads.close()
