"""Generated workloads with their own ground truth: which records are valid and what each one is.

Validity is decided here, by construction, and handed to the SQL oracle; clickagg's parser never
decides what the expected result is.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

MALFORMED: list[bytes] = [
    b"not json at all",
    b'{"article_id": 1, "user_id": 2, "action": "click"',  # truncated
    b"[1, 2, 3]",
    b'"a string"',
    b"null",
    b'{"user_id": 5, "action": "click"}',
    b'{"article_id": 5, "action": "click"}',
    b'{"article_id": 5, "user_id": 6}',
    b'{"article_id": null, "user_id": 6, "action": "click"}',
    b'{"article_id": 1.5, "user_id": 6, "action": "click"}',
    b'{"article_id": true, "user_id": 6, "action": "click"}',
    b'{"article_id": -3, "user_id": 6, "action": "click"}',
    b'{"article_id": 9223372036854775808, "user_id": 6, "action": "click"}',
    b'{"article_id": 99999999999999999999999, "user_id": 6, "action": "click"}',
    b'{"article_id": "12x", "user_id": 6, "action": "click"}',
    b'{"article_id": "", "user_id": 6, "action": "click"}',
    b'{"article_id": 4, "user_id": " 6", "action": "click"}',
    b'{"article_id": 4, "user_id": 6, "action": 1}',
    b'{"article_id": 4, "user_id": 6, "action": null}',
    b'{"article_id": 4, "user_id": 6, "action": ["click"]}',
    b"\xff\xfe\x00garbage",
    b"",
]

GENDERS = ["female", "male", "other"]


@dataclass
class Workload:
    users: list[tuple[int, str | None, int | None]]
    records: list[tuple[int, int, bytes]] = field(default_factory=list)  # (partition, ts_ms, value)
    valid: list[tuple[int, int, int, str]] = field(default_factory=list)  # (ts_ms, article, user, action)
    rejected: int = 0

    def csv(self) -> str:
        def cell(v: object) -> str:
            return "" if v is None else str(v)

        return "".join(f"{u},{cell(g)},{cell(s)}\n" for u, g, s in self.users)


def make_users(n: int, seed: int, segments: int = 12) -> list[tuple[int, str | None, int | None]]:
    rng = random.Random(seed)
    return [(uid, rng.choice(GENDERS), rng.randrange(1, segments + 1)) for uid in range(1, n + 1)]


def build(
    n: int,
    start_ms: int,
    minutes: int,
    partitions: int,
    lateness_ms: int,
    seed: int = 1,
    users: list[tuple[int, str | None, int | None]] | None = None,
    malformed_ratio: float = 0.004,
) -> Workload:
    """n records over `minutes` event-time minutes from start_ms, round-robin over partitions.

    Within each partition times rise overall but each record may be up to lateness - 1 s older than
    the partition's maximum so far: out of order, never late.
    """
    rng = random.Random(seed)
    wl = Workload(users=users if users is not None else make_users(2000, seed))
    n_users = len(wl.users)
    span = minutes * 60_000
    jitter = max(0, lateness_ms - 1000)
    for i in range(n):
        partition = i % partitions
        ts = start_ms + (i * span) // n - (rng.randrange(jitter) if jitter else 0)
        ts = max(ts, start_ms)
        if rng.random() < malformed_ratio:
            wl.records.append((partition, ts, MALFORMED[rng.randrange(len(MALFORMED))]))
            wl.rejected += 1
            continue
        article = rng.randrange(1, 40)
        user = rng.randrange(1, n_users + n_users // 20)  # ~5 % unknown users
        roll = rng.random()
        action = "click" if roll < 0.1 else ("share" if roll < 0.13 else "impression")
        a_json: object = str(article) if rng.random() < 0.05 else article  # digit-string ids
        u_json: object = str(user) if rng.random() < 0.05 else user
        value = orjson.dumps({"article_id": a_json, "user_id": u_json, "action": action})
        wl.records.append((partition, ts, value))
        wl.valid.append((ts, article, user, action))
    return wl


async def produce(
    bootstrap: str, topic: str, records: list[tuple[int, int, bytes]], duration_s: float = 0.0
) -> None:
    """Send records in order (explicit partitions and timestamps), spread over duration_s if > 0."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=10, acks="all", request_timeout_ms=120_000
    )
    await producer.start()
    try:
        needed = max(p for p, _, _ in records) + 1
        for _ in range(100):  # a topic created a moment ago may not be in metadata yet
            if len(await producer.partitions_for(topic)) >= needed:
                break
            await producer.client.force_metadata_update()
            await asyncio.sleep(0.1)
        chunk = 2000
        started = time.monotonic()
        for i in range(0, len(records), chunk):
            futures = [
                await producer.send(topic, value, partition=p, timestamp_ms=ts)
                for p, ts, value in records[i : i + chunk]
            ]
            for fut in futures:
                await fut
            if duration_s:
                target = started + duration_s * (i + chunk) / len(records)
                await asyncio.sleep(max(0.0, target - time.monotonic()))
    finally:
        await producer.stop()


def past_minute(minutes_ago: int) -> int:
    return (int(time.time() * 1000) // 60_000 - minutes_ago) * 60_000
