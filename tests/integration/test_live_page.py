"""The worker's live page (`GET /dashboard`) rendered by a real headless Chromium against a real worker.

Documents with known counts are indexed straight into a fresh index (the page reads Elasticsearch,
so how they got there does not matter here; the exactness tests cover the pipeline). The test then
checks that what the browser shows equals what the test computed from those documents: totals per
minute, the top article by CTR (and that a high CTR on a handful of impressions does not win), the
segments, and that the page's script refreshed it. A screenshot goes to artifacts/live-page.png.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk

from clickagg.app import dashboard
from clickagg.es import schema
from clickagg.stack.layout import StackLayout
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path(os.environ.get("CLICKAGG_CHROMIUM", "/usr/bin/chromium"))
MINUTE = 60_000
LOW_VOLUME_ARTICLE = 999  # perfect CTR on 3 impressions: below the page's minimum, must not rank


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Doc:
    time_ms: int
    gender: str | None
    segment: int | None
    article: int
    impression: int
    click: int

    def source(self) -> dict[str, Any]:
        return {
            "time": dashboard.iso(self.time_ms),
            "gender": self.gender,
            "segment_id": self.segment,
            "article_id": self.article,
            "impression": self.impression,
            "click": self.click,
            "ctr": self.click / self.impression if self.impression else None,
            # Final: the worker's stage 2 adopts only open documents of its partitions at start.
            "final": True,
            "owner_partition": 0,
        }


def make_docs(now_ms: int) -> list[Doc]:
    """Four recent minutes × segments × articles with varied counts; article 104 clicks the most."""
    rng = random.Random(20240611)
    current = now_ms // MINUTE * MINUTE
    docs = []
    for k in range(1, 5):
        for gender, segment in (("female", 1), ("male", 2), ("female", 3), (None, None)):
            for article in range(101, 107):
                impression = rng.randint(30, 300)
                share = 4 if article == 104 else rng.randint(12, 40)
                docs.append(
                    Doc(current - k * MINUTE, gender, segment, article, impression, impression // share)
                )
    docs.append(Doc(current - MINUTE, "male", 2, LOW_VOLUME_ARTICLE, 3, 3))
    return docs


def expected_minutes(docs: list[Doc]) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in docs:
        out[dashboard.iso(d.time_ms)][0] += d.impression
        out[dashboard.iso(d.time_ms)][1] += d.click
    return {t: (i, c) for t, (i, c) in out.items()}


def expected_ranking(docs: list[Doc], min_impressions: int) -> list[tuple[int, int, int]]:
    """(article, impressions, clicks) by CTR desc, impressions desc, id asc; SPEC's ctr = click / impression."""
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for d in docs:
        sums[d.article][0] += d.impression
        sums[d.article][1] += d.click
    rows = [(a, i, c) for a, (i, c) in sums.items() if i >= min_impressions]
    return sorted(rows, key=lambda r: (-r[2] / r[1], -r[1], r[0]))


