"""Bulk writes of whole-count documents with external versions: retries and replays are harmless.

A write carries the version of the partials offset it reflects; Elasticsearch refuses (409) any
version not above the stored one, so an older or repeated write can never replace a newer value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import orjson

from clickagg.aio import Backoff
from clickagg.core.days import DAY_MS, daily_index
from clickagg.es.port import SyncBulk
from clickagg.health import note_bad, note_good
from clickagg.metrics import METRICS

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
# The usual answer is "no errors": asking for that alone spares Elasticsearch and us a status per
# document. Only when a chunk had errors is it sent again with per-document results (documents that
# made it the first time answer 409, same version: success).
FAST_FILTER_PATH = "errors"
FILTER_PATH = "errors,items.*.status,items.*.error"

# Posts one bulk body with a filter_path, blocking; returns the parsed response. Runs in the sink's threads.
BulkPost = Callable[[bytes, str], Any]


class ThreadedBulkPost:
    """A blocking bulk call on its own client, made from the sink's threads.

    Why threads: the worker's event loop also runs stage 1, whose batches hold the CPU for tenths
    of a second; an awaited bulk response waits for those turns, so Elasticsearch sat idle while
    the worker computed and the documents piled up at the end (measured: 300k of 1.4M documents
    written while stage 1 ran). A thread waits on its socket without the loop (the GIL is released
    during I/O), so Elasticsearch indexes on the other core while the loop computes.
    """

    def __init__(self, client: SyncBulk) -> None:
        """client: the port's blocking bulk poster (clickagg.engines.search_bulk), owned from now on."""
        self.client = client

    def refresh(self, index: str) -> None:
        self.client.refresh(index)

    def __call__(self, body: bytes, filter_path: str = FILTER_PATH) -> Any:
        # Pre-serialised NDJSON bytes pass through the transport untouched (typed as dicts only).
        return self.client.bulk(body, filter_path)

    def close(self) -> None:
        self.client.close()


class DocWrite(Protocol):
    """Anything with an id, an external version and a source (e.g. tables.window_state.Write)."""

    @property
    def doc_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def source(self) -> dict[str, Any]: ...

    @property
    def window_start(self) -> int: ...


class BulkSink:
    """Writes batches; on failure backs off (exponential, jittered) and retries until it succeeds.

    It never drops a document: the caller does not commit its offsets until write() returns, so
    while Elasticsearch is down consumption pauses and the data waits safely in Kafka.
    """

    def __init__(
        self,
        post: BulkPost,
        index: str,
        chunk: int = 5000,
        concurrency: int = 3,
        max_backoff_s: float = 10.0,
        daily: bool = False,
    ) -> None:
        """daily: `index` is the base name; each document goes to its window's daily index
        (clickagg.core.days), created on first write by the index template (owner, mapping, alias)."""
        self.post = post
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="bulk")
        self.index = index
        self.daily = daily
        self._prefixes: dict[int, bytes] = {}  # day -> action-line prefix
        self.chunk = chunk
        self.max_backoff_s = max_backoff_s

    async def write(self, writes: Sequence[DocWrite]) -> None:
        """All chunks, a few in flight at once (Elasticsearch indexes them on several threads)."""
        chunks = [writes[i : i + self.chunk] for i in range(0, len(writes), self.chunk)]
        # All at once: the pool's threads keep `concurrency` requests in flight back to back,
        # without waiting for the event loop between groups.
        await asyncio.gather(*(self._write_chunk(c) for c in chunks))

    async def _write_chunk(self, writes: Sequence[DocWrite]) -> None:
        pending = list(writes)
        backoff = Backoff(first_s=0.4, max_s=self.max_backoff_s)
        while pending:
            started = time.monotonic()
            try:
                body = self._body(pending)
                resp = await self._send(body, FAST_FILTER_PATH)
                if resp.get("errors"):
                    resp = await self._send(body, FILTER_PATH)  # which ones: see FAST_FILTER_PATH
            except Exception as exc:  # connection refused, timeouts, 5xx: all transient for us
                METRICS.inc("es_bulk_errors_total")
                await self._backoff(backoff, f"bulk request failed: {exc!r}")
                continue
            METRICS.observe("es_bulk_seconds", time.monotonic() - started)
            note_good("elasticsearch")
            pending = self._failed(pending, resp)
            if pending:
                METRICS.inc("es_bulk_retries_total")
                await self._backoff(backoff, f"{len(pending)} documents to retry")

    async def _send(self, body: bytes, filter_path: str) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.post, body, filter_path)

    def close(self) -> None:
        self.pool.shutdown(wait=False)

    def _body(self, writes: Sequence[DocWrite]) -> bytes:
        # The action line is formatted by hand (ids are [0-9a-f-] only): half the serialisation cost.
        prefix = b'{"index":{"_index":' + orjson.dumps(self.index) + b',"_id":"'
        prefixes, day_prefix, daily = self._prefixes, self._day_prefix, self.daily
        lines = []
        for w in writes:
            if daily:
                day = w.window_start // DAY_MS
                prefix = prefixes.get(day) or day_prefix(day)
            lines.append(
                b'%s%s","version":%d,"version_type":"external"}}' % (prefix, w.doc_id.encode(), w.version)
            )
            lines.append(orjson.dumps(w.source))
        return b"\n".join(lines) + b"\n"

    def _day_prefix(self, day: int) -> bytes:
        prefix = b'{"index":{"_index":' + orjson.dumps(daily_index(self.index, day * DAY_MS)) + b',"_id":"'
        self._prefixes[day] = prefix
        return prefix

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

    async def _backoff(self, backoff: Backoff, why: str) -> None:
        """One line when Elasticsearch goes bad and every 30 s while it stays so (clickagg.health),
        not one per retried chunk: an outage once wrote 1,841 lines in 40 s."""
        note_bad("elasticsearch", why)
        log.debug("elasticsearch: %s; retry %d", why, backoff.attempt + 1)
        await backoff.sleep()
