"""Parser: SPEC's validation rules, and a property test against a plain reference implementation."""

from __future__ import annotations

import json
import math

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


class _TooLarge:
    """What the reference makes of an integer literal of 20+ digits: out of every range, never int()."""


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity, -Infinity


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError("a number beyond a double's range is refused, as orjson does")
    return number


def _bounded_int(text: str) -> object:
    return int(text) if len(text.lstrip("-")) < 20 else _TooLarge()


def _has_lone_surrogate(doc: object) -> bool:
    """Escapes like \\ud800 decode to lone surrogates in the stdlib; orjson refuses them. Iterative."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= c <= "\udfff" for c in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def reference_loads(raw: bytes) -> tuple[bool, object]:
    """RFC 8259 JSON, strictly, with the standard library: (is JSON, document).

    Independent of parse_event's way of doing it, for shallow documents (Python recursion bounds
    the stdlib's depth; depth has its own tests): UTF-8 only (a BOM stays a character, which
    json.loads refuses), no NaN/Infinity, finite numbers, no lone surrogates, huge integers kept
    out of int().
    """
    try:
        text = raw.decode("utf-8")  # strict: no surrogates, no overlong forms, no UTF-16/32
    except UnicodeDecodeError:
        return False, None
    try:
        doc = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_pairs_without_lone_surrogates,
        )
    except (ValueError, RecursionError):
        return False, None
    if _has_lone_surrogate(doc):
        return False, None
    return True, doc


def _pairs_without_lone_surrogates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Checked before duplicate keys drop earlier values: orjson refuses a surrogate wherever it is.
    if _has_lone_surrogate(pairs):
        raise ValueError("lone surrogate")
    return dict(pairs)


def _reference_id(v: object) -> int | None:
    if isinstance(v, bool) or isinstance(v, _TooLarge):
        return None
    if isinstance(v, int):
        return v if 0 <= v <= MAX else None
    if isinstance(v, str) and v != "" and all(c in "0123456789" for c in v):
        significant = v.lstrip("0") or "0"
        if len(significant) > 19 or (len(significant) == 19 and significant > str(MAX)):
            return None
        return int(significant)
    return None


def reference_parse(raw: bytes) -> object:
    """Straightforward restatement of SPEC with the standard library, reasons in parse_event's order."""
    ok, doc = reference_loads(raw)
    if not ok:
        return "invalid_json"
    if not isinstance(doc, dict):
        return "not_an_object"
    checks = [("article_id", _reference_id), ("user_id", _reference_id)]
    ids = []
    for field, convert in checks:
        if field not in doc:
            return f"missing_{field}"
        value = convert(doc[field])
        if value is None:
            return f"invalid_{field}"
        ids.append(value)
    if "action" not in doc:
        return "missing_action"
    act = doc["action"]
    if not isinstance(act, str):
        return "invalid_action"
    return (ids[0], ids[1], {"impression": IMPRESSION, "click": CLICK}.get(act, OTHER), None)


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
    assert parse_event(raw) == reference_parse(raw)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_never_raises_on_any_bytes(raw: bytes) -> None:
    assert parse_event(raw) == reference_parse(raw)
