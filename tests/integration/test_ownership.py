"""Index ownership on the real stack: a second deployment pointed at a running one's ES_INDEX is refused.

The refusal is one line on the worker's output, exit code non-zero, no traceback, within seconds; the
owner's documents stay exactly what the SQL oracle says. Also: two workers of one deployment starting
at the same moment both start, and the single index of an older clickagg (before daily indices) is
refused with one line saying how to move on, and left as it was.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from clickagg.config import Settings
from clickagg.core import days
from clickagg.es import schema
from clickagg.es.engines import search_engine
from clickagg.es.ownership import Owner
from clickagg.es.port import SearchEngine
from tests.integration.conftest import free_port
from tests.support.cluster import Deployment, assert_exact
from tests.support.oracle import expected_rows
from tests.support.workload import build, past_minute, produce

WORKER = [sys.executable, "-m", "clickagg.cli", "worker"]


def run_to_end(
    cmd: list[str], env: dict[str, str], log: Path, timeout_s: float = 30
) -> tuple[int, str, float]:
    """Run a worker command until it exits: (exit code, its whole output, seconds it took)."""
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"the worker did not exit within {timeout_s}s:\n{log.read_text()[-3000:]}"
            ) from None
    return code, log.read_text(errors="replace"), time.monotonic() - started


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def wait_ready(
    dep: Deployment, proc: subprocess.Popen[bytes], port: int, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}:\n{dep.logs()}")
        if await asyncio.to_thread(ready, port):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"worker not ready within {timeout_s}s:\n{dep.logs()}")


async def owners(es_url: str, index: str) -> dict[str, Any]:
    """The `_meta` recorded in every daily index behind the alias, the progress index and both templates."""
    es = engine(es_url)
    try:
        out: dict[str, Any] = {}
        for name in (index, schema.progress_index(index)):
            for concrete, body in (await es.get_mapping(name)).items():
                out[concrete] = body["mappings"].get("_meta")
            [template] = await es.get_index_templates(f"{name}-template")
            out[f"{name}-template"] = template["index_template"]["template"]["mappings"].get("_meta")
        assert any(days.day_of_index(index, n) is not None for n in out), out  # a daily index exists
        return out
    finally:
        await es.close()


def engine(es_url: str) -> SearchEngine:
    return search_engine(Settings(elasticsearch_url=es_url))


def snapshot(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {d["_id"]: {k: v for k, v in d.items() if k != "_id"} for d in docs}


async def test_second_deployment_on_the_same_index_is_refused_and_changes_nothing(
    deployment: Deployment,
) -> None:
    a = deployment
    wl = build(20_000, past_minute(20), minutes=4, partitions=2, lateness_ms=5000, seed=41)
    csv = await a.prepare(wl.csv(), partitions=2)
    await produce(a.bootstrap, a.topic, wl.records)
    a.start_worker(free_port(), REFERENCE_DATA=csv)
    expected = expected_rows(wl.valid, wl.users)
    await assert_exact(a, expected, wl.rejected)
    before = snapshot(await a.documents())
    owner_a = {"clickagg": {"app_id": a.name, "window_ms": 60_000, "lateness_ms": 5_000}}
    assert all(meta == owner_a for meta in (await owners(a.es_url, a.index)).values())

    # Deployment B: another APP_ID and 45 s windows, pointed at A's index (and A's events topic).
    b_name = a.name + "b"
    b_env = a.env(APP_ID=b_name, WINDOW_SECONDS=45, WEB_PORT=free_port(), DATA_DIR=a.tmp / "data-b")
    b_env["REFERENCE_DATA"] = str(csv)
    code, output, took = await asyncio.to_thread(run_to_end, WORKER, b_env, a.tmp / "worker-b.log")
    line = (
        f"clickagg: error: ES_INDEX {a.index} belongs to deployment APP_ID={a.name} (WINDOW_SECONDS=60, "
        f"ALLOWED_LATENESS_SECONDS=5); this worker has APP_ID={b_name} (WINDOW_SECONDS=45): "
        "use another ES_INDEX or the owner's settings"
    )
    assert code != 0 and took < 30
    assert output.splitlines() == [line], output
    assert "Traceback" not in output

    # The same APP_ID with another lateness is refused too.
    c_env = a.env(
        ALLOWED_LATENESS_SECONDS=7, WEB_PORT=free_port(), DATA_DIR=a.tmp / "data-c", REFERENCE_DATA=csv
    )
    code, output, _ = await asyncio.to_thread(run_to_end, WORKER, c_env, a.tmp / "worker-c.log")
    assert code != 0
    assert output.splitlines() == [
        f"clickagg: error: ES_INDEX {a.index} belongs to deployment APP_ID={a.name} (WINDOW_SECONDS=60, "
        "ALLOWED_LATENESS_SECONDS=5); this worker has ALLOWED_LATENESS_SECONDS=7: "
        "use another ES_INDEX or the owner's settings"
    ], output

    # B never wrote: A's documents, progress and owner record are as they were, and exact.
    await asyncio.sleep(3)
    assert snapshot(await a.documents()) == before
    assert all(meta == owner_a for meta in (await owners(a.es_url, a.index)).values())
    await assert_exact(a, expected, wl.rejected)
    assert all(proc.poll() is None for proc in a.workers), a.logs()


async def test_refusal_found_by_the_pipeline_itself_is_one_line_too(deployment: Deployment) -> None:
    """The pre-start check can miss (Elasticsearch not up yet, or a concurrent installer): the
    pipeline's own install refuses then, also without a traceback, and exits non-zero."""
    a = deployment
    await a.create_topic(partitions=1)
    es = engine(a.es_url)
    try:
        await schema.install(es, a.index, Owner(a.name, 60_000, 5_000))
    finally:
        await es.close()
    b_name = a.name + "b"
    env = a.env(APP_ID=b_name, WINDOW_SECONDS=45, WEB_PORT=free_port())
    code = (
        "import sys; from clickagg.es import schema; from clickagg import cli; "
        "schema.check_before_start = lambda settings: None; sys.argv = ['clickagg', 'worker']; "
        "sys.exit(cli.main())"
    )
    cmd = [sys.executable, "-c", code]
    exit_code, output, took = await asyncio.to_thread(run_to_end, cmd, env, a.tmp / "worker-b.log", 60)
    line = (
        f"clickagg: error: ES_INDEX {a.index} belongs to deployment APP_ID={a.name} (WINDOW_SECONDS=60, "
        f"ALLOWED_LATENESS_SECONDS=5); this worker has APP_ID={b_name} (WINDOW_SECONDS=45): "
        "use another ES_INDEX or the owner's settings"
    )
    assert exit_code != 0 and took < 30, output
    assert output.splitlines().count(line) == 1 and output.count("belongs to deployment") == 1, output
    assert "Traceback" not in output


