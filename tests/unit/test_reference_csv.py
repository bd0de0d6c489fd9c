"""Reference CSV parsing and the compact UserTable.

The property tests compare the parser (fast vectorised path + row-by-row fallback, arbitrary chunking,
several runs merged) against a deliberately naive oracle written from the format rules.
"""

from __future__ import annotations

import csv
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickagg.reference_data import (
    MAX_USER_ID,
    ReferenceDataRejected,
    UserTable,
    parse_csv,
)
from clickagg.reference_data.csv_parse import iter_blocks
from clickagg.reference_data.table import MAX_GENDERS, MAX_SEGMENT, MIN_SEGMENT, UserTableBuilder

# -- oracle -------------------------------------------------------------------------------------------

_DIGITS = re.compile(rb"[0-9]+")
_INT = re.compile(rb"-?[0-9]+")


def oracle(data: bytes) -> tuple[dict[int, tuple[str | None, int | None]], list[int], int, bool]:
    """Naive reading of the format rules (no quotes): rows, bad line numbers, total rows, header."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    rows: dict[int, tuple[str | None, int | None]] = {}
    bad: list[int] = []
    total = 0
    header = False
    seen = False
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            continue
        if not seen:
            seen = True
            if line.split(b",")[0].strip().strip(b'"').lower() == b"user_id":
                header = True
                continue
        total += 1
        if b'"' in line:
            try:
                fields = [f.encode() for f in next(csv.reader([line.decode()], strict=True))]
            except (UnicodeDecodeError, csv.Error):
                bad.append(number)
                continue
        else:
            fields = line.split(b",")
        if len(fields) != 3:
            bad.append(number)
            continue
        uid_b, gender_b, seg_b = (f.strip() for f in fields)
        if not _DIGITS.fullmatch(uid_b) or len(uid_b.lstrip(b"0")) > 19 or int(uid_b) > MAX_USER_ID:
            bad.append(number)
            continue
        if seg_b and (not _INT.fullmatch(seg_b) or not MIN_SEGMENT <= int(seg_b) <= MAX_SEGMENT):
            bad.append(number)
            continue
        try:
            gender = gender_b.decode("utf-8") or None
        except UnicodeDecodeError:
            bad.append(number)
            continue
        rows[int(uid_b)] = (gender, int(seg_b) if seg_b else None)
    return rows, bad, total, header


def chunks_of(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    out.append(data[pos:])
    return out


# -- strategies ----------------------------------------------------------------------------------------

_uids = st.one_of(st.integers(0, 20), st.integers(0, MAX_USER_ID))
_genders = st.sampled_from(["female", "male", "", " other ", "non binary", "é", "x_y"])
_segs = st.one_of(st.just(""), st.integers(0, 5).map(str), st.integers(MIN_SEGMENT, MAX_SEGMENT).map(str))


@st.composite
def _valid_line(draw: st.DrawFn) -> bytes:
    fields = [str(draw(_uids)), draw(_genders), draw(_segs)]
    quote = draw(st.sampled_from([(False, False, False), (True, True, True), (False, True, False)]))
    return ",".join(f'"{f}"' if q else f for f, q in zip(fields, quote, strict=True)).encode()


_bad_lines = st.sampled_from(
    [
        b"-5,female,1",
        b"+5,female,1",
        b"1_0,female,1",
        b"abc,male,2",
        b",male,2",
        b"1,female",
        b"1,female,2,3",
        b"1,female,x",
        b"1,female,+3",
        b"1,female,1-2",
        b"1,female,-",
        b"1,female,2147483648",
        b"1,female,-2147483648",
        str(MAX_USER_ID + 1).encode() + b",male,1",
        b"9" * 5000 + b",male,1",
        b"1,\xff\xfe,1",
        b"12",
    ]
)
_other_lines = st.sampled_from(
    [
        b"",
        b"   ",
        b" 7 , male , 3 ",
        b"8,female,  -4",
        b"0009,male,0",
        b'9,"a,b",1',  # a quoted comma: three fields
        b'10,"say ""hi""",2',  # doubled quotes
        b'11,"",""',
        b'"12,male,1',  # unbalanced: bad
        b'13,"a,b"',  # two fields: bad
        b'14,""x"",1',  # bad
        b'15,x",1',  # a stray quote inside an unquoted field is literal
        b'16,"x,1',  # bad
        b'17,"a"b",1',  # bad
        b'18,""x,1',  # bad
        b'19,x"",1',  # literal quotes: gender x""
    ]
)
_lines = st.lists(
    st.one_of(_valid_line(), _valid_line(), _valid_line(), _bad_lines, _other_lines), max_size=60
)


