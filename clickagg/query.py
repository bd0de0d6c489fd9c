"""Read side: the latest minutes from Elasticsearch, with a completeness flag per minute."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch


@dataclass(frozen=True)
class MinuteTotals:
    time: str
    impression: int
    click: int
    documents: int
    final: bool  # every document of the minute is final: the minute is complete


async def latest_minutes(es: AsyncElasticsearch, index: str, minutes: int = 5) -> list[MinuteTotals]:
    body: dict[str, Any] = {
        "size": 0,
        "aggs": {
            "per_minute": {
                "terms": {"field": "time", "size": minutes, "order": {"_key": "desc"}},
                "aggs": {
                    "impression": {"sum": {"field": "impression"}},
                    "click": {"sum": {"field": "click"}},
                    "open": {"filter": {"term": {"final": False}}},
                },
            }
        },
    }
    resp = await es.search(index=index, body=body)
    rows = []
    for bucket in resp["aggregations"]["per_minute"]["buckets"]:
        rows.append(
            MinuteTotals(
                time=bucket["key_as_string"],
                impression=int(bucket["impression"]["value"]),
                click=int(bucket["click"]["value"]),
                documents=bucket["doc_count"],
                final=bucket["open"]["doc_count"] == 0,
            )
        )
    return sorted(rows, key=lambda r: r.time)


def table(rows: list[MinuteTotals]) -> str:
    lines = [f"{'minute (UTC)':<26}{'impressions':>12}{'clicks':>8}{'docs':>7}  final"]
    for r in rows:
        lines.append(
            f"{r.time:<26}{r.impression:>12}{r.click:>8}{r.documents:>7}  {'yes' if r.final else 'no'}"
        )
    return "\n".join(lines)


def as_dicts(rows: list[MinuteTotals]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
