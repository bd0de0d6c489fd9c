"""Parse ``user_id,gender,segment_id`` CSV into a :class:`UserTable`, fast and with honest error reports.

Format (the origin's, plus the leniency a hand-edited file needs):

* no header, but an optional first line whose first field is ``user_id`` (any case) is skipped;
* ``user_id``: ASCII digits, 0..2^63-1;
* ``gender``: any UTF-8 text, surrounding whitespace stripped, empty means null;
* ``segment_id``: optional ``-`` and ASCII digits in the 32-bit range except -2^31 (reserved for null),
  empty means null;
* fields may be surrounded by spaces and may be double-quoted (RFC 4180 style, within one line;
  the csv module's reading of a quoted line is the reference);
* CRLF line ends, a UTF-8 byte order mark and blank lines are accepted;
* a duplicated user_id: the last row wins.

Rows that break these rules are skipped and reported (1-based line number and reason). If more than
``max_bad_ratio`` of the rows are bad the whole file is refused with :class:`ReferenceDataRejected`,
because a file that is mostly garbage is more likely a broken export than a few typos.

Speed: 10 million rows must parse in seconds on a small box, so each ~1 MB block is first tried on a
vectorised fast path (``bytes.split`` into columns, ``map(int, ...)``, C-level checks that the whole
block is well formed) and only falls back to the row-by-row path, which also produces the error
reports, if any check fails. Both paths accept exactly the same rows; the tests hold them to it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat

from .errors import ReferenceDataRejected
from .table import (
    MAX_GENDERS,
    MAX_SEGMENT,
    MAX_USER_ID,
    MIN_SEGMENT,
    NULL_SEGMENT,
    UserTable,
    UserTableBuilder,
)

DEFAULT_MAX_BAD_RATIO = 0.01
DEFAULT_MAX_BAD_ROWS_KEPT = 100
DEFAULT_BLOCK_BYTES = 1 << 20

_BOM = b"\xef\xbb\xbf"
_TEXT_LIMIT = 200
_SEG_CACHE_MAX = 1 << 16


@dataclass(frozen=True, slots=True)
class BadRow:
    """A skipped row: where it is, why it was skipped, and (a prefix of) what it said."""

    line: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {self.text!r}"


@dataclass(slots=True)
class ParseResult:
    """The table plus what was skipped; ``bad_rows`` holds at most the first N, ``bad_count`` all."""

    table: UserTable
    bad_rows: list[BadRow]
    total_rows: int
    bad_count: int = 0
    duplicates: int = 0
    header: bool = False

    @property
    def bad_ratio(self) -> float:
        return self.bad_count / self.total_rows if self.total_rows else 0.0


class _BadValue(ValueError):
    """A row-level rejection reason, raised inside the slow path."""


class _Parser:
    """Incremental parser state: line counter, gender dictionary, bad-row collection."""

    def __init__(self, builder: UserTableBuilder, max_bad_rows_kept: int) -> None:
        self.builder = builder
        self.max_bad_rows_kept = max_bad_rows_kept
        self.bad_rows: list[BadRow] = []
        self.bad_count = 0
        self.total_rows = 0
        self.line = 0  # lines consumed so far
        self.header = False
        self.seen_content = False
        # raw gender bytes exactly as they appear in the file -> code; avoids decoding per row
        self.gender_codes: dict[bytes, int] = {b"": 0}
        # raw segment bytes -> value (NULL_SEGMENT for empty), bounded by _SEG_CACHE_MAX
        self.seg_values: dict[bytes, int] = {b"": NULL_SEGMENT}

    # -- helpers --------------------------------------------------------------------------------

    def gender_code(self, raw: bytes) -> int:
        code = self.gender_codes.get(raw)
        if code is not None:
            return code
        try:
            text = raw.strip().decode("utf-8")
        except UnicodeDecodeError:
            raise _BadValue("gender is not valid UTF-8") from None
        try:
            code = self.builder.gender_code(text or None)
        except ValueError as exc:
            raise _BadValue(str(exc)) from None
        self.gender_codes[raw] = code
        return code

    def bad(self, line: int, reason: str, text: bytes) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < self.max_bad_rows_kept:
            shown = text[:_TEXT_LIMIT].decode("utf-8", errors="replace")
            self.bad_rows.append(BadRow(line, reason, shown))

    # -- blocks ---------------------------------------------------------------------------------

    def feed_block(self, block: bytes) -> None:
        """Parse complete lines (no trailing newline); line numbers continue from the previous block."""
        if not self.seen_content:
            rest = self._skip_preamble(block)
            if rest is None:
                return
            block = rest
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        nlines = block.count(b"\n") + 1
        if not self._fast_block(block, nlines):
            self._slow_block(block)
        self.line += nlines

    def _skip_preamble(self, block: bytes) -> bytes | None:
        """Drop blank lines and an optional header before the first row, counting their lines.

        Returns the rest of the block, or None when the whole block was preamble.
        """
        if self.line == 0 and block.startswith(_BOM):
            block = block[len(_BOM) :]
        while True:
            nl = block.find(b"\n")
            first = block if nl < 0 else block[:nl]
            if first.strip():
                self.seen_content = True
                head = first.split(b",", 1)[0].strip().strip(b'"').strip().lower()
                if head != b"user_id":
                    return block
                self.header = True
                self.line += 1
                return None if nl < 0 else block[nl + 1 :]
            self.line += 1
            if nl < 0:
                return None
            block = block[nl + 1 :]

    def _fast_block(self, block: bytes, nlines: int) -> bool:
        """All-or-nothing vectorised parse of a clean block; False means "use the slow path"."""
        if block.count(b",") != 2 * nlines:
            return False
        quoted = b'"' in block
        if quoted:
            plain = _unquote_quote_all(block, nlines)
            if plain is not None:
                block, quoted = plain, False
        lines = block.split(b"\n")
        # every line has exactly two commas (the total alone could hide a 1 + 3 pair)
        if set(map(bytes.count, lines, repeat(b","))) != {2}:
            return False
        fields = block.replace(b"\n", b",").split(b",")
        columns = [fields[0::3], fields[1::3], fields[2::3]]
        del fields, lines
        if quoted:  # some fields quoted (often just the text column): unquote the columns that need it
            for i, column in enumerate(columns):
                if b'"' in b"".join(column):
                    unquoted = _unquote_whole_fields(column)
                    if unquoted is None:
                        return False
                    columns[i] = unquoted
        raw_ids, raw_genders, raw_segs = columns
        del columns
        if not b"".join(raw_ids).isdigit():
            return False
        try:
            ids = list(map(int, raw_ids))  # an empty id raises here too
        except ValueError:  # also: more digits than int() accepts, so certainly too large
            return False
        del raw_ids
        if max(ids) > MAX_USER_ID:
            return False
        segs = self._fast_segs(raw_segs)
        if segs is None:
            return False
        known = self.gender_codes
        new = set(raw_genders).difference(known)
        if new:
            if len(self.builder.genders) + len(new) > MAX_GENDERS + 1:
                return False  # the slow path decides, in file order, which rows are over the limit
            for raw in sorted(new, key=raw_genders.index):  # file order: codes do not depend on hashing
                try:
                    self.gender_code(raw)
                except _BadValue:
                    return False
        codes = bytes(map(known.__getitem__, raw_genders))
        self.total_rows += nlines
        self.builder.add(ids, codes, segs)
        return True

    def _fast_segs(self, raw_segs: list[bytes]) -> list[int] | None:
        """Segment ids of a block, or None if any is invalid.

        Segments repeat a lot (a few thousand distinct values for millions of users), so a dict from
        raw bytes to value beats int() per row and validates each distinct value once, with the
        same rules as the slow path. Past _SEG_CACHE_MAX distinct values, plain int() takes over.
        """
        known = self.seg_values
        new = set(raw_segs).difference(known)
        if new and len(known) + len(new) <= _SEG_CACHE_MAX:
            for raw in new:
                try:
                    known[raw] = _parse_seg(raw)
                except _BadValue:
                    return None
            new = set()
        if not new:
            return list(map(known.__getitem__, raw_segs))
        joined = b"".join(raw_segs)
        if joined and not joined.replace(b"-", b"").isdigit():
            return None
        try:
            if b"" in raw_segs:
                segs = [int(s) if s else NULL_SEGMENT for s in raw_segs]
                if segs.count(NULL_SEGMENT) != raw_segs.count(b""):
                    return None  # a literal -2147483648, which is out of range
            else:
                segs = list(map(int, raw_segs))
        except ValueError:  # e.g. "1-2", "-", or absurdly many digits
            return None
        if min(segs) < NULL_SEGMENT or max(segs) > MAX_SEGMENT:
            return None
        if b"" not in raw_segs and min(segs) < MIN_SEGMENT:
            return None
        return segs

    def _slow_block(self, block: bytes) -> None:
        """Row by row, with a reason for every rejected row."""
        ids: list[int] = []
        codes = bytearray()
        segs: list[int] = []
        line_no = self.line
        for line in block.split(b"\n"):
            line_no += 1
            if not line.strip():
                continue
            self.total_rows += 1
            try:
                uid, code, seg = self._parse_row(line)
            except _BadValue as exc:
                self.bad(line_no, str(exc), line)
                continue
            ids.append(uid)
            codes.append(code)
            segs.append(seg)
        self.builder.add(ids, bytes(codes), segs)

    def _parse_row(self, line: bytes) -> tuple[int, int, int]:
        if b'"' in line:
            fields = _split_quoted(line)
        else:
            fields = line.split(b",")
        if len(fields) != 3:
            raise _BadValue(f"expected 3 fields (user_id,gender,segment_id), got {len(fields)}")
        raw_id, raw_gender, raw_seg = fields
        raw_id = raw_id.strip()
        if not raw_id.isdigit():
            raise _BadValue("user_id is not a non-negative integer" if raw_id else "user_id is empty")
        if len(raw_id) > 19 and len(raw_id.lstrip(b"0")) > 19:
            raise _BadValue("user_id is larger than 2^63-1")  # and maybe too long for int()
        uid = int(raw_id)
        if uid > MAX_USER_ID:
            raise _BadValue("user_id is larger than 2^63-1")
        seg = self.seg_values.get(raw_seg)
        if seg is None:
            seg = _parse_seg(raw_seg)
            if len(self.seg_values) < _SEG_CACHE_MAX:
                self.seg_values[raw_seg] = seg
        code = self.gender_code(raw_gender)
        return uid, code, seg


def _parse_seg(raw: bytes) -> int:
    """A segment_id field: empty -> NULL_SEGMENT, else an optionally negative 32-bit integer."""
    raw = raw.strip()
    if not raw:
        return NULL_SEGMENT
    digits = raw[1:] if raw.startswith(b"-") else raw
    if not digits.isdigit():
        raise _BadValue("segment_id is not an integer")
    seg = int(raw) if len(digits.lstrip(b"0")) <= 10 else MAX_SEGMENT + 1
    if not MIN_SEGMENT <= seg <= MAX_SEGMENT:
        raise _BadValue(f"segment_id is outside {MIN_SEGMENT}..{MAX_SEGMENT}")
    return seg


def _unquote_quote_all(block: bytes, nlines: int) -> bytes | None:
    """A block where every field is ``"..."`` (a quote-all export), unquoted in a few C passes.

    Every comma must be a ``","`` separator (so no field holds a comma) and no quote may survive
    the replacements (so no field holds a quote); otherwise None.
    """
    if not (block.startswith(b'"') and block.endswith(b'"')) or block.count(b'","') != 2 * nlines:
        return None
    plain = block[1:-1].replace(b'","', b",").replace(b'"\n"', b"\n")
    return None if b'"' in plain else plain


def _unquote_whole_fields(fields: list[bytes]) -> list[bytes] | None:
    """Strip quotes from fields that are either unquoted or exactly ``"..."`` with no quote inside.

    That covers exports that quote every field; anything fancier (doubled quotes, quoted commas,
    stray quotes) returns None and goes to the csv module on the slow path.
    """
    stripped = list(map(bytes.strip, fields, repeat(b'"')))
    if b'"' in b"".join(stripped):
        return None
    if not set(map(int.__sub__, map(len, fields), map(len, stripped))) <= {0, 2}:
        return None
    if list(map(bytes.startswith, fields, repeat(b'"'))) != list(map(bytes.endswith, fields, repeat(b'"'))):
        return None
    return stripped


def _split_quoted(line: bytes) -> list[bytes]:
    """Split one line that contains double quotes, the CSV way (quoted commas, doubled quotes)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadValue("line is not valid UTF-8") from None
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise _BadValue(f"malformed quoting: {exc}") from None
    if len(rows) != 1:
        raise _BadValue("malformed quoting")
    return [f.encode("utf-8") for f in rows[0]]


