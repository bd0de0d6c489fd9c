"""Every metric the worker exposes, declared once: name, type, HELP, label names, buckets.

Why a catalogue: call sites (stages, sink, pipeline) name metrics by string; declaring them here
means an undeclared name or a wrong label set fails loudly (clickagg.metrics raises, and
tests/unit/test_metrics_catalogue.py checks every ``METRICS.`` call site in the code against this
list), the Grafana dashboard can be checked to name only metrics that exist, and the README's
metrics list has one source. Names are without the ``clickagg_`` prefix, as the call sites spell
them; a counter's name ends in ``_total`` and is exposed exactly so (prometheus-client adds
``_total`` to a counter's family name, so the family is declared without it: see clickagg.metrics).

``source``: "call" metrics are updated by the code through METRICS.inc/set/observe; "scrape"
metrics are read when /metrics is scraped, from a callback (clickagg.metrics.Metrics.provide),
because their value is the current state of something (a partition's watermark, the open
windows) that nothing needs to push on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
Source = Literal["call", "scrape"]

PREFIX = "clickagg_"

# Seconds. Sink latency: a bulk request or a flush takes milliseconds on a healthy cluster and
# up to the client's 30 s timeout (plus retries) in trouble.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds. Final delay = window end -> its final documents written: at least the allowed lateness,
# normally under a minute (the SPEC's promise); replays of old data land in the last buckets.
DELAY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0, 600.0, 3600.0)
# Seconds. Freshness = a flush written -> how far behind it the stage-2 watermark is.
FRESHNESS_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 3600.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # without PREFIX; counters end in _total
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histograms only
    source: Source = "call"

    @property
    def exposed(self) -> str:
        """The family name on /metrics (what PromQL and the dashboard use)."""
        return PREFIX + self.name


CATALOGUE: tuple[MetricSpec, ...] = (
    # --- the invariant (SPEC): events_in_total = records_counted_total + records_dead_lettered_total
    MetricSpec(
        "events_in_total",
        "counter",
        "Records read from the events topic whose stage-1 transaction committed, per source "
        "partition; equals records_counted_total + records_dead_lettered_total.",
        ("partition",),
    ),
    MetricSpec(
        "records_counted_total",
        "counter",
        "Records counted into partial counts (committed), per source partition.",
        ("partition",),
    ),
    MetricSpec(
        "records_dead_lettered_total",
        "counter",
        "Records sent to the dead-letter topic by stage 1 (committed), per source partition.",
        ("partition",),
    ),
    MetricSpec(
        "events_rejected_total",
        "counter",
        "Stage-1 dead letters by reason (invalid_json, missing_user_id, late, future, expired, ...; "
        "README: the invariant).",
        ("reason",),
    ),
    MetricSpec(
        "late_rows_total",
        "counter",
        "Stage-2 partial rows for windows already final, sent to the dead-letter topic.",
    ),
    MetricSpec(
        "expired_rows_total",
        "counter",
        "Stage-2 partial rows for days past RETENTION_DAYS, sent to the dead-letter topic (reason expired).",
    ),
    MetricSpec(
        "indices_deleted_total",
        "counter",
        "Daily indices deleted by retention (RETENTION_DAYS), this deployment's only.",
    ),
    # --- the sink
    MetricSpec(
        "hourly_documents_written_total",
        "counter",
        "Hourly rollup documents written to the search engine (open hours when a minute closes, and finals).",
    ),
    MetricSpec(
        "documents_written_total",
        "counter",
        "Minute documents written to the search engine (partial upserts and finals).",
    ),
    MetricSpec(
        "documents_final_total", "counter", "Minute documents written with final=true (window closed)."
    ),
    MetricSpec(
        "es_bulk_errors_total", "counter", "Bulk requests to the search engine that failed (then retried)."
    ),
    MetricSpec(
        "es_bulk_retries_total",
        "counter",
        "Bulk responses that left documents to retry (429 and other retryable statuses, or rejects).",
    ),
    MetricSpec(
        "es_doc_rejected_total",
        "counter",
        "Documents the search engine rejected with a non-retryable status (a bug, retried anyway "
        "so no count is lost); see the log.",
    ),
    MetricSpec(
        "es_bulk_seconds",
        "histogram",
        "Duration of one bulk request to the search engine (sink latency), seconds.",
        buckets=LATENCY_BUCKETS,
    ),
    MetricSpec(
        "flush_seconds",
        "histogram",
        "Duration of one stage-2 flush: every changed document of the flush written, seconds.",
        buckets=LATENCY_BUCKETS,
    ),
    MetricSpec(
        "final_delay_seconds",
        "histogram",
        "Window end to its final documents written, seconds (one sample per window and flush).",
        buckets=DELAY_BUCKETS,
    ),
    MetricSpec(
        "freshness_seconds",
        "histogram",
        "When a flush's documents are written: wall clock minus the stage-2 watermark (the event "
        "time up to which every source partition has been counted), seconds.",
        buckets=FRESHNESS_BUCKETS,
    ),
    # --- progress
    MetricSpec(
        "consumer_lag",
        "gauge",
        "Records between a stage's consumer position and the partition's end offset.",
        ("partition", "stage", "topic"),
    ),
    MetricSpec(
        "watermark_seconds",
        "gauge",
        "Stage 1: the event-time watermark of each source partition this worker owns, unix seconds.",
        ("partition",),
        source="scrape",
    ),
    MetricSpec(
        "closed_below_seconds",
        "gauge",
        "Stage 2: windows closing at or before this event time are final, per partials partition "
        "this worker owns, unix seconds.",
        ("partition",),
        source="scrape",
    ),
    MetricSpec(
        "open_windows",
        "gauge",
        "Stage 2: windows held open in memory, per partials partition this worker owns.",
        ("partition",),
        source="scrape",
    ),
    MetricSpec(
        "open_keys",
        "gauge",
        "Stage 2: (window, gender, segment, article) keys held open in memory, per partials partition.",
        ("partition",),
        source="scrape",
    ),
    MetricSpec(
        "stage_restarts_total",
        "counter",
        "Stage failures after which the stage was rebuilt in-process, by stage.",
        ("stage",),
    ),
    MetricSpec(
        "ready",
        "gauge",
        "1 when /readyz answers 200 (started, Kafka and the search engine reachable, stages moving), else 0.",
        source="scrape",
    ),
    # --- reference data
    MetricSpec("reference_users", "gauge", "Users in the reference data snapshot in use."),
    MetricSpec(
        "reference_reloads_total",
        "counter",
        "Reference data reloads after the initial load, by result (ok: swapped in; failed: the "
        "last good copy kept).",
        ("result",),
        source="scrape",
    ),
)

BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}

# prometheus-client's process, platform and GC collectors, registered on the same registry; their
# names are the standard ones (process_cpu_seconds_total, ...), as every stock dashboard expects.
PROCESS_FAMILIES = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
)


def spec(name: str) -> MetricSpec:
    """The declaration of a metric; an undeclared name is a bug at the call site: fail loudly."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"metric {name!r} is not declared in clickagg/metrics_catalogue.py; declare it "
            "(type, HELP, labels) before using it"
        ) from None
