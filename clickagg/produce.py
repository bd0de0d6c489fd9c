"""`clickagg produce`: send events from a JSONL file or the synthetic generator."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from clickagg import clients
from clickagg.config import Settings
from clickagg.generate import events


async def send(
    settings: Settings, topic: str, records: Iterable[tuple[int | None, bytes]], partitions: int = 0
) -> int:
    """Send (timestamp_ms, value) records; round-robin over partitions when partitions > 0."""
    producer = clients.producer(settings, linger_ms=20, max_batch_size=512 * 1024, acks="all")
    await producer.start()
    count = 0
    try:
        pending = []
        for ts, value in records:
            partition = count % partitions if partitions else None
            pending.append(await producer.send(topic, value, timestamp_ms=ts, partition=partition))
            count += 1
            if len(pending) >= 10000:
                for fut in pending:
                    await fut
                pending.clear()
        for fut in pending:
            await fut
    finally:
        await producer.stop()
    return count


def jsonl_records(path: Path) -> Iterable[tuple[int | None, bytes]]:
    """Each non-empty line is one record value, sent as-is (bad lines too: the worker judges them)."""
    with path.open("rb") as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if line:
                yield None, line


def synthetic_records(
    n: int, minutes: float, users: int, articles: int, seed: int
) -> Iterable[tuple[int | None, bytes]]:
    """Events whose timestamps span the last `minutes` minutes, ending now."""
    span = int(minutes * 60_000)
    start = int(time.time() * 1000) - span
    return ((ts, v) for ts, v in events(n, start, span, users, articles, seed=seed))
