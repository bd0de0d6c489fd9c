"""Exactness through a search-engine outage (Elasticsearch and OpenSearch) and a Kafka broker restart (real processes stopped)."""

from __future__ import annotations

import asyncio

import pytest

from clickagg.stack import manager
from clickagg.stack.layout import StackLayout
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact, worker_metric
from tests.support.oracle import expected_rows
from tests.support.workload import build, past_minute, produce

LATENESS_MS = 5000
pytestmark = pytest.mark.hostile  # faults: part of the hostile-world suite too


async def test_search_engine_down_for_35_seconds(
    engine_deployment: Deployment, engine: str, stack: StackLayout
) -> None:
    """Elasticsearch (or OpenSearch) stopped for 35 s mid-run: writes wait, nothing lost or doubled."""
    wl = build(200_000, past_minute(30), minutes=10, partitions=2, lateness_ms=LATENESS_MS, seed=6)
    csv = await engine_deployment.prepare(wl.csv(), partitions=2)
    port = free_port()
    engine_deployment.start_worker(port, REFERENCE_DATA=csv)
    sending = asyncio.create_task(
        produce(engine_deployment.bootstrap, engine_deployment.topic, wl.records, duration_s=30)
    )
    await asyncio.sleep(8)
    try:
        await asyncio.to_thread(manager.down, stack, engine)
        await asyncio.sleep(35)
        assert await worker_metric(port, "es_bulk_errors_total") > 0, "the worker never saw the outage"
    finally:
        await asyncio.to_thread(manager.up, stack, engine)
    await sending
    await assert_exact(engine_deployment, expected_rows(wl.valid, wl.users), wl.rejected)


async def test_kafka_broker_restart(deployment: Deployment, stack: StackLayout) -> None:
    wl = build(200_000, past_minute(30), minutes=10, partitions=2, lateness_ms=LATENESS_MS, seed=7)
    csv = await deployment.prepare(wl.csv(), partitions=2)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv, IDLE_TIMEOUT_SECONDS=15)
    sending = asyncio.create_task(produce(deployment.bootstrap, deployment.topic, wl.records, duration_s=30))
    await asyncio.sleep(8)
    try:
        await asyncio.to_thread(manager.down, stack, "kafka")
        await asyncio.sleep(5)
    finally:
        await asyncio.to_thread(manager.up, stack, "kafka")
    await sending
    await assert_exact(deployment, expected_rows(wl.valid, wl.users), wl.rejected, timeout_s=400)