class TestAgainstOracle:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        lines=_lines,
        header=st.booleans(),
        crlf=st.booleans(),
        trailing_newline=st.booleans(),
        cut_sizes=st.lists(st.integers(1, 97), max_size=8),
        block_bytes=st.sampled_from([1, 7, 64, 1 << 20]),
        run_rows=st.sampled_from([1, 3, 1 << 15]),
    )
    def test_parser_matches_oracle(
        self,
        lines: list[bytes],
        header: bool,
        crlf: bool,
        trailing_newline: bool,
        cut_sizes: list[int],
        block_bytes: int,
        run_rows: int,
    ) -> None:
        if header:
            lines = [b"User_Id,gender,segment_id", *lines]
        eol = b"\r\n" if crlf else b"\n"
        data = eol.join(lines) + (eol if trailing_newline and lines else b"")
        expected, bad_lines, total, has_header = oracle(data)

        result = parse_csv(
            chunks_of(data, cut_sizes), max_bad_ratio=1.0, block_bytes=block_bytes, run_rows=run_rows
        )

        assert dict(result.table.items()) == expected
        assert list(result.table) == sorted(expected)
        assert [b.line for b in result.bad_rows] == bad_lines
        assert result.bad_count == len(bad_lines)
        assert result.total_rows == total
        assert result.header == has_header
        for uid in list(expected)[:5]:
            assert result.table.lookup(uid) == expected[uid]

    def test_large_unsorted_input_with_duplicates_matches_dict(self) -> None:
        rng = random.Random(7)
        rows = []
        for _ in range(60_000):
            uid = rng.choice([rng.randrange(1000), rng.randrange(2**62)])
            rows.append(f"{uid},{rng.choice(['female', 'male', ''])},{rng.choice(['', '1', '-2', '300'])}")
        data = "\n".join(rows).encode()
        expected, bad, total, _ = oracle(data)
        assert not bad and total == 60_000 and len(expected) < 60_000  # duplicates really present
        for kwargs in ({}, {"block_bytes": 4096, "run_rows": 500}):
            result = parse_csv(data, **kwargs)
            assert dict(result.table.items()) == expected
            assert len(result.table) == len(expected)
            assert result.duplicates == total - len(expected)


# -- explicit format cases -----------------------------------------------------------------------------


def test_parses_rows_and_unknown_users_join_to_null() -> None:
    result = parse_csv(b"101,female,1\n102,male,2\n103,,\n104,male,\n105,,7\n")
    t = result.table
    assert len(t) == 5
    assert t.lookup(101) == ("female", 1)
    assert t.lookup(102) == ("male", 2)
    assert t.lookup(103) == (None, None)
    assert 103 in t
    assert t.lookup(104) == ("male", None)
    assert t.lookup(105) == (None, 7)
    assert t.lookup(999) == (None, None)
    assert 999 not in t
    assert result.total_rows == 5 and result.bad_rows == [] and result.header is False


@pytest.mark.parametrize(
    "header",
    [
        b"user_id,gender,segment_id",
        b"USER_ID,GENDER,SEGMENT_ID",
        b'"user_id","gender","segment_id"',
        b"\xef\xbb\xbfuser_id,gender,segment_id",
        b"\n\n user_id , gender , segment_id",
    ],
)
def test_optional_header_is_skipped(header: bytes) -> None:
    result = parse_csv(header + b"\n101,female,1\n102,male,2\n")
    assert result.header is True
    assert result.total_rows == 2
    assert dict(result.table.items()) == {101: ("female", 1), 102: ("male", 2)}


def test_header_is_only_recognised_on_the_first_line() -> None:
    result = parse_csv(b"101,female,1\nuser_id,gender,segment_id\n102,male,2\n", max_bad_ratio=1.0)
    assert result.header is False
    assert [(b.line, b.reason) for b in result.bad_rows] == [(2, "user_id is not a non-negative integer")]


