"""`clickagg bench`: clickagg, its ceiling and a naive-Faust baseline on the same topic, same run.

Phases: load N events (untimed) → warm the search engine up (untimed, a scratch index) → ceiling →
clickagg worker until every final document is in the index (then an exactness check against
the generator's own truth) → baseline → a live phase at the origin's rate (8.3k events/s) for
freshness and final-document delay.

The search engine is Elasticsearch or OpenSearch (`--engine`); the bench talks to it only through
the port (clickagg.es.port), and the workers it starts get SEARCH_ENGINE set to the same engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

from clickagg import clients, gc_tuning
from clickagg.bench import ceiling
from clickagg.bench.es_warmup import engine_cpu_ms, warm_up
from clickagg.bench.kafka_load import load
from clickagg.bench.workload import BenchData, generate, write_users
from clickagg.config import ConfigError, Settings
from clickagg.es import engines
from clickagg.es.errors import SearchEngineError
from clickagg.es.port import SearchEngine
from clickagg.kafka_util import ensure_topics


@dataclass
class BenchOptions:
    bootstrap: str
    es_url: str
    events: int = 5_000_000
    partitions: int = 4
    users: int = 1_000_000
    articles: int = 10_000
    segments: int = 40
    minutes: int = 10
    window_seconds: int = 60
    baseline_events: int = 1_000_000
    fresh_seconds: float = 150.0
    fresh_rate: float = 8_333.0
    lateness_seconds: int = 5
    idle_seconds: int = 1
    seed: int = 1
    warmup_docs: int | None = None  # None: min(events, 1.5M), about a full run's documents
    engine: str = "elasticsearch"  # or "opensearch": the engine at es_url (SEARCH_ENGINE of the workers)

    @property
    def settings(self) -> Settings:
        """The bench's clients come from the one factories too (clickagg.clients, clickagg.es.engines)."""
        return Settings(
            kafka_bootstrap_servers=self.bootstrap, elasticsearch_url=self.es_url, search_engine=self.engine
        )

    @property
    def engine_name(self) -> str:
        return ENGINE_NAMES.get(self.engine, self.engine)


