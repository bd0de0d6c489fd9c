"""The Grafana dashboard, its provisioning and Prometheus's scrape config, checked without Docker.

Why: nothing here runs Grafana or Prometheus, so these files would rot silently: a panel whose query
names a metric that was renamed draws "No data" forever, a provider path that is not where compose
mounts the JSON loads no dashboard, a datasource uid that differs from the panels' breaks every
panel. The checks follow Grafana's provisioning format (apiVersion 1, ``datasources:`` /
``providers:``), its dashboard JSON model (uid, title, schemaVersion, panels with gridPos, datasource
and targets), and cross-check every PromQL metric name against clickagg/metrics_catalogue.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from clickagg.metrics_catalogue import CATALOGUE, PROCESS_FAMILIES
from tests.unit.test_compose import _env

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "dashboards" / "grafana"
DASHBOARD = DASHBOARD_DIR / "clickagg.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"

# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "changes",
    "time",
    "histogram_quantile",
    "le",
    "instance",
    "job",
    "stage",
    "partition",
    "reason",
    "result",
    "topic",
    "label_values",
}
COUNTER_FUNCS = ("rate", "irate", "increase")


def exposed_samples() -> dict[str, str]:
    """Every sample name /metrics can show -> its kind (histograms: _bucket, _sum, _count)."""
    names: dict[str, str] = {}
    for spec in CATALOGUE:
        if spec.kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[spec.exposed + suffix] = "histogram" + suffix
        else:
            names[spec.exposed] = spec.kind
    for name in PROCESS_FAMILIES:
        names[name] = "counter" if name.endswith("_total") else "gauge"
    names["up"] = "gauge"  # Prometheus's own, per target
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return out


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dashboard) for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that are metric names (not functions, labels, strings)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    without_legend_vars = re.sub(r"\$\w+", "", without_ranges)
    words = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", without_legend_vars))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+", w)}


def mount_target(service: dict[str, Any], host_path: str) -> str:
    for volume in service.get("volumes") or []:
        source, target, *_ = str(volume).split(":")
        if (COMPOSE.parent / source).resolve() == (COMPOSE.parent / host_path).resolve():
            return target
    raise AssertionError(f"{host_path} is not mounted")


# --------------------------------------------------------------------------- the dashboard JSON


def test_committed_json_is_the_generator_output() -> None:
    spec = importlib.util.spec_from_file_location("grafana_build", DASHBOARD_DIR / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text(encoding="utf-8") == module.render(), (
        "clickagg.json is out of date: run python dashboards/grafana/build.py"
    )


def test_dashboard_model(dashboard: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"]), "a stable uid of at most 40 characters"
    assert dashboard["title"].strip()
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None, "a provisioned dashboard carries no numeric id"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys()
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel[
            "title"
        ]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard):
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_every_panel_queries_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    (source,) = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    expected = {"type": "prometheus", "uid": source["uid"]}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"] == expected, panel["title"]
        assert panel["targets"], f"{panel['title']!r} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == expected and t["expr"].strip(), panel["title"]
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == expected


def test_queries_name_only_metrics_that_exist(dashboard: dict[str, Any]) -> None:
    known = exposed_samples()
    for title, expr in queries(dashboard):
        names = metric_names(expr)
        assert names, f"{title!r}: no metric in {expr!r}"
        unknown = names - known.keys()
        assert not unknown, f"{title!r} queries {sorted(unknown)}, which /metrics does not expose"
    for variable in dashboard["templating"]["list"]:
        assert metric_names(variable["definition"]) <= known.keys()


def test_functions_fit_the_metric_types(dashboard: dict[str, Any]) -> None:
    """rate/increase only over counters (or histogram buckets), quantiles only over _bucket by le."""
    known = exposed_samples()
    for title, expr in queries(dashboard):
        for func, metric in re.findall(r"\b(rate|irate|increase)\((\w+)", expr):
            assert known[metric] in ("counter", "histogram_bucket"), (
                f"{title!r}: {func} over a {known[metric]}"
            )
        for inner in re.findall(r"histogram_quantile\(([^,]+),(.*)\)", expr):
            assert "_bucket" in inner[1] and re.search(r"by \((le|le, \w+|\w+, le)\)", inner[1]), title
        for metric in metric_names(expr):
            if known[metric] == "counter":
                # A counter is shown as a rate/increase, or in the invariant's difference of totals.
                assert re.search(rf"(rate|increase)\({metric}\b", expr) or "Invariant" in title, (
                    f"{title!r} shows the raw counter {metric}"
                )


def test_the_dashboard_covers_what_operators_watch(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(e) for _, e in queries(dashboard)))
    needed = {
        "clickagg_events_in_total",  # throughput
        "clickagg_records_counted_total",  # the invariant, per partition
        "clickagg_records_dead_lettered_total",
        "clickagg_events_rejected_total",  # dead letters by reason
        "clickagg_consumer_lag",  # lag
        "clickagg_watermark_seconds",  # watermark delay
        "clickagg_es_bulk_seconds_bucket",  # sink latency quantiles
        "clickagg_final_delay_seconds_bucket",  # final delay
        "clickagg_stage_restarts_total",  # restarts
        "clickagg_ready",  # readiness
    }
    assert needed <= used, f"missing: {sorted(needed - used)}"
    invariant = [e for t, e in queries(dashboard) if "Invariant" in t]
    assert invariant and "by (instance, partition)" in invariant[0]


# --------------------------------------------------------------------------- provisioning + compose


def test_datasource_provisioning_points_at_the_prometheus_service(compose: dict[str, Any]) -> None:
    doc = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy" and source["isDefault"] is True
    url = urlsplit(source["url"])
    assert url.hostname in compose["services"] and url.port == 9090
    assert (9090, 9090) in {
        tuple(int(p) for p in str(m).split(":")) for m in compose["services"][url.hostname]["ports"]
    }


def test_dashboard_provider_path_is_where_compose_mounts_the_json(compose: dict[str, Any]) -> None:
    doc = load_yaml(PROVISIONING / "dashboards" / "clickagg.yml")
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["orgId"] == 1
    grafana = compose["services"]["grafana"]
    assert mount_target(grafana, "./dashboards/grafana") == provider["options"]["path"]
    assert mount_target(grafana, "./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home) == PurePosixPath(provider["options"]["path"]) / DASHBOARD.name
    assert str(grafana["image"]).startswith("grafana/grafana:")
    assert grafana["profiles"] == ["monitoring"]


def test_prometheus_scrapes_every_worker_at_its_web_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert mount_target(prometheus, "./deploy/prometheus/prometheus.yml") == config_path
    config = load_yaml(PROMETHEUS)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "clickagg", 'the dashboard\'s `up{job="clickagg"}`'
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    workers = {name for name, svc in services.items() if svc.get("command") == ["worker"]}
    assert workers == {"worker", "worker-opensearch"}
    assert targets == {f"{name}:{_env(services[name])['WEB_PORT']}" for name in workers}
