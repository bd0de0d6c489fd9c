"""Exactness against SPEC's SQL (SQLite oracle) on the real stack: volume, many workers, crashes.

The volume test and the kill -9 test run once per search engine (Elasticsearch, OpenSearch).
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time

from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact
from tests.support.oracle import expected_rows
from tests.support.workload import build, past_minute, produce

LATENESS_MS = 5000


async def test_200k_events_ten_minutes_out_of_order_malformed(engine_deployment: Deployment) -> None:
    wl = build(200_000, past_minute(30), minutes=10, partitions=1, lateness_ms=LATENESS_MS, seed=3)
    assert wl.rejected >= 0.003 * len(wl.records)
    csv = await engine_deployment.prepare(wl.csv(), partitions=1)
    await produce(engine_deployment.bootstrap, engine_deployment.topic, wl.records)
    engine_deployment.start_worker(free_port(), REFERENCE_DATA=csv)
    await assert_exact(engine_deployment, expected_rows(wl.valid, wl.users), wl.rejected)


async def test_four_partitions_two_workers_one_leaves_one_joins(deployment: Deployment) -> None:
    """Two workers share 4 partitions; mid-run one leaves (graceful) and a new one joins later."""
    wl = build(200_000, past_minute(30), minutes=10, partitions=4, lateness_ms=LATENESS_MS, seed=4)
    csv = await deployment.prepare(wl.csv(), partitions=4)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv)
    leaving = deployment.start_worker(free_port(), REFERENCE_DATA=csv)
    sending = asyncio.create_task(produce(deployment.bootstrap, deployment.topic, wl.records, duration_s=25))
    await asyncio.sleep(8)
    leaving.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(leaving.wait, 60) == 0
    await asyncio.sleep(5)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv)
    await sending
    await assert_exact(deployment, expected_rows(wl.valid, wl.users), wl.rejected)


async def test_kill_minus_nine_three_times(engine_deployment: Deployment) -> None:
    wl = build(200_000, past_minute(30), minutes=10, partitions=2, lateness_ms=LATENESS_MS, seed=5)
    csv = await engine_deployment.prepare(wl.csv(), partitions=2)
    port = free_port()
    engine_deployment.start_worker(port, REFERENCE_DATA=csv)
    sending = asyncio.create_task(
        produce(engine_deployment.bootstrap, engine_deployment.topic, wl.records, duration_s=40)
    )
    rng = random.Random()
    kills = 0
    for _ in range(3):
        await asyncio.sleep(rng.uniform(4, 10))
        victim = engine_deployment.workers[-1]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        kills += 1
        engine_deployment.start_worker(port, REFERENCE_DATA=csv)
    await sending
    assert kills == 3
    await assert_exact(engine_deployment, expected_rows(wl.valid, wl.users), wl.rejected)


async def test_kill_minus_nine_while_windows_are_open(deployment: Deployment) -> None:
    """Live data (event time = now): stage 2 has open, partially written documents when it dies.

    The restarted worker must adopt them from Elasticsearch (counts, and the external `_version` as
    the applied partials offset) and go on without counting anything twice or losing it.
    """
    window_ms, lateness_ms = 10_000, 2_000
    start = (int(time.time() * 1000) // window_ms + 1) * window_ms
    wl = build(60_000, start, minutes=1, partitions=2, lateness_ms=lateness_ms, seed=8)
    csv = await deployment.prepare(wl.csv(), partitions=2)
    port = free_port()
    live = {"WINDOW_SECONDS": 10, "ALLOWED_LATENESS_SECONDS": 2, "REFERENCE_DATA": csv}
    deployment.start_worker(port, **live)
    await asyncio.sleep(max(0.0, start / 1000 - time.time()))
    sending = asyncio.create_task(produce(deployment.bootstrap, deployment.topic, wl.records, duration_s=60))
    rng = random.Random()
    for moment in (rng.uniform(15, 25), rng.uniform(35, 45)):
        await asyncio.sleep(max(0.0, start / 1000 + moment - time.time()))
        victim = deployment.workers[-1]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        deployment.start_worker(port, **live)
    await sending
    await assert_exact(deployment, expected_rows(wl.valid, wl.users, window_ms=window_ms), wl.rejected)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(deployment.tmp.glob("worker-*.log")))
    adopted = [int(n) for n in re.findall(r"stage2 owns .+? from offset \S+ with (\d+) open documents", logs)]
    assert sum(adopted) > 0, f"no restarted worker adopted open documents: {adopted}"
