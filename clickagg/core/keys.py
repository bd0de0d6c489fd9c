"""Group keys, their owner partition and their Elasticsearch document id: all deterministic."""

from __future__ import annotations

import hashlib

import orjson

# (window_start_ms, gender, segment_id, article_id)
GroupKey = tuple[int, str | None, int | None, int]


def key_bytes(key: GroupKey) -> bytes:
    return orjson.dumps(key)


def owner_partition(key: GroupKey, partitions: int) -> int:
    """The one partials partition that owns a key; stable across processes and restarts.

    Integer arithmetic on (window, segment, article) only: cheap, deterministic (no salted str
    hashing), and still exactly one owner per key (gender just does not take part in the choice).
    """
    start, _, segment, article = key
    mixed = (article * 0x9E3779B1) ^ ((segment if segment is not None else -1) * 0x85EBCA77) ^ (start // 1000)
    return mixed % partitions


def doc_id(key: GroupKey) -> str:
    """Readable prefix (minute and article) plus a hash of the whole key, so ids never collide."""
    digest = hashlib.blake2b(key_bytes(key), digest_size=10).hexdigest()
    return f"{key[0]}-{key[3]}-{digest}"