ENGINE_NAMES = {"elasticsearch": "Elasticsearch", "opensearch": "OpenSearch"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Worker:
    """A clickagg worker subprocess, sampled for peak RSS and CPU."""

    def __init__(
        self, opts: BenchOptions, app_id: str, topic: str, index: str, users_csv: str, logdir: Path, idle: int
    ) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": opts.bootstrap,
            "ELASTICSEARCH_URL": opts.es_url,
            "SEARCH_ENGINE": opts.engine,
            "EVENTS_TOPIC": topic,
            "ES_INDEX": index,
            "APP_ID": app_id,
            "REFERENCE_DATA": users_csv,
            "WINDOW_SECONDS": str(opts.window_seconds),
            "ALLOWED_LATENESS_SECONDS": str(opts.lateness_seconds),
            "IDLE_TIMEOUT_SECONDS": str(idle),
            "WEB_PORT": str(self.port),
            "DATA_DIR": str(logdir / app_id),
        }
        self.log = (logdir / f"{app_id}.log").open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clickagg.cli", "worker"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0

    def sample(self) -> None:
        try:
            self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)
        except psutil.Error:
            pass
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}; see {self.log.name}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metric(self, name: str) -> float:
        """Sum of one metric's samples from the worker's /metrics (0 if unreachable)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return 0.0
        prefix = f"clickagg_{name}"
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(prefix) and line[len(prefix) : len(prefix) + 1] in (" ", "{")
        )

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    async def wait_ready(self) -> float:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.sample()
            if await asyncio.to_thread(self._ready):
                return time.perf_counter() - self.started
            await asyncio.sleep(0.2)
        raise RuntimeError("worker did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


async def _count(es: SearchEngine, index: str, final_only: bool) -> int:
    query = {"term": {"final": True}} if final_only else {"match_all": {}}
    try:
        return await es.count(index, query)
    except SearchEngineError:  # e.g. the index does not exist yet: the worker creates it at start
        return 0


async def _check_exact(es: SearchEngine, index: str, data: BenchData) -> tuple[bool, str]:
    await es.refresh(index)
    seen = 0
    wrong = 0
    async for hit in es.scan(index, {"query": {"match_all": {}}}, size=5000):
        src = hit["_source"]
        t = int(datetime.fromisoformat(src["time"].replace("Z", "+00:00")).timestamp() * 1000)
        want = data.truth.get((t, src["gender"], src["segment_id"], src["article_id"]))
        seen += 1
        if want is None or want != [src["impression"], src["click"]] or not src["final"]:
            wrong += 1
    ok = wrong == 0 and seen == len(data.truth)
    return ok, f"{seen} documents, {len(data.truth)} expected keys, {wrong} wrong"


async def engine_identity(opts: BenchOptions) -> dict[str, Any]:
    """The engine at es_url: its kind (checked against --engine) and version, from the node itself.

    Why: a result must say what it measured, and `--engine opensearch` pointed at an Elasticsearch
    node (or the reverse) would measure the wrong thing. The kind is the port's own detection
    (SEARCH_ENGINE=auto's GET /); the version comes from the nodes info API, which the port does not
    offer, so it is asked through the port's client here (both clients have `nodes.info`).
    """
    auto = Settings(
        kafka_bootstrap_servers=opts.bootstrap, elasticsearch_url=opts.es_url, search_engine="auto"
    )
    found = await asyncio.to_thread(engines.engine_kind, auto)
    if found != opts.engine:
        raise ConfigError(
            f"bench --engine {opts.engine}, but {opts.es_url} is {ENGINE_NAMES.get(found, found)}"
        )
    es = engines.search_engine(opts.settings, timeout_s=30)
    try:
        await es.ready()
        try:
            info = es.dialect.body(await es.client.nodes.info(metric="process"))
        except Exception as exc:
            err = es.dialect.translate(exc)
            if err is None:
                raise
            raise err from exc
    finally:
        await es.close()
    nodes = list(info.get("nodes", {}).values())
    return {
        "kind": opts.engine,
        "version": nodes[0].get("version") if nodes else None,
        "url": opts.es_url,
        "nodes": len(nodes),
    }


async def run_clickagg(
    opts: BenchOptions, data: BenchData, topic: str, run_id: str, users_csv: str, logdir: Path
) -> dict[str, Any]:
    index = f"{run_id}-minutely"
    # The last window of a finished load can only close by the idle timeout, so it is in the time.
    es = engines.search_engine(opts.settings, timeout_s=60)
    # The engine's CPU over the timed span (worker start → last final document), from node stats.
    engine_cpu0 = await engine_cpu_ms(es)
    worker = Worker(opts, f"{run_id}-clickagg", topic, index, users_csv, logdir, idle=opts.idle_seconds)
    try:
        ready_s = await worker.wait_ready()
        cpu0 = worker.cpu_seconds()
        ready_at = time.perf_counter()
        expected = len(data.truth)
        stage1_done = None
        while await _count(es, index, final_only=True) < expected:
            worker.sample()
            if (
                stage1_done is None
                and await asyncio.to_thread(worker.metric, "events_in_total") >= data.events
            ):
                stage1_done = time.perf_counter()
            await asyncio.sleep(0.25)
        done = time.perf_counter()
        cpu = worker.cpu_seconds() - cpu0
        worker_cpu_s = worker.cpu_seconds()
        # Node stats refresh the CPU counter once a second: wait for the timed span's last second.
        await asyncio.sleep(1.1)
        engine_cpu_s = (await engine_cpu_ms(es) - engine_cpu0) / 1000
        exact, detail = await _check_exact(es, index, data)
    finally:
        worker.stop()
        await es.close()
    total = done - worker.started
    processing = done - ready_at
    return {
        "events_per_s": data.events / total,
        "events_per_s_after_ready": data.events / processing,
        "seconds_total": total,
        "seconds_to_ready": ready_s,
        "seconds_ready_to_stage1_done": (stage1_done or done) - ready_at,
        "documents": expected,
        "exact": exact,
        "exact_detail": detail,
        "peak_rss_mb": worker.peak_rss / 2**20,
        "cpu_percent": 100 * cpu / processing,
        "worker_cpu_s": worker_cpu_s,
        "engine_cpu_s": engine_cpu_s,
    }


def run_baseline(opts: BenchOptions, topic: str, run_id: str, users_csv: str, logdir: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "clickagg.bench.baseline",
        "--bootstrap", opts.bootstrap, "--topic", topic, "--users-csv", users_csv,
        "--es-url", opts.es_url, "--engine", opts.engine,
        "--index", f"{run_id}-baseline", "--app-id", f"{run_id}-baseline",
        "--max-events", str(min(opts.baseline_events, opts.events)),
        "--window-seconds", str(opts.window_seconds), "--web-port", str(_free_port()),
        "--data-dir", str(logdir / "baseline-data"),
    ]  # fmt: skip
    with (logdir / "baseline.log").open("ab") as log:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, check=True, timeout=3600).stdout
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def run_freshness(opts: BenchOptions, run_id: str, users_csv: str, logdir: Path) -> dict[str, Any]:
    """Live events at the origin's rate with probes: produced → visible, and window close → final."""
    topic, index = f"{run_id}-live", f"{run_id}-live-minutely"
    await ensure_topics(opts.settings, {topic: opts.partitions})
    worker = Worker(opts, f"{run_id}-live", topic, index, users_csv, logdir, idle=30)
    es = engines.search_engine(opts.settings, timeout_s=30)
    producer = clients.producer(opts.settings, linger_ms=5)
    probes: dict[int, float] = {}  # probe article id → send time
    visible: dict[int, float] = {}
    windows_final: dict[int, float] = {}  # window start ms → wall time first final probe doc seen
    probe_window: dict[int, int] = {}
    window_ms = opts.window_seconds * 1000
    try:
        await worker.wait_ready()
        await producer.start()
        stop_at = time.time() + opts.fresh_seconds
        per_tick, tick = max(1, int(opts.fresh_rate / 20)), 0.05
        rng_user = 1

        async def poll() -> None:
            while True:
                pending = [a for a in probes if a not in visible]
                open_probes = [a for a in probes if probe_window[a] not in windows_final]
                ids = list({*pending, *open_probes})[-2000:]
                if ids:
                    resp: Any = {"hits": {"hits": []}}
                    try:
                        resp = await es.search(
                            index,
                            {
                                "size": len(ids),
                                "query": {"terms": {"article_id": ids}},
                                "_source": ["article_id", "final", "time"],
                            },
                        )
                    except SearchEngineError:
                        pass
                    now = time.time()
                    for hit in resp["hits"]["hits"]:
                        art = hit["_source"]["article_id"]
                        visible.setdefault(art, now)
                        if hit["_source"]["final"]:
                            windows_final.setdefault(probe_window[art], now)
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll())
        next_probe = 0.0
        while time.time() < stop_at:
            t0 = time.time()
            for _ in range(per_tick):
                rng_user = (rng_user * 1103515245 + 12345) % opts.users + 1
                value = orjson.dumps(
                    {"article_id": rng_user % opts.articles + 1, "user_id": rng_user, "action": "impression"}
                )
                await producer.send(topic, value)
            if t0 >= next_probe:
                art = 2**40 + len(probes)
                await producer.send_and_wait(
                    topic, orjson.dumps({"article_id": art, "user_id": 1, "action": "click"})
                )
                probes[art] = time.time()
                probe_window[art] = int(t0 * 1000) // window_ms * window_ms
                next_probe = t0 + 0.5
            worker.sample()
            await asyncio.sleep(max(0.0, tick - (time.time() - t0)))
        # Let the last closed windows' finals arrive.
        await asyncio.sleep(opts.lateness_seconds + 5)
        poller.cancel()
    finally:
        await producer.stop()
        worker.stop()
        await es.close()
    fresh = [visible[a] - probes[a] for a in probes if a in visible]
    closes = {w: w / 1000 + opts.window_seconds + opts.lateness_seconds for w in set(probe_window.values())}
    delays = [windows_final[w] - closes[w] for w in windows_final if closes[w] < stop_at]
    return {
        "probes": len(probes),
        "probes_visible": len(fresh),
        "freshness_p50_s": _pct(fresh, 0.5),
        "freshness_p99_s": _pct(fresh, 0.99),
        "windows_closed": len(delays),
        "final_delay_p50_s": _pct(delays, 0.5),
        "final_delay_p99_s": _pct(delays, 0.99),
        "final_delays_s": [round(d, 3) for d in sorted(delays)],
        "live_rate_events_per_s": opts.fresh_rate,
        "live_peak_rss_mb": worker.peak_rss / 2**20,
        "freshness_mean_s": statistics.mean(fresh) if fresh else None,
    }


