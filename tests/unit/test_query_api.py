"""HTTP read API without a server: parameter checking, error mapping, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from clickagg.app import api, openapi
from clickagg.core.documents import iso
from clickagg.es.errors import Unreachable
from clickagg.query import (
    DEFAULT_MIN_IMPRESSIONS,
    UNKNOWN,
    ArticleStat,
    Completeness,
    MinuteTotals,
    TopArticles,
)


class Untouchable:
    """A QueryClient stand-in for requests that must be refused before Elasticsearch is asked."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a bad request reached the client ({name})")


class Recording:
    """Records what the handler asked for; answers with a fixed ranking."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def top_articles(self, **kwargs: Any) -> TopArticles:
        self.calls.append(kwargs)
        return TopArticles(0, 60_000, (ArticleStat(7, 10, 3, 0.3),))


BAD_REQUESTS = [
    ("/api/minutes/latest", {"n": "0"}, "n must be in 1..10080"),
    ("/api/minutes/latest", {"n": "five"}, "n must be an integer"),
    ("/api/minutes/latest", {"minutes": "5"}, "unknown parameter(s) minutes; expected: n"),
    ("/api/minutes", {"from": "2026-01-27T10:00:00Z"}, "to is required"),
    ("/api/minutes", {"from": "noon", "to": "1"}, "from: not an ISO 8601 time or epoch milliseconds: 'noon'"),
    ("/api/minutes", {"from": "2026-01-27T10:00:00Z", "to": "2026-01-27T10:00:00Z"}, "to must be after from"),
    ("/api/top", {"k": "0"}, "k must be in 1..10000"),
    ("/api/top", {"minutes": "-1"}, "minutes must be in 1..10080"),
    ("/api/top", {"segment": "abc"}, "segment must be an integer or 'null'"),
    ("/api/top", {"min_impressions": "x"}, "min_impressions must be an integer"),
    ("/api/top", {"min_impressions": "-1"}, "min_impressions must be in 0..4611686018427387904, got -1"),
    ("/api/top/segments", {"min_impressions": "1.5"}, "min_impressions must be an integer, got '1.5'"),
    ("/api/top", {"top": "3"}, "unknown parameter(s) top"),
    ("/api/top/segments", {"segment": "1"}, "unknown parameter(s) segment"),
    ("/api/completeness", {"n": "1"}, "unknown parameter(s) n; expected: resolution"),
    ("/api/completeness", {"resolution": "auto"}, "resolution must be one of minute, hour, got 'auto'"),
    (
        "/api/minutes",
        {"from": "0", "to": "1", "resolution": "day"},
        "resolution must be one of minute, hour, auto",
    ),
    ("/api/top", {"resolution": "Hour"}, "resolution must be one of minute, hour, auto, got 'Hour'"),
    ("/api/top", {"resolution": "hour"}, "with resolution hour, minutes must be a multiple of 60, got 5"),
    ("/api/top", {"resolution": "hour", "minutes": "90"}, "minutes must be a multiple of 60, got 90"),
    ("/api/top", {"minutes": "10081"}, "minutes must be in 1..10080, got 10081"),
    ("/api/top", {"minutes": "604860", "resolution": "auto"}, "minutes must be in 1..604800, got 604860"),
    (
        "/api/top/segments",
        {"resolution": "hour", "minutes": "30"},
        "minutes must be a multiple of 60, got 30",
    ),
]


@pytest.mark.parametrize(("path", "query", "message"), BAD_REQUESTS)
async def test_bad_parameters_are_400_with_a_clear_message(
    path: str, query: dict[str, str], message: str
) -> None:
    status, body = await api.respond(api.ROUTES[path], Untouchable(), query)  # type: ignore[arg-type]
    assert status == 400
    assert set(body) == {"error"} and message in body["error"], body


async def test_too_long_range_is_400_from_the_query_layer() -> None:
    class Client:
        async def minutes(self, from_ms: int, to_ms: int, resolution: str) -> Any:
            from clickagg.query import QueryError

            raise QueryError("the range holds 20000 windows; at most 10080 per request")

    status, body = await api.respond(api.minute_range, Client(), {"from": "0", "to": "1200000000"})  # type: ignore[arg-type]
    assert (status, body) == (400, {"error": "the range holds 20000 windows; at most 10080 per request"})


async def test_elasticsearch_down_is_503() -> None:
    class Down:
        async def completeness(self, resolution: str) -> Any:
            raise Unreachable("ConnectionError: connection refused")

    status, body = await api.respond(api.completeness, Down(), {})  # type: ignore[arg-type]
    assert status == 503 and "connection refused" in body["error"]


async def test_top_parameters_reach_the_client_typed() -> None:
    client = Recording()
    query = {"minutes": "3", "k": "2", "gender": "null", "segment": "4", "min_impressions": "5"}
    status, body = await api.respond(api.top, client, query)  # type: ignore[arg-type]
    assert status == 200
    assert client.calls == [
        {"minutes": 3, "k": 2, "gender": UNKNOWN, "segment": 4, "min_impressions": 5, "resolution": "minute"}
    ]
    assert body["query"] == {
        "minutes": 3,
        "k": 2,
        "gender": "null",
        "segment": 4,
        "min_impressions": 5,
        "resolution": "minute",
    }
    assert body["articles"] == [{"article_id": 7, "impressions": 10, "clicks": 3, "ctr": 0.3}]
    assert (body["from_ms"], body["to_ms"], body["to"]) == (0, 60_000, "1970-01-01T00:01:00.000Z")
    client.calls.clear()
    await api.respond(api.top, client, {})  # type: ignore[arg-type]
    assert client.calls == [
        {
            "minutes": 5,
            "k": 10,
            "gender": None,
            "segment": None,
            "min_impressions": DEFAULT_MIN_IMPRESSIONS,
            "resolution": "minute",
        }
    ]
    client.calls.clear()
    await api.respond(api.top, client, {"minutes": "1440", "resolution": "hour"})  # type: ignore[arg-type]
    await api.respond(api.top, client, {"minutes": "20000", "resolution": "auto"})  # type: ignore[arg-type]
    assert [(c["minutes"], c["resolution"]) for c in client.calls] == [(1440, "hour"), (20000, "auto")]
    assert DEFAULT_MIN_IMPRESSIONS > 1, "a 1-impression article must not be able to win by default"


async def test_range_and_completeness_pass_the_resolution_on() -> None:
    class Client:
        def __init__(self) -> None:
            self.asked: list[tuple[Any, ...]] = []

        async def minutes(self, from_ms: int, to_ms: int, resolution: str) -> list[MinuteTotals]:
            self.asked.append((from_ms, to_ms, resolution))
            chosen = "hour" if resolution != "minute" else "minute"
            return [MinuteTotals(iso(from_ms), from_ms, 1, 0, 0.0, 1, 1, True, True, chosen)]

        async def completeness(self, resolution: str) -> Completeness:
            self.asked.append((resolution,))
            return Completeness(7_200_000, 3_600_000, 0, 1, (), (), resolution)

    client = Client()
    status, body = await api.respond(
        api.minute_range,
        client,
        {"from": "0", "to": "86400000", "resolution": "auto"},  # type: ignore[arg-type]
    )
    assert status == 200 and body["resolution"] == "hour" and body["minutes"][0]["resolution"] == "hour"
    status, body = await api.respond(api.minute_range, client, {"from": "0", "to": "60000"})  # type: ignore[arg-type]
    assert status == 200 and body["resolution"] == "minute"
    status, body = await api.respond(api.completeness, client, {"resolution": "hour"})  # type: ignore[arg-type]
    assert status == 200 and (body["resolution"], body["last_complete_window_ms"]) == ("hour", 3_600_000)
    assert client.asked == [(0, 86_400_000, "auto"), (0, 60_000, "minute"), ("hour",)]


def test_openapi_document_is_valid_and_matches_the_handlers() -> None:
    doc = openapi.document()
    validate(doc)  # raises on an invalid OpenAPI document
    assert set(doc["paths"]) == set(api.ROUTES) == set(api.PARAMS)
    for path, item in doc["paths"].items():
        names = {p["name"] for p in item["get"].get("parameters", [])}
        assert names == api.PARAMS[path], path
        for p in item["get"].get("parameters", []):
            if p["name"] == "resolution":
                want = ["minute", "hour"] if path == "/api/completeness" else ["minute", "hour", "auto"]
                assert p["schema"]["enum"] == want and p["schema"]["default"] == "minute", path
        if path != "/api/openapi.json":
            assert item["get"]["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


async def test_openapi_endpoint_serves_the_document() -> None:
    status, body = await api.respond(api.openapi_document, Untouchable(), {})  # type: ignore[arg-type]
    assert status == 200 and body == openapi.document() and body["openapi"].startswith("3.")
