"""The partials envelope: the one message type between stage 1 and stage 2, and its size limit.

An envelope carries one source partition's partial counts for one partials partition, grouped by
window, and that source's watermark after the batch (`wm`) and the number of source partitions it
knows of (`n`):

    {"v": 1, "src": 3, "n": 4, "wm": 1700000040000,
     "windows": [[1700000000000, [[gender, segment_id, article_id, impressions, clicks], ...]], ...]}

`v` is the format's version. During a rolling upgrade a newer stage 1 may write a form an older
stage 2 cannot read; that stage 2 must stop on it with one line (UnsupportedEnvelope: the stage
fails, /readyz says why, nothing is counted wrong) rather than misread it. Envelopes without `v`
are the same shape, written before the field existed. The flat `rows` form of versions before 0.1
is still read, because a partials topic keeps what it holds until stage 2 has consumed it.

Why a size limit: a Kafka record may not exceed the topic's `max.message.bytes` (1 MB by default).
A backlog batch with 60,000 distinct articles made one envelope of 2 MB; its send failed inside the
transaction and everything after it was lost. So encode() splits a partition's rows over as many
envelopes as needed, each at most `max_bytes`. Only the last one carries the new watermark: stage 2
applies an envelope's rows before its watermark, so a watermark may never travel ahead of rows of
the same batch that are still to come; the others carry NO_WATERMARK, which moves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from clickagg.core.watermarks import NO_WATERMARK

# Comfortably under Kafka's default 1 MB record limit (the partials topic is created with a larger
# one, but a topic created by an older version or by hand has the default).
MAX_ENVELOPE_BYTES = 512 * 1024
VERSION = 1  # what encode() writes and the newest decode() reads


class UnsupportedEnvelope(ValueError):
    """An envelope of a newer format than this worker reads (a rolling upgrade half done)."""


Row = tuple[Any, ...]  # (gender, segment_id, article_id, impressions, clicks)
Windows = dict[int, list[Row]]  # window start -> rows


def encode(src: int, n: int, wm: int, windows: Windows, max_bytes: int = MAX_ENVELOPE_BYTES) -> list[bytes]:
    """One or more envelopes holding every row of `windows`, each at most max_bytes (see module doc).

    Always at least one envelope: an empty one still carries the watermark to its partition.
    """
    whole = orjson.dumps({"v": VERSION, "src": src, "n": n, "wm": wm, "windows": list(windows.items())})
    if len(whole) <= max_bytes:
        return [whole]
    flat = [(start, row) for start, rows in windows.items() for row in rows]
    # Rows are of similar size: cut into equal parts with some headroom, then halve any part that
    # is still too big (a few long genders). A single row never approaches max_bytes.
    parts = -(-len(whole) * 5 // (4 * max_bytes))
    size = max(1, -(-len(flat) // parts))
    # No rows (only empty windows, or a max_bytes below an empty envelope): still one envelope.
    chunks = [flat[i : i + size] for i in range(0, len(flat), size)] or [[]]
    out: list[bytes] = []
    for i, chunk in enumerate(chunks):
        mark = wm if i == len(chunks) - 1 else NO_WATERMARK
        out.extend(_fit(src, n, mark, chunk, max_bytes))
    return out


def _fit(src: int, n: int, wm: int, flat: Sequence[tuple[int, Row]], max_bytes: int) -> list[bytes]:
    grouped: Windows = {}
    for start, row in flat:
        grouped.setdefault(start, []).append(row)
    data = orjson.dumps({"v": VERSION, "src": src, "n": n, "wm": wm, "windows": list(grouped.items())})
    if len(data) <= max_bytes or len(flat) <= 1:
        return [data]
    half = len(flat) // 2
    return _fit(src, n, NO_WATERMARK, flat[:half], max_bytes) + _fit(src, n, wm, flat[half:], max_bytes)


def decode(value: bytes) -> dict[str, Any]:
    """The envelope as a dict; the flat `rows` form written by versions before 0.1 is regrouped.

    Raises UnsupportedEnvelope for a version newer than VERSION (see the module doc).
    """
    envelope: dict[str, Any] = orjson.loads(value)
    version = envelope.get("v", 1)
    if version != VERSION:
        raise UnsupportedEnvelope(
            f"a partials envelope of format version {version!r} (this worker reads {VERSION}): "
            "run the same clickagg version on every worker of this APP_ID"
        )
    if "windows" not in envelope:
        groups: dict[int, list[list[Any]]] = {}
        for start, *rest in envelope.get("rows", ()):
            groups.setdefault(start, []).append(rest)
        envelope["windows"] = list(groups.items())
    return envelope
