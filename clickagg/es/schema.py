"""Index template and mapping with SPEC's field types, installed by the worker at start."""

from __future__ import annotations

from typing import Any

# SPEC's fields are searchable and aggregatable. The extra ones cost Elasticsearch only what they are
# used for (indexing is half of the benchmark's CPU): ctr can be sorted and aggregated but not
# range-searched (filter on click/impression); owner_partition is only filtered on (stage 2's state
# restore). window_end and applied_version are no longer written (see clickagg.core.documents); they
# stay in the mapping, unindexed, so documents written by earlier versions still fit it.
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "time": {"type": "date"},
        "window_end": {"type": "date", "index": False, "doc_values": False},
        "gender": {"type": "keyword"},
        "segment_id": {"type": "integer"},
        "article_id": {"type": "long"},
        "impression": {"type": "long"},
        "click": {"type": "long"},
        "ctr": {"type": "double", "index": False},
        "final": {"type": "boolean"},
        "owner_partition": {"type": "integer", "doc_values": False},
        "applied_version": {"type": "long", "index": False, "doc_values": False},
        "updated_at": {"type": "date"},
    },
}


PROGRESS_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "partition": {"type": "integer"},
        "partitions": {"type": "integer"},
        "closed_below_ms": {"type": "long"},
        "window_ms": {"type": "long"},
        "lateness_ms": {"type": "long"},
        "updated_at": {"type": "date"},
    },
}


def progress_index(index: str) -> str:
    """One document per partials partition: windows closing at or before closed_below_ms are final."""
    return f"{index}-progress"


# The writer refreshes the documents index itself when it matters (clickagg/es/refresh_policy.py);
# the index's own schedule is only a safety net for documents written just before a worker died.
# (Anyone else writing to it with `refresh=wait_for` waits for that schedule: use `refresh=true`.)
DOCUMENTS_REFRESH_INTERVAL = "30s"


async def install(es: Any, index: str) -> None:
    await _install_one(es, index, MAPPINGS, {"refresh_interval": DOCUMENTS_REFRESH_INTERVAL})
    await _install_one(es, progress_index(index), PROGRESS_MAPPINGS, {})


async def _install_one(es: Any, index: str, mappings: dict[str, Any], settings: dict[str, Any]) -> None:
    """Template first (so any recreated index gets the mapping), then the index itself."""
    await es.indices.put_index_template(
        name=f"{index}-template",
        index_patterns=[index],
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0, **settings},
            "mappings": mappings,
        },
        priority=500,
    )
    if not await es.indices.exists(index=index):
        try:
            await es.indices.create(index=index)
        except Exception as exc:  # a concurrent worker may have created it first
            if "resource_already_exists_exception" not in str(exc):
                raise
