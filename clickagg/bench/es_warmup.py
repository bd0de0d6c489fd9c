"""Warm the search engine's indexing path before anything is timed, like any JVM benchmark's warm-up.

Why: a just-started Elasticsearch runs its indexing code interpreted or lightly compiled for its
first few hundred thousand documents and spends up to twice the CPU per document meanwhile (and the
JIT compilers' own CPU); on 2 shared cores that made a run right after `clickagg stack up` ~30 %
slower than the next one. A long-running Elasticsearch is warm, so the bench measures that case:
it writes synthetic documents of the worker's own shape, mapping and write path into a scratch
index, then deletes it. `--warmup-docs 0` measures the cold case. OpenSearch is a JVM with the same
indexing code lineage and gets the same warm-up, through the same port (clickagg.es.port).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from clickagg.config import Settings
from clickagg.core.documents import document
from clickagg.core.keys import GroupKey, doc_id
from clickagg.es import engines, schema
from clickagg.es.port import SearchEngine
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
    es = engines.search_engine(settings, timeout_s=120)
    post = ThreadedBulkPost(engines.search_bulk(settings, timeout_s=30))
    sink = BulkSink(post, index, daily=True)  # as the worker writes: into the window's daily index
    try:
        await schema.install(es, index)
        day_ago = int(time.time() * 1000) // WINDOW_MS * WINDOW_MS - 24 * 3600_000  # no overlap with a run
        writes = warmup_writes(docs, day_ago)
        # The engine's CPU per document, per 500k documents (its CPU counter moves about once a
        # second, too coarse for single batches): how warm it got.
        cpu_us_per_doc = []
        for block in range(0, len(writes), MEASURE_EVERY):
            cpu_before = await engine_cpu_ms(es)
            block_writes = writes[block : block + MEASURE_EVERY]
            for i in range(0, len(block_writes), BATCH):  # flush-sized pieces, as the worker writes them
                await sink.write(block_writes[i : i + BATCH])
            await asyncio.sleep(1.0)  # let the counter catch up
            cpu_us_per_doc.append(round((await engine_cpu_ms(es) - cpu_before) * 1000 / len(block_writes), 1))
        await es.refresh(index)
        indexed = await es.count(index)
    finally:
        # Everything the install and the writes made is named `index...` (the index or the alias and
        # its indices, the progress index, their templates): concrete names only, for aliases and
        # `action.destructive_requires_name` clusters.
        concrete = list(await es.indices(f"{index}*"))
        if concrete:
            await es.delete_index(",".join(concrete))
        for template in await es.get_index_templates(f"{index}*"):
            await es.delete_index_template(template["name"])
        sink.close()
        post.close()
        await es.close()
    return {
        "docs": indexed,
        "seconds": round(time.perf_counter() - started, 2),
        "es_cpu_us_per_doc": cpu_us_per_doc,
    }


async def engine_cpu_ms(es: SearchEngine) -> int:
    """CPU time of the search engine's process(es) so far, JIT compilers included (node stats).

    `_nodes/stats/process` has the same shape in Elasticsearch 8 and OpenSearch 2
    (nodes.<id>.process.cpu.total_in_millis), refreshed once a second by both
    (monitor.process.refresh_interval).
    """
    stats = await es.node_stats("process")
    return sum(int(node["process"]["cpu"]["total_in_millis"]) for node in stats["nodes"].values())
