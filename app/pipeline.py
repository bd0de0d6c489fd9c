"""Wires the two stages, the reference data and Elasticsearch together for one worker process."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from clickagg import clients, log_quiet
from clickagg.agents.partial_counts import PartialCounter
from clickagg.agents.window_writer import WindowWriter
from clickagg.aio import Backoff, quietly
from clickagg.config import Settings
from clickagg.es import engines, retention, schema
from clickagg.es.ownership import Owner, OwnershipError
from clickagg.es.port import SearchEngine
from clickagg.health import HEALTH, note_bad, note_good, note_stage_failed
from clickagg.kafka_util import MAX_REQUEST_BYTES, SendLimits, ensure_topics, max_message_bytes
from clickagg.metrics import METRICS
from clickagg.reference_data.store import ReferenceStore

log = logging.getLogger(__name__)

PROBE_EVERY_S = 5.0


class Pipeline:
    """Start-up order matters: reference data and index first, so no event is joined against nothing."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.stopping = asyncio.Event()
        self.es: SearchEngine | None = None
        self.reference: Any = None
        self.ready = {"kafka": False, "elasticsearch": False, "reference_data": False}
        self.tasks: list[asyncio.Task[Any]] = []
        self.poller: asyncio.Task[Any] | None = None
        self.prober: asyncio.Task[Any] | None = None
        self.retainer: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        s = self.s
        log_quiet.install()  # Faust has set the handlers up by now
        self.reference = ReferenceStore(s.reference_data or None, max_bad_ratio=s.reference_max_bad_ratio)
        await asyncio.to_thread(self.reference.load_initial)
        self.ready["reference_data"] = True
        METRICS.set("reference_users", len(self.reference.table))
        self.es = engines.search_engine(s, timeout_s=30)
        log.info("Kafka: %s; search engine: %s", clients.describe_kafka(s), engines.describe_es(s))
        await self._install_schema()
        log.info("search engine: %s (SEARCH_ENGINE=%s)", self.es.kind, s.search_engine)
        self.ready["elasticsearch"] = True
        counts = await ensure_topics(s, {s.events_topic: 1})
        sources = counts[s.events_topic]
        partials = s.partials_partitions or sources
        (events_limit,) = (await max_message_bytes(s, [s.events_topic])).values()
        # A dead letter is the original record plus headers: its topic takes a bit more than the
        # events topic (when we create it; an existing one's limit is read and respected).
        dlq_config = {"max.message.bytes": str(min(events_limit + 65536, MAX_REQUEST_BYTES))}
        counts = await ensure_topics(s, {s.partials_topic: partials, s.dlq: 1}, {s.dlq: dlq_config})
        limits = await max_message_bytes(s, [s.partials_topic, s.dlq])
        send_limits = SendLimits.from_topics(limits[s.partials_topic], limits[s.dlq])
        self.ready["kafka"] = True
        es, partials = self.es, counts[s.partials_topic]
        HEALTH.expect("stage1")
        HEALTH.expect("stage2")
        self.tasks = [
            asyncio.create_task(
                self._supervise(
                    "stage1", lambda: PartialCounter(s, self.reference, partials, sources, send_limits)
                )
            ),
            asyncio.create_task(self._supervise("stage2", lambda: WindowWriter(s, es))),
        ]
        self.poller = asyncio.create_task(self.reference.poll_forever(s.reference_reload_seconds))
        self.prober = asyncio.create_task(self._probe())
        self.retainer = asyncio.create_task(self._retain())
        log.info(
            "worker running: %s partitions in, %s partials partitions", sources, counts[s.partials_topic]
        )

    async def _install_schema(self) -> None:
        """Retried while Elasticsearch is unreachable; an ownership refusal is final, never retried.

        `clickagg worker` refuses another deployment's index before Faust starts
        (schema.check_before_start); this catches what that could not see (Elasticsearch not up
        yet, or a worker of another deployment creating the index at the same moment). Raised here,
        inside Faust's task, the refusal would be logged as a crash with a traceback and its line
        repeated, so its one line goes to stderr and the process exits at once, non-zero: no stage
        has started, nothing of this deployment is in Kafka or Elasticsearch to shut down.
        """
        assert self.es is not None
        owner = Owner.of(self.s)
        backoff = Backoff(first_s=0.5)
        while True:
            try:
                await schema.install(self.es, self.s.es_index, owner, self.s.hourly)
                return
            except OwnershipError as exc:
                # Faust has turned sys.stderr into a logger: the line goes to the real stderr.
                sys.stdout.flush()
                os.write(2, f"clickagg: error: {exc}\n".encode())
                os._exit(1)
            except Exception as exc:
                note_bad("elasticsearch", f"not ready to install the index template ({exc!r}); retrying")
                await backoff.sleep(self.stopping)

    async def _supervise(self, name: str, make: Callable[[], Any]) -> None:
        """Crash-only stages: on any error the stage is rebuilt from what Kafka and Elasticsearch hold.

        Nothing in memory is needed for exactness (offsets, watermarks and counts are all recovered),
        so restarting a stage in-process is the same as restarting the worker, just faster.
        """
        # Capped low: recovery within a minute of the services' return is promised.
        backoff = Backoff(first_s=1.0, max_s=10.0, jitter=False)
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                await make().run(self.stopping)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                METRICS.inc("stage_restarts_total", labels={"stage": name})
                if time.monotonic() - started > 60:
                    backoff.reset()  # it ran well for a while: this is a new failure, not a crash loop
                delay = backoff.next_delay()
                note_stage_failed(name, exc, delay)  # one line per state change; traceback at debug
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                except TimeoutError:
                    pass

    async def _retain(self) -> None:
        """Retention at start and then hourly (clickagg.es.retention); a failure waits for the next run."""
        assert self.es is not None
        owner, warned = Owner.of(self.s), set[str]()
        while not self.stopping.is_set():
            try:
                now = int(time.time() * 1000)
                await retention.apply_retention(self.es, self.s.es_index, owner, self.s.retention_days, now, warned)
                if self.s.hourly:
                    await retention.apply_retention(
                        self.es, self.s.hourly, owner, self.s.hourly_retention_days, now, warned
                    )
            except Exception as exc:
                log.warning("retention: could not list or delete old daily indices (%s); next try in an hour", exc)
            try:
                await asyncio.wait_for(self.stopping.wait(), retention.RUN_EVERY_S)
            except TimeoutError:
                pass

    async def _probe(self) -> None:
        """Every few seconds: can we reach Kafka and Elasticsearch? (readiness and the log say so)."""
        s = self.s
        admin = clients.admin(s, request_timeout_ms=5000)
        try:
            while not self.stopping.is_set():
                await self._probe_one("kafka", self._kafka_probe(admin))
                assert self.es is not None
                await self._probe_one("elasticsearch", self.es.probe(s.es_index, timeout_s=5))
                try:
                    await asyncio.wait_for(self.stopping.wait(), PROBE_EVERY_S)
                except TimeoutError:
                    pass
        finally:
            await quietly(admin.close())

    async def _kafka_probe(self, admin: AIOKafkaAdminClient) -> None:
        if not admin._started:
            await admin.start()
        await admin.describe_cluster()

    async def _probe_one(self, name: str, probe: Coroutine[Any, Any, Any]) -> None:
        try:
            await asyncio.wait_for(probe, 6)
        except Exception as exc:
            note_bad(
                name,
                f"unreachable ({type(exc).__name__}: {exc})"
                if str(exc)
                else f"unreachable ({type(exc).__name__})",
            )
            return
        note_good(name)

    async def wait(self) -> None:
        await self.stopping.wait()

    async def stop(self) -> None:
        """Stages finish their batch, flush and commit; the reference poller is simply cancelled."""
        self.stopping.set()
        if self.poller is not None:
            self.poller.cancel()
        if self.prober is not None:
            self.prober.cancel()
        if self.retainer is not None:
            self.retainer.cancel()
        if self.tasks:
            log.info("stopping the stages")
            _, pending = await asyncio.wait(self.tasks, timeout=30)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%d stages did not stop in 30s and were cancelled", len(pending))
        if self.es is not None:
            await self.es.close()
            self.es = None

    def failed(self) -> bool:
        return any(t.done() and not t.cancelled() and t.exception() is not None for t in self.tasks)
