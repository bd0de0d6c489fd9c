"""Fast loading of benchmark records into Kafka with producer batches (not timed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from clickagg import clients
from clickagg.config import Settings


async def load(
    settings: Settings, topic: str, records: Iterable[tuple[int, int, bytes]], partitions: int
) -> int:
    producer = clients.producer(settings, acks=1, max_request_size=4 * 1024 * 1024, linger_ms=50)
    await producer.start()
    sent = 0
    try:
        await producer.partitions_for(topic)
        batches = [producer.create_batch() for _ in range(partitions)]
        inflight: list[asyncio.Future[object]] = []
        for partition, ts, value in records:
            batch = batches[partition]
            if batch.append(key=None, value=value, timestamp=ts) is None:
                inflight.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=None, value=value, timestamp=ts)
                if len(inflight) > 64:
                    await asyncio.gather(*inflight)
                    inflight.clear()
            sent += 1
        for partition, batch in enumerate(batches):
            if batch.record_count():
                inflight.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*inflight)
    finally:
        await producer.stop()
    return sent