class DomRows(HTMLParser):
    """The attributes of every element with an id or a data-* attribute, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if "id" in attributes or any(k.startswith("data-") for k in attributes):
            self.elements.append((tag, attributes))

    def having(self, attribute: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.elements if attribute in attrs]

    def by_id(self, element_id: str) -> dict[str, str]:
        found = [attrs for _, attrs in self.elements if attrs.get("id") == element_id]
        assert found, f"no element with id {element_id!r} in the rendered page"
        return found[0]


def chromium_path() -> str:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"headless Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium) "
            "or point CLICKAGG_CHROMIUM at a Chromium binary",
            pytrace=False,
        )
    return str(CHROMIUM)


async def run_chromium(profile: Path, *args: str, timeout_s: float = 120) -> bytes:
    """One headless Chromium run; its own profile dir and no background traffic to anywhere."""
    proc = await asyncio.create_subprocess_exec(
        chromium_path(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"chromium {' '.join(args)} did not finish in {timeout_s}s") from None
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err.decode(errors='replace')[-3000:]}"
    return out


async def wait_ready(
    dep: Deployment, worker: subprocess.Popen[bytes], port: int, timeout_s: float = 180
) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise AssertionError(f"worker exited with {worker.returncode}:\n{dep.logs()}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"worker not ready within {timeout_s}s:\n{dep.logs()}")


# --------------------------------------------------------------------------- the test


async def test_live_page_shows_elasticsearch_numbers_in_headless_chromium(
    stack: StackLayout, deployment: Deployment, tmp_path: Path
) -> None:
    chromium_path()  # fail first, and clearly, when the browser is missing
    docs = make_docs(int(time.time() * 1000))
    minutes = expected_minutes(docs)
    ranking = expected_ranking(docs, dashboard.DEFAULT_MIN_IMPRESSIONS)
    top_article = ranking[0][0]
    assert top_article == 104 and ranking[0][2] / ranking[0][1] > ranking[1][2] / ranking[1][1]

    es = AsyncElasticsearch(stack.es_url)
    try:
        await schema.install(es, deployment.index)
        await async_bulk(
            es, ({"_index": deployment.index, "_source": d.source()} for d in docs), refresh=True
        )

        await deployment.create_topic(partitions=1)
        port = free_port()
        worker = deployment.start_worker(port)
        await wait_ready(deployment, worker, port)
        url = f"http://127.0.0.1:{port}/dashboard"

        # The JSON view of the same snapshot: exact numbers, before looking at the browser.
        async with aiohttp.ClientSession() as http, http.get(f"{url}/data.json") as resp:
            assert resp.status == 200, await resp.text()
            data = await resp.json()
        assert {
            m["time"]: (m["impression"], m["click"]) for m in data["minutes"] if m["documents"]
        } == minutes
        assert [(a["article_id"], a["impression"], a["click"]) for a in data["articles"]] == ranking[:10]
        assert LOW_VOLUME_ARTICLE not in {a["article_id"] for a in data["articles"]}
        assert {s["segment"] for s in data["segments"]} == {"1", "2", "3", dashboard.UNKNOWN_SEGMENT}

        # The browser: the page renders, its script re-fetches the fragment (virtual time runs past
        # the 5 s refresh), and the DOM holds the numbers Elasticsearch holds.
        dom = (
            await run_chromium(tmp_path / "profile-dom", "--virtual-time-budget=8000", "--dump-dom", url)
        ).decode()
        parsed = DomRows()
        parsed.feed(dom)

        body = next(attrs for tag, attrs in parsed.elements if tag == "body")
        assert int(body.get("data-refreshes", "0")) >= 1, "the page's refresh script did not run"
        shown = {
            row["data-time"]: (int(row["data-impression"]), int(row["data-click"]))
            for row in parsed.having("data-time")
            if row["data-time"] in minutes
        }
        assert shown == minutes, f"per-minute totals on the page {shown} != Elasticsearch {minutes}"
        for impressions, clicks in minutes.values():
            assert f">{impressions:,}<" in dom and f">{clicks:,}<" in dom  # visible text, not only attributes

        total_impressions = sum(i for i, _ in minutes.values())
        total_clicks = sum(c for _, c in minutes.values())
        assert int(parsed.by_id("total-impression")["data-value"]) == total_impressions
        assert int(parsed.by_id("total-click")["data-value"]) == total_clicks
        assert f">{total_impressions:,}<" in dom

        articles = [
            (int(r["data-article"]), int(r["data-impression"]), int(r["data-click"]))
            for r in parsed.having("data-article")
        ]
        assert articles, "the top-articles table is empty"
        assert articles[0][0] == top_article, f"first article {articles[0]} != expected {ranking[0]}"
        assert articles == ranking[: len(articles)]
        assert LOW_VOLUME_ARTICLE not in [a for a, _, _ in articles]

        segments = {r["data-segment"] for r in parsed.having("data-segment")}
        assert segments == {"1", "2", "3", dashboard.UNKNOWN_SEGMENT}
        assert dom.count("<svg") >= 2, "both charts are rendered as inline SVG"
        assert "<polyline" in dom and "<rect" in dom

        # A screenshot for people (CI keeps artifacts/): a real PNG with real content.
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "live-page.png"
        shot.unlink(missing_ok=True)
        await run_chromium(
            tmp_path / "profile-shot",
            "--virtual-time-budget=8000",
            "--hide-scrollbars",
            "--window-size=1280,900",
            f"--screenshot={shot}",
            url,
        )
        assert shot.is_file(), "chromium wrote no screenshot"
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG"
        assert len(png) > 30_000, f"the screenshot is suspiciously small ({len(png)} bytes)"
    finally:
        deployment.stop_workers()
        await es.indices.delete(
            index=[deployment.index, schema.progress_index(deployment.index)], ignore_unavailable=True
        )
        for name in (deployment.index, schema.progress_index(deployment.index)):
            await es.options(ignore_status=404).indices.delete_index_template(name=f"{name}-template")
        await es.close()


# --------------------------------------------------------------------------- rendering without a stack


def test_page_renders_without_data_and_escapes_names() -> None:
    missing = dashboard.Snapshot(
        index="<x>", generated_at="2026-01-27T00:00:00Z", window_ms=MINUTE, minutes_requested=30,
        min_impressions=20, index_missing=True,
    )  # fmt: skip
    page = dashboard.render_page(missing, "/dashboard/fragment")
    assert "does not exist yet" in page and "<x>" not in page and "&lt;x&gt;" in page
    assert "<script>" in page and "fetch(" in page, "the refresh script is inlined from app/static"
    assert "--bar:" in page, "the stylesheet is inlined from app/static"

    failed = dashboard.Snapshot(**{**dashboard._fields(missing), "index_missing": False, "error": "boom <b>"})
    assert "boom &lt;b&gt;" in dashboard.render_fragment(failed)


def test_nice_ceiling_gives_round_axis_maxima() -> None:
    assert [dashboard.nice_ceiling(v) for v in (0, 0.7, 1, 3, 7, 12, 260, 1001)] == [
        1.0, 1.0, 1.0, 5.0, 10.0, 20.0, 500.0, 2000.0,
    ]  # fmt: skip
    assert dashboard.nice_ceiling(2.2) == 2.5


def test_snapshot_json_carries_derived_values() -> None:
    t = int(datetime(2026, 1, 27, 12, 0, tzinfo=UTC).timestamp() * 1000)
    s = dashboard.Snapshot(
        index="i", generated_at="g", window_ms=MINUTE, minutes_requested=30, min_impressions=20,
        since_ms=t, until_ms=t,
        minutes=[dashboard.MinuteTotals(dashboard.iso(t), t, 200, 10, 3, 1)],
        articles=[dashboard.ArticleRow(7, 40, 4)],
    )  # fmt: skip
    data = s.as_json()
    assert data["impression"] == 200 and data["click"] == 10 and data["ctr"] == 0.05
    assert data["minutes"][0]["final"] is False and data["minutes"][0]["time"] == "2026-01-27T12:00:00Z"
    assert data["articles"][0]["ctr"] == 0.1
    fragment = dashboard.render_fragment(s)
    assert 'data-time="2026-01-27T12:00:00Z" data-impression="200" data-click="10"' in fragment
    assert 'class="tag open"' in fragment and 'data-article="7"' in fragment
