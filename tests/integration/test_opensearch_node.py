"""`clickagg stack up opensearch`: a real OpenSearch 2.19 node that behaves like a production one.

The node is opt-in (not in `clickagg stack up`'s default set): this module brings it up itself through
the manager, as the `stack` fixture does for Kafka + Elasticsearch, and fails (never skips) when it
cannot start. It stops the node again afterwards unless it was already running.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from clickagg.stack import manager, procs
from clickagg.stack.layout import StackError, StackLayout
from clickagg.stack.opensearch import NAME, opensearch_service, url
from clickagg.stack.services import java_major


@pytest.fixture(scope="module")
def opensearch() -> Iterator[StackLayout]:
    layout = StackLayout.from_env()
    service = opensearch_service(layout)
    was_running = procs.owned_pid(layout.pid_file(NAME), service.tag(layout)) is not None
    try:
        lines = manager.up(layout, NAME)
    except StackError as exc:
        pytest.fail(f"the OpenSearch node could not start: {exc}", pytrace=False)
    print("\n[stack] " + "\n[stack] ".join(lines))
    yield layout
    if not was_running:
        manager.down(layout, NAME)


def _request(method: str, address: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        address, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_opensearch_node_answers_as_opensearch_2_19(opensearch: StackLayout) -> None:
    status, root = _request("GET", url(opensearch) + "/")
    assert status == 200
    assert root["version"]["distribution"] == "opensearch"
    assert root["version"]["number"].startswith("2.19.")


def test_external_versions_are_kept_and_stale_ones_refused(opensearch: StackLayout) -> None:
    index = f"clickagg-os-test-{uuid.uuid4().hex[:8]}"
    base = url(opensearch)
    doc = {
        "time": "2026-01-27T10:00:00Z",
        "gender": None,
        "segment_id": None,
        "article_id": 7,
        "impression": 3,
    }
    try:
        status, written = _request("PUT", f"{base}/{index}/_doc/1?version=5&version_type=external", doc)
        assert status == 201, written
        assert written["_version"] == 5

        status, read = _request("GET", f"{base}/{index}/_doc/1")
        assert status == 200
        assert read["_version"] == 5 and read["_source"] == doc

        for stale in (4, 5):  # older, and equal: external versions must grow
            status, refused = _request(
                "PUT",
                f"{base}/{index}/_doc/1?version={stale}&version_type=external",
                {**doc, "impression": 1},
            )
            assert status == 409, refused
            assert refused["error"]["type"] == "version_conflict_engine_exception"

        status, newer = _request(
            "PUT", f"{base}/{index}/_doc/1?version=6&version_type=external", {**doc, "impression": 4}
        )
        assert status == 200 and newer["_version"] == 6
        status, read = _request("GET", f"{base}/{index}/_doc/1")
        assert read["_version"] == 6 and read["_source"]["impression"] == 4
    finally:
        _request("DELETE", f"{base}/{index}")


def test_opensearch_node_runs_with_production_settings(opensearch: StackLayout) -> None:
    # The node is hosted by the test framework's MockNode. OpenSearchTestCase's initializer (paranoid
    # Netty leak detection, the test security manager) must not run, the server's Randomness must be
    # production's (not the test runner's seeded one), assertions off, and the JVM gets the locale
    # providers OpenSearch's own launcher sets (SPI first: ISO weeks start on Monday).
    log = opensearch.log_file(NAME).read_text(errors="replace")
    started = [line for line in log.splitlines() if line.startswith("clickagg-os started")]
    assert started, "the node's start line is missing from its log"
    locale = "SPI,CLDR" if java_major() >= 23 else "SPI,COMPAT"
    assert started[-1] == (
        "clickagg-os started (netty_leak_detection=SIMPLE randomness=production assertions=false "
        f"locale_providers={locale} week_start=MONDAY security_manager=none)"
    )
