"""Bulk writes of whole-count documents with external versions: retries and replays are harmless.

A write carries the version of the partials offset it reflects; Elasticsearch refuses (409) any
version not above the stored one, so an older or repeated write can never replace a newer value.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from clickagg.metrics import METRICS

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class DocWrite(Protocol):
    """Anything with an id, an external version and a source (e.g. tables.window_state.Write)."""

    @property
    def doc_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def source(self) -> dict[str, Any]: ...


class BulkSink:
    """Writes batches; on failure backs off (exponential, jittered) and retries until it succeeds.

    It never drops a document: the caller does not commit its offsets until write() returns, so
    while Elasticsearch is down consumption pauses and the data waits safely in Kafka.
    """

    def __init__(
        self, es: Any, index: str, chunk: int = 5000, concurrency: int = 3, max_backoff_s: float = 10.0
    ) -> None:
        self.es = es
        self.concurrency = concurrency
        self.index = index
        self.chunk = chunk
        self.max_backoff_s = max_backoff_s

    async def write(self, writes: Sequence[DocWrite]) -> None:
        """All chunks, a few in flight at once (Elasticsearch indexes them on several threads)."""
        chunks = [writes[i : i + self.chunk] for i in range(0, len(writes), self.chunk)]
        for i in range(0, len(chunks), self.concurrency):
            await asyncio.gather(*(self._write_chunk(c) for c in chunks[i : i + self.concurrency]))

    async def _write_chunk(self, writes: Sequence[DocWrite]) -> None:
        pending = list(writes)
        attempt = 0
        while pending:
            started = time.monotonic()
            try:
                resp = await self.es.bulk(
                    body=self._body(pending), filter_path="errors,items.*.status,items.*.error"
                )
            except Exception as exc:  # connection refused, timeouts, 5xx: all transient for us
                attempt += 1
                METRICS.inc("es_bulk_errors_total")
                await self._backoff(attempt, f"bulk request failed: {exc!r}")
                continue
            METRICS.observe("es_bulk_seconds", time.monotonic() - started)
            pending = self._failed(pending, resp)
            if pending:
                attempt += 1
                METRICS.inc("es_bulk_retries_total")
                await self._backoff(attempt, f"{len(pending)} documents to retry")

    def _body(self, writes: Sequence[DocWrite]) -> bytes:
        # The action line is formatted by hand (ids are [0-9a-f-] only): half the serialisation cost.
        prefix = b'{"index":{"_index":' + orjson.dumps(self.index) + b',"_id":"'
        lines = []
        for w in writes:
            lines.append(
                b'%s%s","version":%d,"version_type":"external"}}' % (prefix, w.doc_id.encode(), w.version)
            )
            lines.append(orjson.dumps(w.source))
        return b"\n".join(lines) + b"\n"

    def _failed(self, writes: Sequence[DocWrite], resp: Any) -> list[DocWrite]:
        if not resp.get("errors"):
            return []
        retry = []
        for w, item in zip(writes, resp["items"], strict=True):
            result = item["index"]
            status = result.get("status", 200)
            if status < 300 or status == 409:  # 409: a same-or-newer version is already stored
                continue
            if status in RETRYABLE_STATUS:
                retry.append(w)
            else:
                # A mapping error is a bug, not weather: keep retrying (never lose counts) but say so loudly.
                log.error("document %s rejected (%s): %s", w.doc_id, status, result.get("error"))
                METRICS.inc("es_doc_rejected_total")
                retry.append(w)
        return retry

    async def _backoff(self, attempt: int, why: str) -> None:
        delay = min(self.max_backoff_s, 0.2 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)
        log.warning("elasticsearch: %s; retry %d in %.1fs", why, attempt, delay)
        await asyncio.sleep(delay)
