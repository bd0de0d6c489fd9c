"""SPEC's Elasticsearch document for one group key and the index mapping that types it.

Field names are a contract with dashboards. The mapping is plain data (clickagg.es.schema installs
it), so the document and its types are read side by side and tested together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from clickagg.core.keys import GroupKey

# SPEC's fields are searchable and aggregatable. The extra ones cost Elasticsearch only what they are
# used for (indexing is half of the benchmark's CPU): ctr can be sorted and aggregated but not
# range-searched (filter on click/impression); owner_partition is only filtered on (stage 2's state
# restore). window_end and applied_version are no longer written (see document()); they stay in the
# mapping, unindexed, so documents written by earlier versions still fit it (the mapping is strict).
DOCUMENT_MAPPING: dict[str, Any] = {
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


@lru_cache(maxsize=4096)  # a handful of window starts and ends, formatted once each
def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def document(key: GroupKey, impressions: int, clicks: int, final: bool, owner: int) -> dict[str, Any]:
    """SPEC's fields, ctr, and the owner partition (stage 2's restore filters on it).

    No window end and no applied version: Elasticsearch parses and stores every field of ~1.4M
    documents per 5M events, and these two cost it ~20 % of its CPU per document. The window end is
    `time` + the window; the applied version is the document's own `_version` (external versioning).
    """
    start, gender, segment, article = key
    return {
        "time": iso(start),
        "gender": gender,
        "segment_id": segment,
        "article_id": article,
        "impression": impressions,
        "click": clicks,
        "ctr": (clicks / impressions) if impressions else None,
        "final": final,
        "owner_partition": owner,
    }
