"""The metrics catalogue is the contract between call sites, /metrics, the dashboard and the README.

Why these tests: a metric name is a string at its call site, so nothing but a check like this one
notices that a stage increments a name the catalogue (and so /metrics, HELP, the Grafana
dashboard) does not know, or with labels it does not declare. The call sites are found by reading
the source (AST), so a new ``METRICS.inc("...")`` anywhere is checked without anyone listing it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from clickagg.metrics import MetricError, Metrics
from clickagg.metrics_catalogue import BY_NAME, CATALOGUE, PREFIX

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("agents", "app", "clickagg", "reference_data", "tables")
KIND_OF_METHOD = {"inc": "counter", "set": "gauge", "observe": "histogram", "observe_behind": "histogram"}


def _sources() -> list[Path]:
    files: list[Path] = []
    for top in SOURCE_DIRS:
        for path in (ROOT / top).rglob("*.py"):
            # clickagg/agents etc. are symlinks to the top-level packages: read each file once.
            if path.resolve().is_relative_to(ROOT / "clickagg") and path.resolve() != path:
                continue
            files.append(path)
    return sorted(set(files))


def _dict_literals(func: ast.AST) -> dict[str, ast.Dict]:
    """Names bound to a dict literal in a function (``labels = {"partition": p}``)."""
    found: dict[str, ast.Dict] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Dict):
            if isinstance(node.target, ast.Name):
                found[node.target.id] = node.value
    return found


def _label_keys(node: ast.expr | None, scope: dict[str, ast.Dict]) -> tuple[str, ...] | None:
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return ()
    if isinstance(node, ast.Name) and node.id in scope:
        node = scope[node.id]
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return tuple(sorted(str(k.value) for k in node.keys if isinstance(k, ast.Constant)))
    return None  # not statically known


def call_sites() -> list[tuple[str, str, str, tuple[str, ...] | None]]:
    """(where, method, metric name, label keys) for every METRICS.<method>("literal", ...) call."""
    sites = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        scopes = {id(call): _dict_literals(f) for f in funcs for call in ast.walk(f)}
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "METRICS"
                and node.func.attr in (*KIND_OF_METHOD, "provide", "counter", "counter_total", "value")
            ):
                continue
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{path}:{node.lineno}: METRICS.{node.func.attr} must name its metric with a string literal"
            )
            labels_arg: ast.expr | None = None
            if node.func.attr in ("inc", "set", "observe"):
                labels_arg = node.args[2] if len(node.args) > 2 else None
                for kw in node.keywords:
                    if kw.arg == "labels":
                        labels_arg = kw.value
            keys = _label_keys(labels_arg, scopes.get(id(node), {}))
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            sites.append((where, node.func.attr, first.value, keys))
    return sites


SITES = call_sites()


def test_the_scan_finds_the_known_call_sites() -> None:
    """The scan itself works: it sees the stage-1 invariant counters and the sink's latency."""
    names = {name for _, _, name, _ in SITES}
    assert {"events_in_total", "records_counted_total", "records_dead_lettered_total"} <= names
    assert {"es_bulk_seconds", "final_delay_seconds", "consumer_lag", "stage_restarts_total"} <= names


@pytest.mark.parametrize(("where", "method", "name", "keys"), SITES, ids=[s[0] for s in SITES])
def test_every_call_site_names_a_declared_metric_with_its_labels(
    where: str, method: str, name: str, keys: tuple[str, ...] | None
) -> None:
    assert name in BY_NAME, f"{where}: {name!r} is not declared in clickagg/metrics_catalogue.py"
    spec = BY_NAME[name]
    if method in KIND_OF_METHOD:
        assert spec.source == "call", f"{where}: {name!r} is read at scrape time, not updated by calls"
        assert spec.kind == KIND_OF_METHOD[method], f"{where}: {name!r} is a {spec.kind}, not via {method}"
    if method == "provide":
        assert spec.source == "scrape", f"{where}: {name!r} is updated by calls; provide() is for scrape"
    if keys is not None and method in ("inc", "set", "observe"):
        assert keys == tuple(sorted(spec.labels)), f"{where}: {name!r} takes {spec.labels}, given {keys}"


