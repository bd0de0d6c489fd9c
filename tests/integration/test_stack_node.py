"""The local Elasticsearch node runs like a production one, not like one of ES's own test suites."""

from __future__ import annotations

from clickagg.stack.layout import StackLayout


def test_elasticsearch_node_runs_with_production_settings(stack: StackLayout) -> None:
    # The launcher hosts the node in ES's test framework, whose ESTestCase initializer switches on
    # Netty's paranoid leak detection and, at random, java.time-only date parsing (~2x the CPU per
    # date field). The launcher undoes both and prints what the classes really use at start.
    log = stack.log_file("elasticsearch").read_text(errors="replace")
    started = [line for line in log.splitlines() if line.startswith("clickagg-es started")]
    assert started, "the node's start line is missing from its log"
    assert started[-1] == "clickagg-es started (java_time_parsers_only=false netty_leak_detection=DISABLED)"
