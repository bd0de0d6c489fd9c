"""The OpenSearch node is opt-in: known to `down`/`status`, never started by a bare `stack up`."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickagg.stack import manager
from clickagg.stack.layout import StackError, StackLayout
from clickagg.stack.opensearch import production_jvm_options


def test_default_set_is_kafka_and_elasticsearch(tmp_path: Path) -> None:
    layout = StackLayout(cache_dir=tmp_path, state_dir=tmp_path, kafka_port=1, es_port=2)
    assert [s.name for s in manager.services(layout)] == ["kafka", "elasticsearch"]
    assert [s.name for s in manager.services(layout, opt_in=True)][-1] == "opensearch"
    assert [s.name for s in manager.services(layout, "opensearch")] == ["opensearch"]
    assert layout.opensearch_port == 9201


def test_opensearch_port_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKAGG_OPENSEARCH_PORT", "9401")
    assert StackLayout.from_env().opensearch_port == 9401
    monkeypatch.setenv("CLICKAGG_OPENSEARCH_PORT", "nope")
    with pytest.raises(StackError, match="CLICKAGG_OPENSEARCH_PORT"):
        StackLayout.from_env()


def test_stopped_opensearch_does_not_make_status_unhealthy(tmp_path: Path) -> None:
    layout = StackLayout(cache_dir=tmp_path, state_dir=tmp_path, kafka_port=1, es_port=2)
    ok, lines = manager.status(layout)
    assert not ok  # kafka and elasticsearch are not running here
    assert lines[-1].startswith("opensearch") and "opt-in" in lines[-1]
    assert manager.down(layout, "opensearch") == ["opensearch     not running"]


def test_locale_providers_follow_the_jdk() -> None:
    # OpenSearch 2.x's launcher: SPI (its ISO calendar provider) then COMPAT; JDK 23 removed COMPAT.
    assert "-Djava.locale.providers=SPI,COMPAT" in production_jvm_options(17)
    assert "-Djava.locale.providers=SPI,CLDR" in production_jvm_options(23)
