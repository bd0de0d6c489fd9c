"""OpenAPI 3 description of the worker's read API (app/api.py), served at /api/openapi.json.

Written by hand next to the handlers, and checked against them by tests, so clients can generate
code from it and the document cannot silently drift from what the server accepts.
"""

from __future__ import annotations

from typing import Any

from clickagg.query import DEFAULT_MIN_IMPRESSIONS, MAX_K, MAX_MIN_IMPRESSIONS, MAX_WINDOWS


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _int_param(name: str, doc: str, default: int, low: int, high: int) -> dict[str, Any]:
    schema = {"type": "integer", "default": default, "minimum": low, "maximum": high}
    return {"name": name, "in": "query", "required": False, "description": doc, "schema": schema}


def _time_param(name: str, doc: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": True,
        "description": doc + " ISO 8601 (UTC when no offset is given) or epoch milliseconds.",
        "schema": {"type": "string", "examples": ["2026-01-27T10:00:00Z", "1769508000000"]},
    }


_GENDER = {
    "name": "gender",
    "in": "query",
    "required": False,
    "description": "Only this gender; `null` selects users missing from the reference data.",
    "schema": {"type": "string"},
}
_SEGMENT = {
    "name": "segment",
    "in": "query",
    "required": False,
    "description": "Only this segment id; `null` selects users missing from the reference data.",
    "schema": {"type": "string", "pattern": "^(-?[0-9]+|null)$"},
}
_MINUTES = _int_param(
    "minutes",
    "How many of the newest complete windows to rank over (minutes; up to "
    f"{MAX_WINDOWS * 60} with resolution hour or auto; with hour a multiple of 60: the newest "
    "minutes / 60 complete hours).",
    5,
    1,
    MAX_WINDOWS * 60,
)


def _resolution_param(doc: str, choices: tuple[str, ...] = ("minute", "hour", "auto")) -> dict[str, Any]:
    return {
        "name": "resolution",
        "in": "query",
        "required": False,
        "description": doc,
        "schema": {"type": "string", "enum": list(choices), "default": "minute"},
    }


_RANGE_RESOLUTION = _resolution_param(
    "minute: one row per minute window; hour: one row per hour from the exact hourly rollups "
    "(HOURLY_INDEX); auto: hours when the range is longer than 6 h and starts and ends on hour "
    "boundaries, minutes otherwise. Each row and the answer say which. An hour is complete when "
    "every minute in it is."
)
_TOP_RESOLUTION = _resolution_param(
    "minute: rank over minute documents; hour: over the newest minutes / 60 complete hours of the "
    "hourly rollups (minutes a multiple of 60); auto: the same range and the same exact numbers as "
    "minute, ranges longer than 6 h reading their whole hours from the hourly rollups."
)
_K = _int_param("k", "How many articles to return.", 10, 1, MAX_K)
_MIN_IMPRESSIONS = _int_param(
    "min_impressions",
    "Rank only articles with at least this many impressions in the range, so that an article with a "
    "handful of impressions and a lucky click cannot top the ranking. A floor rather than a smoothed "
    "CTR: every ctr returned is the exact clicks / impressions and the order an exact comparison of "
    f"those fractions. Default {DEFAULT_MIN_IMPRESSIONS}; 0 or 1 ranks every article with an "
    "impression (at least 1 always applies: CTR needs one).",
    DEFAULT_MIN_IMPRESSIONS,
    0,
    MAX_MIN_IMPRESSIONS,
)


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": _ref(schema)}}},
        "400": {"description": "Bad parameters.", "content": {"application/json": {"schema": _ref("Error")}}},
        "503": {
            "description": "Elasticsearch is unreachable or failed.",
            "content": {"application/json": {"schema": _ref("Error")}},
        },
    }


def _get(operation_id: str, summary: str, parameters: list[dict[str, Any]], schema: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "responses": _ok(schema, summary),
        }
    }


