"""The typed contracts between stages: what one writes, the next (or a restarted one) reads back.

Both codecs are read by running deployments, so besides round trips these tests pin the forms
written by earlier versions: stage 2's bare watermark map, an empty metadata string, the flat
`rows` envelope. Last, stage 2's document against the index mapping that types it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clickagg.core import commit_meta, envelope
from clickagg.core.batch import LAST_TIME_MS
from clickagg.core.documents import DOCUMENT_MAPPING, document
from clickagg.core.watermarks import NO_WATERMARK, MinWatermark
from clickagg.es import schema
from clickagg.es.ownership import DOCUMENT_FIELDS

INT64 = st.integers(-(2**63), 2**63 - 1)
MARK = st.integers(NO_WATERMARK, LAST_TIME_MS)
MIN = 60_000

min_watermarks = st.builds(
    MinWatermark,
    sources=st.integers(0, 64),
    marks=st.dictionaries(st.integers(0, 128), MARK, max_size=20),
)


# Stage 1: the source partition's watermark, a decimal string.


@given(INT64)
@example(NO_WATERMARK)
@example(0)
def test_stage1_watermark_round_trips(watermark: int) -> None:
    assert commit_meta.decode_source(commit_meta.encode_source(watermark)) == watermark


def test_stage1_watermark_is_stored_as_a_decimal_string() -> None:
    assert commit_meta.encode_source(1_700_000_040_000) == "1700000040000"
    assert commit_meta.encode_source(NO_WATERMARK) == "-1"
    assert commit_meta.decode_source(" 1700000040000\n") == 1_700_000_040_000


@pytest.mark.parametrize(
    "foreign",
    ["", "   ", "abc", '{"n": 2, "0": 5}', "1.5", "1e3", "0x10", "+5", "-", "--5", "5-", "²", "٣", "1" * 21],
)
def test_stage1_empty_or_foreign_metadata_is_no_watermark(foreign: str) -> None:
    assert commit_meta.decode_source(foreign) == NO_WATERMARK


@given(st.text())
@example("--5")
@example("²")
def test_stage1_decoding_any_string_never_fails(text: str) -> None:
    watermark = commit_meta.decode_source(text)
    assert watermark == NO_WATERMARK or watermark == int(text.strip())


# Stage 2: {"v": 2, "wm": {...}, "closed": C, "pos": P}; before v2, the bare watermark map.


def test_stage2_metadata_wire_form() -> None:
    meta = commit_meta.encode_writer(MinWatermark(2, {0: 5, 1: 7}), 5, 42)
    assert orjson.loads(meta) == {"v": 2, "wm": {"n": 2, "0": 5, "1": 7}, "closed": 5, "pos": 42}


@given(min_watermarks, MARK, st.integers(0, 2**63 - 1))
def test_stage2_metadata_round_trips(watermark: MinWatermark, closed_below: int, position: int) -> None:
    meta = commit_meta.encode_writer(watermark, closed_below, position)
    assert commit_meta.decode_writer(meta) == commit_meta.WriterMeta(watermark, closed_below, position)


@given(min_watermarks)
def test_min_watermark_snapshot_round_trips(watermark: MinWatermark) -> None:
    restored = MinWatermark.restore(orjson.loads(orjson.dumps(watermark.snapshot())))
    assert restored == watermark and restored.current() == watermark.current()


def test_stage2_metadata_of_the_previous_version_is_the_bare_watermark_map() -> None:
    restored = commit_meta.decode_writer('{"n": 2, "0": 5, "1": 7}')
    assert restored == commit_meta.WriterMeta(MinWatermark(2, {0: 5, 1: 7}), 5, None)
    # A source that had not reported yet: nothing was closed.
    assert commit_meta.decode_writer('{"n": 3, "0": 5, "1": 7}').closed_below == NO_WATERMARK


@given(min_watermarks)
def test_stage2_any_bare_map_closes_at_its_minimum_with_no_position(watermark: MinWatermark) -> None:
    meta = orjson.dumps(watermark.snapshot()).decode()
    assert commit_meta.decode_writer(meta) == commit_meta.WriterMeta(watermark, watermark.current(), None)


def test_stage2_empty_metadata_knows_nothing() -> None:
    assert commit_meta.decode_writer("") == commit_meta.WriterMeta(MinWatermark(), NO_WATERMARK, None)


# The partials envelope.

rows = st.tuples(
    st.one_of(
        st.none(), st.sampled_from(["female", "male"]), st.text(st.characters(exclude_categories=["Cs"]))
    ),
    st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    st.integers(0, 2**63 - 1),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)
windows = st.dictionaries(
    st.integers(0, LAST_TIME_MS // MIN).map(lambda w: w * MIN), st.lists(rows, max_size=40), max_size=6
)


def flat(windows: list[Any]) -> Counter[tuple[Any, ...]]:
    return Counter((start, *row) for start, rs in windows for row in rs)


def one_row_bytes(src: int, n: int, wm: int, start: int, row: envelope.Row) -> int:
    """The size of the smallest envelope holding this row, with whichever mark it may carry."""
    return max(
        len(
            orjson.dumps({"v": envelope.VERSION, "src": src, "n": n, "wm": mark, "windows": [[start, [row]]]})
        )
        for mark in (wm, NO_WATERMARK)
    )


@settings(max_examples=300)
@given(st.integers(0, 1023), st.integers(1, 1024), MARK, windows, st.integers(1, 6000))
@example(0, 1, 5, {0: [], MIN: []}, 10)  # no rows and a limit below an empty envelope
def test_envelope_parts_decode_to_exactly_the_rows_encoded(
    src: int, n: int, wm: int, windows: envelope.Windows, max_bytes: int
) -> None:
    parts = envelope.encode(src, n, wm, windows, max_bytes)
    decoded = [envelope.decode(p) for p in parts]
    assert decoded, "always at least one envelope: it carries the watermark"
    assert flat([w for e in decoded for w in e["windows"]]) == flat(list(windows.items()))
    assert all((e["src"], e["n"]) == (src, n) for e in decoded)
    # Only the last carries the watermark: stage 2 applies rows before their marker.
    assert [e["wm"] for e in decoded] == [NO_WATERMARK] * (len(parts) - 1) + [wm]
    whole = orjson.dumps(
        {"v": envelope.VERSION, "src": src, "n": n, "wm": wm, "windows": list(windows.items())}
    )
    if len(whole) <= max_bytes:
        assert parts == [whole]
    # A part is over the limit only when it holds a single row (or none) that does not fit alone.
    for part, e in zip(parts, decoded, strict=True):
        assert len(part) <= max_bytes or sum(len(rs) for _, rs in e["windows"]) <= 1
    if all(one_row_bytes(src, n, wm, start, row) <= max_bytes for start, rs in windows.items() for row in rs):
        if any(windows.values()):
            assert all(len(p) <= max_bytes for p in parts)


def test_an_envelope_without_rows_is_still_one_envelope_with_the_watermark() -> None:
    no_rows: envelope.Windows = {w * MIN: [] for w in range(100)}
    for max_bytes in (10, 1000, envelope.MAX_ENVELOPE_BYTES):
        parts = envelope.encode(2, 3, 1_700_000_040_000, no_rows, max_bytes)
        assert len(parts) == 1
        e = envelope.decode(parts[0])
        assert (e["src"], e["n"], e["wm"]) == (2, 3, 1_700_000_040_000) and flat(e["windows"]) == Counter()


def test_envelopes_carry_their_version_and_a_newer_one_is_refused_not_misread() -> None:
    (part,) = envelope.encode(1, 2, 65_000, {0: [("female", 3, 7, 2, 1)]})
    assert orjson.loads(part)["v"] == envelope.VERSION == 1
    unversioned = orjson.dumps({"src": 1, "n": 2, "wm": 65_000, "windows": [[0, [["female", 3, 7, 2, 1]]]]})
    assert envelope.decode(unversioned)["windows"] == envelope.decode(part)["windows"]
    newer = orjson.dumps({"v": 2, "src": 1, "n": 2, "wm": 65_000, "cols": []})
    with pytest.raises(
        envelope.UnsupportedEnvelope,
        match=r"^a partials envelope of format version 2 \(this worker reads 1\): run the same clickagg version on every worker of this APP_ID$",
    ):
        envelope.decode(newer)


def test_the_flat_rows_envelope_of_earlier_versions_decodes_grouped_by_window() -> None:
    old = orjson.dumps(
        {
            "src": 1,
            "n": 2,
            "wm": 65_000,
            "rows": [[0, "female", 3, 7, 2, 1], [MIN, None, None, 8, 1, 0], [0, "male", None, 7, 1, 0]],
        }
    )
    e = envelope.decode(old)
    assert (e["src"], e["n"], e["wm"]) == (1, 2, 65_000)
    assert [(start, [list(r) for r in rs]) for start, rs in e["windows"]] == [
        (0, [["female", 3, 7, 2, 1], ["male", None, 7, 1, 0]]),
        (MIN, [[None, None, 8, 1, 0]]),
    ]
    empty = envelope.decode(orjson.dumps({"src": 0, "n": 1, "wm": NO_WATERMARK, "rows": []}))
    assert empty["windows"] == [] and empty["wm"] == NO_WATERMARK


# Stage 2's document and the documents index's mapping.

SPEC_TYPES = {
    "time": "date",
    "gender": "keyword",
    "segment_id": "integer",
    "article_id": "long",
    "impression": "long",
    "click": "long",
    "final": "boolean",
}
PROPERTIES: dict[str, dict[str, Any]] = DOCUMENT_MAPPING["properties"]


@given(
    st.integers(0, LAST_TIME_MS // MIN).map(lambda w: w * MIN),
    st.one_of(st.none(), st.sampled_from(["female", "male"])),
    st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    st.integers(0, 2**63 - 1),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.booleans(),
    st.integers(0, 255),
)
@example(0, None, None, 1, 0, 0, False, 0)  # no impressions: ctr is None
def test_every_field_of_a_document_is_in_the_strict_mapping(
    start: int,
    gender: str | None,
    segment: int | None,
    article: int,
    imp: int,
    clk: int,
    final: bool,
    owner: int,
) -> None:
    doc = document((start, gender, segment, article), imp, clk, final, owner)
    assert DOCUMENT_MAPPING["dynamic"] == "strict"  # a field missing from it fails the write
    assert set(doc) <= set(PROPERTIES), set(doc) - set(PROPERTIES)
    assert set(SPEC_TYPES) <= set(doc)


@pytest.mark.parametrize(("field", "spec_type"), SPEC_TYPES.items())
def test_every_spec_field_has_specs_type(field: str, spec_type: str) -> None:
    assert PROPERTIES[field]["type"] == spec_type
    assert PROPERTIES[field].get("index", True) is not False  # searchable and aggregatable


def test_the_fields_that_mark_an_index_as_clickaggs_are_typed_as_the_mapping_types_them() -> None:
    assert {f: PROPERTIES[f]["type"] for f in DOCUMENT_FIELDS} == DOCUMENT_FIELDS


def test_older_documents_fields_stay_in_the_mapping_unindexed() -> None:
    for field in ("window_end", "applied_version"):
        assert PROPERTIES[field]["index"] is False and PROPERTIES[field]["doc_values"] is False


def test_schema_installs_the_documents_mapping_under_its_old_name_too() -> None:
    assert schema.MAPPINGS is DOCUMENT_MAPPING
    (documents, _) = schema._targets("ix")
    assert documents.mappings is DOCUMENT_MAPPING
