"""`clickagg bench` stays working: a small run in CI (the full run is in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys

from clickagg.stack.layout import StackLayout


def test_bench_small_run_is_exact_and_reports_every_number(stack: StackLayout) -> None:
    cmd = [
        sys.executable, "-m", "clickagg.cli", "bench", "--json",
        "--kafka-bootstrap-servers", stack.kafka_bootstrap, "--elasticsearch-url", stack.es_url,
        "--events", "20000", "--users", "20000", "--articles", "500", "--minutes", "2",
        "--window", "10", "--fresh-seconds", "25", "--baseline-events", "20000",
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
    assert result["baseline"]["events"] + result["baseline"]["invalid"] == 20000
