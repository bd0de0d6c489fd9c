"""The first end-to-end slice: 1,000 events with known timestamps over 3 minutes, exact per minute."""

from __future__ import annotations

import random
import time

import orjson

from clickagg.config import Settings
from clickagg.produce import send
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, es_rows
from tests.support.oracle import expected_rows


async def test_thousand_events_over_three_minutes_match_reference_sql(deployment: Deployment) -> None:
    rng = random.Random(2024)
    users = [(uid, rng.choice(["female", "male"]), rng.randrange(1, 5)) for uid in range(1, 51)]
    csv = deployment.tmp / "users.csv"
    csv.write_text("".join(f"{u},{g},{s}\n" for u, g, s in users))

    base = (int(time.time() * 1000) // 60_000 - 10) * 60_000  # ten minutes ago, minute aligned
    sent, oracle_events = [], []
    for _ in range(1000):
        ts = base + rng.randrange(0, 3 * 60_000)
        user = rng.randrange(1, 61)  # 51..60 are unknown users: LEFT JOIN gives nulls
        article = rng.randrange(1, 8)
        action = rng.choice(["impression"] * 8 + ["click", "share"])
        sent.append((ts, orjson.dumps({"article_id": article, "user_id": user, "action": action})))
        oracle_events.append((ts, article, user, action))
    sent.sort()  # in order: this slice has no late data
    oracle_events.sort()

    await deployment.create_topic(partitions=1)
    await send(Settings(kafka_bootstrap_servers=deployment.bootstrap), deployment.topic, sent)
    deployment.start_worker(free_port(), REFERENCE_DATA=csv)

    expected = expected_rows(oracle_events, users)
    docs = await deployment.wait_final(len(expected))

    assert len(docs) == len(expected), "one document per (minute, gender, segment, article)"
    assert sorted(es_rows(docs), key=repr) == sorted(expected, key=repr)
    assert len({d["_id"] for d in docs}) == len(docs)
    assert {d["time"][:16] for d in docs} == {
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime((base + m * 60_000) / 1000)) for m in range(3)
    }
    assert sum(d["impression"] for d in docs) == sum(1 for e in oracle_events if e[3] == "impression")
