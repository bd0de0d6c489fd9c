"""Integration tests run against the real local stack; they fail (never skip) if it cannot start."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from clickagg.stack import manager
from clickagg.stack.layout import StackError, StackLayout
from tests.support.cluster import Deployment


@pytest.fixture(scope="session")
def stack() -> StackLayout:
    """Bring the stack up (a no-op when the test command already did) or fail loudly."""
    layout = StackLayout.from_env()
    try:
        lines = manager.up(layout)
    except StackError as exc:
        pytest.fail(f"the local stack could not start: {exc}", pytrace=False)
    print("\n[stack] " + "\n[stack] ".join(lines))
    return layout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def deployment(stack: StackLayout, tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(bootstrap=stack.kafka_bootstrap, es_url=stack.es_url, tmp=tmp_path)
    yield dep
    dep.stop_workers()


@pytest.fixture(scope="session")
def opensearch(stack: StackLayout) -> str:
    """The local OpenSearch node (opt-in in `stack up`; the test command starts it): its URL."""
    try:
        lines = manager.up(stack, "opensearch")
    except StackError as exc:
        pytest.fail(f"the local OpenSearch node could not start: {exc}", pytrace=False)
    print("\n[stack] " + "\n[stack] ".join(lines))
    return f"http://127.0.0.1:{stack.opensearch_port}"


ENGINES = ("elasticsearch", "opensearch")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, stack: StackLayout) -> str:
    """Run a test once per search engine; the value is the engine's service name in the stack."""
    if request.param == "opensearch":
        request.getfixturevalue("opensearch")
    return str(request.param)


@pytest.fixture
def engine_url(stack: StackLayout, engine: str) -> str:
    """The parametrized engine's URL on the local stack."""
    return stack.es_url if engine == "elasticsearch" else f"http://127.0.0.1:{stack.opensearch_port}"


@pytest.fixture
def engine_deployment(stack: StackLayout, engine_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A deployment writing to the parametrized engine (SEARCH_ENGINE=auto finds out which it is)."""
    dep = Deployment(bootstrap=stack.kafka_bootstrap, es_url=engine_url, tmp=tmp_path)
    yield dep
    dep.stop_workers()