async def test_two_workers_of_one_deployment_starting_at_once_both_start(deployment: Deployment) -> None:
    await deployment.create_topic(partitions=2)
    ports = [free_port(), free_port()]
    procs = [deployment.start_worker(port) for port in ports]
    await asyncio.gather(*(wait_ready(deployment, p, port) for p, port in zip(procs, ports, strict=True)))
    owner = {"clickagg": {"app_id": deployment.name, "window_ms": 60_000, "lateness_ms": 5_000}}
    assert all(meta == owner for meta in (await owners(deployment.es_url, deployment.index)).values())


async def test_single_index_of_an_older_clickagg_is_refused_and_left_alone(deployment: Deployment) -> None:
    """ES_INDEX as one index (clickagg before daily indices): one line saying how to move on, no write."""
    dep = deployment
    await dep.create_topic(partitions=1)
    es = AsyncElasticsearch(dep.es_url)  # what an older clickagg left: its mapping without _meta, a document
    try:
        await es.indices.create(index=dep.index, mappings=schema.MAPPINGS)
        doc = {"time": "2026-01-27T00:00:00Z", "gender": None, "segment_id": None, "article_id": 1,
               "impression": 3, "click": 1, "final": True}  # fmt: skip
        await es.index(index=dep.index, id="old", document=doc, refresh=True)
        before = (await es.indices.get_mapping(index=dep.index)).body
    finally:
        await es.close()
    env = dep.env(WEB_PORT=free_port())
    code, output, _ = await asyncio.to_thread(run_to_end, WORKER, env, dep.tmp / "worker-old.log")
    assert code != 0 and "Traceback" not in output
    assert output.splitlines() == [
        f"clickagg: error: ES_INDEX {dep.index} is one index (clickagg before daily indices, or someone "
        f"else's), but clickagg writes daily indices {dep.index}-YYYY.MM.DD behind an alias named {dep.index}: "
        f"use a new ES_INDEX (the old index stays readable under its name) or delete {dep.index} and "
        f"{dep.index}-progress to reuse the name"
    ], output
    es = AsyncElasticsearch(dep.es_url)
    try:
        assert (await es.indices.get_mapping(index=dep.index)).body == before
        assert not await es.indices.exists(index=f"{dep.index}-1*,{dep.index}-2*", allow_no_indices=False)
    finally:
        await es.close()
    assert [d["_id"] for d in await dep.documents()] == ["old"]
