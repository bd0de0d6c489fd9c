"""The worker's live page (`GET /dashboard`) rendered by a real headless Chromium against a real worker.

Documents with known counts are indexed straight into a fresh index (the page reads Elasticsearch
through clickagg.query, so how they got there does not matter here; the exactness tests cover the
pipeline). The test then checks that what the browser shows equals what the test computed from those
documents: totals per minute, the top article by CTR (and that a high CTR on a handful of impressions
does not win), the segments, the still-open newest minute shown as open, the controls (a filtered
ranking, a refused parameter), and that the page's script refreshed it. Screenshots go to artifacts/:
live-page.png (1280 px) and live-page-420.png (a phone: the page must not be wider than 420 px).
Without a stack: the page's client pointed at a closed port renders, in Chromium at 420 px too, one
human sentence and a 503 (artifacts/live-page-es-down-420.png). The renderer's own tests are in
tests/unit/test_dashboard_render.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
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
import orjson
import pytest
from aiohttp import web as aioweb

from clickagg.app import dashboard
from clickagg.app.dashboard_render import UNKNOWN_SEGMENT
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.es import schema
from clickagg.es.engines import search_engine
from clickagg.es.port import SearchEngine
from tests.integration.conftest import free_port
from tests.integration.test_query_api import drop
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


NARROW = 420  # px: a phone held upright


async def open_in_chromium(
    profile: Path, url: str, width: int, shot: Path, wait_refresh: bool
) -> dict[str, Any]:
    """Load url in headless Chromium at `width` CSS px (DevTools protocol), measure the layout, save a
    full-page PNG to `shot`. With wait_refresh, first wait until the page's script has refreshed once.

    Returns the page's scroll width, the widest right edge of any element outside a sideways-scrolling
    box, the smallest rendered chart text height, the status line and the visible text.
    """
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
        "--hide-scrollbars",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                target = next(t for t in await resp.json() if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                ids = iter(range(1, 1_000_000))

                async def call(method: str, **params: Any) -> dict[str, Any]:
                    n = next(ids)
                    await ws.send_json({"id": n, "method": method, "params": params})
                    while True:
                        msg = json.loads((await asyncio.wait_for(ws.receive(), 30)).data)
                        if msg.get("id") == n:
                            assert "error" not in msg, f"{method}: {msg['error']}"
                            return dict(msg["result"])

                async def evaluate(expression: str) -> Any:
                    result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
                    return result["result"].get("value")

                await call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=900,
                    deviceScaleFactor=1,
                    mobile=True,
                )
                await call("Page.navigate", url=url)
                deadline = time.monotonic() + 30
                while await evaluate("document.readyState") != "complete":
                    assert time.monotonic() < deadline, f"{url} did not load"
                    await asyncio.sleep(0.2)
                if wait_refresh:  # the refresh runs every 5 s: the refreshed fragment is what stays on screen
                    while int(await evaluate("document.body.dataset.refreshes") or 0) < 1:
                        assert time.monotonic() < deadline, "the page's refresh script did not run"
                        await asyncio.sleep(0.2)
                layout = await evaluate(
                    """JSON.stringify((() => {
                      const scrolls = (el) => { for (let p = el.parentElement; p; p = p.parentElement) {
                        const o = getComputedStyle(p).overflowX; if (o === "auto" || o === "scroll") return true; }
                        return false; };
                      let right = 0;
                      for (const el of document.body.querySelectorAll("*")) {
                        if (!scrolls(el)) right = Math.max(right, el.getBoundingClientRect().right); }
                      const texts = [...document.querySelectorAll("svg.chart text")].map(t => t.getBoundingClientRect().height);
                      return { scrollWidth: document.documentElement.scrollWidth, right: right,
                               chartText: texts.length ? Math.min(...texts) : null,
                               status: document.getElementById("status").textContent,
                               text: document.body.innerText,
                               height: document.documentElement.scrollHeight };
                    })())"""
                )
                measured: dict[str, Any] = json.loads(layout)
                png = await call(
                    "Page.captureScreenshot",
                    format="png",
                    captureBeyondViewport=True,
                    clip={"x": 0, "y": 0, "width": width, "height": measured["height"], "scale": 1},
                )
                await asyncio.to_thread(shot.write_bytes, base64.b64decode(png["data"]))
                return measured
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


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


async def bulk_index(es: SearchEngine, index: str, docs: list[dict[str, Any]], **action: Any) -> None:
    """Index documents (with the same extra action fields each, e.g. an id and external version)."""
    lines = []
    for d in docs:
        lines += [orjson.dumps({"index": {"_index": index, **action}}), orjson.dumps(d)]
    resp = await es.bulk(b"\n".join(lines) + b"\n", "errors,items.*.error")
    assert not resp.get("errors"), resp
    await es.refresh(index)


async def test_live_page_shows_elasticsearch_numbers_in_headless_chromium(
    engine: str, engine_url: str, engine_deployment: Deployment, tmp_path: Path
) -> None:
    """On each engine (Elasticsearch, OpenSearch): the worker's page shows what the test indexed."""
    chromium_path()  # fail first, and clearly, when the browser is missing
    deployment = engine_deployment
    docs = make_docs(int(time.time() * 1000))

    es = search_engine(Settings(elasticsearch_url=engine_url))
    try:
        await schema.install(es, deployment.index)
        await bulk_index(es, deployment.index, [d.source() for d in docs])

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
        await bulk_index(es, deployment.index, [docs[-1].source()])
        progress = {
            "partition": 0,
            "partitions": 1,
            "closed_below_ms": now_ms,
            "window_ms": MINUTE,
            "lateness_ms": LATENESS,
            "updated_at": iso(now_ms),
        }
        await bulk_index(
            es,
            schema.progress_index(deployment.index),
            [progress],
            _id="0",
            version=now_ms + 1,
            version_type="external",
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
        assert dom.count('class="open-label"') == 1, (
            "the open minute is labelled, not left to look like a dip"
        )
        assert dom.count("<svg") >= 2, "both charts are rendered as inline SVG"
        assert "<polyline" in dom and "<rect" in dom

        # A screenshot for people (CI keeps artifacts/): a real PNG with real content.
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / ("live-page.png" if engine == "elasticsearch" else f"live-page-{engine}.png")
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

        # The controls: a filtered ranking, exact against the documents; a refused value is a 400
        # that says which and why.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/data.json?gender=female&segment=1&top=5&min_impressions=30") as resp:
                assert resp.status == 200, await resp.text()
                filtered = await resp.json()
            async with http.get(f"{url}?minutes=0&top=3") as resp:
                refused_status, refused_page = resp.status, await resp.text()
            async with http.get(f"{url}/data.json?top=many") as resp:
                bad_json_status, bad_json = resp.status, await resp.json()
        female_1 = [d for d in docs if (d.gender, d.segment) == ("female", 1)]
        assert [(a["article_id"], a["impression"], a["click"]) for a in filtered["articles"]] == (
            expected_ranking(female_1, 30)[:5]
        )
        assert filtered["query"] == {
            "minutes": 30,
            "top": 5,
            "min_impressions": 30,
            "gender": "female",
            "segment": "1",
            "view": "minute",
        }
        assert filtered["impression"] == sum(d.impression for d in docs), "totals cover every user"
        assert refused_status == 400 and "minutes must be in 1..1440, got 0" in refused_page
        assert 'aria-invalid="true"' in refused_page and 'data-refresh-ms="0"' in refused_page
        assert (bad_json_status, bad_json["error"]) == (400, "top must be a whole number, got 'many'")

        # A phone: 420 px wide, after the script refreshed the page. Nothing outside a sideways-
        # scrolling table box may be wider than the screen, and chart text stays readable.
        narrow = ARTIFACTS / (
            "live-page-420.png" if engine == "elasticsearch" else f"live-page-420-{engine}.png"
        )
        narrow.unlink(missing_ok=True)
        measured = await open_in_chromium(tmp_path / "profile-420", url, NARROW, narrow, wait_refresh=True)
        assert measured["scrollWidth"] <= NARROW, f"the page scrolls sideways at {NARROW} px: {measured}"
        assert measured["right"] <= NARROW + 0.5, f"an element sticks out at {NARROW} px: {measured}"
        assert measured["chartText"] is not None and measured["chartText"] >= 9, measured["chartText"]
        assert f"{total_impressions:,}" in measured["text"] and "open" in measured["text"]
        assert "top articles" in measured["text"] and "segment" in measured["text"]  # the controls show
        width, height = png_size(narrow)
        assert width == NARROW and height > 900, (width, height)  # the whole page, taller than one screen
        assert narrow.stat().st_size > 30_000
    finally:
        deployment.stop_workers()
        await drop(es, deployment.index)
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
    """Nothing listens on the port: one sentence a person can act on, no traceback, status 503."""
    port = free_port()
    settings = Settings(elasticsearch_url=f"http://127.0.0.1:{port}", es_index="down-minutely")
    app, web = FakeApp(), FakeWeb()
    page = dashboard.register(app, settings)
    assert set(app.pages) == {"/dashboard", "/dashboard/fragment", "/dashboard/data.json"}
    sentence = (
        f"The search engine at http://127.0.0.1:{port} cannot be reached (connection refused); the worker "
        "keeps what it counts in Kafka until it answers, so no count is lost"
    )
    try:
        request = FakeRequest({"minutes": "5", "top": "3"}, "minutes=5&top=3")
        status, fragment = await app.pages["/dashboard/fragment"](web, request)
        assert status == 503 and fragment.startswith(f'<p class="notice error" role="alert">{sentence}. ')
        status, body = await app.pages["/dashboard/data.json"](web, request)
        assert (status, body["error"]) == (503, sentence)
        assert (body["minutes_requested"], body["minutes"], body["articles"]) == (5, [], [])
        status, html_page = await app.pages["/dashboard"](web, request)
        assert status == 503 and sentence in html_page and "retrying every 5 s" in html_page
        assert 'data-fragment-url="/dashboard/fragment?minutes=5&amp;top=3"' in html_page
        assert 'id="ctl-minutes" name="minutes"' in html_page, "the controls still render"
        for text in (fragment, html_page, json.dumps(body)):
            assert "Traceback" not in text and "ConnectionError" not in text and "aiohttp" not in text
        # the client came from the one factory, with the settings' index
        assert page.client.client is not None and page.client.client.index == "down-minutely"
    finally:
        for receiver in app.on_shutdown:
            await receiver(app)
    assert page.client.client is None


class AiohttpApp:
    """Serves the live page's views over real HTTP with aiohttp (what Faust's web driver is), so a
    browser can load the page without a worker, whose start-up would need the search engine."""

    def __init__(self) -> None:
        self.routes = aioweb.RouteTableDef()
        self.on_shutdown: list[Any] = []
        self.on_before_shutdown = self

    def page(self, path: str) -> Any:
        def add(view: Any) -> Any:
            @self.routes.get(path)
            async def handler(request: aioweb.Request) -> aioweb.StreamResponse:
                return await view(AiohttpWeb(), request)  # type: ignore[no-any-return]

            return view

        return add

    def connect(self, receiver: Any) -> Any:
        self.on_shutdown.append(receiver)
        return receiver


class AiohttpWeb:
    def html(self, text: str, status: int = 200) -> aioweb.Response:
        return aioweb.Response(text=text, status=status, content_type="text/html")

    def json(self, body: Any, status: int = 200) -> aioweb.Response:
        return aioweb.json_response(body, status=status)


async def test_elasticsearch_down_page_in_chromium_at_420_px(tmp_path: Path) -> None:
    """The page whose client points at a closed port, as a phone shows it: the sentence, no overflow."""
    chromium_path()
    es_port = free_port()
    app = AiohttpApp()
    page = dashboard.register(
        app, Settings(elasticsearch_url=f"http://127.0.0.1:{es_port}", es_index="down-i")
    )
    server = aioweb.Application()
    server.add_routes(app.routes)
    runner = aioweb.AppRunner(server)
    await runner.setup()
    web_port = free_port()
    await aioweb.TCPSite(runner, "127.0.0.1", web_port).start()
    try:
        url = f"http://127.0.0.1:{web_port}/dashboard?minutes=15"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 503 and "cannot be reached (connection refused)" in await resp.text()
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "live-page-es-down-420.png"
        shot.unlink(missing_ok=True)
        measured = await open_in_chromium(tmp_path / "profile-down", url, NARROW, shot, wait_refresh=False)
        text = measured["text"]
        assert (
            f"The search engine at http://127.0.0.1:{es_port} cannot be reached (connection refused)" in text
        )
        assert "tries again by itself" in text and "Traceback" not in text and "ConnectionError" not in text
        assert measured["status"] == "search engine failed · retrying every 5 s"
        assert measured["scrollWidth"] <= NARROW and measured["right"] <= NARROW + 0.5, measured
        assert png_size(shot)[0] == NARROW and shot.stat().st_size > 5_000
    finally:
        await runner.cleanup()
        await page.close()


async def test_the_auth_guard_stands_in_front_of_the_live_page() -> None:
    settings = Settings(elasticsearch_url=f"http://127.0.0.1:{free_port()}", web_auth_token="t0ken")
    app, web = FakeApp(), FakeWeb()
    page = dashboard.register(app, settings)
    for path, view in app.pages.items():
        status, body = await view(web, FakeRequest({}))
        assert status == 401 and "unauthorized" in body["error"], path
    assert page.client.client is None, "a refused request never reaches Elasticsearch"