def iter_blocks(chunks: Iterable[bytes], block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[bytes]:
    """Regroup byte chunks cut anywhere into blocks of whole lines (without the final newline).

    Blocks of about ``block_bytes`` keep the transient Python objects of a block (and the RSS they
    leave behind) small. A line longer than a block becomes a block of its own.
    """
    buf = bytearray()
    no_newline_before = 0  # buf[block_bytes:no_newline_before] is known to hold no newline
    for chunk in chunks:
        buf += chunk
        while len(buf) >= block_bytes:
            nl = buf.rfind(b"\n", 0, block_bytes)
            if nl < 0:
                nl = buf.find(b"\n", max(block_bytes, no_newline_before))
                if nl < 0:
                    no_newline_before = len(buf)
                    break
            with memoryview(buf) as view:
                block = bytes(view[:nl])
            del buf[: nl + 1]  # cheap: bytearray deletes from the front in O(1)
            no_newline_before = 0
            yield block
    if buf.endswith(b"\n"):
        del buf[-1:]
    if buf:
        yield bytes(buf)


def _as_chunks(data: bytes | bytearray | memoryview | Iterable[bytes]) -> Iterable[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        step = DEFAULT_BLOCK_BYTES
        return (bytes(view[i : i + step]) for i in range(0, len(view), step))
    return data


def parse_csv(
    data: bytes | bytearray | memoryview | Iterable[bytes],
    *,
    max_bad_ratio: float = DEFAULT_MAX_BAD_RATIO,
    max_bad_rows_kept: int = DEFAULT_MAX_BAD_ROWS_KEPT,
    source: str = "reference data",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    run_rows: int = 1 << 15,
) -> ParseResult:
    """Parse a whole CSV (bytes, or an iterable of byte chunks cut anywhere) into a ParseResult.

    Raises ReferenceDataRejected if more than ``max_bad_ratio`` of the non-blank rows are bad.
    ``source`` only names the data in messages; ``block_bytes``/``run_rows`` are tuning knobs.
    """
    if not 0.0 <= max_bad_ratio <= 1.0:
        raise ValueError("max_bad_ratio must be between 0 and 1")
    builder = UserTableBuilder(run_rows=run_rows)
    parser = _Parser(builder, max_bad_rows_kept)
    for block in iter_blocks(_as_chunks(data), block_bytes):
        parser.feed_block(block)
    total, bad = parser.total_rows, parser.bad_count
    if total and bad / total > max_bad_ratio:
        first = "; ".join(str(b) for b in parser.bad_rows[:5])
        raise ReferenceDataRejected(
            f"{source}: refused, {bad} of {total} rows are malformed ({bad / total:.2%} > "
            f"{max_bad_ratio:.2%} allowed); first: {first}",
            bad_rows=parser.bad_rows,
            bad_count=bad,
            total_rows=total,
        )
    table = builder.build()
    return ParseResult(
        table=table,
        bad_rows=parser.bad_rows,
        total_rows=total,
        bad_count=bad,
        duplicates=builder.duplicates,
        header=parser.header,
    )