_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_RANGE = {
    "from": {**_NULLABLE_TIME, "description": "first window start (inclusive)"},
    "to": {**_NULLABLE_TIME, "description": "end of the last window (exclusive)"},
    "from_ms": _NULLABLE_INT,
    "to_ms": _NULLABLE_INT,
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Minute": {
        "type": "object",
        "required": ["time", "time_ms", "impressions", "clicks", "ctr", "documents", "final", "complete"],
        "properties": {
            "time": {"type": "string", "format": "date-time", "description": "window start (UTC)"},
            "time_ms": {"type": "integer"},
            "impressions": {"type": "integer"},
            "clicks": {"type": "integer"},
            "ctr": {
                "type": ["number", "null"],
                "description": "clicks / impressions; null without impressions",
            },
            "documents": {"type": "integer", "description": "(gender, segment, article) rows of the window"},
            "final_documents": {"type": "integer"},
            "final": {"type": "boolean", "description": "every document present is marked final"},
            "complete": {"type": "boolean", "description": "nothing in this window will change any more"},
            "resolution": {
                "type": "string",
                "enum": ["minute", "hour"],
                "description": "minute: a minute window; hour: an hour from the hourly rollups",
            },
        },
    },
    "LatestMinutes": {
        "type": "object",
        "required": ["minutes"],
        "properties": {"minutes": {"type": "array", "items": _ref("Minute")}},
    },
    "MinuteRange": {
        "type": "object",
        "required": ["from", "to", "minutes"],
        "properties": {
            **_RANGE,
            "resolution": {"type": "string", "enum": ["minute", "hour"], "description": "of the rows"},
            "minutes": {"type": "array", "items": _ref("Minute")},
        },
    },
    "Article": {
        "type": "object",
        "required": ["article_id", "impressions", "clicks", "ctr"],
        "properties": {
            "article_id": {"type": "integer"},
            "impressions": {"type": "integer"},
            "clicks": {"type": "integer"},
            "ctr": {"type": "number"},
        },
    },
    "TopQuery": {
        "type": "object",
        "description": "The parameters the answer was computed with.",
        "properties": {
            "minutes": {"type": "integer"},
            "k": {"type": "integer"},
            "gender": {"type": ["string", "null"]},
            "segment": {"type": ["integer", "string", "null"]},
            "min_impressions": {"type": "integer", "description": "the impression floor applied"},
            "resolution": {"type": "string", "enum": ["minute", "hour", "auto"]},
        },
    },
    "TopArticles": {
        "type": "object",
        "required": ["from", "to", "query", "articles"],
        "properties": {
            **_RANGE,
            "query": _ref("TopQuery"),
            "articles": {"type": "array", "items": _ref("Article")},
        },
    },
    "SegmentTop": {
        "type": "object",
        "required": ["segment_id", "articles"],
        "properties": {
            "segment_id": _NULLABLE_INT,
            "articles": {"type": "array", "items": _ref("Article")},
        },
    },
    "TopBySegment": {
        "type": "object",
        "required": ["from", "to", "query", "segments"],
        "properties": {
            **_RANGE,
            "query": _ref("TopQuery"),
            "segments": {"type": "array", "items": _ref("SegmentTop")},
        },
    },
    "PartitionProgress": {
        "type": "object",
        "properties": {
            "partition": {"type": "integer"},
            "partitions": {"type": "integer"},
            "closed_below_ms": {"type": "integer"},
            "window_ms": {"type": "integer"},
            "lateness_ms": {"type": "integer"},
            "updated_at": {"type": ["string", "null"]},
        },
    },
    "Completeness": {
        "type": "object",
        "required": ["complete_before", "complete_before_ms", "partitions_expected", "missing_partitions"],
        "properties": {
            "complete_before": {
                **_NULLABLE_TIME,
                "description": "every window starting before this time is complete; null: none known",
            },
            "complete_before_ms": _NULLABLE_INT,
            "last_complete_minute": _NULLABLE_TIME,
            "last_complete_minute_ms": _NULLABLE_INT,
            "last_complete_window": {**_NULLABLE_TIME, "description": "the newest complete window (or hour)"},
            "last_complete_window_ms": _NULLABLE_INT,
            "resolution": {
                "type": "string",
                "enum": ["minute", "hour"],
                "description": "hour: hours [h, h + 1 h) are complete when h + 1 h <= the minutes' "
                "complete_before",
            },
            "window_ms": {"type": "integer"},
            "lateness_ms": {"type": "integer"},
            "partitions_expected": {"type": "integer"},
            "missing_partitions": {"type": "array", "items": {"type": "integer"}},
            "partitions": {"type": "array", "items": _ref("PartitionProgress")},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/minutes/latest": _get(
        "latestMinutes",
        "Totals of the newest complete windows, oldest first.",
        [_int_param("n", "How many complete windows.", 5, 1, MAX_WINDOWS)],
        "LatestMinutes",
    ),
    "/api/minutes": _get(
        "minuteRange",
        "Totals of every window overlapping [from, to), empty windows as zeros, each with its completeness.",
        [_time_param("from", "Range start."), _time_param("to", "Range end (exclusive)."), _RANGE_RESOLUTION],
        "MinuteRange",
    ),
    "/api/top": _get(
        "topArticles",
        "Top articles by CTR over the newest complete windows (ties: more impressions, then lower id).",
        [_MINUTES, _K, _GENDER, _SEGMENT, _MIN_IMPRESSIONS, _TOP_RESOLUTION],
        "TopArticles",
    ),
    "/api/top/segments": _get(
        "topBySegment",
        "Top articles by CTR within each segment over the newest complete windows.",
        [_MINUTES, _K, _GENDER, _MIN_IMPRESSIONS, _TOP_RESOLUTION],
        "TopBySegment",
    ),
    "/api/completeness": _get(
        "completeness",
        "Up to when windows are complete, and each partition's progress.",
        [_resolution_param("minute: windows; hour: hours of the hourly rollups.", ("minute", "hour"))],
        "Completeness",
    ),
}


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (3.1 for JSON Schema's nullable types)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "clickagg read API",
            "version": "1",
            "description": "Complete minutes, per-minute totals and top articles by CTR from Elasticsearch. "
            "A window is complete when every partition's progress passed its end plus the allowed "
            "lateness; only complete windows are ranked.",
        },
        "paths": {
            **PATHS,
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}}
                    },
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
