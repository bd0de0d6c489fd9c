"""Hostile records for the parser: huge ids, lenient-JSON tricks, deep nesting, arbitrary bytes.

Observed: one 5,000-digit id raised ValueError out of int() and halted the pipeline, and the stdlib
fallback accepted UTF-16/32, raw surrogates and NaN. Any record a producer can send must come back
as an event or a reason, the JSON verdict must be orjson's (the fast path in batch.py uses orjson
directly), and the only JSON orjson refuses that counts as JSON is an integer too large for it.
"""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickagg.core.events import CLICK, IMPRESSION, OTHER, parse_event
from tests.unit.test_events import reference_parse

MAX = 2**63 - 1


def event(article: str = "1", user: str = "2", action: str = '"click"', extra: str = "") -> bytes:
    return f'{{"article_id": {article}, "user_id": {user}, "action": {action}{extra}}}'.encode()


# --- 1. huge ids: decided by value, never by an exception -------------------------------------------


def test_zero_padded_5000_char_string_id_is_valid() -> None:
    padded = '"' + "0" * (5000 - 8) + '10000001"'
    assert parse_event(event(article=padded)) == (10000001, 2, CLICK, None)
    assert parse_event(event(user=padded)) == (1, 10000001, CLICK, None)
    assert parse_event(event(user='"' + "0" * 5000 + '"')) == (1, 0, CLICK, None)
    assert parse_event(event(user='"' + "0" * 5000 + str(MAX) + '"')) == (1, MAX, CLICK, None)
    assert parse_event(event(user='"' + "0" * 5000 + str(MAX + 1) + '"')) == "invalid_user_id"


def test_5000_nines_string_id_is_too_large() -> None:
    nines = '"' + "9" * 5000 + '"'
    assert parse_event(event(user=nines)) == "invalid_user_id"
    assert parse_event(event(article=nines)) == "invalid_article_id"


@pytest.mark.parametrize("digits", [20, 310, 4300, 4301, 5000, 100_000])
def test_huge_integer_literal_is_that_fields_rejection(digits: int) -> None:
    huge = "9" * digits
    assert parse_event(event(article=huge)) == "invalid_article_id"
    assert parse_event(event(user=huge)) == "invalid_user_id"
    assert parse_event(event(user="-" + huge)) == "invalid_user_id"
    assert parse_event(event(action=huge)) == "invalid_action"
    assert parse_event(event(extra=f', "junk": [{huge}, -{huge}]')) == (1, 2, CLICK, None)
    assert parse_event(event(extra=f', "ts": {huge}'), "ts") == "invalid_event_time"
    duplicate = f'{{"article_id": {huge}, "article_id": 7, "user_id": 2, "action": "x"}}'.encode()
    assert parse_event(duplicate) == (7, 2, OTHER, None)  # the last one wins, as in orjson
    assert parse_event(huge.encode()) == "not_an_object"


def test_huge_digit_runs_inside_strings_and_floats_are_left_alone() -> None:
    huge = "9" * 400
    # Inside a string, the digits are text: the id string decides by value.
    assert parse_event(event(article=f'"{huge}"', extra=f', "n": {huge}')) == "invalid_article_id"
    assert parse_event(event(action=f'"\\"{huge}"', extra=f', "n": {huge}')) == (1, 2, OTHER, None)
    # A float beyond a double's range is refused by orjson, fraction or exponent: not JSON here either.
    assert parse_event(event(article=f"{huge}.5")) == "invalid_json"
    assert parse_event(event(article=f"{huge}e1")) == "invalid_json"
    assert parse_event(event(article="1e400")) == "invalid_json"
    # Malformed numbers stay malformed when a huge literal is elsewhere in the record.
    for bad in ["0" + huge, "+" + huge, huge + ".", huge + "e", "." + huge, "--" + huge, huge + "x"]:
        assert parse_event(event(article=bad)) == "invalid_json", bad
        assert parse_event(event(article=bad, extra=f', "n": {huge}')) == "invalid_json", bad