def test_bad_rows_are_skipped_with_line_numbers_and_reasons() -> None:
    data = (
        b"1,female,1\n"  # 1
        b"\n"  # 2 blank: ignored, still counted as a line
        b"x,female,1\n"  # 3
        b"2,female\n"  # 4
        b"3,male,abc\n"  # 5
        b"-4,male,1\n"  # 6
        b"9223372036854775808,male,1\n"  # 7 (2^63)
        b"9223372036854775807,male,1\n"  # 8 (2^63-1: fine)
        b"5,male,2147483648\n"  # 9
        b"6,\xff,1\n"  # 10
        b"7,male,-2147483647\n"  # 11 fine
    )
    result = parse_csv(data, max_bad_ratio=1.0)
    assert [(b.line, b.reason) for b in result.bad_rows] == [
        (3, "user_id is not a non-negative integer"),
        (4, "expected 3 fields (user_id,gender,segment_id), got 2"),
        (5, "segment_id is not an integer"),
        (6, "user_id is not a non-negative integer"),
        (7, "user_id is larger than 2^63-1"),
        (9, "segment_id is outside -2147483647..2147483647"),
        (10, "gender is not valid UTF-8"),
    ]
    assert result.bad_rows[0].text == "x,female,1"
    assert "line 3" in str(result.bad_rows[0])
    assert result.total_rows == 10
    assert result.bad_count == 7
    assert dict(result.table.items()) == {
        1: ("female", 1),
        MAX_USER_ID: ("male", 1),
        7: ("male", -2147483647),
    }


def test_whitespace_crlf_quotes_and_leading_zeros() -> None:
    data = b' 1 , female , 3 \r\n"2","male, or not","4"\r\n0003,"",\r\n'
    result = parse_csv(data)
    assert dict(result.table.items()) == {1: ("female", 3), 2: ("male, or not", 4), 3: (None, None)}
    assert result.bad_rows == []


_TRICKY_QUOTES = [
    b'9,"a,b",1',
    b'10,"say ""hi""",2',
    b'11,"",""',
    b'"12,male,1',
    b'13,"a,b"',
    b'14,""x"",1',
    b'15,x",1',
    b'16,"x,1',
    b'17,"a"b",1',
    b'18,""x,1',
    b'19,x"",1',
    b'"20","m""","1"',
    b'"21",""","1"',
    b'"22","m",1"',
    b'"23","m","1',
    b'"24","7,8"',
]


@pytest.mark.parametrize("line", _TRICKY_QUOTES)
@pytest.mark.parametrize("neighbours", [(b"1,a,1", b"2,b,2"), (b'"1","a","1"', b'"2","b","2"')])
def test_tricky_quoting_matches_the_csv_module(line: bytes, neighbours: tuple[bytes, bytes]) -> None:
    data = b"\n".join([neighbours[0], line, neighbours[1]])
    expected, bad, total, _ = oracle(data)
    result = parse_csv(data, max_bad_ratio=1.0)
    assert dict(result.table.items()) == expected
    assert [b.line for b in result.bad_rows] == bad
    assert result.total_rows == total


def test_quote_all_exports() -> None:
    data = b'"user_id","gender","segment_id"\r\n"1","female","3"\r\n"2","",""\r\n"3","a,b","4"\r\n'
    result = parse_csv(data)
    assert result.header is True and result.bad_rows == []
    assert dict(result.table.items()) == {1: ("female", 3), 2: (None, None), 3: ("a,b", 4)}
    bad = b'"1","female","3"\n"2","x,"y"\n"4","m","5"\n'  # "x,"y": a quoted comma and only 2 fields
    result = parse_csv(bad, max_bad_ratio=1.0)
    assert [b.line for b in result.bad_rows] == [2]
    assert dict(result.table.items()) == {1: ("female", 3), 4: ("m", 5)}


def test_duplicates_last_row_wins_within_and_across_runs() -> None:
    data = b"5,female,1\n3,male,2\n5,male,9\n1,,\n3,other,\n5,female,4\n"
    for run_rows in (1, 2, 1 << 15):
        result = parse_csv(data, block_bytes=12, run_rows=run_rows)
        assert dict(result.table.items()) == {1: (None, None), 3: ("other", None), 5: ("female", 4)}
        assert result.duplicates == 3
        assert len(result.table) == 3


