"""Generate clickagg.json, the Grafana dashboard for a worker's Prometheus metrics.

Why a generator: a dashboard is ~30 panels of repetitive JSON (datasource, gridPos, targets); writing
it by hand makes ids collide and layouts overlap. This script is the source; the .json next to it is
its output, committed so that Grafana's file provisioning (deploy/grafana/provisioning) loads it as
is. tests/unit/test_grafana_dashboard.py checks that the committed file equals this output, that
every panel queries the provisioned Prometheus datasource, and that every metric a query names is
declared in clickagg/metrics_catalogue.py.

    python dashboards/grafana/build.py          # rewrite clickagg.json
    python dashboards/grafana/build.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("clickagg.json")
UID = "clickagg-worker"
DATASOURCE = {"type": "prometheus", "uid": "clickagg-prometheus"}  # deploy/grafana/provisioning
SEL = '{instance=~"$instance"}'  # every query: the workers chosen at the top
RATE = "$__rate_interval"


class Layout:
    """Panels left to right in rows of 24 columns; ids in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_h
        self.x, self.row_h = 0, 0


def target(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def timeseries(
    title: str, description: str, targets: list[tuple[str, str]], unit: str = "short", stack: bool = False
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(targets)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {
                    "drawStyle": "line",
                    "fillOpacity": 10,
                    "stacking": {"mode": "normal" if stack else "none"},
                },
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
    }


def stat(
    title: str, description: str, expr: str, legend: str, unit: str = "short", **extra: Any
) -> dict[str, Any]:
    panel = {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(expr, legend)],
        "fieldConfig": {"defaults": {"unit": unit, **extra}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
        },
    }
    return panel