def test_hostile_megabyte_records_take_linear_time() -> None:
    n = 1_000_000
    records = [
        event(article='"' + "0" * n + '1"'),
        event(article='"' + "9" * n + '"'),
        event(article="9" * n),
        b'"\\"' * (n // 3) + b"1" * 20,
        b"0" * n + b"1" * 20,
        b"-" * n + b"1" * 20,
        b"[" + b"1," * (n // 2) + b"1" * 400 + b"]",
        (b"1" * 19 + b".") * (n // 20) + b"1" * 20,
        b"[" * n + b"1" * 30,
    ]
    for raw in records:
        started = time.perf_counter()
        assert isinstance(parse_event(raw), str | tuple)
        assert time.perf_counter() - started < 2.0, raw[:40]


# --- 2. only valid UTF-8 RFC 8259 JSON, as orjson judges it --------------------------------------------


def valid_text() -> str:
    return '{"article_id": 1, "user_id": 2, "action": "click"}'


@pytest.mark.parametrize(
    "raw",
    [
        valid_text().encode("utf-16"),
        valid_text().encode("utf-16-le"),
        valid_text().encode("utf-16-be"),
        valid_text().encode("utf-32"),
        valid_text().encode("utf-32-le"),
        b"\xef\xbb\xbf" + valid_text().encode(),  # a UTF-8 BOM
        b'{"article_id": 1, "user_id": 2, "action": "\xed\xa0\x80"}',  # a raw surrogate: not UTF-8
        event(action='"\\ud800"'),  # lone surrogate escapes
        event(action='"\\udc00"'),
        event(action='"\\ud800\\u0041"'),
        event(extra=', "\\ud800": 1'),
        b'{"article_id": "\\ud800", "article_id": 1, "user_id": 2, "action": "click"}',  # even overwritten
        event(action='"a\x01b"'),  # control characters must be escaped
        event(action='"a\tb"'),
        event(article="NaN"),
        event(user="Infinity"),
        event(user="-Infinity"),
        event(extra=', "x": NaN'),
        event(article="01"),
        event(article="+1"),
        event(extra=","),
        valid_text().encode() + b"\x00",
        b"\x0c" + valid_text().encode(),  # form feed is not JSON whitespace
        b"\xc2\xa0" + valid_text().encode(),
        b"[" * 1025 + b"]" * 1025,
        b"[" * 100_000,
    ],
)
def test_lenient_json_is_invalid_json(raw: bytes) -> None:
    assert parse_event(raw) == "invalid_json"
    # ... also when a huge integer elsewhere sends it down the fallback.
    if raw.startswith((b"{", b"\xef\xbb\xbf{", b"\x0c{", b"\xc2\xa0{")) and raw.endswith(b"}"):
        assert parse_event(raw[:-1] + b', "n": ' + b"9" * 400 + b"}") == "invalid_json"
    if raw.startswith(b"[") and raw.endswith(b"]"):
        assert parse_event(raw[:-1] + b"," + b"9" * 400 + b"]") == "invalid_json"


def test_utf16_with_a_huge_integer_is_invalid_json() -> None:
    text = '{"article_id": ' + "9" * 400 + ', "user_id": 2, "action": "click"}'
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        assert parse_event(text.encode(encoding)) == "invalid_json"


def test_strict_json_that_stays_valid() -> None:
    assert parse_event(event(action='"\\ud83d\\ude00"')) == (1, 2, OTHER, None)  # a surrogate pair
    assert parse_event(event(action='"a\x7fb"')) == (1, 2, OTHER, None)  # DEL needs no escape
    assert parse_event(event(action='"\\u0000"')) == (1, 2, OTHER, None)
    assert parse_event(event(article="-0")) == (0, 2, CLICK, None)
    assert parse_event(b' \t\r\n{"article_id": 1, "user_id": 2, "action": "impression"}\n') == (
        1,
        2,
        IMPRESSION,
        None,
    )
    assert parse_event(b'{"article_id": 1, "article_id": 3, "user_id": 2, "action": "click"}') == (
        3,
        2,
        CLICK,
        None,
    )


def test_depth_is_orjsons_limit_not_pythons_stack() -> None:
    deep = b"[" * 1000 + b"]" * 1000
    assert parse_event(deep) == "not_an_object"
    nested_extra = ', "junk": ' + "[" * 1000 + "]" * 1000
    assert parse_event(event(extra=nested_extra)) == (1, 2, CLICK, None)
    # The fallback (a huge integer) must not fall back onto Python recursion either.
    huge = "9" * 400
    assert parse_event(event(extra=nested_extra + f', "n": {huge}')) == (1, 2, CLICK, None)
    assert parse_event(event(article=huge, extra=nested_extra)) == "invalid_article_id"
    too_deep = ', "junk": ' + "[" * 1024 + "]" * 1024
    assert parse_event(event(extra=too_deep)) == "invalid_json"
    assert parse_event(event(extra=too_deep + f', "n": {huge}')) == "invalid_json"
    assert parse_event(b"[" * 100_000) == "invalid_json"
    assert parse_event(b"[" * 100_000 + b"1" * 400) == "invalid_json"
    assert parse_event(b'{"a":' * 100_000) == "invalid_json"


# orjson vs parse_event: the same verdict on "is it JSON", except that a huge integer literal (here
# the placeholder N) is JSON. The placeholder sits where this test knows a number is, so the
# expected verdict is orjson's on the template with a small integer in its place.
TEMPLATES = [
    '{"article_id": N, "user_id": 2, "action": "click"}',
    '{"article_id": 1, "user_id": -N, "action": "click"}',
    '[N,N,-N,"N",1.5,"\\"N"]',
    "N",
    '{"article_id": 1, "user_id": 2, "action": "\\ud800", "n": N}',
    '{"article_id": 1, "user_id": 2, "action": "\\ud83d\\ude00", "n": N}',
    '{"article_id": 1, "user_id": 2, "action": "a\x01", "n": N}',
    '{"article_id": NaN, "user_id": 2, "action": "click", "n": N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": N,}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": [N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": "N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": "\\N"}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": N} x',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": N}\x00',
    '\ufeff{"article_id": 1, "user_id": 2, "action": "click", "n": N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": 1.N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": 1e-N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": 0N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": N N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": tNrue}',
    '{"article_id": 1, "user_id": 2, "action": "click", N: 1}',
    '{"article_id": 1, "user_id": 2, "action": "click", "\\N": N}',
    '{"article_id": 1, "user_id": 2, "action": "click", "n": "\\uN"}',
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_json_verdict_is_orjsons(template: str, encoding: str) -> None:
    small = template.replace("N", "3").encode(encoding)
    try:
        orjson.loads(small)
        is_json = True
    except orjson.JSONDecodeError:
        is_json = False
    without_huge = parse_event(small)
    assert (without_huge != "invalid_json") == is_json
    # Where N is an integer literal, orjson refuses the huge form, which is JSON exactly when the
    # small form is; where it is not (in a string, a fraction), orjson's verdict stands as it is.
    huge = template.replace("N", "9" * 400).encode(encoding)
    try:
        orjson.loads(huge)
        is_json = True
    except orjson.JSONDecodeError:
        pass
    assert (parse_event(huge) != "invalid_json") == is_json, huge[:80]
    assert parse_event(huge) == reference_parse(huge)


# --- never raises, agrees with the strict reference --------------------------------------------------

number_tokens = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64).map(lambda i: str(i).encode()),
    st.from_regex(rb"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,4})?([eE][+-]?[0-9]{1,4})?\Z"),
    st.from_regex(rb"\A-?[1-9][0-9]{19,400}\Z"),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"01", b"+1", b"1.", b".5", b"-", b"0x1", b"1e"]),
)
string_pieces = st.sampled_from(
    [
        b"a",
        b"click",
        b"impression",
        b"0",
        b"12",
        b"00000000000000000000000012",
        b"99999999999999999999",
        b"9223372036854775807",
        b"9223372036854775808",
        b'\\"',
        b"\\\\",
        b"\\n",
        b"\\/",
        b"\\u0041",
        b"\\ud800",
        b"\\udc00",
        b"\\ud83d\\ude00",
        b"\\x",
        b"\xed\xa0\x80",
        b"\xc3\xa9",
        "\u0663".encode(),
        b"\xff",
        b"\xc0\xaf",
        b"\x01",
        b"\t",
        b"\x7f",
        b" ",
        b"-",
    ]
)
strings = st.lists(string_pieces, max_size=5).map(lambda pieces: b'"' + b"".join(pieces) + b'"')
keys = st.one_of(
    st.sampled_from([b'"article_id"', b'"user_id"', b'"action"', b'"ts"', b'"x"']),
    strings,
)
scalars = st.one_of(
    number_tokens, strings, st.sampled_from([b"true", b"false", b"null", b'"click"', b'"impression"'])
)
spaces = st.sampled_from([b"", b"", b" ", b"\n", b"\t", b"\r", b"\x0c", b"\xc2\xa0"])