def test_sorted_input_with_adjacent_duplicates() -> None:
    result = parse_csv(b"1,a,1\n2,b,2\n2,c,3\n3,d,4\n")
    assert dict(result.table.items()) == {1: ("a", 1), 2: ("c", 3), 3: ("d", 4)}


def test_threshold_rejects_files_with_too_many_bad_rows() -> None:
    good = [f"{i},female,1" for i in range(98)]
    one_bad = "\n".join(good + ["oops", "99,male,2"]).encode()  # 1 bad of 100 = 1%: accepted
    result = parse_csv(one_bad)
    assert result.bad_count == 1 and len(result.table) == 99

    two_bad = "\n".join(good + ["oops", "nope,1"]).encode()  # 2% > 1%: refused
    with pytest.raises(ReferenceDataRejected) as info:
        parse_csv(two_bad, source="users.csv")
    exc = info.value
    assert exc.bad_count == 2 and exc.total_rows == 100
    assert [b.line for b in exc.bad_rows] == [99, 100]
    assert "users.csv" in str(exc) and "2 of 100" in str(exc) and "line 99" in str(exc)

    with pytest.raises(ReferenceDataRejected):
        parse_csv(one_bad, max_bad_ratio=0.0)
    assert len(parse_csv(two_bad, max_bad_ratio=0.05).table) == 98


def test_stored_bad_rows_are_capped_but_all_are_counted() -> None:
    lines = [f"{i},male,1" if i % 3 else f"bad{i}" for i in range(1000)]
    result = parse_csv("\n".join(lines).encode(), max_bad_ratio=1.0, max_bad_rows_kept=100)
    assert result.bad_count == 334
    assert len(result.bad_rows) == 100
    assert [b.line for b in result.bad_rows[:3]] == [1, 4, 7]
    assert len(result.table) == 666


def test_too_many_distinct_genders_are_bad_rows() -> None:
    lines = [f"{i},g{i},1" for i in range(MAX_GENDERS + 3)]
    result = parse_csv("\n".join(lines).encode(), max_bad_ratio=1.0)
    assert len(result.table.genders) == MAX_GENDERS
    assert [b.line for b in result.bad_rows] == [MAX_GENDERS + 1, MAX_GENDERS + 2, MAX_GENDERS + 3]
    assert result.bad_rows[0].reason == f"more than {MAX_GENDERS} distinct gender values"


def test_empty_and_blank_inputs() -> None:
    for data in (b"", b"\n\n", b"user_id,gender,segment_id\n", [b"", b""]):
        result = parse_csv(data)
        assert len(result.table) == 0 and result.total_rows == 0 and result.bad_count == 0


def test_high_cardinality_segments_use_the_int_path() -> None:
    base = [f"{i},m,{i * 3 - 150_000}" for i in range(100_000)] + ["100000,m,", "100001,m,-7"]
    result = parse_csv("\n".join(base).encode())
    t = result.table
    assert t.lookup(0) == ("m", -150_000)
    assert t.lookup(99_999) == ("m", 99_999 * 3 - 150_000)
    assert t.lookup(100_000) == ("m", None)
    assert t.lookup(100_001) == ("m", -7)
    # each on its own, early in the first block (too many distinct values for the segment cache)
    for bad in ("2147483648", "-2147483648", "+1", "1-2", "99999999999999999999999"):
        lines = [*base[:10], "100000,m,", f"100002,m,{bad}", *base[10:]]
        result = parse_csv("\n".join(lines).encode())
        assert [b.line for b in result.bad_rows] == [12], bad
        assert len(result.table) == 100_002


def test_misaligned_commas_are_not_papered_over() -> None:
    # 4 commas + 0 commas = 2 per line on average; read as one flat list the fields would line up
    result = parse_csv(b"1,a,2,3,b\n4\n5,c,6\n", max_bad_ratio=1.0)
    assert [(b.line, b.reason[:20]) for b in result.bad_rows] == [
        (1, "expected 3 fields (u"),
        (2, "expected 3 fields (u"),
    ]
    assert dict(result.table.items()) == {5: ("c", 6)}


