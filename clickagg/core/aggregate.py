"""Pre-aggregation of a batch of parsed events into partial counts per group key."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from clickagg.core.events import CLICK, IMPRESSION
from clickagg.core.keys import GroupKey

Counts = list[int]  # [impressions, clicks]


def add(acc: dict[GroupKey, Counts], key: GroupKey, action: int) -> None:
    counts = acc.get(key)
    if counts is None:
        counts = acc[key] = [0, 0]
    if action == IMPRESSION:
        counts[0] += 1
    elif action == CLICK:
        counts[1] += 1


def merge(acc: dict[GroupKey, Counts], key: GroupKey, impressions: int, clicks: int) -> None:
    counts = acc.get(key)
    if counts is None:
        acc[key] = [impressions, clicks]
    else:
        counts[0] += impressions
        counts[1] += clicks


def aggregate(
    events: Iterable[tuple[int, int, int, int]],
    lookup: Callable[[int], tuple[str | None, int | None]],
    window_ms: int,
) -> dict[GroupKey, Counts]:
    """events: (ts_ms, article_id, user_id, action_code). The LEFT JOIN happens via lookup."""
    acc: dict[GroupKey, Counts] = {}
    for ts, article, user, action in events:
        gender, segment = lookup(user)
        add(acc, (ts - ts % window_ms, gender, segment, article), action)
    return acc
