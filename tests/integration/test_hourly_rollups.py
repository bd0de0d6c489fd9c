"""Exact hourly rollups on the real stack: hours equal SPEC's SQL grouped by FLOOR(ROWTIME TO HOUR),
across kill -9 of the worker while hours are open, beside minutes equal to the per-minute SQL."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from typing import Any

from clickagg.config import Settings
from clickagg.core import days
from clickagg.es.engines import search_engine
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact, es_rows
from tests.support.oracle import expected_rows
from tests.support.workload import build, produce

HOUR = 3_600_000


async def hourly_docs(dep: Deployment) -> list[dict[str, Any]]:
    es = search_engine(Settings(elasticsearch_url=dep.es_url))
    alias = f"{dep.name}-hourly"  # HOURLY_INDEX=auto: ES_INDEX with -minutely replaced by -hourly
    try:
        await es.refresh(alias)
        return [
            {"_id": h["_id"], "_index": h["_index"], **h["_source"]}
            async for h in es.scan(alias, {"query": {"match_all": {}}}, size=5000)
        ]
    finally:
        await es.close()


async def test_hours_equal_the_sql_per_hour_across_kill_minus_nine(engine_deployment: Deployment) -> None:
    dep = engine_deployment
    # 140 minutes ending 10 minutes before the current hour: every hour can close (the current
    # one is final only when the clock has passed its end).
    this_hour = int(time.time() * 1000) // HOUR * HOUR
    wl = build(150_000, this_hour - 150 * 60_000, minutes=140, partitions=2, lateness_ms=5000, seed=71)
    csv = await dep.prepare(wl.csv(), partitions=2)
    port = free_port()
    dep.start_worker(port, REFERENCE_DATA=csv)
    sending = asyncio.create_task(produce(dep.bootstrap, dep.topic, wl.records, duration_s=30))
    rng = random.Random()
    for _ in range(2):  # hours stay open for the whole run: both kills hit open hours
        await asyncio.sleep(rng.uniform(5, 11))
        victim = dep.workers[-1]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        dep.start_worker(port, REFERENCE_DATA=csv)
    await sending
    await assert_exact(dep, expected_rows(wl.valid, wl.users), wl.rejected)

    want = expected_rows(wl.valid, wl.users, window_ms=HOUR)
    assert len({r[0] for r in want}) >= 3, "the workload spans several hours"
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        docs = await hourly_docs(dep)
        if len(docs) == len(want) and all(d["final"] for d in docs):
            break
        assert asyncio.get_running_loop().time() < deadline, (
            f"{len(docs)} hourly documents, want {len(want)} final"
        )
        await asyncio.sleep(1)
    got = es_rows(docs)
    assert len(got) == len(set(got)) == len({d["_id"] for d in docs}), (
        "one document per (hour, gender, segment, article)"
    )
    missing, extra = want - set(got), set(got) - want
    assert not missing and not extra, (
        f"{len(missing)} missing, {len(extra)} unexpected: {sorted(missing, key=repr)[:3]} / {sorted(extra, key=repr)[:3]}"
    )
    for d in docs:  # each in the daily index of its hour's day
        assert d["_index"] == days.daily_index(
            f"{dep.name}-hourly", days.day_of(_ms(d["time"])) * days.DAY_MS
        ), d


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