async def cleanup(opts: BenchOptions, run_id: str) -> None:
    """Delete the run's indices, index templates and topics (names start with the run id).

    Why: a 5M-event run leaves ~1.4M documents and several GB of topics; left behind, runs pile up
    on the same local stack and slow the next ones (Elasticsearch shares its heap and indexing
    buffer across indices). Indices are deleted by name, so `action.destructive_requires_name`
    clusters accept it too. On whichever engine the run wrote to (the port: same calls for both).
    """
    es = engines.search_engine(opts.settings, timeout_s=60)
    try:
        indices = list(await es.indices(f"{run_id}-*"))
        if indices:
            await es.delete_index(",".join(indices))
        for template in await es.get_index_templates(f"{run_id}-*"):
            await es.delete_index_template(template["name"])
    except Exception as exc:
        _log(f"cleanup: could not delete the run's indices: {exc!r}")
    finally:
        await es.close()
    admin = clients.admin(opts.settings)
    try:
        await admin.start()
        topics = [t for t in await admin.list_topics() if t.startswith(f"{run_id}-")]
        if topics:
            await admin.delete_topics(topics)
    except Exception as exc:
        _log(f"cleanup: could not delete the run's topics: {exc!r}")
    finally:
        await admin.close()


async def bench(
    opts: BenchOptions, skip_baseline: bool = False, skip_fresh: bool = False, keep: bool = False
) -> dict[str, Any]:
    run_id = "bench-" + uuid.uuid4().hex[:8]
    try:
        return await _run(opts, run_id, skip_baseline, skip_fresh)
    finally:
        if keep:
            _log(f"kept the run's topics and indices (prefix {run_id}-)")
        else:
            await cleanup(opts, run_id)


