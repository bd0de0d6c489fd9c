"""Index template and mapping with SPEC's field types, installed by the worker at start."""

from __future__ import annotations

from typing import Any

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "time": {"type": "date"},
        "window_end": {"type": "date"},
        "gender": {"type": "keyword"},
        "segment_id": {"type": "integer"},
        "article_id": {"type": "long"},
        "impression": {"type": "long"},
        "click": {"type": "long"},
        "ctr": {"type": "double"},
        "final": {"type": "boolean"},
        "owner_partition": {"type": "integer"},
        "applied_version": {"type": "long"},
        "updated_at": {"type": "date"},
    },
}


async def install(es: Any, index: str) -> None:
    """Template first (so any recreated index gets the mapping), then the index itself."""
    await es.indices.put_index_template(
        name=f"{index}-template",
        index_patterns=[index],
        template={"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": MAPPINGS},
        priority=500,
    )
    if not await es.indices.exists(index=index):
        try:
            await es.indices.create(index=index)
        except Exception as exc:  # a concurrent worker may have created it first
            if "resource_already_exists_exception" not in str(exc):
                raise
