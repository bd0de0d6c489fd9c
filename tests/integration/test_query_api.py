"""The read API against the real Elasticsearch and OpenSearch (each test runs on both): totals,
completeness and rankings equal plain Python sums over the documents the test indexed itself; then
the same over HTTP from a real worker and from the CLI."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from clickagg.app import api
from clickagg.config import Settings
from clickagg.core.documents import iso
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
)
from clickagg.stack.layout import StackLayout
from tests.integration.conftest import free_port

W, L = 60_000, 10_000
BASE = 1_740_787_200_000  # 2025-03-01T00:00:00Z
GROUPS = [("female", 1), ("female", 2), ("male", 1), ("male", 2), ("male", 3), (None, None)]


@dataclass
class Dataset:
    """Documents for minutes BASE + i*W, i in `minutes`, and an oracle over them."""

    index: str
    docs: list[dict[str, Any]] = field(default_factory=list)

    def minute(self, i: int) -> int:
        return BASE + i * W

    def totals(self, start: int) -> tuple[int, int, int, int]:
        rows = [d for d in self.docs if d["time"] == iso(start)]
        return (
            sum(d["impression"] for d in rows),
            sum(d["click"] for d in rows),
            len(rows),
            sum(1 for d in rows if d["final"]),
        )

    def top(
        self,
        starts: Iterable[int],
        k: int,
        keep: Callable[[dict[str, Any]], bool],
        min_imp: int = DEFAULT_MIN_IMPRESSIONS,
    ) -> list[tuple[int, int, int]]:
        wanted = {iso(s) for s in starts}
        sums: dict[int, list[int]] = {}
        for d in self.docs:
            if d["time"] in wanted and keep(d):
                s = sums.setdefault(d["article_id"], [0, 0])
                s[0] += d["impression"]
                s[1] += d["click"]
        rows = [(a, i, c) for a, (i, c) in sums.items() if i >= max(min_imp, 1)]
        return sorted(rows, key=lambda r: (-Fraction(r[2], r[1]), -r[1], r[0]))[:k]


def make_docs(minutes: Iterable[int], complete_below: int, seed: int) -> list[dict[str, Any]]:
    """Random rows per (minute, gender, segment, article), plus exact CTR ties in minute 0."""
    rng = random.Random(seed)
    docs = []
    for i in minutes:
        start = BASE + i * W
        for gender, segment in GROUPS:
            for article in rng.sample(range(1001, 1031), rng.randrange(3, 12)):
                imp = rng.randrange(0, 60)
                clk = rng.randrange(0, imp + 3)  # clicks without impressions happen too
                docs.append(
                    doc(
                        start,
                        gender,
                        segment,
                        article,
                        imp,
                        clk,
                        final=i < complete_below or rng.random() < 0.5,
                    )
                )
    # ties in minute 0, segment 3: equal CTR and impressions (id decides), equal CTR more impressions first
    for article, imp, clk in ((2001, 10, 9), (2002, 10, 9), (2003, 20, 18), (2004, 3, 3)):
        docs.append(doc(BASE, "male", 3, article, imp, clk, final=True))
    return docs


def doc(
    start: int, gender: str | None, segment: int | None, article: int, imp: int, clk: int, final: bool
) -> dict[str, Any]:
    return {
        "time": iso(start),
        "gender": gender,
        "segment_id": segment,
        "article_id": article,
        "impression": imp,
        "click": clk,
        "ctr": clk / imp if imp else None,
        "final": final,
        "owner_partition": 50 + article % 3,  # no real worker owns these partitions
    }


async def index_docs(es: SearchEngine, index: str, docs: list[dict[str, Any]], refresh: bool = True) -> None:
    lines = []
    for d in docs:
        doc_id = f"{d['time']}|{d['gender']}|{d['segment_id']}|{d['article_id']}"
        lines += [orjson.dumps({"index": {"_index": index, "_id": doc_id}}), orjson.dumps(d)]
    for start in range(0, len(lines), 2000):
        resp = await es.bulk(b"\n".join(lines[start : start + 2000]) + b"\n", "errors,items.*.error")
        assert not resp.get("errors"), resp
    if refresh:
        await es.refresh(index)


async def set_progress(es: SearchEngine, index: str, closed: list[int]) -> None:
    """One progress document per partition, versioned by closed_below as the worker does."""
    lines = []
    for p, c in enumerate(closed):
        action = {
            "_index": schema.progress_index(index),
            "_id": str(p),
            "version": c + 1,
            "version_type": "external",
        }
        source = {
            "partition": p,
            "partitions": len(closed),
            "closed_below_ms": c,
            "window_ms": W,
            "lateness_ms": L,
            "updated_at": iso(int(time.time() * 1000)),
        }
        lines += [orjson.dumps({"index": action}), orjson.dumps(source)]
    resp = await es.bulk(b"\n".join(lines) + b"\n", "errors,items.*.error")
    assert not resp.get("errors"), resp
    await es.refresh(schema.progress_index(index))


def closing(complete_before: int) -> list[int]:
    """closed_below values (3 partitions) under which exactly the windows before complete_before are complete."""
    low = complete_before + L + 7_000  # (complete_before - W) + W + L <= low < complete_before + W + L
    return [low + 20_000, low, low + 50_000]


async def drop(es: SearchEngine, index: str) -> None:
    for name in (index, schema.progress_index(index)):
        for concrete in await es.indices(name):  # the daily indices behind the alias
            await es.delete_index(concrete)
        await es.delete_index_template(schema.template_name(name))


DATA_MINUTES = [0, 1, 2, 4, 5, 6, 7]  # minute 3 has no events at all
COMPLETE_BELOW = 5  # minutes 0..4 are complete


@pytest.fixture
async def dataset(engine_url: str) -> AsyncIterator[Dataset]:
    es = search_engine(Settings(elasticsearch_url=engine_url))
    data = Dataset("tq-" + uuid.uuid4().hex[:10])
    try:
        await schema.install(es, data.index)
        # documents stay invisible to search until someone refreshes: the reader must do it
        await es.put_settings(data.index, {"index": {"refresh_interval": "-1"}})
        data.docs = make_docs(DATA_MINUTES, COMPLETE_BELOW, seed=7)
        await index_docs(es, data.index, data.docs, refresh=False)
        await set_progress(es, data.index, closing(data.minute(COMPLETE_BELOW)))
        yield data
    finally:
        await drop(es, data.index)
        await es.close()


async def test_completeness_and_latest_minutes(engine_url: str, dataset: Dataset) -> None:
    async with QueryClient(engine_url, dataset.index) as client:
        assert await client.es.count(dataset.index) == 0  # not refreshed yet
        comp = await client.completeness()
        assert comp.complete_before_ms == dataset.minute(COMPLETE_BELOW)
        assert comp.last_complete_minute_ms == dataset.minute(COMPLETE_BELOW - 1)
        assert (comp.partitions_expected, comp.missing_partitions, comp.window_ms, comp.lateness_ms) == (
            3,
            (),
            W,
            L,
        )
        assert [p.partition for p in comp.partitions] == [0, 1, 2]

        rows = await client.latest_complete_minutes(3)
        assert [r.time_ms for r in rows] == [dataset.minute(i) for i in (2, 3, 4)]
        for r in rows:
            imp, clk, docs, finals = dataset.totals(r.time_ms)
            assert (r.impressions, r.clicks, r.documents, r.final_documents) == (imp, clk, docs, finals)
            assert r.complete and r.final and r.time == iso(r.time_ms)
            assert r.ctr == (clk / imp if imp else None)
        assert rows[1].documents == 0 and rows[1].impressions == 0  # the empty minute is complete too
        assert rows[0].impressions > 0


async def test_minutes_in_a_range_flag_completeness(engine_url: str, dataset: Dataset) -> None:
    async with QueryClient(engine_url, dataset.index, page_size=3) as client:  # several composite pages
        rows = await client.minutes(dataset.minute(-1) + 30_000, dataset.minute(8) + 1)
    assert [r.time_ms for r in rows] == [dataset.minute(i) for i in range(-1, 9)]
    for r in rows:
        imp, clk, docs, finals = dataset.totals(r.time_ms)
        assert (r.impressions, r.clicks, r.documents, r.final_documents) == (imp, clk, docs, finals), r
        assert r.complete == (r.time_ms < dataset.minute(COMPLETE_BELOW))
        assert r.final == (docs == finals)
    assert any(not r.final for r in rows if not r.complete), "open minutes hold non-final documents"
    assert sum(r.impressions for r in rows) == sum(d["impression"] for d in dataset.docs)


async def test_top_articles_by_ctr_with_filters(engine_url: str, dataset: Dataset) -> None:
    complete = [dataset.minute(i) for i in range(COMPLETE_BELOW)]
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool], list[int]]] = [
        ({}, lambda d: True, complete),
        ({"gender": "female"}, lambda d: d["gender"] == "female", complete),
        ({"segment": 2}, lambda d: d["segment_id"] == 2, complete),
        ({"gender": "male", "segment": 3}, lambda d: (d["gender"], d["segment_id"]) == ("male", 3), complete),
        ({"gender": UNKNOWN}, lambda d: d["gender"] is None, complete),
        ({"segment": UNKNOWN, "minutes": 2}, lambda d: d["segment_id"] is None, complete[-2:]),
        ({"min_impressions": 60, "minutes": 3}, lambda d: True, complete[-3:]),
        (
            {"end_ms": dataset.minute(1), "minutes": 1, "segment": 3, "k": 4},
            lambda d: d["segment_id"] == 3,
            complete[:1],
        ),
    ]
    async with QueryClient(engine_url, dataset.index, page_size=4) as client:
        for kwargs, keep, starts in cases:
            # floor 1 (every article with an impression): these cases are about filters and ranges;
            # the default floor is checked below
            kwargs = {"minutes": COMPLETE_BELOW, "k": 7, "min_impressions": 1, **kwargs}
            got = await client.top_articles(**kwargs)
            want = dataset.top(starts, kwargs["k"], keep, kwargs["min_impressions"])
            assert want, kwargs
            assert [(a.article_id, a.impressions, a.clicks) for a in got.articles] == want, kwargs
            assert (got.from_ms, got.to_ms) == (starts[0], starts[-1] + W)
            assert all(a.ctr == a.clicks / a.impressions for a in got.articles)
        tied = await client.top_articles(
            minutes=1, k=100, segment=3, min_impressions=1, end_ms=dataset.minute(1)
        )
        assert [a.article_id for a in tied.articles if a.article_id > 2000] == [2004, 2003, 2001, 2002]
        # by default 2004's perfect CTR on 3 impressions (and 2001/2002's 9 of 10) does not rank
        floored = await client.top_articles(minutes=1, k=100, segment=3, end_ms=dataset.minute(1))
        assert [a.article_id for a in floored.articles if a.article_id > 2000] == [2003]
        assert min(a.impressions for a in floored.articles) >= DEFAULT_MIN_IMPRESSIONS

        with pytest.raises(IncompleteRangeError):
            await client.top_articles(minutes=1, end_ms=dataset.minute(COMPLETE_BELOW + 1))
        with pytest.raises(QueryError, match="window boundary"):
            await client.top_articles(minutes=1, end_ms=dataset.minute(2) + 1)


async def test_top_by_segment_and_final_minutes(engine_url: str, dataset: Dataset) -> None:
    complete = [dataset.minute(i) for i in range(COMPLETE_BELOW)]
    async with QueryClient(engine_url, dataset.index, page_size=5) as client:
        for floor in (1, None):  # every article with an impression; the default floor
            result = await client.top_by_segment(
                minutes=2, k=3, **({} if floor is None else {"min_impressions": floor})
            )
            assert (result.from_ms, result.to_ms) == (complete[-2], complete[-1] + W)
            wants = {
                seg: dataset.top(
                    complete[-2:], 3, lambda d, s=seg: d["segment_id"] == s, floor or DEFAULT_MIN_IMPRESSIONS
                )
                for seg in (1, 2, 3, None)
            }
            # segments without an article above the floor are left out
            assert [s.segment_id for s in result.segments] == [seg for seg, want in wants.items() if want]
            assert floor is None or len(result.segments) == 4
            for seg in result.segments:
                assert [(a.article_id, a.impressions, a.clicks) for a in seg.articles] == wants[
                    seg.segment_id
                ]

        females = await client.top_by_segment(
            minutes=1, k=2, gender="female", min_impressions=1, end_ms=dataset.minute(1)
        )
        assert [s.segment_id for s in females.segments] == [1, 2]
        for seg in females.segments:
            want = dataset.top(
                complete[:1],
                2,
                lambda d, s=seg.segment_id: (d["gender"], d["segment_id"]) == ("female", s),
                1,
            )
            assert [(a.article_id, a.impressions, a.clicks) for a in seg.articles] == want

        assert await client.final_minutes() == complete
        assert await client.final_minutes(after_ms=dataset.minute(1)) == complete[2:]
        assert await client.final_minutes(after_ms=dataset.minute(1) + 5, limit=2) == complete[2:4]
        assert await client.final_minutes(after_ms=dataset.minute(4)) == []


async def test_live_reads_include_open_minutes(engine_url: str, dataset: Dataset) -> None:
    """The live page's reads: the last minutes of data (open ones flagged), CTR by segment and top
    articles over a range that reaches into open minutes, each equal to plain sums over the documents."""
    far_future = dataset.minute(10_000)
    async with QueryClient(engine_url, dataset.index, page_size=4) as client:  # several composite pages
        rows = await client.latest_minutes(6, now_ms=far_future)  # makes the documents visible first
        assert await client.latest_minute() == dataset.minute(7)
        assert [r.time_ms for r in rows] == [dataset.minute(i) for i in range(2, 8)]
        for r in rows:
            imp, clk, docs, finals = dataset.totals(r.time_ms)
            assert (r.impressions, r.clicks, r.documents, r.final_documents) == (imp, clk, docs, finals)
            assert r.complete == (r.time_ms < dataset.minute(COMPLETE_BELOW)), r
        assert rows[1].documents == 0  # minute 3: no events, a zero, not a gap
        # the clock caps the range: documents after now do not move it
        capped = await client.latest_minutes(3, now_ms=dataset.minute(5) + 59_999)
        assert [r.time_ms for r in capped] == [dataset.minute(i) for i in (3, 4, 5)]

        since, until = dataset.minute(2) + 30_000, dataset.minute(7) + 1  # windows 2..7, open 5..7
        series = await client.ctr_by_segment(since, until, limit=8)
        starts = [dataset.minute(i) for i in range(2, 8)]
        want: dict[int | None, dict[int, list[int]]] = {}
        for d in dataset.docs:
            start = next((s for s in starts if iso(s) == d["time"]), None)
            if start is not None:
                cell = want.setdefault(d["segment_id"], {}).setdefault(start, [0, 0])
                cell[0] += d["impression"]
                cell[1] += d["click"]
        assert {s.segment_id for s in series} == set(want) == {1, 2, 3, None}
        for s in series:
            assert [(w.time_ms, w.impressions, w.clicks) for w in s.windows] == [
                (t, *want[s.segment_id].get(t, [0, 0])) for t in starts
            ]
            assert (s.impressions, s.clicks) == (
                sum(w.impressions for w in s.windows),
                sum(w.clicks for w in s.windows),
            )
        assert [s.impressions for s in series] == sorted((s.impressions for s in series), reverse=True)
        top2 = await client.ctr_by_segment(since, until, limit=2)
        assert top2 == series[:2]

        in_range = await client.top_articles_in_range(since, until, k=6)
        for kwargs, keep in (
            ({}, lambda d: True),
            ({"gender": "male", "min_impressions": 40}, lambda d: d["gender"] == "male"),
            ({"segment": UNKNOWN}, lambda d: d["segment_id"] is None),
        ):
            got = await client.top_articles_in_range(since, until, k=6, **kwargs)
            expected = dataset.top(starts, 6, keep, kwargs.get("min_impressions", DEFAULT_MIN_IMPRESSIONS))
            assert expected and [(a.article_id, a.impressions, a.clicks) for a in got] == expected, kwargs
        # over complete windows only, the same answer as top_articles()
        complete = await client.top_articles(minutes=3, k=5)
        assert (
            await client.top_articles_in_range(dataset.minute(2), dataset.minute(5), k=5) == complete.articles
        )

        with pytest.raises(QueryError, match="empty"):
            await client.ctr_by_segment(since, since)
        with pytest.raises(QueryError, match="at most 10080 per request"):
            await client.top_articles_in_range(0, BASE)

    def blocking() -> tuple[Any, ...]:
        with SyncQueryClient(engine_url, dataset.index) as sync:
            return (
                sync.latest_minute(),
                sync.latest_minutes(6, now_ms=far_future),
                sync.ctr_by_segment(since, until),
                sync.top_articles_in_range(since, until, k=6),
            )

    assert await asyncio.to_thread(blocking) == (dataset.minute(7), rows, series, in_range)


async def test_sync_client_gives_the_same_answers(engine_url: str, dataset: Dataset) -> None:
    async with QueryClient(engine_url, dataset.index) as client:
        latest = await client.latest_complete_minutes(4)
        top = await client.top_articles(minutes=3, k=5, gender="male")

    def blocking() -> tuple[Any, ...]:
        with SyncQueryClient(engine_url, dataset.index) as sync:
            return (
                sync.latest_complete_minutes(4),
                sync.top_articles(minutes=3, k=5, gender="male"),
                sync.completeness().complete_before_ms,
            )

    got = await asyncio.to_thread(blocking)
    assert got == (latest, top, dataset.minute(COMPLETE_BELOW))
    assert len(latest) == 4 and len(top.articles) == 5


async def test_nothing_complete_and_missing_index(engine_url: str) -> None:
    index = "tq-" + uuid.uuid4().hex[:10]
    async with QueryClient(engine_url, index) as client:
        assert (await client.completeness()).complete_before_ms is None
        assert await client.latest_complete_minutes(3) == []
        assert (await client.top_articles()).articles == ()
        assert await client.final_minutes() == []
        assert await client.latest_minute() is None and await client.latest_minutes(30) == []
        assert await client.ctr_by_segment(BASE, BASE + 2 * W) == []
        assert await client.top_articles_in_range(BASE, BASE + 2 * W) == ()
        rows = await client.minutes(BASE, BASE + 2 * W)
        assert [(r.time_ms, r.impressions, r.complete) for r in rows] == [
            (BASE, 0, False),
            (BASE + W, 0, False),
        ]
        with pytest.raises(QueryError, match="at most 10080 per request"):
            await client.minutes(0, BASE)  # 29 million windows: refused before anything is built


async def test_http_handlers_against_elasticsearch(engine_url: str, dataset: Dataset) -> None:
    async with QueryClient(engine_url, dataset.index) as client:
        status, body = await api.respond(api.latest, client, {"n": "2"})
        assert status == 200
        assert [(m["time_ms"], m["impressions"], m["clicks"]) for m in body["minutes"]] == [
            (dataset.minute(i), *dataset.totals(dataset.minute(i))[:2]) for i in (3, 4)
        ]
        status, body = await api.respond(
            api.minute_range, client, {"from": iso(dataset.minute(4)), "to": str(dataset.minute(6))}
        )
        assert status == 200 and (body["from_ms"], body["to_ms"]) == (dataset.minute(4), dataset.minute(6))
        assert [(m["impressions"], m["complete"]) for m in body["minutes"]] == [
            (dataset.totals(dataset.minute(4))[0], True),
            (dataset.totals(dataset.minute(5))[0], False),
        ]
        status, body = await api.respond(api.top, client, {"segment": "null", "k": "3", "minutes": "5"})
        want = dataset.top([dataset.minute(i) for i in range(5)], 3, lambda d: d["segment_id"] is None)
        assert (
            status == 200
            and [(a["article_id"], a["impressions"], a["clicks"]) for a in body["articles"]] == want
        )
        status, body = await api.respond(api.completeness, client, {})
        assert status == 200 and body["complete_before"] == iso(dataset.minute(COMPLETE_BELOW))


def spawn_worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "clickagg.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


async def test_worker_serves_the_read_api(stack: StackLayout, engine_url: str, tmp_path: Path) -> None:
    """A real worker process (Kafka + its web server) answers /api/* from an index we filled."""
    es = search_engine(Settings(elasticsearch_url=engine_url))
    name = "tq" + uuid.uuid4().hex[:10]
    data = Dataset(f"{name}-minutely")
    port = free_port()
    log = (tmp_path / "worker.log").open("ab")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "ELASTICSEARCH_URL": engine_url,
        "ES_INDEX": data.index,
        "APP_ID": name,
        "EVENTS_TOPIC": f"{name}-events",
        "WEB_PORT": str(port),
        "DATA_DIR": str(tmp_path / "data"),
        "IDLE_TIMEOUT_SECONDS": "86400",  # no events and no idle advance: the worker never writes progress
    }
    proc = spawn_worker({**os.environ, **env}, log)
    try:
        await schema.install(es, data.index)
        data.docs = make_docs(DATA_MINUTES, COMPLETE_BELOW, seed=8)
        await index_docs(es, data.index, data.docs)
        await set_progress(es, data.index, closing(data.minute(COMPLETE_BELOW)))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if (await asyncio.to_thread(get, base + "/healthz"))[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "worker web server did not come up"
            await asyncio.sleep(0.5)

        status, body = await asyncio.to_thread(get, base + "/api/minutes/latest?n=2")
        assert status == 200, body
        assert [(m["time_ms"], m["impressions"], m["clicks"], m["complete"]) for m in body["minutes"]] == [
            (dataset_minute, *data.totals(dataset_minute)[:2], True)
            for dataset_minute in (data.minute(3), data.minute(4))
        ]
        status, body = await asyncio.to_thread(
            get, f"{base}/api/minutes?from={iso(data.minute(4))}&to={data.minute(7)}"
        )
        assert status == 200
        assert [(m["time_ms"], m["clicks"], m["complete"]) for m in body["minutes"]] == [
            (data.minute(i), data.totals(data.minute(i))[1], i < COMPLETE_BELOW) for i in (4, 5, 6)
        ]
        status, body = await asyncio.to_thread(get, f"{base}/api/top?gender=female&segment=2&minutes=4&k=5")
        want = data.top(
            [data.minute(i) for i in range(1, 5)],
            5,
            lambda d: (d["gender"], d["segment_id"]) == ("female", 2),
        )
        assert (
            status == 200
            and [(a["article_id"], a["impressions"], a["clicks"]) for a in body["articles"]] == want
        )
        assert body["query"] == {
            "minutes": 4,
            "k": 5,
            "gender": "female",
            "segment": 2,
            "min_impressions": DEFAULT_MIN_IMPRESSIONS,
            "resolution": "minute",
        }
        status, body = await asyncio.to_thread(get, f"{base}/api/top/segments?minutes=1&k=2")
        assert status == 200 and [s["segment_id"] for s in body["segments"]] == [1, 2, 3, None]
        status, body = await asyncio.to_thread(get, f"{base}/api/completeness")
        assert status == 200 and body["complete_before_ms"] == data.minute(COMPLETE_BELOW)

        status, body = await asyncio.to_thread(get, f"{base}/api/top?k=zero")
        assert (status, body) == (400, {"error": "k must be an integer, got 'zero'"})
        status, body = await asyncio.to_thread(get, f"{base}/api/minutes?from=yesterday&to=now")
        assert status == 400 and "from: not an ISO 8601 time" in body["error"]

        status, doc = await asyncio.to_thread(get, f"{base}/api/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.") and set(doc["paths"]) == set(api.ROUTES)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        await drop(es, data.index)
        await es.close()


def run_cli(es_url: str, index: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "clickagg.cli",
            "query",
            *argv,
            "--elasticsearch-url",
            es_url,
            "--es-index",
            index,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_against_elasticsearch(engine_url: str, dataset: Dataset) -> None:
    def cli(*argv: str) -> Any:
        proc = run_cli(engine_url, dataset.index, *argv)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    latest = orjson.loads(await asyncio.to_thread(cli, "latest", "--minutes", "2", "--json"))
    assert [(m["time_ms"], m["impressions"], m["clicks"], m["final"], m["complete"]) for m in latest] == [
        (dataset.minute(i), *dataset.totals(dataset.minute(i))[:2], True, True) for i in (3, 4)
    ]
    rows = orjson.loads(
        await asyncio.to_thread(
            cli, "range", "--from", iso(dataset.minute(4)), "--to", iso(dataset.minute(6)), "--json"
        )
    )
    assert [(m["documents"], m["complete"]) for m in rows] == [
        (dataset.totals(dataset.minute(4))[2], True),
        (dataset.totals(dataset.minute(5))[2], False),
    ]
    top = orjson.loads(
        await asyncio.to_thread(cli, "top", "--minutes", "3", "--k", "4", "--gender", "null", "--json")
    )
    want = dataset.top([dataset.minute(i) for i in (2, 3, 4)], 4, lambda d: d["gender"] is None)
    assert [(a["article_id"], a["impressions"], a["clicks"]) for a in top["articles"]] == want
    table = (
        await asyncio.to_thread(cli, "top", "--minutes", "3", "--k", "4", "--gender", "null")
    ).splitlines()
    assert [int(line.split()[1]) for line in table[2:]] == [a for a, _, _ in want]
    text = await asyncio.to_thread(cli, "completeness")
    assert (
        f"complete before {iso(dataset.minute(COMPLETE_BELOW))}" in text
        and "partitions 3 (missing: none)" in text
    )
