"""What each stage stores in the metadata of its committed offsets, and how it reads it back.

Kafka keeps a string with every committed offset; both stages use it so that the state they need
to resume exactly is committed atomically with the position it belongs to.

- Stage 1 (per source partition): the partition's watermark after the batch, as a decimal string.
- Stage 2 (per partials partition): `{"v": 2, "wm": {...}, "closed": C, "pos": P}`: the watermark
  map (one mark per source partition, `n` = how many there are), C, the close watermark whose final
  documents are written (windows closing at or before it), and P, the position both were taken at.
  The offset committed may be behind P (open windows hold it back); envelopes between the two are
  replays, whose rows for already-final windows are skipped silently, while a row at or after P for
  a final window is truly late and must be dead-lettered. C is stored because the writer closes
  windows only after proving it knows every source partition, so C may lag the map's minimum.
  Versions before 2 stored the bare map (and closed windows at its minimum).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

from clickagg.core.watermarks import NO_WATERMARK, MinWatermark

_DECIMAL = re.compile(r"-?[0-9]+")


def encode_source(watermark: int) -> str:
    return str(watermark)


def decode_source(meta: str) -> int:
    """The stored watermark, or NO_WATERMARK for an empty or foreign string."""
    text = meta.strip()
    # ASCII digits only: str.isdigit() also accepts "²" (int() rejects it) and other scripts' digits,
    # and lstrip("-") let "--5" through; a foreign string must never fail the partition's assignment.
    if len(text) < 21 and _DECIMAL.fullmatch(text):
        return int(text)
    return NO_WATERMARK


class WriterMeta(NamedTuple):
    watermark: MinWatermark
    closed_below: int
    position: int | None  # None: written by a version that did not record it


def encode_writer(watermark: MinWatermark, closed_below: int, position: int) -> str:
    return orjson.dumps(
        {"v": 2, "wm": watermark.snapshot(), "closed": closed_below, "pos": position}
    ).decode()


def decode_writer(meta: str) -> WriterMeta:
    if not meta:
        return WriterMeta(MinWatermark(), NO_WATERMARK, None)
    data = orjson.loads(meta)
    if data.get("v") == 2:
        return WriterMeta(MinWatermark.restore(data["wm"]), int(data["closed"]), int(data["pos"]))
    watermark = MinWatermark.restore(data)
    return WriterMeta(watermark, watermark.current(), None)
