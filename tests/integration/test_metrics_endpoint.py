"""A running worker's /metrics, parsed by prometheus-client's own parser, after real work.

Why end to end: what matters is what Prometheus scrapes from a worker, not what the registry does
in isolation: every family must have HELP and a type, the catalogue's metrics must all be there
with their declared type, histograms must have buckets (Grafana's histogram_quantile needs them),
the stage gauges must be read from the live stages, and the SPEC's invariant must be visible per
source partition.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from clickagg.metrics_catalogue import CATALOGUE, PREFIX, PROCESS_FAMILIES
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact
from tests.support.oracle import expected_rows
from tests.support.workload import build, make_users, past_minute, produce


def scrape(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.headers["Content-Type"]), resp.read().decode()


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def wait_ready(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(ready, port):
            return
        await asyncio.sleep(0.5)
    raise AssertionError("the worker never became ready")


async def test_metrics_page_parses_with_help_types_buckets_and_the_invariant(deployment: Deployment) -> None:
    users = make_users(200, seed=14)
    partitions = 2
    workload = build(
        4_000, past_minute(12), minutes=3, partitions=partitions, lateness_ms=4000, seed=14, users=users
    )
    csv = await deployment.prepare(workload.csv(), partitions=partitions)
    await produce(deployment.bootstrap, deployment.topic, workload.records)
    port = free_port()
    deployment.start_worker(port, REFERENCE_DATA=csv)
    await assert_exact(deployment, expected_rows(workload.valid, users), workload.rejected)
    await wait_ready(port)

    content_type, text = await asyncio.to_thread(scrape, port)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    families = {f.name: f for f in text_string_to_metric_families(text)}

    # Every family: HELP and a type; and no counter exposed as ..._total_total.
    for family in families.values():
        assert family.documentation.strip(), f"{family.name} has no HELP"
        assert family.type in ("counter", "gauge", "histogram"), (family.name, family.type)
    assert "_total_total" not in text

    # Every declared metric, with its type and HELP; the process collector's too.
    for spec in CATALOGUE:
        name = spec.exposed.removesuffix("_total") if spec.kind == "counter" else spec.exposed
        assert name in families, f"{spec.exposed} missing"
        assert families[name].type == spec.kind and families[name].documentation == spec.help
    for name in PROCESS_FAMILIES:
        assert name.removesuffix("_total") in families, name

    def values(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {
            tuple(sorted(s.labels.items())): s.value
            for f in families.values()
            for s in f.samples
            if s.name == name
        }

    # Histograms have cumulative buckets ending in +Inf == _count, and were observed.
    for spec in (s for s in CATALOGUE if s.kind == "histogram"):
        samples = families[spec.exposed].samples
        buckets = [s for s in samples if s.name == spec.exposed + "_bucket"]
        assert [float(b.labels["le"]) for b in buckets] == [*spec.buckets, math.inf], spec.name
        counts = [b.value for b in buckets]
        assert counts == sorted(counts), f"{spec.name}: buckets are not cumulative"
        (count,) = [s.value for s in samples if s.name == spec.exposed + "_count"]
        assert counts[-1] == count, spec.name
        assert count >= 1, f"{spec.name} was never observed"

    # The SPEC's invariant, per source partition, equal to what was sent.
    sent: dict[int, int] = defaultdict(int)
    for partition, _, _ in workload.records:
        sent[partition] += 1
    ins = values(f"{PREFIX}events_in_total")
    counted = values(f"{PREFIX}records_counted_total")
    dead = values(f"{PREFIX}records_dead_lettered_total")
    for partition in range(partitions):
        key = (("partition", str(partition)),)
        assert ins[key] == counted[key] + dead.get(key, 0) == sent[partition], (partition, ins, counted, dead)
    assert sum(values(f"{PREFIX}events_rejected_total").values()) == workload.rejected

    # Scrape-time gauges from the live stages and the pipeline.
    watermarks = values(f"{PREFIX}watermark_seconds")
    assert {dict(k)["partition"] for k in watermarks} == {str(p) for p in range(partitions)}
    newest = max(ts for _, ts, _ in workload.records) / 1000
    assert all(newest - 1 <= w <= time.time() for w in watermarks.values()), watermarks
    closed = values(f"{PREFIX}closed_below_seconds")
    assert closed and all(c >= past_minute(12) / 1000 + 3 * 60 for c in closed.values()), closed
    assert values(f"{PREFIX}open_keys") and all(v == 0 for v in values(f"{PREFIX}open_keys").values())
    assert values(f"{PREFIX}ready") == {(): 1.0}
    assert values(f"{PREFIX}reference_users") == {(): float(len(users))}
    assert values(f"{PREFIX}reference_reloads_total") == {
        (("result", "ok"),): 0.0,
        (("result", "failed"),): 0.0,
    }
    lag_stages = {dict(k)["stage"] for k in values(f"{PREFIX}consumer_lag")}
    assert lag_stages == {"stage1", "stage2"}
    assert values("process_cpu_seconds_total")[()] > 0