async def _run(opts: BenchOptions, run_id: str, skip_baseline: bool, skip_fresh: bool) -> dict[str, Any]:
    logdir = Path(tempfile.mkdtemp(prefix=f"clickagg-{run_id}-"))
    users_csv = str(logdir / "users.csv")
    _log(f"run {run_id}: logs in {logdir}")
    engine = await engine_identity(opts)  # before anything is loaded: a wrong --engine fails at once
    _log(f"search engine: {opts.engine_name} {engine['version']} at {opts.es_url}")
    user_rows = write_users(users_csv, opts.users, opts.segments, opts.seed)
    topic = f"{run_id}-events"
    await ensure_topics(opts.settings, {topic: opts.partitions})
    data = BenchData(users=opts.users, articles=opts.articles, segments=opts.segments)
    window_ms = opts.window_seconds * 1000
    span = opts.minutes * 60_000
    start_ms = (int(time.time() * 1000) - span - 30 * 60_000) // window_ms * window_ms
    t = time.perf_counter()
    records = generate(
        data, user_rows, opts.events, start_ms, span, opts.partitions, window_ms, seed=opts.seed
    )
    await load(opts.settings, topic, records, opts.partitions)
    _log(
        f"loaded {data.events} events into {opts.partitions} partitions in {time.perf_counter() - t:.1f}s; {len(data.truth)} keys"
    )

    warmup: dict[str, Any] = {}
    warmup_docs = min(opts.events, 1_500_000) if opts.warmup_docs is None else opts.warmup_docs
    if warmup_docs > 0:
        warmup = await warm_up(opts.settings, f"{run_id}-warmup", warmup_docs)
        _log(f"{opts.engine_name} warmed up: {warmup['docs']} documents in {warmup['seconds']}s")

    users = ceiling.load_users(users_csv)
    with gc_tuning.tuned():  # the worker's own thresholds: a comparison of code, not of GC settings
        ceil = await ceiling.run(opts.settings, topic, opts.partitions, users, opts.events, window_ms)
    del users
    _log(f"ceiling: {ceil['events_per_s']:.0f} events/s")

    click = await run_clickagg(opts, data, topic, run_id, users_csv, logdir)
    _log(
        f"clickagg: {click['events_per_s']:.0f} events/s, exact={click['exact']} ({click['exact_detail']}); "
        f"CPU-s worker {click['worker_cpu_s']:.1f}, {opts.engine_name} {click['engine_cpu_s']:.1f}"
    )

    base: dict[str, Any] = {}
    if not skip_baseline:
        base = await asyncio.to_thread(run_baseline, opts, topic, run_id, users_csv, logdir)
        _log(f"baseline: {base.get('events_per_s', 0):.0f} events/s")
    fresh: dict[str, Any] = {}
    if not skip_fresh:
        fresh = await run_freshness(opts, run_id, users_csv, logdir)
        _log(f"freshness p99 {fresh['freshness_p99_s']}s, final delay p99 {fresh['final_delay_p99_s']}s")

    base_rate = base.get("events_per_s")
    return {
        "events_per_s": round(click["events_per_s"]),
        "events_per_s_after_ready": round(click["events_per_s_after_ready"]),
        "ceiling_events_per_s": round(ceil["events_per_s"]),
        "baseline_events_per_s": round(base_rate) if base_rate else None,
        "ratio_to_ceiling": round(click["events_per_s"] / ceil["events_per_s"], 3),
        "ratio_to_baseline": round(click["events_per_s"] / base_rate, 2) if base_rate else None,
        "exact": click["exact"],
        "exact_detail": click["exact_detail"],
        "freshness_p50_s": fresh.get("freshness_p50_s"),
        "freshness_p99_s": fresh.get("freshness_p99_s"),
        "final_delay_p50_s": fresh.get("final_delay_p50_s"),
        "final_delay_p99_s": fresh.get("final_delay_p99_s"),
        "windows_closed_live": fresh.get("windows_closed"),
        "peak_rss_mb": round(click["peak_rss_mb"], 1),
        "cpu_percent": round(click["cpu_percent"], 1),
        "engine": engine["kind"],
        "engine_version": engine["version"],
        "engine_cpu_s": round(click["engine_cpu_s"], 1),
        "worker_cpu_s": round(click["worker_cpu_s"], 1),
        "search_engine": engine,
        "clickagg": click,
        "ceiling": ceil,
        "baseline": base,
        "live": fresh,
        "warmup": warmup,
        "params": {
            "events": opts.events, "partitions": opts.partitions, "users": opts.users,
            "articles": opts.articles, "segments": opts.segments, "minutes": opts.minutes,
            "window_seconds": opts.window_seconds, "lateness_seconds": opts.lateness_seconds,
            "idle_seconds": opts.idle_seconds,
            "baseline_events": min(opts.baseline_events, opts.events), "fresh_seconds": opts.fresh_seconds,
            "fresh_rate": opts.fresh_rate, "click_ratio": 0.05, "zipf": 1.1, "warmup_docs": warmup_docs,
        },
        "logs": str(logdir),
        "run_id": run_id,
    }  # fmt: skip
