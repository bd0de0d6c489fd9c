"""Test helpers that talk to the real local stack: topics, a worker process, Elasticsearch rows."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from clickagg.config import Settings
from clickagg.es.engines import search_engine
from clickagg.kafka_util import ensure_topics

Row = tuple[int, Any, Any, int, int, int]


@dataclass
class Deployment:
    """One isolated clickagg deployment: its own APP_ID, topics and index."""

    bootstrap: str
    es_url: str
    tmp: Path
    name: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:10])
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return f"{self.name}-events"

    @property
    def index(self) -> str:
        return f"{self.name}-minutely"

    def env(self, **extra: Any) -> dict[str, str]:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "ELASTICSEARCH_URL": self.es_url,
            "EVENTS_TOPIC": self.topic,
            "ES_INDEX": self.index,
            "APP_ID": self.name,
            "WINDOW_SECONDS": "60",
            "ALLOWED_LATENESS_SECONDS": "5",
            "IDLE_TIMEOUT_SECONDS": "3",
            "DATA_DIR": str(self.tmp / "data"),
            "REFERENCE_RELOAD_SECONDS": "0.5",
        }
        env.update({k: str(v) for k, v in extra.items()})
        if os.environ.get("CLICKAGG_WORKER_CHECKOUT"):
            env["PYTHONPATH"] = os.environ["CLICKAGG_WORKER_CHECKOUT"]
        return env

    async def create_topic(self, partitions: int) -> None:
        await ensure_topics(self.bootstrap, {self.topic: partitions})

    async def prepare(self, users_csv: str, partitions: int) -> Path:
        """Write the reference CSV and create the events topic; returns the CSV's path."""
        csv = self.tmp / "users.csv"
        csv.write_text(users_csv)
        await self.create_topic(partitions)
        return csv

    def start_worker(self, web_port: int, **extra: Any) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{len(self.workers)}.log").open("ab")
        # CLICKAGG_WORKER_CHECKOUT runs the workers from another checkout (with PYTHONPATH pointing at
        # it): how a test is shown to fail on an older commit and pass on this one.
        checkout = os.environ.get("CLICKAGG_WORKER_CHECKOUT") or None
        proc = subprocess.Popen(
            [sys.executable, "-m", "clickagg.cli", "worker"],
            env=self.env(WEB_PORT=web_port, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=checkout,
        )
        self.workers.append(proc)
        return proc

    def stop_workers(self, sig: int = signal.SIGTERM) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.tmp.glob("worker-*.log")))

    async def documents(self) -> list[dict[str, Any]]:
        es = search_engine(Settings(elasticsearch_url=self.es_url))  # Elasticsearch or OpenSearch
        try:
            if not await es.exists(self.index):
                return []
            await es.refresh(self.index)
            return [
                {"_id": h["_id"], **h["_source"]}
                async for h in es.scan(self.index, {"query": {"match_all": {}}}, size=10_000)
            ]
        finally:
            await es.close()

    async def wait_final(self, expected_docs: int, timeout_s: float = 240) -> list[dict[str, Any]]:
        """Poll until the index holds expected_docs documents, all final (or time out with the logs)."""
        deadline = time.monotonic() + timeout_s
        docs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            docs = await self.documents()
            if len(docs) >= expected_docs and all(d["final"] for d in docs):
                return docs
            for proc in self.workers:
                if proc.poll() not in (None, 0, -9, -15):
                    raise AssertionError(f"worker exited with {proc.returncode}:\n{self.logs()}")
            await asyncio.sleep(1.0)
        finals = sum(1 for d in docs if d["final"])
        raise AssertionError(
            f"timed out: {len(docs)} docs ({finals} final), expected {expected_docs}\n{self.logs()}"
        )

    async def dead_letters(self) -> list[Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, auto_offset_reset="earliest", isolation_level="read_committed"
        )
        await consumer.start()
        try:
            topic = f"{self.topic}-dlq"
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer._client.cluster.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in parts]
            if not tps:
                return []
            consumer.assign(tps)
            end = await consumer.end_offsets(tps)
            out: list[Any] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    out.extend(records)
            return out
        finally:
            await consumer.stop()


def es_rows(docs: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for d in docs:
        t = int(datetime.fromisoformat(d["time"].replace("Z", "+00:00")).timestamp() * 1000)
        rows.append((t, d["gender"], d["segment_id"], d["article_id"], d["impression"], d["click"]))
    return rows


async def assert_exact(dep: Deployment, expected: set[Row], rejected: int, timeout_s: float = 300) -> None:
    """Every Elasticsearch row equals the oracle's, one final document per key, DLQ = rejected."""
    docs = await dep.wait_final(len(expected), timeout_s)
    got = es_rows(docs)
    assert len({d["_id"] for d in docs}) == len(docs)
    assert len(got) == len(set(got)), "one document per (minute, gender, segment, article)"
    missing, extra = expected - set(got), set(got) - expected
    assert not missing and not extra, (
        f"{len(missing)} rows missing, {len(extra)} unexpected; e.g. {sorted(missing, key=repr)[:3]} / {sorted(extra, key=repr)[:3]}"
    )
    assert all(d["final"] for d in docs)
    dead = await dep.dead_letters()
    assert len(dead) == rejected, f"dead letters {len(dead)} != rejected {rejected}"


async def wait_consumed(dep: Deployment, timeout_s: float = 60) -> None:
    """Wait until stage 1 has committed every record of the events topic (it saw them all)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=dep.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=dep.bootstrap)
    await admin.start()
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(f"{dep.name}-stage1")
            tps = [
                TopicPartition(dep.topic, p)
                for p in consumer._client.cluster.partitions_for_topic(dep.topic) or []
            ]
            if not tps:
                await consumer._client.force_metadata_update()
                continue
            ends = await consumer.end_offsets(tps)
            if all(tp in committed and committed[tp].offset >= ends[tp] for tp in tps):
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"stage 1 did not catch up in {timeout_s}s\n{dep.logs()}")
    finally:
        await consumer.stop()
        await admin.close()


async def metrics_text(port: int) -> str:
    """The worker's /metrics page."""
    import urllib.request

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    return await asyncio.to_thread(fetch)


async def worker_metric(port: int, name: str) -> float:
    """Sum of a metric's samples from the worker's /metrics endpoint (0 when absent)."""
    total = 0.0
    prefix = f"clickagg_{name}"
    for line in (await metrics_text(port)).splitlines():
        if line.startswith(prefix) and line[len(prefix) : len(prefix) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total
