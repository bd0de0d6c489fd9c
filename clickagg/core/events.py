"""Parse and validate one event exactly as SPEC says; never raises, returns a reason instead."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson

MAX_ID = 2**63 - 1

# Action codes keep the hot loop free of string comparisons after parsing.
OTHER, IMPRESSION, CLICK = 0, 1, 2
_ACTIONS = {"impression": IMPRESSION, "click": CLICK}

# A parsed event: (article_id, user_id, action_code, event_time_ms or None).
Parsed = tuple[int, int, int, int | None]


def _as_id(value: Any) -> int | None:
    """An id is a JSON integer in 0..2^63-1 or a string of ASCII digits with such a value."""
    kind = type(value)
    if kind is int:
        return value if 0 <= value <= MAX_ID else None
    if kind is str and value.isascii() and value.isdigit():
        number = int(value)
        return number if number <= MAX_ID else None
    return None


def _loads(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits; the stdlib tells "too large id" from "not JSON".
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            return _INVALID


_INVALID = object()


def _as_time_ms(value: Any) -> int | None:
    """Event time from a field: integer epoch milliseconds, or an ISO-8601 string with a zone."""
    if type(value) is int and 0 <= value <= MAX_ID:
        return value
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return int(parsed.timestamp() * 1000)
    return None


def parse_event(raw: bytes | None, time_field: str | None = None) -> Parsed | str:
    """Return the parsed event, or the rejection reason (a short snake_case string)."""
    if raw is None:
        return "empty_value"
    doc = _loads(raw)
    if doc is _INVALID:
        return "invalid_json"
    if type(doc) is not dict:
        return "not_an_object"
    article = doc.get("article_id", _INVALID)
    if article is _INVALID:
        return "missing_article_id"
    article_id = _as_id(article)
    if article_id is None:
        return "invalid_article_id"
    user = doc.get("user_id", _INVALID)
    if user is _INVALID:
        return "missing_user_id"
    user_id = _as_id(user)
    if user_id is None:
        return "invalid_user_id"
    action = doc.get("action", _INVALID)
    if action is _INVALID:
        return "missing_action"
    if type(action) is not str:
        return "invalid_action"
    event_time = None
    if time_field:
        event_time = _as_time_ms(doc.get(time_field))
        if event_time is None:
            return "invalid_event_time"
    return (article_id, user_id, _ACTIONS.get(action, OTHER), event_time)
