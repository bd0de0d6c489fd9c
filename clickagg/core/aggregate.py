"""Pre-aggregation: one parsed event added into a batch's partial counts per group key."""

from __future__ import annotations

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
