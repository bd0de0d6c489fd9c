"""Warm Elasticsearch's indexing path before anything is timed, like any JVM benchmark's warm-up.

Why: a just-started Elasticsearch runs its indexing code interpreted or lightly compiled for its
first few hundred thousand documents and spends up to twice the CPU per document meanwhile (and the
JIT compilers' own CPU); on 2 shared cores that made a run right after `clickagg stack up` ~30 %
slower than the next one. A long-running Elasticsearch is warm, so the bench measures that case:
it writes synthetic documents of the worker's own shape, mapping and write path into a scratch
index, then deletes it. `--warmup-docs 0` measures the cold case.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from elasticsearch import AsyncElasticsearch

from clickagg import clients
from clickagg.config import Settings
from clickagg.core.documents import document
from clickagg.core.keys import GroupKey, doc_id
from clickagg.es import schema
from clickagg.es.sink import BulkSink, ThreadedBulkPost
from clickagg.tables.window_state import Write

WINDOW_MS = 60_000
BATCH = 100_000
MEASURE_EVERY = 500_000


def warmup_writes(docs: int, start_ms: int, seed: int = 0) -> list[Write]:
    """`docs` distinct keys over consecutive minutes, 100k per minute, with small counts.

    Clicks are 0 (impressions < 20): what warms Elasticsearch up is the documents' shape, mapping
    and write path, not their values.
    """
    rng = random.Random(seed)
    writes = []
    per_minute = 100_000
    for i in range(docs):
        minute, rest = divmod(i, per_minute)
        key: GroupKey = (
            start_ms + minute * WINDOW_MS,
            ("female", "male", None)[rest % 3],
            rest // 3 % 40 + 1,
            rest,
        )
        impressions = rng.randrange(1, 20)
        source = document(key, impressions, impressions // 20, True, 0)
        writes.append(Write(doc_id(key), 1, source, key[0], True))
    return writes


async def warm_up(settings: Settings, index: str, docs: int) -> dict[str, Any]:
    """Index `docs` documents into `index` (created with the worker's template), then delete it."""
    started = time.perf_counter()
    es = clients.es_async(settings, request_timeout=120)
    post = ThreadedBulkPost(clients.es_sync(settings, request_timeout=30))
    sink = BulkSink(post, index)
    try:
        await schema.install(es, index)
        day_ago = int(time.time() * 1000) // WINDOW_MS * WINDOW_MS - 24 * 3600_000  # no overlap with a run
        writes = warmup_writes(docs, day_ago)
        # Elasticsearch's CPU per document, per 500k documents (its CPU counter moves about once a
        # second, too coarse for single batches): how warm it got.
        cpu_us_per_doc = []
        for block in range(0, len(writes), MEASURE_EVERY):
            cpu_before = await _es_cpu_ms(es)
            block_writes = writes[block : block + MEASURE_EVERY]
            for i in range(0, len(block_writes), BATCH):  # flush-sized pieces, as the worker writes them
                await sink.write(block_writes[i : i + BATCH])
            await asyncio.sleep(1.0)  # let the counter catch up
            cpu_us_per_doc.append(round((await _es_cpu_ms(es) - cpu_before) * 1000 / len(block_writes), 1))
        await es.indices.refresh(index=index)
        indexed = (await es.count(index=index)).body["count"]
    finally:
        await es.indices.delete(index=f"{index},{schema.progress_index(index)}", ignore_unavailable=True)
        for name in (f"{index}-template", f"{schema.progress_index(index)}-template"):
            await es.options(ignore_status=404).indices.delete_index_template(name=name)
        sink.close()
        post.close()
        await es.close()
    return {
        "docs": indexed,
        "seconds": round(time.perf_counter() - started, 2),
        "es_cpu_us_per_doc": cpu_us_per_doc,
    }


async def _es_cpu_ms(es: AsyncElasticsearch) -> int:
    """CPU time of the Elasticsearch process(es) so far (node stats; the JIT compilers included)."""
    stats = (await es.nodes.stats(metric="process")).body
    return sum(int(node["process"]["cpu"]["total_in_millis"]) for node in stats["nodes"].values())
