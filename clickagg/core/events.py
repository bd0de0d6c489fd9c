"""Parse and validate one event exactly as SPEC says; never raises, returns a reason instead.

Every record a producer can send reaches this function (any bytes, of any size the broker accepts),
so nothing here may raise, recurse on the input's nesting, or do more than linear work in its length:
one hostile record must become a dead letter, not halt its partition.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

MAX_ID = 2**63 - 1
# An id string with more significant digits than MAX_ID has (19) is out of range, whatever they are.
_MAX_ID_DIGITS = len(str(MAX_ID))

# Action codes keep the hot loop free of string comparisons after parsing.
OTHER, IMPRESSION, CLICK = 0, 1, 2
_ACTIONS = {"impression": IMPRESSION, "click": CLICK}

# A parsed event: (article_id, user_id, action_code, event_time_ms or None).
Parsed = tuple[int, int, int, int | None]


def _as_id(value: Any) -> int | None:
    """An id is a JSON integer in 0..2^63-1 or a string of ASCII digits with such a value.

    SPEC decides by value, so leading zeros are allowed and a valid id string can be of any length.
    int() must not see a long one: it refuses more than 4300 digits (ValueError) and is quadratic
    below that. Stripping the zeros and comparing the length settles every long string first.
    """
    kind = type(value)
    if kind is int:
        return value if 0 <= value <= MAX_ID else None
    if kind is str and value.isascii() and value.isdigit():
        if len(value) > _MAX_ID_DIGITS:
            value = value.lstrip("0") or "0"
            if len(value) > _MAX_ID_DIGITS:
                return None
        number = int(value)
        return number if number <= MAX_ID else None
    return None


# orjson refuses one kind of valid JSON: an integer literal too large for it (in current versions,
# one beyond a double's range, about 309 digits; one beyond 64 bits that fits a double comes back as
# a float; older versions refuse anything beyond 64 bits). SPEC wants such an id rejected as too
# large, not as invalid JSON. Every integer literal of 20 or more digits is outside 0..2^63-1, so the
# fallback rewrites each one to -1, which every rule below treats exactly as the original (not an id,
# not an event time, not an action), and asks orjson again. orjson thus stays the only judge of what
# JSON is (UTF-8 only, no BOM, no NaN or Infinity, no lone surrogate escapes, no control characters,
# finite floats, depth <= 1024, no Python recursion), so this parser agrees with batch.py's fast
# path, which calls orjson directly, on every input. (The standard library's json, the previous
# fallback, accepted UTF-16/32, raw surrogates and NaN, and ran int() on every literal.)
_HUGE_INT_HINT = re.compile(rb"[0-9]{20}")
# A huge integer literal: 20 or more digits, not followed by a fraction or an exponent (then it is a
# float, which orjson judges by itself).
_HUGE = rb"-?[1-9][0-9]{19,}+(?!\.[0-9]|[eE][+-]?[0-9])"
# Everything else, token by token, so that a digit run is rewritten only when it is a whole integer
# literal outside any string: text without quotes or digits, a string (which always matches from its
# opening quote, to the closing one or to the end of an unterminated one, which keeps the document
# invalid), any other number whole, or a minus sign that starts no number. Possessive quantifiers
# and one match per huge literal (not per token) keep the scan linear and its Python calls few.
_OTHER = (
    rb'(?:[^"0-9-]++'
    rb'|"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+(?:"|\\?\Z)'
    rb"|(?!" + _HUGE + rb")-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?"
    rb"|-(?![0-9]))*+"
)
_UP_TO_HUGE = re.compile(rb"(?P<other>" + _OTHER + rb")(?:(?P<huge>" + _HUGE + rb")|\Z)")
_OUT_OF_RANGE = b"-1"


def _shrink_huge(match: re.Match[bytes]) -> bytes:
    return match["other"] + _OUT_OF_RANGE if match["huge"] is not None else match["other"]


def _loads(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        pass
    # Slow path, only for records orjson refused: most are not JSON at all and have no long digit run.
    if _HUGE_INT_HINT.search(raw) is None:
        return _INVALID
    shrunk = _UP_TO_HUGE.sub(_shrink_huge, raw)
    if len(shrunk) == len(raw):  # no huge integer literal: orjson's verdict stands
        return _INVALID
    try:
        return orjson.loads(shrunk)
    except (orjson.JSONDecodeError, RecursionError):
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
