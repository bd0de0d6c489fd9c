"""Dead letters: the original record's bytes with a reason, made to fit the dead-letter topic.

Why fitting: a record that fits the events topic may not fit the dead-letter topic once headers
are added (observed: a 1,048,500-byte invalid record's copy exceeded the broker's 1 MB limit, the
send failed and the record was lost). A dead letter is never dropped for its size: when it does not
fit, its value (and, if it must, its key) is cut to fit and the headers say so, with the original
size and the SHA-256 of the original bytes, so the record can still be found and identified.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

Headers = list[tuple[str, bytes]]

# Kafka's per-record and per-batch framing (varints, attributes, CRC, batch header: ~80 bytes), with
# a wide margin; a header costs its key and value plus a few varint bytes.
RECORD_OVERHEAD = 1024
HEADER_OVERHEAD = 8
MAX_KEPT_KEY = 1024  # a key is cut to this only when the value alone cannot make room


class DeadLetter(NamedTuple):
    value: bytes | None
    key: bytes | None
    headers: Headers


def source_headers(reason: str, topic: str, partition: int, offset: int, timestamp: int | None) -> Headers:
    """Where a dead letter came from and why; the value stays the original bytes."""
    return [
        ("reason", reason.encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
        ("source.timestamp", str(timestamp).encode()),
    ]


def size_of(value: bytes | None, key: bytes | None, headers: Headers) -> int:
    head = sum(len(k) + len(v) + HEADER_OVERHEAD for k, v in headers)
    return RECORD_OVERHEAD + len(value or b"") + len(key or b"") + head


def fit(value: bytes | None, key: bytes | None, headers: Headers, limit: int) -> DeadLetter:
    """The dead letter as sent: unchanged when it fits `limit` bytes, else cut as the module says."""
    if size_of(value, key, headers) <= limit:
        return DeadLetter(value, key, headers)
    if key is not None and len(key) > MAX_KEPT_KEY:
        headers = headers + _cut_headers("key", key)
        key = key[:MAX_KEPT_KEY]
    if value is not None and size_of(value, key, headers) > limit:
        headers = headers + _cut_headers("value", value)
        room = limit - size_of(b"", key, headers)
        if room < 0:
            raise ValueError(f"dead-letter limit of {limit} bytes is too small for a record's headers")
        value = value[:room]
    if size_of(value, key, headers) > limit:
        raise ValueError(f"dead-letter limit of {limit} bytes is too small for a record's headers")
    return DeadLetter(value, key, headers)


def _cut_headers(part: str, original: bytes) -> Headers:
    return [
        (f"truncated.{part}", b"true"),
        (f"original.{part}.size", str(len(original)).encode()),
        (f"original.{part}.sha256", hashlib.sha256(original).hexdigest().encode()),
    ]
