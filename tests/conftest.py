"""Test session header: which real Kafka and Elasticsearch processes the integration tests use."""

from __future__ import annotations

from clickagg.stack import manager
from clickagg.stack.layout import StackLayout


def pytest_report_header() -> list[str]:
    _, lines = manager.status(StackLayout.from_env())
    return ["local stack (integration tests run against these processes):", *[f"  {line}" for line in lines]]
