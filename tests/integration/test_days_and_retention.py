"""Daily indices behind the ES_INDEX alias, retention and `expired` dead letters, on the real stack.

Counts are compared with SPEC's SQL (SQLite) over what the test sent, every dead letter is read back
(read_committed) with its reason, and each document is checked to live in its window's day index.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from elasticsearch import AsyncElasticsearch

from clickagg.config import Settings
from clickagg.core import days
from clickagg.es.engines import search_engine
from clickagg.query import QueryClient
from tests.integration.conftest import free_port
from tests.integration.test_ownership import wait_ready
from tests.support.cluster import Deployment, assert_exact, es_rows, worker_metric
from tests.support.oracle import expected_rows
from tests.support.workload import build, produce

DAY = days.DAY_MS
HOUR = 3_600_000


def midnight(days_ago: int) -> int:
    return (int(time.time() * 1000) // DAY - days_ago) * DAY


async def concrete_docs(es_url: str, index: str) -> list[dict[str, Any]]:
    es = search_engine(Settings(elasticsearch_url=es_url))
    try:
        await es.refresh(index)
        return [h async for h in es.scan(index, {"query": {"match_all": {}}}, size=5000)]
    finally:
        await es.close()


async def test_days_across_midnight_a_replay_and_expired_events(deployment: Deployment) -> None:
    dep = deployment
    # 4 days ago, then across the midnight two days ago, then 8 days ago (past RETENTION_DAYS=5).
    old = build(3_000, midnight(4) + 3_600_000, minutes=3, partitions=2, lateness_ms=5000, seed=61)
    night = build(20_000, midnight(2) - 3 * 60_000, minutes=6, partitions=2, lateness_ms=5000, seed=62)
    gone = build(1_000, midnight(8) + 7_200_000, minutes=2, partitions=2, lateness_ms=5000, seed=63,
                 users=night.users, malformed_ratio=0)  # fmt: skip
    csv = await dep.prepare(night.csv(), partitions=2)
    for wl in (old, night, gone):
        await produce(dep.bootstrap, dep.topic, wl.records)
    port = free_port()
    dep.start_worker(port, REFERENCE_DATA=csv, RETENTION_DAYS=5)
    expected = expected_rows(old.valid + night.valid, night.users)
    await assert_exact(dep, expected, old.rejected + night.rejected + len(gone.records))

    reasons: dict[str, int] = {}
    for record in await dep.dead_letters():
        reason = dict(record.headers)["reason"].decode()
        reasons[reason] = reasons.get(reason, 0) + 1
    assert reasons.get("expired") == len(gone.records), reasons
    assert sum(reasons.values()) - len(gone.records) == old.rejected + night.rejected

    docs = await concrete_docs(dep.es_url, dep.index)
    for hit in docs:
        start = days.day_of_index(dep.index, hit["_index"])
        assert start is not None and hit["_source"]["time"].startswith(
            days.suffix(start).replace(".", "-")
        ), hit
    used = {hit["_index"] for hit in docs}
    assert used == {days.daily_index(dep.index, midnight(n)) for n in (4, 3, 2)}, used
    es = AsyncElasticsearch(dep.es_url)
    try:
        behind = set((await es.indices.get_alias(name=dep.index)).body)
        assert days.daily_index(dep.index, midnight(8)) not in behind  # never created for expired events
        assert behind == used | {days.daily_index(dep.index, midnight(0))}  # today's: made at start
    finally:
        await es.close()
    assert await worker_metric(port, "records_dead_lettered_total") == len(await dep.dead_letters())

    # The hourly rollups of the same three days equal the SQL grouped by hour, and the read API
    # answers across the days from both resolutions with the SQL's totals.
    valid = old.valid + night.valid
    want_hours = expected_rows(valid, night.users, window_ms=HOUR)
    deadline = time.monotonic() + 120
    while True:
        hours = await concrete_docs(dep.es_url, f"{dep.name}-hourly")
        if len(hours) == len(want_hours) and all(h["_source"]["final"] for h in hours):
            break
        assert time.monotonic() < deadline, f"{len(hours)} hourly documents, want {len(want_hours)} final"
        await asyncio.sleep(1)
    assert set(es_rows([h["_source"] for h in hours])) == want_hours
    async with QueryClient(dep.es_url, dep.index, hourly=f"{dep.name}-hourly") as client:
        for resolution, size, sql in (("minute", 60_000, expected), ("hour", HOUR, want_hours)):
            got = await client.minutes(midnight(4), midnight(1), resolution)
            by_window: dict[int, list[int]] = {}
            for row in sql:
                by_window.setdefault(row[0], [0, 0])
                by_window[row[0]][0] += row[4]
                by_window[row[0]][1] += row[5]
            assert len(got) == 3 * DAY // size and all(m.complete for m in got), resolution
            assert {
                m.time_ms: [m.impressions, m.clicks] for m in got if m.impressions or m.clicks
            } == by_window


async def test_retention_deletes_exactly_this_deployments_old_days(deployment: Deployment) -> None:
    dep = deployment
    await dep.create_topic(partitions=1)
    port = free_port()
    first = dep.start_worker(port, RETENTION_DAYS=0)  # installs the template (owner, alias); keeps all
    await wait_ready(dep, first, port)
    es = AsyncElasticsearch(dep.es_url)
    mine = {n: days.daily_index(dep.index, midnight(n)) for n in (10, 6, 5, 1)}
    foreign = days.daily_index(dep.index, midnight(9))
    other_base = days.daily_index(dep.name + "x-minutely", midnight(10))
    try:
        for name in mine.values():  # as stage 2's bulk writes create them: through the template
            doc = {"time": "2026-01-01T00:00:00Z", "gender": None, "segment_id": None, "article_id": 1,
                   "impression": 1, "click": 0, "final": True, "owner_partition": 0}  # fmt: skip
            await es.index(index=name, id="x", document=doc, refresh=True)
        await es.indices.create(
            index=foreign,
            mappings={
                "_meta": {"clickagg": {"app_id": "someone-else", "window_ms": 60000, "lateness_ms": 0}}
            },
        )
        await es.indices.delete_alias(index=foreign, name=dep.index)  # not behind our alias: a stray
        await es.indices.create(index=other_base)
        first.terminate()
        assert await asyncio.to_thread(first.wait, 60) == 0

        port = free_port()
        dep.start_worker(port, RETENTION_DAYS=4)  # keeps 4 days + today; 5 days ago is its grace day
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            left = set((await es.indices.get(index=f"{dep.index}-*")).body)
            if mine[10] not in left and mine[6] not in left:
                break
            await asyncio.sleep(1)
        left = set((await es.indices.get(index=f"{dep.index}-*")).body)
        assert left == {
            mine[5],
            mine[1],
            foreign,
            days.daily_index(dep.index, midnight(0)),
            f"{dep.index}-progress",
        }, left
        assert await es.indices.exists(index=other_base)
        assert await worker_metric(port, "indices_deleted_total") == 2
        logs = dep.logs()
        assert f"retention: deleted {mine[10]}" in logs and f"retention: deleted {mine[6]}" in logs, logs
        assert f"retention: {foreign} is past RETENTION_DAYS=4 but not this deployment's: left alone" in logs
    finally:
        for name in (foreign, other_base):
            await es.options(ignore_status=404).indices.delete(index=name)
        await es.close()