def _array(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def _object(pairs: list[tuple[bytes, bytes, bytes]]) -> bytes:
    return b"{" + b",".join(k + s + b":" + s + v for k, s, v in pairs) + b"}"


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_array),
        st.lists(st.tuples(keys, spaces, inner), max_size=4).map(_object),
    ),
    max_leaves=12,
)
id_values = st.one_of(
    number_tokens,
    strings,
    st.integers(min_value=0, max_value=2**64).flatmap(
        lambda i: st.integers(min_value=0, max_value=5000).map(
            lambda z: b'"' + b"0" * z + str(i).encode() + b'"'
        )
    ),
)
events = st.tuples(
    st.lists(
        st.one_of(
            st.tuples(st.just(b'"article_id"'), spaces, id_values),
            st.tuples(st.just(b'"user_id"'), spaces, id_values),
            st.tuples(st.just(b'"action"'), spaces, st.one_of(strings, scalars)),
            st.tuples(keys, spaces, values),
        ),
        max_size=6,
    ).map(_object),
    st.sampled_from([b"", b"", b" ", b"\xef\xbb\xbf", b"\x0c", b"x", b"["]),
    st.sampled_from([b"", b"", b"\n", b"\x00", b"x", b"]", b",1"]),
    st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "utf-16-le", "utf-32"]),
)


