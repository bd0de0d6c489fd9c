"""A compact, immutable user_id -> (gender, segment_id) table.

Why not a dict: a dict of 10 million users costs well over a gigabyte in CPython (an int key, a tuple
and its items per user). Here a user costs 13 bytes: three parallel typed arrays sorted by user id
(``array('q')`` ids, ``array('B')`` gender codes into a tiny tuple of interned strings, ``array('i')``
segment ids with a sentinel for null). A lookup is a C ``bisect`` inside a small bucket found through a
directory on the id's high bits, so it stays well under a microsecond without any per-user objects.

Tables are built by :class:`UserTableBuilder`, which accepts rows in file order, in chunks, and copes
with unsorted input and duplicate ids (the last row of a duplicated id wins, as if each row were an
upsert in file order) while keeping peak memory bounded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, islice, repeat
from operator import lt, ne

MAX_USER_ID = 2**63 - 1
"""Largest user id the table (and the event validator) accepts."""

NULL_SEGMENT = -(2**31)
"""Sentinel stored in the segment array for a null segment_id; therefore not a valid segment_id."""

MIN_SEGMENT = NULL_SEGMENT + 1
MAX_SEGMENT = 2**31 - 1

MAX_GENDERS = 255
"""Distinct non-null genders a table can hold (codes are one byte; 0 means null)."""

_BUCKET_TARGET = 32
"""Average users per directory bucket: smaller is faster to look up but costs more directory memory."""

_DENSE_SPAN_PER_USER = 2
"""Ids spanning at most this many slots per user (sequential database ids) also get a direct index."""

_MAX_DENSE_ROWS = 65_535
"""Distinct (gender, segment) rows a direct index can hold (its slots are two bytes; 0 is unknown)."""

Row = tuple[str | None, int | None]
_UNKNOWN: Row = (None, None)


class UserTable:
    """Immutable mapping user_id -> (gender, segment_id); unknown users map to (None, None).

    The (None, None) default is the LEFT JOIN of the reference SQL: an event whose user is absent from
    the reference data still counts, under a null gender and a null segment.
    """

    __slots__ = (
        "_ids", "_codes", "_segs", "_genders", "_n", "_base", "_shift", "_nbuckets", "_dir", "_dense", "lookup"
    )  # fmt: skip

    lookup: Callable[[int], Row]
    """(gender, segment_id) of a user, or (None, None) if unknown: the direct index when the ids are
    dense, else a bisect (both exact; chosen once per table)."""

    def __init__(
        self,
        ids: array[int],
        codes: array[int],
        segs: array[int],
        genders: tuple[str | None, ...],
    ) -> None:
        """Wrap already sorted, de-duplicated arrays; prefer :meth:`from_rows` or the builder.

        Trusts its input on purpose: checking order would cost a full pass on every reload.
        """
        if not (len(ids) == len(codes) == len(segs)):
            raise ValueError("ids, codes and segs must have the same length")
        if ids.typecode != "q" or codes.typecode != "B" or segs.typecode != "i":
            raise ValueError("expected arrays of typecodes 'q', 'B' and 'i'")
        if not genders or genders[0] is not None:
            raise ValueError("genders[0] must be None (code 0 means a null gender)")
        self._ids = ids
        self._codes = codes
        self._segs = segs
        self._genders = genders
        self._dense: array[int] | None = None
        self.lookup = self._bisect_lookup
        n = self._n = len(ids)
        if n == 0:
            self._base, self._shift, self._nbuckets = 0, 0, 0
            self._dir = array("q", [0])
            return
        # Directory: bucket b holds the ids in [base + b << shift, base + (b + 1) << shift), so a lookup
        # bisects ~_BUCKET_TARGET ids instead of all of them. Skewed ids only make buckets uneven.
        base = ids[0]
        span = ids[-1] - base
        bits = max(1, n // _BUCKET_TARGET).bit_length()
        shift = max(0, span.bit_length() - bits)
        nbuckets = (span >> shift) + 1
        step = 1 << shift
        directory = array(
            "q", map(bisect_left, repeat(ids, nbuckets), range(base, base + nbuckets * step, step))
        )
        directory.append(n)
        self._base, self._shift, self._nbuckets, self._dir = base, shift, nbuckets, directory
        if span < _DENSE_SPAN_PER_USER * n:
            self._build_dense()

    def _build_dense(self) -> None:
        """Direct index for dense ids: slot (id - base) holds 1 + the id's row number, 0 if unknown.

        Why: the join runs once per event, and a bisect lookup (~0.7 µs) was 13 % of the worker on the
        benchmark; this one is ~0.15 µs for 2 bytes per slot (at most 4 bytes per user, by the span rule).
        """
        base = self._base
        dense = array("H", bytes(2 * (self._ids[-1] - base + 1)))
        numbers: dict[int, int] = {}
        rows: list[Row] = [_UNKNOWN]
        genders = self._genders
        for uid, code, seg in zip(self._ids, self._codes, self._segs, strict=True):
            combo = code << 32 | (seg & 0xFFFFFFFF)
            number = numbers.get(combo)
            if number is None:
                if len(rows) > _MAX_DENSE_ROWS:
                    return  # too many distinct rows for two-byte slots: keep the bisect
                number = numbers[combo] = len(rows)
                rows.append((genders[code], None if seg == NULL_SEGMENT else seg))
            dense[uid - base] = number
        self._dense = dense
        table, size = tuple(rows), len(dense)

        def lookup(user_id: int) -> Row:
            i = user_id - base
            return table[dense[i]] if 0 <= i < size else _UNKNOWN

        self.lookup = lookup

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def empty(cls) -> UserTable:
        """A table with no users: every lookup joins to (None, None)."""
        return cls(array("q"), array("B"), array("i"), (None,))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, str | None, int | None]]) -> UserTable:
        """Build from (user_id, gender, segment_id) tuples in any order; the last duplicate wins.

        Meant for tests and small tables; the CSV parser feeds :class:`UserTableBuilder` directly.
        """
        builder = UserTableBuilder()
        ids: list[int] = []
        codes = bytearray()
        segs: list[int] = []
        for user_id, gender, segment_id in rows:
            if not 0 <= user_id <= MAX_USER_ID:
                raise ValueError(f"user_id out of range 0..2^63-1: {user_id}")
            if segment_id is not None and not MIN_SEGMENT <= segment_id <= MAX_SEGMENT:
                raise ValueError(f"segment_id out of range {MIN_SEGMENT}..{MAX_SEGMENT}: {segment_id}")
            ids.append(user_id)
            codes.append(builder.gender_code(gender))
            segs.append(NULL_SEGMENT if segment_id is None else segment_id)
        builder.add(ids, bytes(codes), segs)
        return builder.build()

    # -- reads (hot path) ---------------------------------------------------------------------

    def _bisect_lookup(self, user_id: int) -> Row:
        """(gender, segment_id) of a user, or (None, None) if the user is unknown (LEFT JOIN)."""
        b = (user_id - self._base) >> self._shift
        if 0 <= b < self._nbuckets:
            d = self._dir
            hi = d[b + 1]
            ids = self._ids
            i = bisect_left(ids, user_id, d[b], hi)
            if i < hi and ids[i] == user_id:
                seg = self._segs[i]
                return self._genders[self._codes[i]], (None if seg == NULL_SEGMENT else seg)
        return _UNKNOWN

    def lookup_many(self, user_ids: Iterable[int]) -> dict[int, Row]:
        """Look up each distinct id once: a batch repeats users, so dedup saves most of the work."""
        result: dict[int, Row] = dict.fromkeys(user_ids, _UNKNOWN)
        lookup = self.lookup
        for uid in result:
            result[uid] = lookup(uid)
        return result

    def __len__(self) -> int:
        return self._n

    def __contains__(self, user_id: object) -> bool:
        if not isinstance(user_id, int):
            return False
        i = bisect_left(self._ids, user_id)
        return i < self._n and self._ids[i] == user_id

    def __iter__(self) -> Iterator[int]:
        """User ids in ascending order."""
        return iter(self._ids)

    def items(self) -> Iterator[tuple[int, Row]]:
        """(user_id, (gender, segment_id)) in ascending user id order; for debugging and tests."""
        genders = self._genders
        for uid, code, seg in zip(self._ids, self._codes, self._segs, strict=True):
            yield uid, (genders[code], None if seg == NULL_SEGMENT else seg)

    @property
    def genders(self) -> tuple[str, ...]:
        """Distinct non-null genders present in the reference data, in first-seen order."""
        return tuple(g for g in self._genders[1:] if g is not None)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what the table costs, give or take a few hundred bytes)."""
        arrays: tuple[array[int], ...] = (self._ids, self._codes, self._segs, self._dir)
        if self._dense is not None:
            arrays += (self._dense,)
        return sum(a.buffer_info()[1] * a.itemsize for a in arrays)

    def __repr__(self) -> str:
        return f"<UserTable users={self._n} genders={list(self.genders)!r} nbytes={self.nbytes}>"


