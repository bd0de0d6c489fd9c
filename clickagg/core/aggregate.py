"""Pre-aggregation's partial counts per group key (clickagg.core.batch counts inline, on its hot path)."""

from __future__ import annotations

Counts = list[int]  # [impressions, clicks]
