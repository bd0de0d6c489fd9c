"""Stage 1: events → partial counts, dead letters and source offsets, in one Kafka transaction.

One transactional producer per source partition (transactional id `<APP_ID>-stage1-<partition>`):
a new owner of a partition fences the old one, so a zombie can never commit, and a crash aborts the
open transaction, so read_committed readers never see a partial twice. The partition's watermark is
stored in the committed offset's metadata and restored with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from clickagg.aio import OneInFlight, quietly
from clickagg.config import Settings
from clickagg.core.aggregate import Counts
from clickagg.core.batch import aggregate_batch
from clickagg.core.keys import GroupKey, owner_partition
from clickagg.core.watermarks import SourceClock
from clickagg.kafka_util import committed_with_metadata, record_lag, transactional_reader
from clickagg.metrics import METRICS

log = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


class SourceTask:
    """Everything owned for one source partition: its producer, positions and watermark.

    `position` is the next offset of a committed transaction; `consumed` the next offset already
    aggregated, which is ahead while the batch's transaction is in flight (`inflight`): the next
    batch is computed while the previous one commits, one transaction at a time per producer.
    """

    def __init__(
        self, tp: TopicPartition, producer: AIOKafkaProducer, position: int, clock: SourceClock
    ) -> None:
        self.tp = tp
        self.producer = producer
        self.position = position
        self.consumed = position
        self.clock = clock
        self.inflight = OneInFlight()  # one transaction at a time per producer


class PartialCounter:
    """Consumes the events topic in batches and emits transactional partials (see module doc)."""

    def __init__(
        self, settings: Settings, reference: Any, partials_partitions: int, source_partitions: int
    ) -> None:
        self.s = settings
        self.reference = reference
        self.partials_partitions = partials_partitions
        self.source_partitions = source_partitions
        self.group_id = f"{settings.app_id}-stage1"
        self.tasks: dict[TopicPartition, SourceTask] = {}
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.last_idle_check = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        # Raw records: the hot path reads offset, timestamp, key and value only (clickagg.raw_records).
        self.consumer = transactional_reader(
            self.s.kafka_bootstrap_servers, self.group_id, 4 * 1024 * 1024, raw=True
        )
        await self.consumer.start()
        self.consumer.subscribe([self.s.events_topic], listener=_Listener(self))
        try:
            while not stopping.is_set():
                # Big batches when a backlog is waiting: more repetition per batch means fewer partial
                # rows for stage 2 (measured: 30k → 77k, 100k → 83k, 200k → 93k events/s; BENCHMARKS.md).
                # Live traffic arrives in small batches anyway, so latency is unaffected.
                batches = await self.consumer.getmany(timeout_ms=200, max_records=200_000)
                async with self.lock:
                    await self._settle_finished_transactions()
                    await self._process(batches)
                    await self._advance_idle()
                    record_lag(self.consumer, {tp: t.position for tp, t in self.tasks.items()}, "stage1")
        finally:
            async with self.lock:
                await self._drop(list(self.tasks))
            await quietly(self.consumer.stop())
            log.info("%s stopped", "stage1")

    async def _assign(self, partitions: list[TopicPartition]) -> None:
        assert self.consumer is not None
        new = [tp for tp in partitions if tp not in self.tasks]
        producers = {}
        for tp in new:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.s.kafka_bootstrap_servers,
                transactional_id=f"{self.s.app_id}-stage1-{tp.partition}",
                enable_idempotence=True,
                linger_ms=5,
                max_batch_size=1024 * 1024,
                max_request_size=8 * 1024 * 1024,
            )
            await producer.start()  # init_transactions: fences any previous owner, aborts its open txn
            producers[tp] = producer
        committed = await committed_with_metadata(self.consumer, new) if new else {}
        for tp in new:
            offset, meta = committed.get(tp, (None, ""))
            clock = SourceClock(watermark=int(meta) if meta.lstrip("-").isdigit() else -1)
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
                position = await self.consumer.position(tp)
            else:
                self.consumer.seek(tp, offset)
                position = offset
            self.tasks[tp] = SourceTask(tp, producers[tp], position, clock)
            log.info("stage1 owns %s from offset %s (watermark %s)", tp, position, clock.watermark)

    async def _drop(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            task = self.tasks.pop(tp, None)
            if task is not None:
                # A failed transaction is re-read by the next owner: still exact.
                await quietly(task.inflight.settle())
                await quietly(task.producer.stop())

    async def _settle_finished_transactions(self) -> None:
        """A failed transaction fails the stage now, not at that partition's next batch."""
        for task in list(self.tasks.values()):
            if task.inflight.finished:
                await task.inflight.settle()

    # -- the hot path ------------------------------------------------------------------------------
    async def _process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        work = []
        for tp, records in batches.items():
            task = self.tasks.get(tp)
            if task is None:
                continue  # revoked meanwhile: the new owner reads these again
            # A batch fetched before a rebalance that gave the partition back to us may predate
            # the committed offset we resumed from: those records are already in a transaction.
            records = [r for r in records if r.offset >= task.consumed]
            if records:
                work.append(self._commit_batch(task, records))
        if work:
            await asyncio.gather(*work)

    async def _commit_batch(self, task: SourceTask, records: list[Any]) -> None:
        # One reference snapshot per batch: swaps happen between batches, atomically.
        acc, rejected = aggregate_batch(
            records,
            self.reference.table.lookup,
            task.clock,
            self.s.window_ms,
            self.s.lateness_ms,
            self.s.event_time_field or None,
            now_ms(),
        )
        METRICS.inc("events_in_total", len(records), {"partition": task.tp.partition})
        for _, reason in rejected:
            METRICS.inc("events_rejected_total", 1, {"reason": reason})
        next_offset = records[-1].offset + 1
        task.consumed = next_offset
        await task.inflight.start(self._transact(task, acc, rejected, next_offset, task.clock.watermark))

    async def _transact(
        self,
        task: SourceTask,
        acc: dict[GroupKey, Counts],
        rejected: list[tuple[Any, str]],
        next_offset: int,
        watermark: int,
    ) -> None:
        """Partials, dead letters and the source offset (with the watermark after the batch) in one
        transaction."""
        n = self.partials_partitions
        # Per partials partition, rows grouped by window (stage 2 then finds each window once).
        groups: list[dict[int, list[tuple[Any, ...]]]] = [{} for _ in range(n)]
        for key, (imp, clk) in acc.items():
            start, gender, segment, article = key
            by_window = groups[owner_partition(key, n)]
            rows = by_window.get(start)
            if rows is None:
                rows = by_window[start] = []
            rows.append((gender, segment, article, imp, clk))
        producer = task.producer
        async with producer.transaction():
            for dest in range(self.partials_partitions):
                envelope = {
                    "src": task.tp.partition,
                    "n": self.source_partitions,
                    "wm": watermark,
                    "windows": list(groups[dest].items()),
                }
                await producer.send(self.s.partials_topic, orjson.dumps(envelope), partition=dest)
            for record, reason in rejected:
                await producer.send(
                    self.s.dlq, record.value, key=record.key, headers=dlq_headers(task.tp, record, reason)
                )
            await producer.send_offsets_to_transaction(
                {task.tp: (next_offset, str(watermark))}, self.group_id
            )
        task.position = next_offset

    async def _advance_idle(self) -> None:
        """Quiet, caught-up partitions move their watermark on wall time so the last window closes.

        "Caught up" is proven by asking the broker for the end offset: while Kafka is unreachable
        nothing can be proven, so an outage never advances a watermark (and never makes data late).
        """
        if time.monotonic() - self.last_idle_check < 1.0 or self.consumer is None:
            return
        self.last_idle_check = time.monotonic()
        wall, idle_ms = now_ms(), self.s.idle_timeout_seconds * 1000
        quiet = [
            tp
            for tp, task in self.tasks.items()
            if task.clock.last_record_wall_ms is None or wall - task.clock.last_record_wall_ms >= idle_ms
        ]
        if not quiet:
            return
        try:
            ends = await asyncio.wait_for(self.consumer.end_offsets(quiet), timeout=5)
        except Exception as exc:
            log.info("cannot check end offsets (%r): no idle advance", exc)
            return
        work = []
        for tp in quiet:
            task = self.tasks[tp]
            await task.inflight.settle()
            caught_up = task.position >= ends.get(tp, task.position + 1)
            if task.clock.advance_if_idle(wall, idle_ms, caught_up):
                work.append(self._transact(task, {}, [], task.position, task.clock.watermark))
        if work:
            await asyncio.gather(*work)


def dlq_headers(tp: TopicPartition, record: Any, reason: str) -> list[tuple[str, bytes]]:
    """Dead letters keep the original bytes as value; where they came from travels in headers."""
    return [
        ("reason", reason.encode()),
        ("source.topic", tp.topic.encode()),
        ("source.partition", str(tp.partition).encode()),
        ("source.offset", str(record.offset).encode()),
        ("source.timestamp", str(record.timestamp).encode()),
    ]


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: PartialCounter) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.owner.lock:  # waits for the batch in flight to commit
            await self.owner._drop(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        async with self.owner.lock:
            await self.owner._assign(list(assigned))
