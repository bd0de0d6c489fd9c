"""Hostile inputs on the real stack: each case was observed to lose data or halt a stage.

Every test compares Elasticsearch with SPEC's SQL over what it sent (SQLite oracle), reads every
dead letter back (read_committed) with its reason, and checks the invariant metric
records_in == counted + dead-lettered per source partition.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact, metrics_text
from tests.support.oracle import expected_rows
from tests.support.workload import make_users, past_minute, produce

pytestmark = pytest.mark.hostile

Event = tuple[int, int, int, str]  # (ts, article, user, action) for the oracle


def ev(article: Any, user: Any, action: str = "impression") -> bytes:
    return orjson.dumps({"article_id": article, "user_id": user, "action": action})


async def reasons(dep: Deployment) -> Counter[str]:
    return Counter(dict(r.headers)["reason"].decode() for r in await dep.dead_letters())


async def assert_invariant(port: int, sent_per_partition: dict[int, int]) -> None:
    """records_in == counted + dead-lettered, per source partition, and records_in == what was sent."""
    series: dict[tuple[str, int], float] = {}
    for line in (await metrics_text(port)).splitlines():
        for name in ("events_in_total", "records_counted_total", "records_dead_lettered_total"):
            if line.startswith(f"clickagg_{name}{{"):
                partition = int(line.split('partition="')[1].split('"')[0])
                series[(name, partition)] = float(line.rsplit(" ", 1)[1])
    for partition, sent in sent_per_partition.items():
        got = {name: series.get((name, partition), 0) for name, _ in series}
        records_in = series.get(("events_in_total", partition), 0)
        counted = series.get(("records_counted_total", partition), 0)
        dead = series.get(("records_dead_lettered_total", partition), 0)
        assert records_in == sent == counted + dead, (partition, sent, got)


async def test_oversized_records_and_a_small_dead_letter_topic(deployment: Deployment) -> None:
    """A record that fits the events topic but not the DLQ (an operator's DLQ with Kafka's default
    1 MB limit) is dead-lettered cut to fit, with its size and hash; nothing after it is lost."""
    users = make_users(50, seed=1)
    csv = await deployment.prepare("".join(f"{u},{g},{s}\n" for u, g, s in users), partitions=1)
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{deployment.topic}-dlq", 1, 1)])  # default 1 MB limit
    finally:
        await admin.close()
    start = past_minute(10)
    huge = b'{"article_id": 1, "user_id": 2, "action": "click", "pad": "' + b"x" * 1_048_440 + b'"'
    assert len(huge) == 1_048_500 and not huge.endswith(b"}")  # invalid JSON
    records: list[tuple[int, int, bytes]] = []
    valid: list[Event] = []
    for i in range(3000):
        ts = start + i * 20
        if i in (1000, 1001, 1002, 1003):
            records.append((0, ts, b"not json %d" % i))  # the 4 dead letters after the huge one
        else:
            records.append((0, ts, ev(i % 37, i % 60)))
            valid.append((ts, i % 37, i % 60, "impression"))
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, max_request_size=2_000_000)
    await producer.start()
    try:
        await produce(deployment.bootstrap, deployment.topic, records[:999])
        await producer.send_and_wait(deployment.topic, huge, partition=0, timestamp_ms=start + 999 * 20)
        await produce(deployment.bootstrap, deployment.topic, records[999:])
    finally:
        await producer.stop()
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv)
    await assert_exact(deployment, expected_rows(valid, users), rejected=5)
    dead = await deployment.dead_letters()
    cut = [r for r in dead if dict(r.headers).get("truncated.value") == b"true"]
    assert len(cut) == 1
    headers = dict(cut[0].headers)
    assert headers["reason"] == b"invalid_json" and headers["source.offset"] == b"999"
    assert headers["original.value.size"] == b"1048500"
    assert headers["original.value.sha256"] == hashlib.sha256(huge).hexdigest().encode()
    assert huge.startswith(cut[0].value) and len(cut[0].value) > 1_000_000
    assert sorted(r.value for r in dead if r is not cut[0]) == [b"not json %d" % i for i in range(1000, 1004)]
    await assert_invariant(port, {0: 3001})


async def test_backlog_of_60000_distinct_articles_on_one_partition(deployment: Deployment) -> None:
    """One batch makes partials far bigger than 1 MB: split into envelopes that fit, all counted."""
    users = make_users(100, seed=2)
    csv = await deployment.prepare("".join(f"{u},{g},{s}\n" for u, g, s in users), partitions=1)
    start = past_minute(10)
    records, valid = [], []
    for i in range(60_000):
        ts = start + (i * 120_000) // 60_000  # two minutes
        action = "click" if i % 7 == 0 else "impression"
        records.append((0, ts, ev(1_000_000 + i, i % 110, action)))
        valid.append((ts, 1_000_000 + i, i % 110, action))
    await produce(deployment.bootstrap, deployment.topic, records)
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv)
    await assert_exact(deployment, expected_rows(valid, users), rejected=0, timeout_s=240)
    await assert_invariant(port, {0: 60_000})


async def test_huge_ids_strict_json_and_extreme_timestamps(deployment: Deployment) -> None:
    """5,000-digit ids, lenient-JSON encodings and out-of-range timestamps: counted by the value-range
    rule or dead-lettered with their reason, and the stages keep running."""
    users = make_users(20, seed=3)
    csv = await deployment.prepare("".join(f"{u},{g},{s}\n" for u, g, s in users), partitions=2)
    start = past_minute(10)
    long_valid_id = "0" * 4992 + "10000001"
    assert len(long_valid_id) == 5000
    cases: list[tuple[bytes, int | None, str | None]] = [  # (value, ts offset or absolute, expected reason)
        (ev(long_valid_id, 3), None, None),
        (ev(5, "9" * 5000), None, "invalid_user_id"),
        (
            b'{"article_id": ' + b"9" * 5000 + b', "user_id": 1, "action": "click"}',
            None,
            "invalid_article_id",
        ),
        (ev(6, 4).decode().encode("utf-16"), None, "invalid_json"),
        (ev(6, 4).decode().encode("utf-32"), None, "invalid_json"),
        (b'{"article_id": 6, "user_id": 4, "action": "click\xed\xa0\x80"}', None, "invalid_json"),
        (b'{"article_id": 6, "user_id": 4, "action": "click", "x": NaN}', None, "invalid_json"),
        (b'{"article_id": 6, "user_id": 4, "action": "click", "x": Infinity}', None, "invalid_json"),
        (ev(7, 5), 253_402_300_800_000, "bad_timestamp"),  # year 10000
        (ev(7, 5), 2**63 - 1, "bad_timestamp"),
    ]
    records: list[tuple[int, int, bytes]] = []
    valid: list[Event] = []
    expected_reasons: Counter[str] = Counter()
    i = 0
    for _repeat in range(3):
        for value, ts_override, reason in cases:
            for _ in range(50):  # normal traffic around every hostile record
                ts = start + i * 10
                records.append((i % 2, ts, ev(i % 13, i % 25)))
                valid.append((ts, i % 13, i % 25, "impression"))
                i += 1
            ts = ts_override if ts_override is not None else start + i * 10
            records.append((i % 2, ts, value))
            if reason is None:
                valid.append((ts, 10_000_001, 3, "impression"))
            else:
                expected_reasons[reason] += 1
            i += 1
    await produce(deployment.bootstrap, deployment.topic, records)
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv)
    await assert_exact(deployment, expected_rows(valid, users), rejected=sum(expected_reasons.values()))
    assert await reasons(deployment) == expected_reasons
    assert "Traceback" not in deployment.logs() and "failed; restarting" not in deployment.logs()
    sent = Counter(p for p, _, _ in records)
    await assert_invariant(port, dict(sent))


async def test_a_fast_producer_clock_makes_no_present_event_late(deployment: Deployment) -> None:
    """Live: one record 90 s ahead is counted in its own (future) window and no present event becomes
    late; records 10 minutes or decades ahead are `future` dead letters; the rest all count."""
    users = make_users(30, seed=4)
    csv = await deployment.prepare("".join(f"{u},{g},{s}\n" for u, g, s in users), partitions=1)
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv, ALLOWED_LATENESS_SECONDS=5)
    valid: list[Event] = []
    future = 0
    sent = 0
    t_end = time.monotonic() + 24
    i = 0
    while time.monotonic() < t_end:
        now = int(time.time() * 1000)
        batch: list[tuple[int, int, bytes]] = []
        for _ in range(200):
            batch.append((0, now - 2000, ev(i % 11, i % 33)))  # present: 2 s old, within lateness
            valid.append((now - 2000, i % 11, i % 33, "impression"))
            i += 1
        if i == 1000:
            batch.append((0, now + 90_000, ev(99, 1, "click")))
            valid.append((now + 90_000, 99, 1, "click"))
        if i == 2000:
            batch.append((0, now + 600_000, ev(98, 1)))
            batch.append((0, 4_102_444_800_000, ev(97, 1)))  # 2100-01-01
            future += 2
        await produce(deployment.bootstrap, deployment.topic, batch)
        sent += len(batch)
        await asyncio.sleep(0.5)
    # The +90 s window closes only once its time has come (plus lateness and the idle timeout).
    await assert_exact(deployment, expected_rows(valid, users), rejected=future, timeout_s=300)
    assert await reasons(deployment) == Counter({"future": future})
    await assert_invariant(port, {0: sent})