def test_scrape_metrics_all_have_a_provider_somewhere() -> None:
    """A "scrape" metric nobody provides would be an empty family forever."""
    provided = {name for _, method, name, _ in SITES if method == "provide"}
    from clickagg.metrics import _STAGE_READERS

    provided |= {name for readers in _STAGE_READERS.values() for name in readers}
    assert provided == {s.name for s in CATALOGUE if s.source == "scrape"}


def test_both_stages_register_their_scrape_time_gauges() -> None:
    """watermark_seconds and the open-window gauges exist only if the stages call METRICS.track."""
    from clickagg.metrics import _STAGE_READERS

    tracked = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "METRICS"
                and node.func.attr == "track"
            ):
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path}:{node.lineno}: stage name must be a literal"
                tracked.append(first.value)
    assert sorted(tracked) == sorted(_STAGE_READERS) == ["stage1", "stage2"]


def test_declared_call_metrics_are_all_used() -> None:
    """A declared metric no code updates is a dashboard panel that stays empty."""
    used = {name for _, method, name, _ in SITES if method in KIND_OF_METHOD}
    unused = {s.name for s in CATALOGUE if s.source == "call"} - used
    assert not unused, f"declared but never updated: {sorted(unused)}"


def test_catalogue_rules() -> None:
    names = [s.name for s in CATALOGUE]
    assert len(names) == len(set(names))
    for s in CATALOGUE:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", s.name), s.name
        assert not s.name.startswith(PREFIX), f"{s.name}: declared without the prefix"
        assert s.help.strip() and "\n" not in s.help, s.name
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", label) for label in s.labels), s.name
        # Sorted: series print their labels in this order, the order /metrics always had (tests and
        # scripts match text like 'clickagg_consumer_lag{partition="0",stage="stage1",topic=').
        assert list(s.labels) == sorted(s.labels), s.name
        assert (s.kind == "counter") == s.name.endswith("_total"), s.name
        if s.kind == "histogram":
            assert list(s.buckets) == sorted(set(s.buckets)) and len(s.buckets) >= 5, s.name
            assert s.name.endswith("_seconds"), "histograms here are durations, in seconds"
        else:
            assert not s.buckets, s.name
    # The SPEC's invariant metrics keep their names and label.
    for name in ("events_in_total", "records_counted_total", "records_dead_lettered_total"):
        assert BY_NAME[name].kind == "counter" and BY_NAME[name].labels == ("partition",)
    assert BY_NAME["reference_reloads_total"].labels == ("result",)


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "kind": "counter"},  # counters end in _total
        {"name": "x_total", "kind": "gauge"},
        {"name": "x_seconds", "kind": "histogram"},  # no buckets
        {"name": "x", "kind": "gauge", "help": " "},
        {"name": "x_seconds", "kind": "histogram", "buckets": (1.0,), "source": "scrape"},
    ],
)
def test_a_malformed_declaration_is_refused(bad: dict[str, object]) -> None:
    from clickagg.metrics_catalogue import MetricSpec

    fields: dict[str, object] = {"help": "h", **bad}
    with pytest.raises(MetricError):
        Metrics([MetricSpec(**fields)], process=False)  # type: ignore[arg-type]


def test_a_name_declared_twice_is_refused() -> None:
    with pytest.raises(MetricError, match="twice"):
        Metrics([CATALOGUE[0], CATALOGUE[0]], process=False)


def test_the_readme_lists_every_metric() -> None:
    """README "Metrics and dashboards" is what operators read: no metric may be missing from it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Metrics and dashboards", 1)[1].split("\n## ", 1)[0]
    missing = [s.exposed for s in CATALOGUE if f"`{s.exposed}`" not in section]
    assert not missing, f"README 'Metrics and dashboards' does not list {missing}"
