"""SEARCH_ENGINE=auto against the two real local nodes: each is recognised by its own GET / answer."""

from __future__ import annotations

from clickagg.config import Settings
from clickagg.es import engines
from clickagg.stack.layout import StackLayout


async def test_auto_tells_the_engines_apart(stack: StackLayout, opensearch: str) -> None:
    for url, kind in ((stack.es_url, "elasticsearch"), (opensearch, "opensearch")):
        engines._DETECTED.pop(url, None)
        s = Settings(elasticsearch_url=url)
        assert engines.engine_kind(s) == kind
        engine = engines.search_engine(s, timeout_s=10)
        try:
            health = await engine.health()
            assert engine.kind == kind and health["status"] in ("green", "yellow")
        finally:
            await engine.close()
