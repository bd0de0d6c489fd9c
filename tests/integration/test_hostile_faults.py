"""Hostile faults on the real stack: a topic grown while live, an outage of both services at once.

Both were observed to break the invariant (rows of new partitions dropped; a pipeline stuck for
20 minutes); each test compares Elasticsearch with SPEC's SQL and reads the DLQ back.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from clickagg.stack import manager
from clickagg.stack.layout import StackLayout
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact
from tests.support.oracle import expected_rows
from tests.support.workload import build, make_users, past_minute, produce

pytestmark = pytest.mark.hostile


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


async def test_topic_grown_while_live_loses_nothing(deployment: Deployment) -> None:
    """Two workers, live events; the events topic grows from 2 to 4 partitions mid-run."""
    users = make_users(200, seed=8)
    csv = await deployment.prepare("".join(f"{u},{g},{s}\n" for u, g, s in users), partitions=2)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv)
    valid: list[tuple[int, int, int, str]] = []
    partitions = 2
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < 75:
        if partitions == 2 and time.monotonic() - started > 30:
            admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
            await admin.start()
            try:
                await admin.create_partitions({deployment.topic: NewPartitions(total_count=4)})
            finally:
                await admin.close()
            partitions = 4
        now = int(time.time() * 1000)
        batch = []
        for _ in range(400):
            article, user = i % 97, i % 230
            action = "click" if i % 9 == 0 else "impression"
            batch.append(
                (
                    i % partitions,
                    now - (i % 3000),
                    orjson.dumps({"article_id": article, "user_id": user, "action": action}),
                )
            )
            valid.append((now - (i % 3000), article, user, action))
            i += 1
        await produce(deployment.bootstrap, deployment.topic, batch)
        await asyncio.sleep(0.25)
    await assert_exact(deployment, expected_rows(valid, users), rejected=0, timeout_s=300)
    assert "rows arrived for windows already final" not in deployment.logs()


async def test_elasticsearch_outage_then_broker_crash_recovers(
    deployment: Deployment, stack: StackLayout
) -> None:
    """2 workers x 4 partitions: Elasticsearch down 30 s, the broker killed (-9) and restarted right
    after; everything exact within a bound once both are back, and /readyz said not ready meanwhile."""
    wl = build(200_000, past_minute(30), minutes=10, partitions=4, lateness_ms=5000, seed=9)
    csv = await deployment.prepare(wl.csv(), partitions=4)
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv)
    sending = asyncio.create_task(produce(deployment.bootstrap, deployment.topic, wl.records, duration_s=20))
    await asyncio.sleep(8)
    not_ready: list[dict[str, Any]] = []
    try:
        await asyncio.to_thread(manager.down, stack, "elasticsearch")
        for _ in range(30):
            await asyncio.sleep(1)
            status, body = await asyncio.to_thread(readyz, port)
            if status == 503:
                not_ready.append(body)
        await sending
        await asyncio.to_thread(manager.down, stack, "kafka", True)  # kill -9
        await asyncio.sleep(3)
    finally:
        await asyncio.to_thread(manager.up, stack, "kafka")
        await asyncio.to_thread(manager.up, stack, "elasticsearch")
    back = time.monotonic()
    assert not_ready and any("elasticsearch" in orjson.dumps(b).decode() for b in not_ready), not_ready
    await assert_exact(deployment, expected_rows(wl.valid, wl.users), wl.rejected, timeout_s=240)
    took = time.monotonic() - back
    print(f"exact {took:.0f}s after both services were back")
    assert took <= 60, f"recovery took {took:.0f}s"
    for _ in range(30):
        status, body = await asyncio.to_thread(readyz, port)
        if status == 200:
            break
        await asyncio.sleep(1)
    assert status == 200 and body["ready"], body
    log = (deployment.tmp / "worker-0.log").read_text(errors="replace")
    assert log.count("Traceback") == 0, log[-3000:]
    lines = log.count("\n")
    assert lines < 400, f"{lines} log lines for one outage:\n{log[-3000:]}"
