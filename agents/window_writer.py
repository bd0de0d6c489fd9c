"""Stage 2: partials (read_committed) → window state → versioned Elasticsearch documents.

Offsets are committed only after the documents they produced are written, with the watermark map
in the commit metadata. On (re)assignment the open documents of the partition are read back from
Elasticsearch with their versions; replayed envelopes at or below a version are skipped, and any
stale write is refused by Elasticsearch's external versioning. While Elasticsearch is down the
flush retries and this loop stops consuming: memory stays bounded, partials wait in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from elasticsearch.helpers import async_scan

from clickagg.aio import OneInFlight, quietly
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.core.watermarks import NO_WATERMARK, MinWatermark
from clickagg.es import schema
from clickagg.es.refresh_policy import RefreshPolicy
from clickagg.es.sink import BulkSink, ThreadedBulkPost
from clickagg.kafka_util import committed_with_metadata, record_lag, transactional_reader
from clickagg.metrics import METRICS
from tables.window_state import WindowState, Write

log = logging.getLogger(__name__)


class ProgressWrite(NamedTuple):
    doc_id: str
    version: int
    source: dict[str, Any]
    tp: TopicPartition


MAX_PENDING_FINALS = 50_000  # flush early when this many final documents wait


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class WindowWriter:
    def __init__(self, settings: Settings, es: Any) -> None:
        self.s = settings
        self.es = es
        self.post = ThreadedBulkPost(settings.elasticsearch_url)
        self.sink = BulkSink(self.post, settings.es_index)
        self.progress_sink = BulkSink(self.post, schema.progress_index(settings.es_index), concurrency=1)
        self.progress_written: dict[TopicPartition, int] = {}
        self.refresh = RefreshPolicy()
        self.group_id = f"{settings.app_id}-stage2"
        self.states: dict[TopicPartition, WindowState] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.last_flush = time.monotonic()
        self.writing = OneInFlight()  # the flush whose writes and commit are in flight

    async def run(self, stopping: asyncio.Event) -> None:
        self.consumer = transactional_reader(self.s.kafka_bootstrap_servers, self.group_id, 8 * 1024 * 1024)
        await self.consumer.start()
        self.consumer.subscribe([self.s.partials_topic], listener=_Listener(self))
        try:
            while not stopping.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=2000)
                if self.writing.finished:
                    await self.writing.settle()  # raises if that flush failed: the stage restarts
                if not batches and self.writing.idle and self.refresh.due(time.monotonic(), idle=True):
                    await self._refresh()  # nothing more to read: make what was written visible now
                async with self.lock:
                    finals = 0
                    live_close = False  # a live window closed: its finals go out now, not a second later
                    live_from = self._live_from()
                    for tp, records in batches.items():
                        state = self.states.get(tp)
                        if state is None:
                            continue
                        position = self.positions[tp]
                        for record in records:
                            if record.offset < position:
                                continue  # fetched before a rebalance handed the partition back
                            state.apply(record.offset, orjson.loads(record.value))
                            position = record.offset + 1
                        self.positions[tp] = position
                        finals += len(state.finals)
                        live_close = live_close or bool(
                            state.finals and state.finals[-1].window_start >= live_from
                        )
                    record_lag(self.consumer, self.positions, "stage2")
                    due = time.monotonic() - self.last_flush >= self.s.flush_interval_seconds
                    if due or finals >= MAX_PENDING_FINALS or live_close:
                        await self._flush(list(self.states))
        finally:
            async with self.lock:
                await quietly(self.writing.settle())
                if self.states:
                    await self._flush(list(self.states), final_pass=True)
                if self.refresh.pending:
                    await self._refresh()
            await quietly(self.consumer.stop())
            self.sink.close()
            self.progress_sink.close()
            self.post.close()
            log.info("%s stopped", "stage2")

    async def _flush(self, partitions: list[TopicPartition], final_pass: bool = False) -> None:
        """Take every changed document and the offsets (and watermarks) they reflect; write, then commit.

        The writes and the commit run in the background while the next envelopes are applied
        (Elasticsearch indexes while this process computes); one flush is in flight at a time, so
        commits stay in order and memory stays bounded. A final pass writes inline.
        """
        assert self.consumer is not None
        self.last_flush = time.monotonic()
        writes = []
        offsets = {}
        closed: dict[TopicPartition, int] = {}
        live_after = None if final_pass else int(time.time() * 1000)
        for tp in partitions:
            state = self.states[tp]
            writes.extend(state.take_writes(live_after))
            closed[tp] = state.closed_below  # what the progress may vouch for: these finals are in `writes`
            if tp in self.positions:
                # The watermark map is the one at the position even when the floor is behind it:
                # windows it closed are final in Elasticsearch, so a replay from the floor only
                # needs to rebuild the keys that are still open.
                meta = orjson.dumps(state.watermark.snapshot()).decode()
                offsets[tp] = (state.commit_floor(self.positions[tp]), meta)
        await self.writing.settle()
        job = self._write_and_commit(writes, offsets, closed)
        if final_pass:
            await job
        else:
            await self.writing.start(job)

    async def _write_and_commit(
        self,
        writes: list[Write],
        offsets: dict[TopicPartition, tuple[int, str]],
        closed: dict[TopicPartition, int],
    ) -> None:
        assert self.consumer is not None
        if writes:
            started = time.time()
            await self.sink.write(writes)
            wrote_at = time.time()
            METRICS.inc("documents_written_total", len(writes))
            final_windows = {w.window_start for w in writes if w.final}  # a few per flush
            METRICS.inc("documents_final_total", sum(1 for w in writes if w.final))
            for start in final_windows:
                # Window end → its final documents written (one sample per window and flush).
                METRICS.observe("final_delay_seconds", wrote_at - (start + self.s.window_ms) / 1000)
            METRICS.observe("flush_seconds", wrote_at - started)
            live_from = self._live_from()
            self.refresh.wrote(
                live=any(w.window_start >= live_from for w in writes),
                live_final=any(start >= live_from for start in final_windows),
            )
        await self._write_progress(closed)
        if offsets:
            await self.consumer.commit(offsets)
        if self.refresh.due(time.monotonic(), idle=False):
            await self._refresh()

    def _live_from(self) -> float:
        """Live: a window still open or closed less than a window ago (what dashboards watch)."""
        return time.time() * 1000 - 2 * self.s.window_ms - self.s.lateness_ms

    async def _refresh(self) -> None:
        """Make written documents searchable (see RefreshPolicy); a failure only defers it."""
        try:
            await asyncio.to_thread(self.post.refresh, self.s.es_index)
        except Exception as exc:
            log.warning("refreshing %s failed (%r); will retry", self.s.es_index, exc)
            return
        self.refresh.refreshed(time.monotonic())

    async def _write_progress(self, closed_below: dict[TopicPartition, int]) -> None:
        """Publish how far each partition has finalised windows: readers' completeness signal.

        Written after the documents it vouches for; the version is the close watermark itself, so a
        stale progress document can never overwrite a newer one.
        """
        assert self.consumer is not None
        total = len(self.consumer.partitions_for_topic(self.s.partials_topic) or ())
        progress = []
        for tp, closed in closed_below.items():
            if closed <= self.progress_written.get(tp, NO_WATERMARK):
                continue
            source = {
                "partition": tp.partition,
                "partitions": total,
                "closed_below_ms": closed,
                "window_ms": self.s.window_ms,
                "lateness_ms": self.s.lateness_ms,
                "updated_at": iso(int(time.time() * 1000)),
            }
            progress.append(ProgressWrite(str(tp.partition), closed + 1, source, tp))
        if progress:
            await self.progress_sink.write(progress)
            for w in progress:
                self.progress_written[w.tp] = w.source["closed_below_ms"]

    async def _assign(self, partitions: list[TopicPartition]) -> None:
        assert self.consumer is not None
        new = [tp for tp in partitions if tp not in self.states]
        if not new:
            return
        committed = await committed_with_metadata(self.consumer, new)
        await self._refresh_index()
        for tp in new:
            offset, meta = committed.get(tp, (None, ""))
            state = WindowState(tp.partition, self.s.window_ms, self.s.lateness_ms)
            if meta:
                state.watermark = MinWatermark.restore(orjson.loads(meta))
                state.closed_below = state.watermark.current()
            loaded = await self._load_open_documents(tp.partition, state)
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
                self.positions[tp] = await self.consumer.position(tp)
            else:
                self.consumer.seek(tp, offset)
                self.positions[tp] = offset
            self.states[tp] = state
            log.info("stage2 owns %s from offset %s with %d open documents", tp, offset, loaded)

    async def _refresh_index(self) -> None:
        while True:
            try:
                await self.es.indices.refresh(index=self.s.es_index)
                return
            except Exception as exc:
                log.warning("elasticsearch not reachable while restoring state (%r); retrying", exc)
                await asyncio.sleep(2.0)

    async def _load_open_documents(self, partition: int, state: WindowState) -> int:
        query = {"bool": {"filter": [{"term": {"owner_partition": partition}}, {"term": {"final": False}}]}}
        while True:
            try:
                count = 0
                async for hit in async_scan(
                    self.es, index=self.s.es_index, query={"query": query, "version": True}, size=5000
                ):
                    # The external version is the partials offset + 1 the counts reflect.
                    src = hit["_source"]
                    key = (_ms(src["time"]), src["gender"], src["segment_id"], src["article_id"])
                    state.load(key, src["impression"], src["click"], hit["_version"])
                    count += 1
                return count
            except Exception as exc:
                log.warning("loading open documents failed (%r); retrying", exc)
                state.windows.clear()
                await asyncio.sleep(2.0)

    async def _revoke(self, partitions: list[TopicPartition]) -> None:
        owned = [tp for tp in partitions if tp in self.states]
        if owned:
            try:
                await self._flush(owned, final_pass=True)
            except Exception as exc:  # the new owner replays from the last commit: still exact
                log.warning("flush on revoke failed: %r", exc)
        for tp in owned:
            self.states.pop(tp, None)
            self.positions.pop(tp, None)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: WindowWriter) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.owner.lock:
            await self.owner._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        async with self.owner.lock:
            await self.owner._assign(list(assigned))
