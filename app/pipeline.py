"""Wires the two stages, the reference data and Elasticsearch together for one worker process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from elasticsearch import AsyncElasticsearch
from reference_data.store import ReferenceStore

from agents.partial_counts import PartialCounter
from agents.window_writer import WindowWriter
from clickagg.config import Settings
from clickagg.es import schema
from clickagg.kafka_util import ensure_topics
from clickagg.metrics import METRICS

log = logging.getLogger(__name__)


class Pipeline:
    """Start-up order matters: reference data and index first, so no event is joined against nothing."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.stopping = asyncio.Event()
        self.es: AsyncElasticsearch | None = None
        self.reference: Any = None
        self.ready = {"kafka": False, "elasticsearch": False, "reference_data": False}
        self.tasks: list[asyncio.Task[Any]] = []
        self.poller: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        s = self.s
        self.reference = ReferenceStore(s.reference_data or None, max_bad_ratio=s.reference_max_bad_ratio)
        await asyncio.to_thread(self.reference.load_initial)
        self.ready["reference_data"] = True
        METRICS.set("reference_users", len(self.reference.table))
        self.es = AsyncElasticsearch(s.elasticsearch_url, request_timeout=30)
        await self._install_schema()
        self.ready["elasticsearch"] = True
        counts = await ensure_topics(s.kafka_bootstrap_servers, {s.events_topic: 1})
        sources = counts[s.events_topic]
        partials = s.partials_partitions or sources
        counts = await ensure_topics(s.kafka_bootstrap_servers, {s.partials_topic: partials, s.dlq: 1})
        self.ready["kafka"] = True
        stage1 = PartialCounter(s, self.reference, counts[s.partials_topic], sources)
        stage2 = WindowWriter(s, self.es)
        self.tasks = [
            asyncio.create_task(self._guard("stage1", stage1.run(self.stopping))),
            asyncio.create_task(self._guard("stage2", stage2.run(self.stopping))),
            asyncio.create_task(
                self._guard("reference", self.reference.poll_forever(s.reference_reload_seconds))
            ),
        ]
        log.info(
            "worker running: %s partitions in, %s partials partitions", sources, counts[s.partials_topic]
        )

    async def _install_schema(self) -> None:
        assert self.es is not None
        delay = 0.5
        while True:
            try:
                await schema.install(self.es, self.s.es_index)
                return
            except Exception as exc:
                log.warning("elasticsearch not ready (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _guard(self, name: str, coro: Any) -> None:
        """A stage that fails is fatal for the process: the supervisor restarts it and state is exact."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; stopping the worker", name)
            self.stopping.set()
            raise

    async def wait(self) -> None:
        await self.stopping.wait()

    async def stop(self) -> None:
        """Stages finish their batch, flush and commit; the reference poller is simply cancelled."""
        self.stopping.set()
        if self.poller is not None:
            self.poller.cancel()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=30)
            for task in pending:
                task.cancel()
        if self.es is not None:
            await self.es.close()
            self.es = None

    def failed(self) -> bool:
        return any(t.done() and not t.cancelled() and t.exception() is not None for t in self.tasks)
