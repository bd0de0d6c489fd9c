"""The ceiling: a bare aiokafka consumer that decodes, parses, joins and counts, writing nothing.

This is the least any Python pipeline must do per event, so clickagg ÷ ceiling says how much of
the machine goes to exactness, state and output.
"""

from __future__ import annotations

import time

import orjson
from aiokafka import TopicPartition

from clickagg import clients
from clickagg.config import Settings


def load_users(path: str) -> dict[int, tuple[str, int]]:
    users = {}
    with open(path) as fh:
        for line in fh:
            uid, gender, segment = line.rstrip("\n").split(",")
            users[int(uid)] = (gender, int(segment))
    return users


async def run(
    settings: Settings,
    topic: str,
    partitions: int,
    users: dict[int, tuple[str, int]],
    expected: int,
    window_ms: int,
) -> dict[str, float]:
    consumer = clients.consumer(settings, enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    counts: dict[tuple[int, object, object, int], list[int]] = {}
    seen = 0
    unknown = (None, None)
    started = time.perf_counter()
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=20000)
            for records in batches.values():
                for record in records:
                    ev = orjson.loads(record.value)
                    gender, segment = users.get(ev["user_id"], unknown)
                    ts = record.timestamp
                    key = (ts - ts % window_ms, gender, segment, ev["article_id"])
                    c = counts.get(key)
                    if c is None:
                        c = counts[key] = [0, 0]
                    c[0 if ev["action"] == "impression" else 1] += 1
                seen += len(records)
    finally:
        await consumer.stop()
    seconds = time.perf_counter() - started
    return {"events": seen, "seconds": seconds, "events_per_s": seen / seconds, "keys": len(counts)}
