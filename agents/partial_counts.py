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
from collections.abc import Coroutine
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from clickagg import clients
from clickagg.aio import OneInFlight, StageStuck, quietly
from clickagg.config import Settings
from clickagg.core import commit_meta, dead_letters, envelope
from clickagg.core.aggregate import Counts
from clickagg.core.batch import aggregate_batch
from clickagg.core.days import expire_before_all_ms
from clickagg.core.keys import GroupKey, owner_partition
from clickagg.core.plans import IdlePlan
from clickagg.core.watermarks import SourceClock
from clickagg.health import note_bad, note_good, note_progress
from clickagg.kafka_util import (
    SendLimits,
    StageListener,
    committed_with_metadata,
    record_lag,
    resume_at,
    transactional_reader,
)
from clickagg.metrics import METRICS

log = logging.getLogger(__name__)

METADATA_MAX_AGE_MS = 3000
TRANSACTION_TIMEOUT_MS = 30_000  # the broker aborts a transaction left open longer than this
TRANSACTION_DEADLINE_S = 2 * TRANSACTION_TIMEOUT_MS / 1000


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
        self,
        settings: Settings,
        reference: Any,
        partials_partitions: int,
        source_partitions: int,
        limits: SendLimits,
    ) -> None:
        self.s = settings
        self.reference = reference
        self.partials_partitions = partials_partitions
        self.source_partitions = source_partitions  # grows with the topic (see _sources)
        self.limits = limits
        self.group_id = f"{settings.app_id}-stage1"
        self.tasks: dict[TopicPartition, SourceTask] = {}
        self.lock = asyncio.Lock()
        self.listener_error: Exception | None = None  # raised by the loop (see StageListener)
        self.consumer: AIOKafkaConsumer | None = None
        self.idle = IdlePlan(every_s=1.0, idle_ms=settings.idle_timeout_seconds * 1000)
        METRICS.track("stage1", self)  # watermark_seconds{partition}, read at each scrape

    # -- lifecycle ---------------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        # Raw records: the hot path reads offset, timestamp, key and value only (clickagg.raw_records).
        # Metadata every few seconds: partitions added to the topic are found (and assigned by a
        # rebalance) within seconds, not after the client's default 5 minutes.
        self.consumer = transactional_reader(
            self.s,
            self.group_id,
            self.s.stage1_fetch_bytes,
            raw=True,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        try:
            await self.consumer.start()
            self.consumer.subscribe([self.s.events_topic], listener=self._listener())
            while not stopping.is_set():
                # Big batches when a backlog is waiting: more repetition per batch means fewer partial
                # rows for stage 2 (measured: 30k → 77k, 100k → 83k, 200k → 93k events/s; BENCHMARKS.md).
                # Live traffic arrives in small batches anyway, so latency is unaffected.
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.s.stage1_max_records)
                if self.listener_error is not None:
                    raise self.listener_error  # a failed (re)assignment fails the stage: it restarts fresh
                async with self.lock:
                    await self._settle_finished_transactions()
                    await self._process(batches)
                    await self._advance_idle()
                    waiting = record_lag(
                        self.consumer, {tp: t.position for tp, t in self.tasks.items()}, "stage1"
                    )
                note_progress("stage1", waiting)  # a turn of this loop is progress (see clickagg.health)
        finally:
            try:
                async with self.lock:
                    await self._drop(list(self.tasks))
            finally:
                await quietly(self.consumer.stop())  # always: a leaked member keeps its partitions
            log.info("%s stopped", "stage1")

    def _listener(self) -> StageListener:
        def failed(exc: Exception) -> None:
            self.listener_error = exc

        return StageListener(self.lock, self._assign, self._drop, failed)

    async def _assign(self, partitions: list[TopicPartition]) -> None:
        assert self.consumer is not None
        new = [tp for tp in partitions if tp not in self.tasks]
        producers: dict[TopicPartition, AIOKafkaProducer] = {}
        try:
            for tp in new:
                producer = producers[tp] = clients.producer(
                    self.s,
                    transactional_id=f"{self.s.app_id}-stage1-{tp.partition}",
                    enable_idempotence=True,
                    linger_ms=self.s.producer_linger_ms,
                    max_batch_size=self.limits.batch_bytes,
                    max_request_size=self.limits.request_bytes,
                    transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                )
                await producer.start()  # init_transactions: fences any previous owner, aborts its txn
        except BaseException:
            for producer in producers.values():  # none of them is a task's yet: close them here
                await quietly(producer.stop())
            raise
        committed = await committed_with_metadata(self.consumer, new) if new else {}
        for tp in new:
            offset, meta = committed.get(tp, (None, ""))
            clock = SourceClock(watermark=commit_meta.decode_source(meta))
            position = await resume_at(self.consumer, tp, offset)
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
        now = now_ms()
        acc, rejected = aggregate_batch(
            records,
            self.reference.table.lookup,
            task.clock,
            self.s.window_ms,
            self.s.lateness_ms,
            self.s.event_time_field or None,
            now,
            self.s.max_future_seconds * 1000,
            expire_before_all_ms(now, self.s.retentions),
        )
        next_offset = records[-1].offset + 1
        task.consumed = next_offset
        tally = Tally(len(records), len(records) - len(rejected), rejected)
        await task.inflight.start(
            self._bounded(self._transact(task, acc, rejected, next_offset, task.clock.watermark, tally))
        )

    async def _transact(
        self,
        task: SourceTask,
        acc: dict[GroupKey, Counts],
        rejected: list[tuple[Any, str]],
        next_offset: int,
        watermark: int,
        tally: Tally | None = None,
    ) -> None:
        """Partials, dead letters and the source offset (with the watermark after the batch) in one
        transaction.

        Every send is awaited before the commit: aiokafka commits a transaction even when one of
        its batches failed (observed: a too-large record failed, later batches failed with
        OutOfOrderSequenceNumber, the commit went through and the batch's data was gone). A failed
        send raises here, the transaction aborts, the stage restarts and the batch is read again;
        envelopes and dead letters are made to fit the topics' limits so that it cannot fail the
        same way again.
        """
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
        sources = self._sources()
        async with producer.transaction():
            sent = []
            for dest in range(self.partials_partitions):
                for value in envelope.encode(
                    task.tp.partition, sources, watermark, groups[dest], self.limits.envelope_bytes
                ):
                    sent.append(await producer.send(self.s.partials_topic, value, partition=dest))
            for record, reason in rejected:
                letter = dead_letters.fit(
                    record.value,
                    record.key,
                    dead_letters.source_headers(
                        reason, task.tp.topic, task.tp.partition, record.offset, record.timestamp
                    ),
                    self.limits.dead_letter_bytes,
                )
                sent.append(
                    await producer.send(self.s.dlq, letter.value, key=letter.key, headers=letter.headers)
                )
            # Every outcome retrieved; the first failure raises and the transaction aborts.
            failed = [
                r for r in await asyncio.gather(*sent, return_exceptions=True) if isinstance(r, BaseException)
            ]
            if failed:
                raise failed[0]
            await producer.send_offsets_to_transaction(
                {task.tp: (next_offset, commit_meta.encode_source(watermark))}, self.group_id
            )
        task.position = next_offset
        if tally is not None:
            tally.record(task.tp.partition)

    async def _bounded(self, transaction: Coroutine[Any, Any, None]) -> None:
        """A transaction that cannot finish in time fails the stage, which restarts with new clients.

        Observed: after an Elasticsearch outage and a broker crash, the producers retried
        NotEnoughReplicas for 20 minutes and nothing moved. Fresh producers re-initialise their
        transactional ids (fencing and aborting the stuck ones) and recover within seconds.
        """
        try:
            await asyncio.wait_for(transaction, TRANSACTION_DEADLINE_S)
        except TimeoutError:
            raise StageStuck(
                f"stage 1: a transaction did not commit within {TRANSACTION_DEADLINE_S:.0f}s"
            ) from None

    def _sources(self) -> int:
        """Source partitions known now: envelopes tell stage 2 how many must report (topic growth)."""
        assert self.consumer is not None
        known = len(self.consumer.partitions_for_topic(self.s.events_topic) or ())
        self.source_partitions = max(self.source_partitions, known)
        return self.source_partitions

    async def _advance_idle(self) -> None:
        """Quiet, caught-up partitions move their watermark on wall time so the last window closes.

        "Caught up" is proven by asking the broker for the end offset: while Kafka is unreachable
        nothing can be proven, so an outage never advances a watermark (and never makes data late).
        """
        if self.consumer is None or not self.idle.look_now(time.monotonic()):
            return
        wall, idle_ms = now_ms(), self.idle.idle_ms
        quiet = self.idle.quiet({tp: t.clock.last_record_wall_ms for tp, t in self.tasks.items()}, wall)
        if not quiet:
            return
        try:
            ends = await asyncio.wait_for(self.consumer.end_offsets(quiet), timeout=5)
        except Exception as exc:  # one log line per state change (clickagg.health), not one a second
            note_bad("end offsets", f"cannot check end offsets ({exc!r}): no idle advance")
            return
        note_good("end offsets")
        work = []
        for tp in quiet:
            task = self.tasks[tp]
            await task.inflight.settle()
            caught_up = task.position >= ends.get(tp, task.position + 1)
            if task.clock.advance_if_idle(wall, idle_ms, caught_up):
                work.append(self._bounded(self._transact(task, {}, [], task.position, task.clock.watermark)))
        if work:
            await asyncio.gather(*work)


class Tally(NamedTuple):
    """One batch's records, for the invariant records_in == counted + dead-lettered (per partition),
    recorded only once its transaction committed, so the metrics never count what was rolled back."""

    records: int
    counted: int
    rejected: list[tuple[Any, str]]

    def record(self, partition: int) -> None:
        labels: dict[str, object] = {"partition": partition}
        METRICS.inc("events_in_total", self.records, labels)
        METRICS.inc("records_counted_total", self.counted, labels)
        METRICS.inc("records_dead_lettered_total", len(self.rejected), labels)
        for _, reason in self.rejected:
            METRICS.inc("events_rejected_total", 1, {"reason": reason})