def quantiles(metric: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{SEL}[{RATE}])))",
            f"{prefix}p{int(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def build() -> dict[str, Any]:
    lay = Layout()
    lay.row("Health")
    lay.add(
        stat(
            "Ready",
            "clickagg_ready: 1 when /readyz answers 200 (Kafka and the search engine reachable, stages moving).",
            f"min by (instance) (clickagg_ready{SEL})",
            "{{instance}}",
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "NOT READY", "color": "red"},
                        "1": {"text": "ready", "color": "green"},
                    },
                }
            ],
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
            },
        ),
        w=6,
        h=5,
    )
    lay.add(
        stat(
            "Scraped",
            "Prometheus reached the worker's /metrics (up).",
            'up{job="clickagg",instance=~"$instance"}',
            "{{instance}}",
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
            },
        ),
        w=6,
        h=5,
    )
    lay.add(
        stat(
            "Stage restarts (range)",
            "Stage failures rebuilt in-process over the dashboard's range (clickagg_stage_restarts_total).",
            f"sum by (stage) (increase(clickagg_stage_restarts_total{SEL}[$__range]))",
            "{{stage}}",
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 1}],
            },
        ),
        w=6,
        h=5,
    )
    lay.add(
        stat(
            "Process restarts (range)",
            "Worker processes (re)started over the range: changes of process_start_time_seconds.",
            f"sum by (instance) (changes(process_start_time_seconds{SEL}[$__range]))",
            "{{instance}}",
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 1}],
            },
        ),
        w=6,
        h=5,
    )

    lay.row("Throughput and the invariant")
    lay.add(
        timeseries(
            "Events in / counted / dead-lettered",
            "Records per second read from the events topic (committed), counted, and sent to the dead-letter topic.",
            [
                (f"sum(rate(clickagg_events_in_total{SEL}[{RATE}]))", "in"),
                (f"sum(rate(clickagg_records_counted_total{SEL}[{RATE}]))", "counted"),
                (f"sum(rate(clickagg_records_dead_lettered_total{SEL}[{RATE}]))", "dead-lettered"),
            ],
            unit="ops",
        ),
        w=12,
    )
    lay.add(
        timeseries(
            "Invariant: in - counted - dead-lettered, per partition (must be 0)",
            "SPEC: every record is counted once or dead-lettered once. Any non-zero value is a bug: look at the worker's log.",
            [
                (
                    f"sum by (instance, partition) (clickagg_events_in_total{SEL})"
                    f" - sum by (instance, partition) (clickagg_records_counted_total{SEL})"
                    f" - sum by (instance, partition) (clickagg_records_dead_lettered_total{SEL})",
                    "{{instance}} p{{partition}}",
                )
            ],
        ),
        w=12,
    )
    lay.add(
        timeseries(
            "Dead letters by reason",
            "Stage-1 dead letters per second by reason (README: the invariant), and stage-2 late rows.",
            [
                (f"sum by (reason) (rate(clickagg_events_rejected_total{SEL}[{RATE}]))", "{{reason}}"),
                (f"sum(rate(clickagg_late_rows_total{SEL}[{RATE}]))", "late rows (stage 2)"),
            ],
            unit="ops",
            stack=True,
        ),
        w=12,
    )
    lay.add(
        timeseries(
            "Documents written",
            "Minute documents written per second (partial upserts and finals).",
            [
                (f"sum(rate(clickagg_documents_written_total{SEL}[{RATE}]))", "written"),
                (f"sum(rate(clickagg_documents_final_total{SEL}[{RATE}]))", "final"),
            ],
            unit="ops",
        ),
        w=12,
    )

    lay.row("Progress: lag and event time")
    lay.add(
        timeseries(
            "Consumer lag",
            "Records waiting between each stage's position and the partition's end (stage1: events topic; stage2: partials).",
            [(f"sum by (stage, partition) (clickagg_consumer_lag{SEL})", "{{stage}} p{{partition}}")],
        ),
        w=12,
    )
    lay.add(
        timeseries(
            "Watermark delay",
            "Wall clock minus each source partition's watermark (stage 1), and minus what stage 2 has closed "
            "(per partials partition). Grows with idle partitions up to IDLE_TIMEOUT_SECONDS, then steps.",
            [
                (
                    f"time() - max by (partition) (clickagg_watermark_seconds{SEL})",
                    "watermark p{{partition}}",
                ),
                (
                    f"time() - max by (partition) (clickagg_closed_below_seconds{SEL})",
                    "closed p{{partition}}",
                ),
            ],
            unit="s",
        ),
        w=12,
    )
    lay.add(
        timeseries(
            "Open windows and keys",
            "Stage-2 state held in memory: windows not yet final, and their keys.",
            [
                (f"sum(clickagg_open_windows{SEL})", "windows"),
                (f"sum(clickagg_open_keys{SEL})", "keys"),
            ],
        ),
        w=12,
    )
    lay.add(
        timeseries(
            "Freshness",
            "When a flush lands: wall clock minus the stage-2 watermark (how old the newest complete data in the index is).",
            quantiles("clickagg_freshness_seconds"),
            unit="s",
        ),
        w=12,
    )

    lay.row("Sink: Elasticsearch / OpenSearch")
    lay.add(
        timeseries(
            "Bulk request latency",
            "Quantiles of clickagg_es_bulk_seconds (one sample per bulk request).",
            quantiles("clickagg_es_bulk_seconds"),
            unit="s",
        ),
        w=8,
    )
    lay.add(
        timeseries(
            "Flush duration",
            "Quantiles of clickagg_flush_seconds (a stage-2 flush: all its documents written).",
            quantiles("clickagg_flush_seconds"),
            unit="s",
        ),
        w=8,
    )
    lay.add(
        timeseries(
            "Final delay",
            "Window end to its final documents written: at least the allowed lateness; the SPEC wants under a minute live.",
            quantiles("clickagg_final_delay_seconds"),
            unit="s",
        ),
        w=8,
    )
    lay.add(
        timeseries(
            "Sink errors and retries",
            "Failed bulk requests (retried), bulk responses with documents to retry, and documents rejected for good.",
            [
                (f"sum(rate(clickagg_es_bulk_errors_total{SEL}[{RATE}]))", "bulk errors"),
                (f"sum(rate(clickagg_es_bulk_retries_total{SEL}[{RATE}]))", "retries"),
                (f"sum(rate(clickagg_es_doc_rejected_total{SEL}[{RATE}]))", "rejected docs"),
            ],
            unit="ops",
        ),
        w=24,
    )

    lay.row("Reference data and process")
    lay.add(
        timeseries(
            "Reference users",
            "Users in the reference snapshot in use.",
            [(f"max by (instance) (clickagg_reference_users{SEL})", "{{instance}}")],
        ),
        w=8,
    )
    lay.add(
        timeseries(
            "Reference reloads",
            "Reloads after the initial load over 5 minutes, by result (failed: the last good copy kept; see the log).",
            [(f"sum by (result) (increase(clickagg_reference_reloads_total{SEL}[5m]))", "{{result}}")],
        ),
        w=8,
    )
    lay.add(
        timeseries(
            "CPU and memory",
            "Worker process CPU (cores) and resident memory.",
            [
                (f"rate(process_cpu_seconds_total{SEL}[{RATE}])", "cpu {{instance}}"),
                (f"process_resident_memory_bytes{SEL} / 2^30", "rss GiB {{instance}}"),
            ],
        ),
        w=8,
    )

    return {
        "uid": UID,
        "title": "clickagg: worker",
        "description": "A clickagg worker's Prometheus metrics (clickagg/metrics_catalogue.py): throughput, "
        "the invariant, dead letters, lag, event time, sink latency, restarts, readiness.",
        "tags": ["clickagg"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "schemaVersion": 39,
        "version": 1,
        "links": [],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "label": "worker",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": "label_values(clickagg_events_in_total, instance)",
                        "refId": "instance",
                    },
                    "definition": "label_values(clickagg_events_in_total, instance)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "sort": 1,
                }
            ]
        },
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
