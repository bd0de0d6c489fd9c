"""Group keys, their owner partition and their Elasticsearch document id: all deterministic."""

from __future__ import annotations

import hashlib
import zlib

import orjson

# (window_start_ms, gender, segment_id, article_id)
GroupKey = tuple[int, str | None, int | None, int]


def key_bytes(key: GroupKey) -> bytes:
    return orjson.dumps(key)


def owner_partition(key: GroupKey, partitions: int) -> int:
    """The one partials partition that owns a key; stable across processes and restarts."""
    return zlib.crc32(key_bytes(key)) % partitions


def doc_id(key: GroupKey) -> str:
    """Readable prefix (minute and article) plus a hash of the whole key, so ids never collide."""
    digest = hashlib.blake2b(key_bytes(key), digest_size=10).hexdigest()
    return f"{key[0]}-{key[3]}-{digest}"