class UserTableBuilder:
    """Collects rows in file order, chunk by chunk, and builds a sorted, de-duplicated UserTable.

    Why this shape: sorting 10 million ids with one ``sorted()`` call would need ~800 MB of Python
    objects. Instead rows are buffered ``run_rows`` at a time; each buffer is sorted (stably, so
    duplicates keep file order) and appended to compact arrays as a sorted run. ``build`` then merges
    the runs a block at a time with C-level sorts, keeping the last row of each duplicated id. Input that
    is already strictly ascending (the usual database export) skips both steps.
    """

    def __init__(self, run_rows: int = 1 << 15, merge_block_rows: int = 1 << 16) -> None:
        if run_rows < 1 or merge_block_rows < 1:
            raise ValueError("run_rows and merge_block_rows must be positive")
        self._run_rows = run_rows
        self._merge_block_rows = merge_block_rows
        self._ids: array[int] = array("q")
        self._codes: array[int] = array("B")
        self._segs: array[int] = array("i")
        self._runs: list[tuple[int, int]] = []
        self._ordered = True  # every run so far strictly ascending and after the previous run
        self._last = -1
        self._pending_ids: list[int] = []
        self._pending_codes = bytearray()
        self._pending_segs: list[int] = []
        self._genders: list[str | None] = [None]
        self._gender_codes: dict[str, int] = {}
        self.rows = 0
        self.duplicates = 0
        self._built = False

    @property
    def genders(self) -> tuple[str | None, ...]:
        """Genders by code so far; code 0 is None."""
        return tuple(self._genders)

    def gender_code(self, gender: str | None) -> int:
        """Code of a gender (0 for None), allocating one on first sight; ValueError past MAX_GENDERS."""
        if gender is None:
            return 0
        code = self._gender_codes.get(gender)
        if code is None:
            if len(self._genders) > MAX_GENDERS:
                raise ValueError(f"more than {MAX_GENDERS} distinct gender values")
            code = len(self._genders)
            self._genders.append(sys.intern(gender))
            self._gender_codes[gender] = code
        return code

    def add(self, ids: list[int], codes: bytes, segs: list[int]) -> None:
        """Append rows in file order: ids in 0..2^63-1, codes from gender_code, segs with NULL_SEGMENT.

        The lists are not copied when they can be adopted; callers must not reuse them.
        """
        if self._built:
            raise RuntimeError("builder already built")
        if not (len(ids) == len(codes) == len(segs)):
            raise ValueError("ids, codes and segs must have the same length")
        if not ids:
            return
        self.rows += len(ids)
        if self._pending_ids:
            self._pending_ids.extend(ids)
            self._pending_codes += codes
            self._pending_segs.extend(segs)
        else:
            self._pending_ids = ids
            self._pending_codes = bytearray(codes)
            self._pending_segs = segs
        if len(self._pending_ids) >= self._run_rows:
            self._flush_run()

    def _flush_run(self) -> None:
        ids, codes, segs = self._pending_ids, self._pending_codes, self._pending_segs
        if not ids:
            return
        self._pending_ids, self._pending_codes, self._pending_segs = [], bytearray(), []
        start = len(self._ids)
        if all(map(lt, ids, islice(ids, 1, None))):
            first, last = ids[0], ids[-1]
            self._ids += array("q", ids)
            self._codes.frombytes(codes)
            self._segs += array("i", segs)
        else:
            # Stable sort of positions: duplicates stay in file order, so "last wins" survives.
            perm = sorted(range(len(ids)), key=ids.__getitem__)
            first, last = ids[perm[0]], ids[perm[-1]]
            self._ids += array("q", list(map(ids.__getitem__, perm)))
            self._codes.frombytes(bytes(map(codes.__getitem__, perm)))
            self._segs += array("i", list(map(segs.__getitem__, perm)))
            self._ordered = False
        if first <= self._last:
            self._ordered = False
        self._last = last
        self._runs.append((start, len(self._ids)))

    def build(self) -> UserTable:
        """Produce the table; the builder cannot be used afterwards."""
        if self._built:
            raise RuntimeError("builder already built")
        self._flush_run()
        self._built = True
        genders = tuple(self._genders)
        if self._ordered:
            ids, codes, segs = self._ids, self._codes, self._segs
        else:
            ids, codes, segs = self._merge_runs()
        self._ids, self._codes, self._segs = array("q"), array("B"), array("i")
        self._runs = []
        table = UserTable(ids, codes, segs, genders)
        release_free_memory()
        return table

    def _merge_runs(self) -> tuple[array[int], array[int], array[int]]:
        """Merge the sorted runs block by block, dropping all but the last row of each duplicated id.

        Each round takes, from every run, the ids up to a threshold (the smallest "end of next block"
        over the runs), so every id <= threshold is in this round and equal ids never straddle two
        rounds. The concatenation is in file order; a stable sort of it is a merge that keeps
        duplicates in file order, and timsort merges pre-sorted runs in near-linear time.
        """
        src_ids, src_codes, src_segs = self._ids, self._codes, self._segs
        out_ids: array[int] = array("q")
        out_codes: array[int] = array("B")
        out_segs: array[int] = array("i")
        runs = [list(r) for r in self._runs]
        while runs:
            per_run = max(1, self._merge_block_rows // len(runs))
            threshold = min(src_ids[min(pos + per_run, end) - 1] for pos, end in runs)
            keys: list[int] = []
            codes = bytearray()
            segs: list[int] = []
            for run in runs:
                pos, end = run
                cut = bisect_right(src_ids, threshold, pos, end)
                if cut > pos:
                    keys += src_ids[pos:cut].tolist()
                    codes += src_codes[pos:cut]
                    segs += src_segs[pos:cut].tolist()
                    run[0] = cut
            runs = [run for run in runs if run[0] < run[1]]
            perm = sorted(range(len(keys)), key=keys.__getitem__)
            merged = list(map(keys.__getitem__, perm))
            if not all(map(lt, merged, islice(merged, 1, None))):
                # keep an element when the next one differs: the last of each run of equal ids
                keep = list(map(ne, merged, islice(merged, 1, None)))
                keep.append(True)
                before = len(perm)
                perm = list(compress(perm, keep))
                merged = list(compress(merged, keep))
                self.duplicates += before - len(perm)
            out_ids += array("q", merged)
            out_codes.frombytes(bytes(map(codes.__getitem__, perm)))
            out_segs += array("i", list(map(segs.__getitem__, perm)))
        return out_ids, out_codes, out_segs


_malloc_trim = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _malloc_trim = _libc.malloc_trim
        _malloc_trim.argtypes = [ctypes.c_size_t]
        _malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim with
        _malloc_trim = None


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS after a load (glibc only; a no-op elsewhere).

    A load churns through hundreds of MB of short-lived Python objects; glibc keeps those pages
    mapped, which would show up as a permanent RSS increase on every reload.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)
