"""clickagg.metrics on prometheus-client: what a scraper sees, and the call-site API the stages use.

Why: the exposition is parsed with prometheus-client's own parser (what Prometheus accepts), the
SPEC's invariant counters must keep their exact names (prometheus-client adds ``_total`` to a
counter's family name, and a mistake there would expose ``..._total_total``), a wrong name or label
set must raise rather than export garbage, and the stage gauges are read from the real stage
classes so a rename in a stage breaks this test instead of silently emptying a dashboard panel.
"""

from __future__ import annotations

import gc
import math

import prometheus_client
import pytest
from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from clickagg.agents.partial_counts import PartialCounter, SourceTask
from clickagg.agents.window_writer import WindowWriter
from clickagg.config import Settings
from clickagg.core.watermarks import SourceClock
from clickagg.kafka_util import SendLimits
from clickagg.metrics import METRICS, MetricError, Metrics
from clickagg.metrics_catalogue import BY_NAME, CATALOGUE, PROCESS_FAMILIES
from clickagg.tables.window_state import WindowState


def families(m: Metrics) -> dict[str, prometheus_client.Metric]:
    return {f.name: f for f in text_string_to_metric_families(m.render())}


def samples(m: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Exposed sample name -> {sorted labels: value}, from the parsed text."""
    out = {}
    for family in text_string_to_metric_families(m.render()):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_every_declared_metric_is_exposed_with_help_and_type() -> None:
    m = Metrics()
    got = families(m)
    for spec in CATALOGUE:
        # The parser names a counter's family without _total, as the text format defines it.
        family = spec.exposed.removesuffix("_total") if spec.kind == "counter" else spec.exposed
        assert family in got, f"{spec.exposed} missing from /metrics"
        assert got[family].type == spec.kind
        assert got[family].documentation == spec.help
    for name in PROCESS_FAMILIES:
        assert name.removesuffix("_total") in got, f"process metric {name} missing"


def test_counters_keep_their_exact_names_and_the_invariant_is_visible() -> None:
    m = Metrics(process=False)
    for p, (counted, dead) in enumerate([(7, 3), (5, 0)]):
        m.inc("events_in_total", counted + dead, {"partition": p})
        m.inc("records_counted_total", counted, {"partition": p})
        m.inc("records_dead_lettered_total", dead, {"partition": p})
    text = m.render()
    assert 'clickagg_events_in_total{partition="0"} 10.0' in text
    assert "_total_total" not in text
    ins = samples(m, "clickagg_events_in_total")
    counted_s = samples(m, "clickagg_records_counted_total")
    dead_s = samples(m, "clickagg_records_dead_lettered_total")
    for key, value in ins.items():
        assert value == counted_s[key] + dead_s[key]
    assert m.counter("events_in_total", {"partition": 0}) == 10
    assert m.counter("events_in_total", {"partition": "1"}) == 5  # label values are strings on the wire
    assert m.counter_total("events_in_total") == 15
    assert m.counter("events_in_total", {"partition": 9}) == 0  # no series yet


def test_histograms_have_buckets_count_and_sum() -> None:
    m = Metrics(process=False)
    for v in (0.003, 0.2, 0.2, 70.0):
        m.observe("es_bulk_seconds", v)
    family = families(m)["clickagg_es_bulk_seconds"]
    assert family.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.005"] == 1 and buckets["0.25"] == 3 and buckets["60.0"] == 3 and buckets["+Inf"] == 4
    assert len(buckets) == len(BY_NAME["es_bulk_seconds"].buckets) + 1
    count = [s.value for s in family.samples if s.name == "clickagg_es_bulk_seconds_count"]
    total = [s.value for s in family.samples if s.name == "clickagg_es_bulk_seconds_sum"]
    assert count == [4] and math.isclose(total[0], 70.403)


def test_observe_behind_ignores_unknown_watermarks() -> None:
    m = Metrics(process=False)
    m.observe_behind("freshness_seconds", 100.0, [-1, -1])  # no watermark anywhere: no sample
    m.observe_behind("freshness_seconds", 100.0, [])
    m.observe_behind("freshness_seconds", 100.0, [98_000, -1, 99_500])  # the oldest known: 2 s behind
    fam = families(m)["clickagg_freshness_seconds"]
    assert [s.value for s in fam.samples if s.name.endswith("_count")] == [1]
    assert [s.value for s in fam.samples if s.name.endswith("_sum")] == [2.0]


def test_gauges_and_scrape_time_providers() -> None:
    m = Metrics(process=False)
    m.set("consumer_lag", 4, {"stage": "stage1", "topic": "ev", "partition": 0})
    m.set("consumer_lag", 2, {"stage": "stage1", "topic": "ev", "partition": 0})
    assert samples(m, "clickagg_consumer_lag") == {
        (("partition", "0"), ("stage", "stage1"), ("topic", "ev")): 2.0
    }
    reloads = {"ok": 1, "failed": 0}
    m.provide("reference_reloads_total", lambda: [({"result": k}, v) for k, v in reloads.items()])
    reloads["failed"] = 2  # read at scrape time, not when registered
    assert m.counter("reference_reloads_total", {"result": "failed"}) == 2
    assert families(m)["clickagg_reference_reloads"].type == "counter"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m.inc("no_such_metric_total"), "not declared"),
        (lambda m: m.inc("consumer_lag", 1, {"stage": "s", "topic": "t", "partition": 0}), "gauge"),
        (lambda m: m.set("events_in_total", 1, {"partition": 0}), "counter"),
        (lambda m: m.observe("documents_written_total", 1), "counter"),
        (lambda m: m.inc("events_in_total", 1), "takes labels"),
        (lambda m: m.inc("events_in_total", 1, {"partition": 0, "extra": 1}), "takes labels"),
        (lambda m: m.set("watermark_seconds", 1, {"partition": 0}), "scrape time"),
        (lambda m: m.provide("events_in_total", list), "updated by calls"),
        (lambda m: m.track("stage3", object()), "no metrics readers"),
        (lambda m: m.counter("consumer_lag"), "not a counter"),
    ],
)
def test_misuse_fails_loudly(call: object, match: str) -> None:
    with pytest.raises(MetricError, match=match):
        call(Metrics(process=False))  # type: ignore[operator]


def test_a_provider_with_wrong_labels_fails_the_scrape() -> None:
    m = Metrics(process=False)
    m.provide("reference_reloads_total", lambda: [({"outcome": "ok"}, 1)])
    with pytest.raises(MetricError, match="takes labels"):
        m.render()


def test_registries_are_private_and_isolated() -> None:
    a, b = Metrics(process=False), Metrics(process=False)
    a.inc("documents_written_total", 3)
    assert b.counter("documents_written_total") == 0
    assert METRICS.registry is not prometheus_client.REGISTRY
    assert prometheus_client.REGISTRY.get_sample_value("clickagg_documents_written_total") is None


def test_stage1_watermarks_are_read_from_the_real_stage() -> None:
    m = Metrics(process=False)
    limits = SendLimits.from_topics(partials_limit=1_048_588, dlq_limit=1_048_588)
    stage = PartialCounter(
        Settings(app_id="t"), None, partials_partitions=2, source_partitions=2, limits=limits
    )
    m.track("stage1", stage)
    clock = SourceClock()
    clock.observe(1_700_000_000_500, now_ms=0)
    stage.tasks[TopicPartition("ev", 1)] = SourceTask(TopicPartition("ev", 1), None, 0, clock)  # type: ignore[arg-type]
    stage.tasks[TopicPartition("ev", 0)] = SourceTask(TopicPartition("ev", 0), None, 0, SourceClock())  # type: ignore[arg-type]
    # Partition 0 has no record yet: no sample rather than a watermark of -0.001 s.
    assert samples(m, "clickagg_watermark_seconds") == {(("partition", "1"),): 1_700_000_000.5}


def test_stage2_gauges_are_read_from_the_real_stage_and_vanish_with_it() -> None:
    m = Metrics(process=False)
    stage = WindowWriter(Settings(app_id="t"), None)  # type: ignore[arg-type]
    try:
        m.track("stage2", stage)
        state = WindowState(partition=3, window_ms=60_000, lateness_ms=0)
        state.load((60_000, "f", 1, 10), 1, 0, version=1)
        state.load((60_000, "m", 2, 10), 2, 0, version=1)
        state.load((120_000, None, None, 11), 3, 1, version=1)
        state.closed_below = 59_000
        stage.states[TopicPartition("partials", 3)] = state
        assert samples(m, "clickagg_open_windows") == {(("partition", "3"),): 2}
        assert samples(m, "clickagg_open_keys") == {(("partition", "3"),): 3}
        assert samples(m, "clickagg_closed_below_seconds") == {(("partition", "3"),): 59.0}
    finally:
        stage.sink.close()
        stage.progress_sink.close()
        stage.post.close()
    del stage, state
    gc.collect()
    assert samples(m, "clickagg_open_keys") == {}  # a stage that is gone reports nothing
