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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from clickagg import clients
from clickagg.aio import Backoff, OneInFlight, StageStuck, quietly
from clickagg.config import Settings
from clickagg.core import commit_meta, envelope
from clickagg.core.days import expire_before_all_ms
from clickagg.core.documents import iso
from clickagg.core.plans import FlushPlan, any_live
from clickagg.core.watermarks import NO_WATERMARK
from clickagg.core.windows import live_from
from clickagg.es import engines, schema
from clickagg.es.port import SearchEngine
from clickagg.es.refresh_policy import RefreshPolicy
from clickagg.es.sink import BulkSink, ThreadedBulkPost
from clickagg.health import note_bad, note_good, note_progress
from clickagg.kafka_util import (
    StageListener,
    committed_with_metadata,
    partition_counts,
    record_lag,
    resume_at,
    transactional_reader,
)
from clickagg.metrics import METRICS
from clickagg.tables.window_state import HOUR_MS, Hours, LateRow, WindowState, Write, hour_envelope

log = logging.getLogger(__name__)


class ProgressWrite(NamedTuple):
    doc_id: str
    version: int
    source: dict[str, Any]
    tp: TopicPartition
    window_start: int = 0  # a DocWrite field; the progress index is one index, not daily


INF = float("inf")  # a live_from that makes every window historical: finals only
COMMIT_DEADLINE_S = 30.0  # an offset commit that takes longer fails the stage (restart, new clients)


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class WindowWriter:
    def __init__(self, settings: Settings, es: SearchEngine) -> None:
        self.s = settings
        self.es = es
        self.post = ThreadedBulkPost(engines.search_bulk(settings, timeout_s=30))
        self.sink = BulkSink(self.post, settings.es_index, daily=True)
        self.progress_sink = BulkSink(self.post, schema.progress_index(settings.es_index), concurrency=1)
        self.progress_written: dict[TopicPartition, int] = {}
        self.refresh = RefreshPolicy()
        self.group_id = f"{settings.app_id}-stage2"
        self.states: dict[TopicPartition, WindowState] = {}
        # Exact hourly rollups (HOURLY_INDEX): per partition, fed the same rows as the minutes.
        self.hours: dict[TopicPartition, WindowState] = {}
        self.hour_sink = BulkSink(self.post, settings.hourly, daily=True) if settings.hourly else None
        self.positions: dict[TopicPartition, int] = {}
        self.lock = asyncio.Lock()
        self.listener_error: Exception | None = None  # raised by the loop (see StageListener)
        self.consumer: AIOKafkaConsumer | None = None
        self.flushing = FlushPlan(
            settings.flush_interval_seconds, settings.max_pending_finals, time.monotonic()
        )
        self.writing = OneInFlight()  # the flush whose writes and commit are in flight
        self.admin: AIOKafkaAdminClient | None = None  # reads the source topic's partition count
        self.sources_checked_at = -1e9
        self.late_producer: AIOKafkaProducer | None = None  # created on the first late row
        METRICS.track("stage2", self)  # closed_below_seconds, open_windows, open_keys per partition

    async def run(self, stopping: asyncio.Event) -> None:
        self.consumer = transactional_reader(self.s, self.group_id, self.s.stage2_fetch_bytes)
        self.admin = clients.admin(self.s)
        try:
            await self.consumer.start()
            await self.admin.start()
            self.consumer.subscribe([self.s.partials_topic], listener=self._listener())
            await self._loop(stopping)
        finally:
            # Every client is closed on every path: a stage that failed and left its consumer in the
            # group kept its partitions from everyone else (observed with a year-10000 timestamp).
            try:
                async with self.lock:
                    await quietly(self.writing.settle())
                    if self.states:
                        await quietly(self._flush(list(self.states), final_pass=True), timeout_s=30)
                    if self.refresh.pending:
                        await quietly(self._refresh())
            finally:
                await quietly(self.consumer.stop())
                await quietly(self.admin.close())
                if self.late_producer is not None:
                    await quietly(self.late_producer.stop())
                self.sink.close()
                self.progress_sink.close()
                self.post.close()
                log.info("%s stopped", "stage2")

    async def _loop(self, stopping: asyncio.Event) -> None:
        assert self.consumer is not None
        while not stopping.is_set():
            batches = await self.consumer.getmany(timeout_ms=200, max_records=self.s.stage2_max_records)
            if self.listener_error is not None:
                raise self.listener_error  # a failed (re)assignment fails the stage: it restarts fresh
            if self.writing.finished:
                await self.writing.settle()  # raises if that flush failed: the stage restarts
            if not batches and self.writing.idle and self.refresh.due(time.monotonic(), idle=True):
                await self._refresh()  # nothing more to read: make what was written visible now
            async with self.lock:
                finals = 0
                live_close = False  # a live window closed: its finals go out now, not a second later
                live_from = self._live_from()
                expire_before = expire_before_all_ms(int(time.time() * 1000), self.s.retentions)
                for tp, records in batches.items():
                    state = self.states.get(tp)
                    if state is None:
                        continue
                    state.expire_before = expire_before
                    hour_state = self.hours.get(tp)
                    position = self.positions[tp]
                    for record in records:
                        if record.offset < position:
                            continue  # fetched before a rebalance handed the partition back
                        env = envelope.decode(record.value)
                        if hour_state is None:
                            state.apply(record.offset, env)
                        else:
                            summed: Hours = {}
                            state.apply(record.offset, env, summed)
                            hour_state.apply(record.offset, hour_envelope(env, summed))
                        position = record.offset + 1
                    self.positions[tp] = position
                await self._close_windows()
                for state in self.states.values():
                    finals += len(state.finals)
                    live_close = live_close or any_live(
                        (w.window_start for w in state.finals[-1:]), live_from
                    )
                waiting = record_lag(self.consumer, self.positions, "stage2")
                if self.flushing.due(time.monotonic(), finals, live_close):
                    await self._flush(list(self.states))
            note_progress("stage2", waiting)  # blocked here while a flush waits for Elasticsearch

    async def _close_windows(self) -> None:
        """Close the windows the watermark has passed, once every source partition is known.

        A source partition that exists but has not reported must hold windows open: after the events
        topic grew from 2 to 4 partitions, windows closed on the old partitions' watermark and the
        new partitions' rows were dropped. Stage 1's envelopes say how many partitions it knows, but
        a partition may exist before any stage 1 task has seen it; so before closing a window the
        writer asks the broker (at most once a second, plus once per window boundary).
        """
        pending = [st for st in self.states.values() if st.watermark.current() > st.closed_below]
        if not pending:
            return
        now = time.monotonic()
        if now - self.sources_checked_at >= 1.0 or any(st.would_close() for st in pending):
            sources = await self._source_partitions()
            if sources is None:
                return  # the broker cannot say: close nothing now (never guess)
            self.sources_checked_at = now
            for state in pending:
                state.know_sources(sources)
                state.close()
            for hour_state in self.hours.values():  # the same marks: an hour closes with its last minute
                hour_state.know_sources(sources)
                hour_state.close()

    async def _source_partitions(self) -> int | None:
        assert self.admin is not None
        try:
            counts = await asyncio.wait_for(partition_counts(self.admin, [self.s.events_topic]), 5)
        except Exception as exc:  # one log line per state change (clickagg.health), not one per turn
            note_bad(
                "source partitions",
                f"cannot read the partition count of {self.s.events_topic} ({exc!r}): no window closes",
            )
            return None
        note_good("source partitions")
        return counts.get(self.s.events_topic)

    async def _flush(self, partitions: list[TopicPartition], final_pass: bool = False) -> None:
        """Take every changed document and the offsets (and watermarks) they reflect; write, then commit.

        The writes and the commit run in the background while the next envelopes are applied
        (Elasticsearch indexes while this process computes); one flush is in flight at a time, so
        commits stay in order and memory stays bounded. A final pass writes inline.
        """
        assert self.consumer is not None
        self.flushing.flushed(time.monotonic())
        writes = []
        hour_writes: list[Write] = []
        offsets = {}
        late: list[tuple[TopicPartition, LateRow]] = []
        closed: dict[TopicPartition, int] = {}
        # A flush that dead-letters rows first writes every change (historical windows' and open
        # hours' too), so the commit floor passes those rows: a replay after a restart then never
        # holds a row that was dead-lettered, which is what lets the hours take replayed rows of
        # closed minutes (WindowState.apply). Stage-2 dead letters are rare (stage 1 has its own).
        everything = final_pass or any(self.states[tp].has_late() for tp in partitions)
        live = None if everything else self._live_from()
        for tp in partitions:
            state = self.states[tp]
            writes.extend(state.take_writes(live))
        # Open hours are written when a minute closes (finals, live hours), not every flush: about
        # one write per key and minute; historical hours only as finals, like historical minutes.
        hour_live = None if everything else (self._live_hour_from() if any(w.final for w in writes) else INF)
        for tp in partitions:
            hour_state = self.hours.get(tp)
            if hour_state is not None:
                hour_writes.extend(hour_state.take_writes(hour_live))
        for tp in partitions:
            state = self.states[tp]
            closed[tp] = state.closed_below  # what the progress may vouch for: these finals are in `writes`
            late.extend((tp, row) for row in state.take_late())
            if tp in self.positions:
                # The watermark map is the one at the position even when the floor is behind it:
                # windows it closed are final in Elasticsearch, so a replay from the floor only
                # needs to rebuild the keys that are still open.
                position = self.positions[tp]
                meta = commit_meta.encode_writer(state.watermark, state.closed_below, position)
                floor = state.commit_floor(position)
                hour_state = self.hours.get(tp)
                if hour_state is not None:  # an hour's unwritten changes hold the commit back too
                    floor = min(floor, hour_state.commit_floor(position))
                offsets[tp] = (floor, meta)
        await self.writing.settle()
        job = self._write_and_commit(writes, offsets, closed, late, hour_writes)
        if final_pass:
            await job
        else:
            await self.writing.start(job)

    async def _write_and_commit(
        self,
        writes: list[Write],
        offsets: dict[TopicPartition, tuple[int, str]],
        closed: dict[TopicPartition, int],
        late: list[tuple[TopicPartition, LateRow]],
        hour_writes: list[Write] | None = None,
    ) -> None:
        assert self.consumer is not None
        if late:
            await self._dead_letter_late_rows(late)
        if hour_writes and self.hour_sink is not None:
            await self.hour_sink.write(hour_writes)  # before the progress and the commit, like minutes
            METRICS.inc("hourly_documents_written_total", len(hour_writes))
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
            METRICS.observe_behind(
                "freshness_seconds", wrote_at, [st.watermark.current() for st in self.states.values()]
            )
            live_from = self._live_from()
            self.refresh.wrote(
                live=any_live((w.window_start for w in writes), live_from),
                live_final=any_live(final_windows, live_from),
            )
        await self._write_progress(closed)
        if offsets:
            try:
                await asyncio.wait_for(self.consumer.commit(offsets), COMMIT_DEADLINE_S)
            except TimeoutError:
                raise StageStuck(
                    f"stage 2: an offset commit did not finish within {COMMIT_DEADLINE_S:.0f}s"
                ) from None
        if self.refresh.due(time.monotonic(), idle=False):
            await self._refresh()

    async def _dead_letter_late_rows(self, late: list[tuple[TopicPartition, LateRow]]) -> None:
        """Rows for a window already final: the dead-letter topic, never a silent drop.

        Stage 1 dead-letters late records itself; this is the last line of defence (e.g. a source
        partition created after the windows closed that then receives old timestamps). Such a dead
        letter is a partial row, not a source record, and is sent before the offsets are committed:
        after a crash it may be sent again (headers carry the partials offset to tell them apart).
        """
        if self.late_producer is None:
            self.late_producer = clients.producer(self.s, enable_idempotence=True)
            await self.late_producer.start()
        sent = []
        for tp, row in late:
            gender, segment, article, imp, clk = row.row
            value = orjson.dumps(
                {
                    "time": iso(row.window_start),
                    "gender": gender,
                    "segment_id": segment,
                    "article_id": article,
                    "impression": imp,
                    "click": clk,
                }
            )
            headers = [
                ("reason", row.reason.encode()),
                ("stage", b"2"),
                ("source.partition", str(row.source).encode()),
                ("partials.partition", str(tp.partition).encode()),
                ("partials.offset", str(row.offset).encode()),
            ]
            sent.append(await self.late_producer.send(self.s.dlq, value, headers=headers))
        await asyncio.gather(*sent)
        expired = sum(1 for _, row in late if row.reason == "expired")
        if len(late) > expired:
            METRICS.inc("late_rows_total", len(late) - expired)
            log.warning(
                "%d rows arrived for windows already final: sent to %s (reason late)",
                len(late) - expired,
                self.s.dlq,
            )
        if expired:
            METRICS.inc("expired_rows_total", expired)
            log.warning(
                "%d rows arrived for days past RETENTION_DAYS=%d: sent to %s (reason expired)",
                expired,
                self.s.retention_days,
                self.s.dlq,
            )

    def _live_hour_from(self) -> float:
        return live_from(time.time() * 1000, HOUR_MS, self.s.lateness_ms)

    def _live_from(self) -> float:
        """The first live window start now (clickagg.core.windows.live_from: the one definition)."""
        return live_from(time.time() * 1000, self.s.window_ms, self.s.lateness_ms)

    async def _refresh(self) -> None:
        """Make written documents searchable (see RefreshPolicy); a failure only defers it."""
        try:
            await asyncio.to_thread(self.post.refresh, self.s.es_index)
            if self.s.hourly:
                await asyncio.to_thread(self.post.refresh, self.s.hourly)
        except Exception as exc:
            note_bad("elasticsearch", f"refreshing {self.s.es_index} failed ({exc!r}); will retry")
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

    def _listener(self) -> StageListener:
        def failed(exc: Exception) -> None:
            self.listener_error = exc

        return StageListener(self.lock, self._assign, self._revoke, failed)

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
            restored = commit_meta.decode_writer(meta)
            state.watermark, state.closed_below = restored.watermark, restored.closed_below
            state.replay_below = restored.position
            loaded = await self._load_open_documents(tp.partition, state, self.s.es_index)
            if self.s.hourly:
                # Same marks as the minutes; replay_below None: rows for an hour already final are
                # skipped silently (any that were not replays were dead-lettered by the minutes).
                hour_state = WindowState(tp.partition, HOUR_MS, self.s.lateness_ms, replay_below=None)
                hour_state.watermark = commit_meta.decode_writer(meta).watermark
                hour_state.closed_below = restored.closed_below
                loaded_hours = await self._load_open_documents(tp.partition, hour_state, self.s.hourly)
                self.hours[tp] = hour_state
                log.info("stage2 %s: %d open hourly documents", tp, loaded_hours)
            self.positions[tp] = await resume_at(self.consumer, tp, offset)
            self.states[tp] = state
            log.info("stage2 owns %s from offset %s with %d open documents", tp, offset, loaded)

    async def _refresh_index(self) -> None:
        backoff = Backoff(first_s=0.5, max_s=5.0)
        while True:
            try:
                await self.es.refresh(self.s.es_index)
                if self.s.hourly:
                    await self.es.refresh(self.s.hourly, ignore_unavailable=True)
                return
            except Exception as exc:
                note_bad("elasticsearch", f"not reachable while restoring state ({exc!r}); retrying")
                await backoff.sleep()

    async def _load_open_documents(self, partition: int, state: WindowState, index: str) -> int:
        """The documents of the windows still open at the committed point, final ones included.

        Final ones too: a window may have closed and had its final written after the last commit
        (a kill -9 between the write and the commit). Its rows are replayed from the commit floor,
        which may be past its first rows (its earlier changes were written); rebuilt from the
        replay alone and closed again at a later version, its final would be overwritten with
        part of its counts (found by the hourly kill -9 test). Loaded, the stored counts and
        version make the replay skip what they hold and the close rewrite the same numbers.
        """
        still_open = {
            "range": {
                "time": {
                    "gt": state.closed_below - state.window_ms - state.lateness_ms,
                    "format": "epoch_millis",
                }
            }
        }
        query = {
            "bool": {
                "filter": [{"term": {"owner_partition": partition}}],
                "should": [{"term": {"final": False}}, still_open],
                "minimum_should_match": 1,
            }
        }
        backoff = Backoff(first_s=0.5, max_s=5.0)
        while True:
            try:
                count = 0
                async for hit in self.es.scan(index, {"query": query, "version": True}, size=5000):
                    # The external version is the partials offset + 1 the counts reflect.
                    src = hit["_source"]
                    key = (_ms(src["time"]), src["gender"], src["segment_id"], src["article_id"])
                    state.load(key, src["impression"], src["click"], hit["_version"])
                    count += 1
                return count
            except Exception as exc:
                note_bad("elasticsearch", f"loading open documents failed ({exc!r}); retrying")
                state.windows.clear()
                await backoff.sleep()

    async def _revoke(self, partitions: list[TopicPartition]) -> None:
        owned = [tp for tp in partitions if tp in self.states]
        if owned:
            try:
                await self._flush(owned, final_pass=True)
            except Exception as exc:  # the new owner replays from the last commit: still exact
                log.warning("flush on revoke failed: %r", exc)
        for tp in owned:
            self.states.pop(tp, None)
            self.hours.pop(tp, None)
            self.positions.pop(tp, None)
