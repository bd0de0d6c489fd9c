"""The naive-Faust baseline of the benchmark, run as the bench runs it: a subprocess on the real stack.

Its numbers are only worth comparing if its results are right, so the documents it writes are
checked against counts computed here, independently, from what was produced; on either search
engine (it writes through the port, like the bench).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from clickagg.config import Settings
from clickagg.es import engines
from clickagg.es.port import SearchEngine
from clickagg.kafka_util import ensure_topics
from clickagg.stack.layout import StackLayout
from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
INVALID = [b"not json", b"[1, 2]", b'{"article_id": -1, "user_id": 3, "action": "click"}', b'{"user_id": 3}']
# (minute start ms, gender, segment_id, article_id) -> [impressions, clicks]
Expected = dict[tuple[int, str | None, int | None, int], list[int]]


def workload(
    n: int, partitions: int, base_ms: int, users: dict[int, tuple[str, int]], seed: int
) -> tuple[list[tuple[int, int, bytes]], Expected, int]:
    """Records (partition, ts, value) over three minutes from base_ms, the expected counts, the invalid count."""
    rng = random.Random(seed)
    records: list[tuple[int, int, bytes]] = []
    expected: Expected = {}
    invalid = 0
    for i in range(n):
        # every 500th record sits exactly on a minute boundary: it belongs to the minute it starts
        ts = base_ms + (rng.randrange(3) * 60_000 if i % 500 == 0 else rng.randrange(3 * 60_000))
        if i % 997 == 0:
            records.append((i % partitions, ts, INVALID[i % len(INVALID)]))
            invalid += 1
            continue
        user = rng.randrange(1, 70)  # 61..69 are not in the CSV: LEFT JOIN gives nulls
        article = rng.randrange(1, 20)
        action = rng.choice(["impression"] * 8 + ["click", "share"])
        records.append(
            (i % partitions, ts, orjson.dumps({"article_id": article, "user_id": user, "action": action}))
        )
        gender, segment = users.get(user, (None, None))
        counts = expected.setdefault((ts - ts % 60_000, gender, segment, article), [0, 0])
        if action == "impression":
            counts[0] += 1
        elif action == "click":
            counts[1] += 1
    return records, expected, invalid


async def produce(bootstrap: str, topic: str, records: list[tuple[int, int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, partition=partition, timestamp_ms=ts)
            for partition, ts, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def engine_url(stack: StackLayout, engine: str) -> str:
    return stack.es_url if engine == "elasticsearch" else f"http://127.0.0.1:{stack.opensearch_port}"


def run_baseline(
    stack: StackLayout, engine: str, topic: str, csv: Path, run_id: str, max_events: int, *extra: str
) -> Any:
    cmd = [
        sys.executable, "-m", "clickagg.bench.baseline",
        "--bootstrap", stack.kafka_bootstrap, "--topic", topic, "--users-csv", str(csv),
        "--es-url", engine_url(stack, engine), "--engine", engine, "--index", run_id, "--app-id", run_id,
        "--max-events", str(max_events), "--window-seconds", "60", "--web-port", str(free_port()), *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 1, f"stdout must hold only the JSON line: {lines[:5]}"
    return orjson.loads(lines[0])


def search_engine(stack: StackLayout, engine: str) -> SearchEngine:
    return engines.search_engine(Settings(elasticsearch_url=engine_url(stack, engine), search_engine=engine))


async def documents(stack: StackLayout, engine: str, index: str) -> list[dict[str, Any]]:
    es = search_engine(stack, engine)
    try:
        return [hit async for hit in es.scan(index, {"query": {"match_all": {}}})]
    finally:
        await es.close()


async def cleanup(stack: StackLayout, engine: str, run_id: str, topic: str) -> None:
    es = search_engine(stack, engine)
    try:
        await es.delete_index(run_id, missing_ok=True)
    finally:
        await es.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t == topic or t.startswith(f"{run_id}-")]
        await admin.delete_topics(mine)
    except Exception:  # hygiene only: names are unique per run anyway
        pass
    finally:
        await admin.close()


def per_minute(rows: Expected) -> dict[int, tuple[int, int]]:
    totals: dict[int, tuple[int, int]] = {}
    for (minute, *_), (imp, clk) in rows.items():
        i, c = totals.get(minute, (0, 0))
        totals[minute] = (i + imp, c + clk)
    return totals


async def test_baseline_counts_every_window_exactly_and_reports_one_json_line(
    stack: StackLayout, engine: str, tmp_path: Path
) -> None:
    run_id = f"bench-baseline-{uuid.uuid4().hex[:10]}"
    topic = f"{run_id}-events"
    rng = random.Random(7)
    users = {uid: (rng.choice(["female", "male"]), rng.randrange(1, 5)) for uid in range(1, 61)}
    csv = tmp_path / "users.csv"
    csv.write_text("".join(f"{u},{g},{s}\n" for u, (g, s) in users.items()))
    base = (int(time.time() * 1000) // 60_000 - 5) * 60_000  # five minutes ago, minute aligned
    records, expected, invalid = workload(20_000, 2, base, users, seed=11)

    assert await ensure_topics(stack.kafka_bootstrap, {topic: 2}) == {topic: 2}
    try:
        await produce(stack.kafka_bootstrap, topic, records)
        result = await asyncio.to_thread(run_baseline, stack, engine, topic, csv, run_id, len(records))

        assert set(result) == {"events", "invalid", "seconds", "events_per_s", "docs", "write_seconds"}
        assert result["events"] == len(records) - invalid
        assert result["invalid"] == invalid
        assert result["seconds"] > 0 and result["events_per_s"] > 0
        assert result["docs"] == len(expected)

        hits = await documents(stack, engine, run_id)
        got: Expected = {}
        for hit in hits:
            doc = hit["_source"]
            assert doc["final"] is True
            assert doc["time"].endswith(":00.000Z"), doc["time"]  # UTC minute starts
            minute = int(datetime.fromisoformat(doc["time"].replace("Z", "+00:00")).timestamp() * 1000)
            key = (minute, doc["gender"], doc["segment_id"], doc["article_id"])
            assert key not in got, f"two documents for {key}"
            got[key] = [doc["impression"], doc["click"]]
        assert per_minute(got) == per_minute(expected)
        assert got == expected
    finally:
        await cleanup(stack, engine, run_id, topic)


async def test_baseline_stops_when_the_topic_is_exhausted(stack: StackLayout, tmp_path: Path) -> None:
    run_id = f"bench-baseline-{uuid.uuid4().hex[:10]}"
    topic = f"{run_id}-events"
    users = {1: ("female", 1)}
    csv = tmp_path / "users.csv"
    csv.write_text("user_id,gender,segment_id\n1,female,1\n")  # an optional header is tolerated
    base = (int(time.time() * 1000) // 60_000 - 5) * 60_000
    records, expected, invalid = workload(300, 1, base, users, seed=3)

    await ensure_topics(stack.kafka_bootstrap, {topic: 1})
    try:
        await produce(stack.kafka_bootstrap, topic, records)
        started = time.monotonic()
        result = await asyncio.to_thread(
            run_baseline, stack, "elasticsearch", topic, csv, run_id, 1_000_000, "--idle-seconds", "2"
        )
        assert time.monotonic() - started < 60
        assert (result["events"], result["invalid"], result["docs"]) == (
            300 - invalid,
            invalid,
            len(expected),
        )
        hits = await documents(stack, "elasticsearch", run_id)
        assert sum(h["_source"]["impression"] + h["_source"]["click"] for h in hits) == sum(
            i + c for i, c in expected.values()
        )
    finally:
        await cleanup(stack, "elasticsearch", run_id, topic)
