"""Reference data hot swap (and a refused malformed replacement) and late events, end to end."""

from __future__ import annotations

import asyncio
import os
import time

import orjson

from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact, metrics_text, wait_consumed, worker_metric
from tests.support.oracle import expected_rows
from tests.support.workload import build, make_users, past_minute, produce


def replace_file(path: os.PathLike[str], text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


async def series_value(port: int, series: str) -> float:
    """One labelled series, e.g. 'reference_reloads_total{result="ok"}' (0 when absent)."""
    for line in (await metrics_text(port)).splitlines():
        if line.startswith(f"clickagg_{series} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def wait_metric(port: int, name: str, at_least: float, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await (series_value(port, name) if "{" in name else worker_metric(port, name))
        if value >= at_least:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"metric {name} did not reach {at_least}")


async def test_reference_file_replaced_mid_run(deployment: Deployment) -> None:
    users_a = make_users(300, seed=21)
    users_b = [(u, "female" if g != "female" else "male", (s or 0) + 100) for u, g, s in users_a[:250]]
    users_b += [(u, "other", 7) for u in range(301, 340)]  # new users, and 50 of A removed
    start = past_minute(20)
    phase1 = build(20_000, start, minutes=3, partitions=2, lateness_ms=5000, seed=1, users=users_a)
    phase2 = build(
        20_000, start + 4 * 60_000, minutes=3, partitions=2, lateness_ms=5000, seed=2, users=users_b
    )
    phase3 = build(
        5_000, start + 8 * 60_000, minutes=1, partitions=2, lateness_ms=5000, seed=3, users=users_b
    )

    csv = deployment.tmp / "users.csv"
    csv.write_text(phase1.csv())
    await deployment.create_topic(partitions=2)
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv, IDLE_TIMEOUT_SECONDS=25)

    await produce(deployment.bootstrap, deployment.topic, phase1.records)
    await wait_consumed(deployment)
    replace_file(csv, phase2.csv())
    await wait_metric(port, 'reference_reloads_total{result="ok"}', 1)

    await produce(deployment.bootstrap, deployment.topic, phase2.records)
    await wait_consumed(deployment)
    bad = "".join(f"{u},x,not-a-number\n" for u in range(1, 200))  # every row bad: refused
    replace_file(csv, bad)
    await wait_metric(port, 'reference_reloads_total{result="failed"}', 1)

    await produce(deployment.bootstrap, deployment.topic, phase3.records)  # still joined with B
    expected = (
        expected_rows(phase1.valid, users_a)
        | expected_rows(phase2.valid, users_b)
        | expected_rows(phase3.valid, users_b)
    )
    rejected = phase1.rejected + phase2.rejected + phase3.rejected
    await assert_exact(deployment, expected, rejected)
    assert await worker_metric(port, "reference_users") == len(users_b)


async def test_late_events_go_to_dead_letters_not_counts(deployment: Deployment) -> None:
    users = make_users(50, seed=5)
    csv = deployment.tmp / "users.csv"
    csv.write_text("user_id,gender,segment_id\n" + "".join(f"{u},{g},{s}\n" for u, g, s in users))
    start = past_minute(20)
    on_time = [
        (0, start + i * 300, orjson.dumps({"article_id": 1, "user_id": 1 + i % 60, "action": "impression"}))
        for i in range(1000)
    ]
    # 5 minutes in, events for minute 0 arrive: its window closed at 60 s + 5 s lateness.
    late = [
        (0, start + 1000 + i, orjson.dumps({"article_id": 2, "user_id": 3, "action": "click"}))
        for i in range(7)
    ]
    # ...while one for the current minute, 3 s behind the maximum, is merely out of order.
    straggler_ts = start + 999 * 300 - 3000
    straggler = [(0, straggler_ts, orjson.dumps({"article_id": 3, "user_id": 4, "action": "click"}))]
    await deployment.create_topic(partitions=1)
    await produce(deployment.bootstrap, deployment.topic, on_time + late + straggler)
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv)

    valid = [(ts, 1, 1 + i % 60, "impression") for i, (_, ts, _) in enumerate(on_time)]
    valid.append((straggler_ts, 3, 4, "click"))
    await assert_exact(deployment, expected_rows(valid, users), rejected=7)
    reasons = [dict(r.headers)["reason"] for r in await deployment.dead_letters()]
    assert reasons == [b"late"] * 7
    assert await worker_metric(port, "events_rejected_total") == 7
    assert await worker_metric(port, "events_in_total") == len(on_time) + len(late) + len(straggler)
    assert await worker_metric(port, "final_delay_seconds_count") >= 1
    assert await worker_metric(port, "es_bulk_seconds_count") >= 1
    text = await metrics_text(port)
    for stage in ("stage1", "stage2"):
        assert f'clickagg_consumer_lag{{partition="0",stage="{stage}",topic=' in text, text
