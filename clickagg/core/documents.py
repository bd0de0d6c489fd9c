"""SPEC's Elasticsearch document for one group key (field names are a contract with dashboards)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from clickagg.core.keys import GroupKey


@lru_cache(maxsize=4096)  # a handful of window starts and ends, formatted once each
def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def document(
    key: GroupKey, impressions: int, clicks: int, final: bool, window_ms: int, owner: int, version: int
) -> dict[str, Any]:
    start, gender, segment, article = key
    return {
        "time": iso(start),
        "window_end": iso(start + window_ms),
        "gender": gender,
        "segment_id": segment,
        "article_id": article,
        "impression": impressions,
        "click": clicks,
        "ctr": (clicks / impressions) if impressions else None,
        "final": final,
        "owner_partition": owner,
        "applied_version": version,
    }
