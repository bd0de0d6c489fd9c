"""examples/optimizer_poller.py processes every complete minute once, in order, across restarts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from clickagg.core.documents import iso
from clickagg.es import schema
from clickagg.stack.layout import StackLayout
from tests.integration.test_query_api import Dataset, W, closing, drop, index_docs, make_docs, set_progress

POLLER = Path(__file__).resolve().parents[2] / "examples" / "optimizer_poller.py"
K = 3


def run_poller(es_url: str, index: str, checkpoint: Path, *extra: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, str(POLLER), "--once", "--json", "--k", str(K), "--es-url", es_url, "--index", index]
        + ["--checkpoint", str(checkpoint), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture
async def es(stack: StackLayout) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(stack.es_url)
    yield client
    await client.close()


def expected_segments(data: Dataset, minute: int) -> list[dict[str, Any]]:
    segments = []
    for seg in (1, 2, 3, None):
        top = data.top([minute], K, lambda d, s=seg: d["segment_id"] == s)
        if top:
            articles = [{"article_id": a, "impressions": i, "clicks": c, "ctr": c / i} for a, i, c in top]
            segments.append({"segment_id": seg, "articles": articles})
    return segments


async def test_poller_processes_each_complete_minute_once(
    stack: StackLayout, es: AsyncElasticsearch, tmp_path: Path
) -> None:
    data = Dataset("tp-" + uuid.uuid4().hex[:10])
    checkpoint = tmp_path / "state" / "optimizer.json"
    try:
        await schema.install(es, data.index)
        data.docs = make_docs([0, 1, 3, 4, 5, 6], complete_below=3, seed=21)  # minute 2 is empty
        await index_docs(es, data.index, data.docs)
        await set_progress(es, data.index, closing(data.minute(3)))  # minutes 0, 1, 2 complete

        poll = lambda *extra: asyncio.to_thread(run_poller, stack.es_url, data.index, checkpoint, *extra)  # noqa: E731
        first = await poll("--start", "earliest")
        assert [m["minute_ms"] for m in first] == [data.minute(i) for i in (0, 1, 2)]
        for m in first:
            assert m["minute"] == iso(m["minute_ms"])
            assert (m["from_ms"], m["to_ms"]) == (m["minute_ms"], m["minute_ms"] + W)
            assert m["segments"] == expected_segments(data, m["minute_ms"])
        assert first[2]["segments"] == []  # the empty minute is processed too: nothing was clicked
        assert json.loads(checkpoint.read_text())["last_processed_ms"] == data.minute(2)
        assert not list(checkpoint.parent.glob("*.tmp")), "no temp file left behind"

        assert await poll() == [], "a restart with nothing new repeats nothing"

        # the poller was down while three more minutes completed: it catches up, in order, once
        await set_progress(es, data.index, closing(data.minute(6)))
        caught_up = await poll()
        assert [m["minute_ms"] for m in caught_up] == [data.minute(i) for i in (3, 4, 5)]
        assert all(m["segments"] == expected_segments(data, m["minute_ms"]) for m in caught_up)
        assert json.loads(checkpoint.read_text())["last_processed_ms"] == data.minute(5)
        assert await poll() == []

        # without a checkpoint the default is to start at the newest complete minute only
        fresh = await asyncio.to_thread(run_poller, stack.es_url, data.index, tmp_path / "fresh.json")
        assert [m["minute_ms"] for m in fresh] == [data.minute(5)]
        # or at a given time
        from_time = await asyncio.to_thread(
            run_poller, stack.es_url, data.index, tmp_path / "from.json", "--start", iso(data.minute(4) + 5)
        )
        assert [m["minute_ms"] for m in from_time] == [data.minute(4), data.minute(5)]
    finally:
        await drop(es, data.index)


async def test_poller_with_elasticsearch_unreachable_exits_nonzero_in_once_mode(tmp_path: Path) -> None:
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            str(POLLER),
            "--once",
            "--es-url",
            "http://127.0.0.1:9",
            "--checkpoint",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "elasticsearch failed" in proc.stderr
    assert not (tmp_path / "c").exists()
