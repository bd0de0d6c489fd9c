"""`clickagg bench` stays working: a small run in CI on each search engine (full runs: BENCHMARKS.md)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request

from aiokafka.admin import AIOKafkaAdminClient

from clickagg.stack.layout import StackLayout


async def _topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


def test_bench_small_run_is_exact_and_reports_every_number(stack: StackLayout, engine: str) -> None:
    if engine == "elasticsearch":
        url = stack.es_url
        where = ["--elasticsearch-url", url]
    else:  # `--engine opensearch` alone: the local stack's OpenSearch node (CLICKAGG_OPENSEARCH_PORT)
        url = f"http://127.0.0.1:{stack.opensearch_port}"
        where = ["--engine", "opensearch"]
    cmd = [
        sys.executable, "-m", "clickagg.cli", "bench", "--json",
        "--kafka-bootstrap-servers", stack.kafka_bootstrap, *where,
        "--events", "20000", "--users", "20000", "--articles", "500", "--minutes", "2",
        "--window-seconds", "10", "--fresh-seconds", "25", "--baseline-events", "20000",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["exact"] is True, result["exact_detail"]
    for key in ("events_per_s", "ceiling_events_per_s", "baseline_events_per_s", "peak_rss_mb"):
        assert result[key] > 0, key
    assert result["freshness_p99_s"] is not None and result["freshness_p99_s"] < 30
    assert result["final_delay_p99_s"] is not None and result["windows_closed_live"] >= 1
    assert result["params"]["events"] == 20000
    assert result["warmup"]["docs"] == result["params"]["warmup_docs"] == 20000  # scaled to the run
    assert result["baseline"]["events"] + result["baseline"]["invalid"] == 20000
    assert result["baseline"]["docs"] == result["clickagg"]["documents"]  # the baseline wrote there too
    # The result says which engine it measured (asked of the node itself) and what that engine cost.
    assert result["engine"] == result["search_engine"]["kind"] == engine
    assert result["search_engine"]["url"] == url
    assert result["engine_version"].startswith("2." if engine == "opensearch" else "8.")
    assert result["engine_cpu_s"] > 0 and result["worker_cpu_s"] > 0
    assert len(result["warmup"]["es_cpu_us_per_doc"]) == 1  # node stats' CPU counter, either engine
    # The run cleans up after itself: no index, template or topic of it is left on the stack.
    run_id = result["run_id"]
    with urllib.request.urlopen(f"{url}/_cat/indices?h=index") as resp:
        assert [i for i in resp.read().decode().split() if i.startswith(run_id)] == []
    with urllib.request.urlopen(f"{url}/_index_template") as resp:
        names = [t["name"] for t in json.loads(resp.read())["index_templates"]]
    assert [n for n in names if n.startswith(run_id)] == []
    left = [t for t in asyncio.run(_topics(stack.kafka_bootstrap)) if t.startswith(run_id)]
    for _ in range(10):  # topic deletion is asynchronous in the broker: give metadata a moment
        if not left:
            break
        time.sleep(1)
        left = [t for t in asyncio.run(_topics(stack.kafka_bootstrap)) if t.startswith(run_id)]
    assert left == []