def test_iter_blocks_keeps_lines_whole() -> None:
    data = b"a\nbb\n" + b"c" * 50 + b"\nd\n\ne"
    for block_bytes in (1, 3, 8, 1000):
        for sizes in ([1] * 10, [7, 3], []):
            blocks = list(iter_blocks(chunks_of(data, sizes), block_bytes))
            assert b"\n".join(blocks) == data
            assert all(len(b) <= max(block_bytes, 50) for b in blocks)


# -- UserTable -----------------------------------------------------------------------------------------


def test_user_table_api() -> None:
    t = UserTable.from_rows([(30, "male", 3), (10, "female", None), (20, None, 2), (10, "female", 1)])
    assert len(t) == 3
    assert list(t) == [10, 20, 30]
    assert t.lookup(10) == ("female", 1)
    assert t.lookup(20) == (None, 2)
    assert t.lookup(-1) == (None, None)
    assert t.lookup(2**64) == (None, None)
    assert t.lookup(15) == (None, None)
    assert t.genders == ("male", "female")
    assert t.lookup_many([10, 99, 10, 30]) == {10: ("female", 1), 99: (None, None), 30: ("male", 3)}
    assert "x" not in t and 20 in t
    assert t.nbytes > 0


def test_empty_table() -> None:
    t = UserTable.empty()
    assert len(t) == 0 and list(t) == [] and t.genders == ()
    assert t.lookup(0) == (None, None) and t.lookup(MAX_USER_ID) == (None, None)


def test_from_rows_validates_ranges() -> None:
    with pytest.raises(ValueError):
        UserTable.from_rows([(-1, None, None)])
    with pytest.raises(ValueError):
        UserTable.from_rows([(1, None, MAX_SEGMENT + 1)])


@pytest.mark.parametrize("kind", ["dense", "40-bit", "63-bit", "skewed"])
def test_lookups_across_id_distributions(kind: str) -> None:
    rng = random.Random(kind)
    if kind == "dense":
        ids = rng.sample(range(6000), 5000)
    elif kind == "40-bit":
        ids = [rng.randrange(2**40) for _ in range(5000)]
    elif kind == "63-bit":
        ids = [rng.randrange(MAX_USER_ID + 1) for _ in range(5000)]
    else:  # a tight cluster plus far outliers: the directory degenerates, lookups must still work
        ids = [10**6 + rng.randrange(10_000) for _ in range(5000)] + [0, MAX_USER_ID]
    rows = [(uid, "g" if uid % 2 else None, uid % 1000) for uid in ids]
    t = UserTable.from_rows(rows)
    assert len(t) == len(set(ids))
    for uid, gender, seg in rows:
        assert t.lookup(uid) == (gender, seg)
    present = set(ids)
    probes = [uid + d for uid in ids[:1000] for d in (-1, 1)] + [rng.randrange(2**63) for _ in range(500)]
    for probe in probes:
        if probe not in present:
            assert t.lookup(probe) == (None, None)
    # Dense ids get the direct index, the others the bisect; the two always agree.
    assert (t._dense is not None) == (kind == "dense")
    for probe in probes + ids + [-1, 0, 2**64]:
        assert t.lookup(probe) == t._bisect_lookup(probe)


def test_dense_ids_with_too_many_distinct_rows_keep_the_bisect() -> None:
    rows = [(uid, "g", uid) for uid in range(1, 70_001)]  # 70,000 distinct (gender, segment) rows
    t = UserTable.from_rows(rows)
    assert t._dense is None
    assert t.lookup(69_999) == ("g", 69_999) and t.lookup(70_001) == (None, None)


def test_dense_index_keeps_null_segments_and_genders() -> None:
    t = UserTable.from_rows([(1, None, None), (2, "f", None), (3, None, 7), (5, "m", 2)])
    assert t._dense is not None
    assert [t.lookup(u) for u in range(7)] == [
        (None, None),
        (None, None),
        ("f", None),
        (None, 7),
        (None, None),
        ("m", 2),
        (None, None),
    ]


def test_builder_is_single_use() -> None:
    b = UserTableBuilder()
    b.add([1], b"\x00", [5])
    assert b.build().lookup(1) == (None, 5)
    with pytest.raises(RuntimeError):
        b.build()
