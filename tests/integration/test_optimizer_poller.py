"""examples/optimizer_poller.py processes every complete minute once, in order, across restarts; ranks
with the impression floor; prints labeled lines (JSON with --json) and nothing else on stdout; and
says in one line what it does when the search engine is down."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.es import schema
from clickagg.es.engines import search_engine
from clickagg.es.port import SearchEngine
from clickagg.query import DEFAULT_MIN_IMPRESSIONS
from tests.integration.conftest import free_port
from tests.integration.test_query_api import Dataset, W, closing, drop, index_docs, make_docs, set_progress

POLLER = Path(__file__).resolve().parents[2] / "examples" / "optimizer_poller.py"
K = 3


def run_poller(es_url: str, index: str, checkpoint: Path, *extra: str, k: int = K) -> list[dict[str, Any]]:
    proc = poller_text(es_url, index, checkpoint, "--json", *extra, k=k)
    assert "POST http" not in proc.stderr, "client-library request lines are off (ERROR and up only)"
    return [json.loads(line) for line in proc.stdout.splitlines()]


def poller_text(
    es_url: str, index: str, checkpoint: Path, *extra: str, k: int = K
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(POLLER), "--once", "--k", str(k), "--es-url", es_url, "--index", index]
        + ["--checkpoint", str(checkpoint), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


HEADER = re.compile(
    r"minute (\S+): top (\d+) articles by CTR per segment, at least (\d+) impressions: "
    r"(?:(\d+) segment\(s\)|no article qualifies)"
)
ARTICLE = re.compile(
    r"  segment (\d+|null \(not in reference data\)): #(\d+) article (\d+): "
    r"ctr (\d\.\d{4}) = (\d+) clicks / (\d+) impressions"
)


def parse_text(stdout: str) -> dict[str, list[dict[str, Any]]]:
    """The labeled text output back into {minute: segments} in the JSON shape; every line must parse."""
    minutes: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if head := HEADER.fullmatch(line):
            assert (int(head[2]), int(head[3])) == (K, DEFAULT_MIN_IMPRESSIONS), line
            current = minutes[head[1]] = []
            continue
        row = ARTICLE.fullmatch(line)
        assert row, f"unlabeled line on stdout: {line!r}"
        seg = None if row[1].startswith("null") else int(row[1])
        if not current or current[-1]["segment_id"] != seg:
            current.append({"segment_id": seg, "articles": []})
        article, clicks, impressions = int(row[3]), int(row[5]), int(row[6])
        assert int(row[2]) == len(current[-1]["articles"]) + 1 and row[4] == f"{clicks / impressions:.4f}"
        current[-1]["articles"].append(
            {"article_id": article, "impressions": impressions, "clicks": clicks, "ctr": clicks / impressions}
        )
    return minutes


@pytest.fixture
async def es(engine_url: str) -> AsyncIterator[SearchEngine]:
    """The search-engine port on the parametrized engine (Elasticsearch, then OpenSearch)."""
    client = search_engine(Settings(elasticsearch_url=engine_url))
    yield client
    await client.close()


def expected_segments(
    data: Dataset, minute: int, k: int = K, floor: int = DEFAULT_MIN_IMPRESSIONS
) -> list[dict[str, Any]]:
    segments = []
    for seg in (1, 2, 3, None):
        top = data.top([minute], k, lambda d, s=seg: d["segment_id"] == s, floor)
        if top:
            articles = [{"article_id": a, "impressions": i, "clicks": c, "ctr": c / i} for a, i, c in top]
            segments.append({"segment_id": seg, "articles": articles})
    return segments


async def test_poller_processes_each_complete_minute_once(
    engine_url: str, es: SearchEngine, tmp_path: Path
) -> None:
    data = Dataset("tp-" + uuid.uuid4().hex[:10])
    checkpoint = tmp_path / "state" / "optimizer.json"
    try:
        await schema.install(es, data.index)
        data.docs = make_docs([0, 1, 3, 4, 5, 6], complete_below=3, seed=21)  # minute 2 is empty
        await index_docs(es, data.index, data.docs)
        await set_progress(es, data.index, closing(data.minute(3)))  # minutes 0, 1, 2 complete

        poll = lambda *extra: asyncio.to_thread(run_poller, engine_url, data.index, checkpoint, *extra)  # noqa: E731
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
        fresh = await asyncio.to_thread(run_poller, engine_url, data.index, tmp_path / "fresh.json")
        assert [m["minute_ms"] for m in fresh] == [data.minute(5)]
        # or at a given time
        from_time = await asyncio.to_thread(
            run_poller, engine_url, data.index, tmp_path / "from.json", "--start", iso(data.minute(4) + 5)
        )
        assert [m["minute_ms"] for m in from_time] == [data.minute(4), data.minute(5)]

        # the floor: minute 0's 3-impression article with 3 clicks (CTR 1) ranks only when asked for
        floor = lambda *extra: asyncio.to_thread(  # noqa: E731
            run_poller, engine_url, data.index, tmp_path / f"floor{len(extra)}.json", "--start", "earliest",
            *extra, k=100,
        )  # fmt: skip
        default, everything = await floor(), await floor("--min-impressions", "1")
        assert (
            default[0]["minute_ms"] == data.minute(0)
            and default[0]["min_impressions"] == DEFAULT_MIN_IMPRESSIONS
        )
        ranked = [a for m in default for s in m["segments"] for a in s["articles"]]
        assert ranked and min(a["impressions"] for a in ranked) >= DEFAULT_MIN_IMPRESSIONS
        assert default[0]["segments"] == expected_segments(data, data.minute(0), k=100)
        assert everything[0]["segments"] == expected_segments(data, data.minute(0), k=100, floor=1)
        seg3 = lambda m: next(s for s in m["segments"] if s["segment_id"] == 3)["articles"]  # noqa: E731
        assert 2004 in [a["article_id"] for a in seg3(everything[0])]
        assert 2004 not in [a["article_id"] for a in seg3(default[0])]

        # labeled text: the same rankings as the JSON, one line per (minute, segment, rank)
        text = await asyncio.to_thread(
            poller_text, engine_url, data.index, tmp_path / "text.json", "--start", "earliest"
        )
        shown = parse_text(text.stdout)
        assert shown == {iso(data.minute(i)): expected_segments(data, data.minute(i)) for i in range(6)}
        assert "minute " + iso(data.minute(2)) + ": " in text.stdout and "no article qualifies" in text.stdout
        assert "POST http" not in text.stderr and "POST http" not in text.stdout
        assert text.stderr.strip().endswith(
            f"processed 6 minute(s); checkpoint {tmp_path / 'text.json'} at {iso(data.minute(5))}"
        )
    finally:
        await drop(es, data.index)


def poller(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(POLLER), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


async def test_poller_with_elasticsearch_unreachable_exits_nonzero_in_once_mode(tmp_path: Path) -> None:
    """--once, nothing listening: one line saying what happened and what it did, exit 1, no checkpoint."""
    port = free_port()
    checkpoint = tmp_path / "c.json"
    proc = poller("--once", "--es-url", f"http://127.0.0.1:{port}", "--checkpoint", str(checkpoint))
    out, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].endswith(
        f"optimizer_poller: The search engine at http://127.0.0.1:{port} cannot be reached (connection "
        "refused); the worker keeps what it counts in Kafka until it answers, so no count is lost; --once: "
        f"processed nothing, checkpoint {checkpoint} not written yet; exit 1"
    ), lines[0]
    assert not checkpoint.exists()


async def test_poller_keeps_polling_while_down_and_says_so_once(tmp_path: Path) -> None:
    """Without --once: several failed polls, one line (not one per poll); Ctrl-C ends it with 0."""
    port = free_port()
    proc = poller(
        "--interval", "0.2", "--es-url", f"http://127.0.0.1:{port}", "--checkpoint", str(tmp_path / "c")
    )
    try:
        await asyncio.sleep(4)  # ~15 polls
        assert proc.poll() is None, "the poller gave up instead of retrying"
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # where the checkpoint is, then the engine going down
    assert f"checkpoint {tmp_path / 'c'}: none yet, starting at --start latest" in lines[0]
    assert lines[1].endswith("so no count is lost; processed nothing, retrying every 0.2 s"), lines[1]


async def test_poller_refuses_a_bad_checkpoint_and_bad_flags(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text("not json\n")
    proc = poller("--once", "--es-url", "http://127.0.0.1:9", "--checkpoint", str(bad))
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert (proc.returncode, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert f"checkpoint {bad} is unreadable (JSONDecodeError" in err and "delete it to start again" in err
    assert bad.read_text() == "not json\n", "left as it was"
    proc = poller("--once", "--min-impressions", "-1")
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 2 and "--min-impressions: must be in 0..4611686018427387904, got -1" in err
    help_text, _ = await asyncio.to_thread(poller("--help").communicate, timeout=60)
    assert "default: ./optimizer.checkpoint.json" in " ".join(help_text.split())
    assert "A floor, not a smoothed CTR" in help_text
