"""Parser: SPEC's validation rules, and a property test against a plain reference implementation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickagg.core.events import CLICK, IMPRESSION, OTHER, parse_event

MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"article_id": 1, "user_id": 2, "action": "click"}', (1, 2, CLICK, None)),
        (b'{"article_id": "12", "user_id": "0", "action": "impression"}', (12, 0, IMPRESSION, None)),
        (b'{"article_id": 1, "user_id": 2, "action": "Click"}', (1, 2, OTHER, None)),
        (b'{"article_id": 9223372036854775807, "user_id": 2, "action": "x"}', (MAX, 2, OTHER, None)),
        (b'{"article_id": 9223372036854775808, "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"article_id": 1e3, "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"article_id": true, "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"article_id": -1, "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"article_id": "1a", "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"article_id": "", "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"article_id": "\xd9\xa3", "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"article_id": null, "user_id": 2, "action": "click"}', "invalid_article_id"),
        (b'{"user_id": 2, "action": "click"}', "missing_article_id"),
        (b'{"article_id": 1, "action": "click"}', "missing_user_id"),
        (b'{"article_id": 1, "user_id": 2.0, "action": "click"}', "invalid_user_id"),
        (b'{"article_id": 1, "user_id": 2}', "missing_action"),
        (b'{"article_id": 1, "user_id": 2, "action": 5}', "invalid_action"),
        (b'{"article_id": 1, "user_id": 2, "action": null}', "invalid_action"),
        (b"[1, 2]", "not_an_object"),
        (b"not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"", "invalid_json"),
        (None, "empty_value"),
    ],
)
def test_rules(raw: bytes | None, expected: object) -> None:
    assert parse_event(raw) == expected


def test_event_time_field() -> None:
    raw = b'{"article_id": 1, "user_id": 2, "action": "click", "ts": 1700000000123}'
    assert parse_event(raw, "ts") == (1, 2, CLICK, 1700000000123)
    iso = b'{"article_id": 1, "user_id": 2, "action": "click", "ts": "2024-01-01T00:00:30Z"}'
    assert parse_event(iso, "ts") == (1, 2, CLICK, 1704067230000)
    assert parse_event(b'{"article_id": 1, "user_id": 2, "action": "click"}', "ts") == "invalid_event_time"


def reference_parse(raw: bytes) -> object:
    """Straightforward restatement of SPEC with the standard library, for the property test."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return "invalid"
    if not isinstance(doc, dict):
        return "invalid"

    def as_id(v: object) -> int | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return v if 0 <= v <= MAX else None
        if isinstance(v, str) and v != "" and all(c in "0123456789" for c in v):
            return int(v) if int(v) <= MAX else None
        return None

    a, u, act = as_id(doc.get("article_id")), as_id(doc.get("user_id")), doc.get("action")
    if a is None or u is None or not isinstance(act, str):
        return "invalid"
    return (a, u, {"impression": IMPRESSION, "click": CLICK}.get(act, OTHER), None)


ids = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.text(alphabet="0123456789a٣ -", max_size=22),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
objects = st.dictionaries(
    st.sampled_from(["article_id", "user_id", "action", "other"]),
    st.one_of(ids, st.sampled_from(["click", "impression", "CLICK", ""])),
)


@settings(max_examples=500)
@given(objects)
def test_agrees_with_reference_on_objects(doc: dict[str, object]) -> None:
    raw = json.dumps(doc).encode()
    got = parse_event(raw)
    want = reference_parse(raw)
    assert (got if not isinstance(got, str) else "invalid") == want


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_never_raises_on_any_bytes(raw: bytes) -> None:
    got = parse_event(raw)
    want = reference_parse(raw)
    assert (got if not isinstance(got, str) else "invalid") == want