def _assemble(parts: tuple[bytes, bytes, bytes, str]) -> bytes:
    body, prefix, suffix, encoding = parts
    raw = prefix + body + suffix
    if encoding != "utf-8":
        try:
            raw = raw.decode("utf-8").encode(encoding, "surrogatepass")
        except UnicodeDecodeError:
            pass
    return raw


@settings(max_examples=600, deadline=None)
@given(events.map(_assemble))
def test_jsonish_documents_agree_with_strict_reference(raw: bytes) -> None:
    assert parse_event(raw) == reference_parse(raw)


@settings(max_examples=300, deadline=None)
@given(events.map(_assemble), st.sampled_from([None, "ts", "action"]))
def test_jsonish_documents_never_raise(raw: bytes, time_field: str | None) -> None:
    got = parse_event(raw, time_field)
    assert isinstance(got, str) or (isinstance(got, tuple) and len(got) == 4)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from([event(), event(article='"12"', user="9" * 30), event(extra=', "n": ' + "9" * 400)]),
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=3), st.binary(max_size=4))
    ),
)
def test_mutated_events_agree_with_strict_reference(base: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    raw = bytearray(base)
    for at, cut, insert in edits:
        at %= len(raw) + 1
        raw[at : at + cut] = insert
    assert parse_event(bytes(raw)) == reference_parse(bytes(raw))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, "ts"]))
def test_arbitrary_bytes_never_raise(raw: bytes, time_field: str | None) -> None:
    got = parse_event(raw, time_field)
    assert isinstance(got, str) or (isinstance(got, tuple) and len(got) == 4)
