"""SPEC's Elasticsearch document for one group key (field names are a contract with dashboards)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from clickagg.core.keys import GroupKey


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
