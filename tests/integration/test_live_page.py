"""The worker's live page (`GET /dashboard`) rendered by a real headless Chromium against a real worker.

Documents with known counts are indexed straight into a fresh index (the page reads Elasticsearch
through clickagg.query, so how they got there does not matter here; the exactness tests cover the
pipeline). The test then checks that what the browser shows equals what the test computed from those
documents: totals per minute, the top article by CTR (and that a high CTR on a handful of impressions
does not win), the segments, the still-open newest minute shown as open, and that the page's script
refreshed it. A screenshot goes to artifacts/live-page.png. Without a stack: Elasticsearch down gives
the fragment and the JSON a 503 with a message a person can read. The renderer's own tests are in
tests/unit/test_dashboard_render.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk

from clickagg.app import dashboard
from clickagg.app.dashboard_render import UNKNOWN_SEGMENT
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.es import schema
from clickagg.stack.layout import StackLayout
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path(os.environ.get("CLICKAGG_CHROMIUM", "/usr/bin/chromium"))
MINUTE = 60_000
LATENESS = 5_000  # the test deployment's ALLOWED_LATENESS_SECONDS (tests/support/cluster.py)
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
    final: bool = True

    def source(self) -> dict[str, Any]:
        return {
            "time": iso(self.time_ms),
            "gender": self.gender,
            "segment_id": self.segment,
            "article_id": self.article,
            "impression": self.impression,
            "click": self.click,
            "ctr": self.click / self.impression if self.impression else None,
            "final": self.final,
            # No real worker owns partition 50: the worker's stage 2 adopts only open documents of its
            # own partitions at start, so an open document here stays as the test wrote it.
            "owner_partition": 50,
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
        out[iso(d.time_ms)][0] += d.impression
        out[iso(d.time_ms)][1] += d.click
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

        # The still-open minute: now's, with a document not final yet. It cannot be complete for the
        # next 65 s (window + lateness; the worker's watermark never passes the wall clock). And the
        # completeness signal a worker with traffic publishes (this one has none): partition 0 of 1
        # closed below now, so the minutes that ended 5 s ago or earlier are complete.
        now_ms = int(time.time() * 1000)
        open_minute = now_ms // MINUTE * MINUTE
        docs.append(Doc(open_minute, "female", 1, 105, 40, 3, final=False))
        await es.index(index=deployment.index, document=docs[-1].source(), refresh=True)
        await es.index(
            index=schema.progress_index(deployment.index),
            id="0",
            document={
                "partition": 0,
                "partitions": 1,
                "closed_below_ms": now_ms,
                "window_ms": MINUTE,
                "lateness_ms": LATENESS,
                "updated_at": iso(now_ms),
            },
            version=now_ms + 1,
            version_type="external",
            refresh=True,
        )
        complete_before = (now_ms - MINUTE - LATENESS) // MINUTE * MINUTE + MINUTE
        minutes = expected_minutes(docs)
        ranking = expected_ranking(docs, dashboard.DEFAULT_MIN_IMPRESSIONS)
        top_article = ranking[0][0]
        assert top_article == 104 and ranking[0][2] / ranking[0][1] > ranking[1][2] / ranking[1][1]

        # The JSON view of the same snapshot: exact numbers, before looking at the browser.
        async with aiohttp.ClientSession() as http, http.get(f"{url}/data.json") as resp:
            assert resp.status == 200, await resp.text()
            data = await resp.json()
        assert {
            m["time"]: (m["impression"], m["click"]) for m in data["minutes"] if m["documents"]
        } == minutes
        assert len(data["minutes"]) == dashboard.DEFAULT_MINUTES
        newest = data["minutes"][-1]
        assert newest["time"] == iso(open_minute) and newest["complete"] is False, newest
        assert (newest["documents"], newest["open_documents"], data["open_minutes"]) == (1, 1, 1)
        assert [m["complete"] for m in data["minutes"]] == [
            m["epoch_ms"] < complete_before for m in data["minutes"]
        ]
        assert [(a["article_id"], a["impression"], a["click"]) for a in data["articles"]] == ranking[:10]
        assert LOW_VOLUME_ARTICLE not in {a["article_id"] for a in data["articles"]}
        assert {s["segment"] for s in data["segments"]} == {"1", "2", "3", UNKNOWN_SEGMENT}

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
        assert segments == {"1", "2", "3", UNKNOWN_SEGMENT}
        states = {row["data-time"]: row["data-state"] for row in parsed.having("data-state")}
        assert states[iso(open_minute)] == "open", "the still-open minute is shown as open"
        for d in docs[:-1]:  # final documents: complete, or final while the signal has not caught up
            assert states[iso(d.time_ms)] == ("complete" if d.time_ms < complete_before else "final")
        assert dom.count('class="bar open"') == 1 and "stroke-dasharray" in dom
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


# --------------------------------------------------------------------------- Elasticsearch down


class FakeApp:
    """The two things register() uses of a Faust app: page routes and the shutdown signal."""

    def __init__(self) -> None:
        self.pages: dict[str, Any] = {}
        self.on_shutdown: list[Any] = []
        self.on_before_shutdown = self

    def page(self, path: str) -> Any:
        def add(view: Any) -> Any:
            self.pages[path] = view
            return view

        return add

    def connect(self, receiver: Any) -> Any:
        self.on_shutdown.append(receiver)
        return receiver


class FakeWeb:
    def html(self, text: str, status: int = 200) -> tuple[int, Any]:
        return status, text

    def json(self, body: Any, status: int = 200, headers: Any = None) -> tuple[int, Any]:
        return status, body


@dataclass
class FakeRequest:
    query: dict[str, str]
    query_string: str = ""
    headers: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.headers = self.headers or {}


async def test_elasticsearch_down_is_503_with_a_message_and_the_page_still_renders() -> None:
    """Nothing listens on the port: the page says why, the fragment and the JSON are 503."""
    settings = Settings(elasticsearch_url=f"http://127.0.0.1:{free_port()}", es_index="down-minutely")
    app, web = FakeApp(), FakeWeb()
    page = dashboard.register(app, settings)
    assert set(app.pages) == {"/dashboard", "/dashboard/fragment", "/dashboard/data.json"}
    try:
        request = FakeRequest({"minutes": "5", "top": "3"}, "minutes=5&top=3")
        status, fragment = await app.pages["/dashboard/fragment"](web, request)
        assert status == 503 and fragment.startswith('<p class="notice error">Elasticsearch query failed: ')
        assert "ConnectionError" in fragment
        status, body = await app.pages["/dashboard/data.json"](web, request)
        assert status == 503 and body["error"].startswith("Elasticsearch query failed: ")
        assert (body["minutes_requested"], body["minutes"], body["articles"]) == (5, [], [])
        status, html_page = await app.pages["/dashboard"](web, request)
        assert status == 200 and "Elasticsearch query failed" in html_page
        assert 'data-fragment-url="/dashboard/fragment?minutes=5&amp;top=3"' in html_page
        # the client came from the one factory, with the settings' index
        assert page.client.client is not None and page.client.client.index == "down-minutely"
    finally:
        for receiver in app.on_shutdown:
            await receiver(app)
    assert page.client.client is None


async def test_the_auth_guard_stands_in_front_of_the_live_page() -> None:
    settings = Settings(elasticsearch_url=f"http://127.0.0.1:{free_port()}", web_auth_token="t0ken")
    app, web = FakeApp(), FakeWeb()
    page = dashboard.register(app, settings)
    for path, view in app.pages.items():
        status, body = await view(web, FakeRequest({}))
        assert status == 401 and "unauthorized" in body["error"], path
    assert page.client.client is None, "a refused request never reaches Elasticsearch"
