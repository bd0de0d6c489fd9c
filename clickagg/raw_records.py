"""Raw Kafka records for the hot path: aiokafka's decoded records without ConsumerRecord copies.

Why: for every record aiokafka's fetcher copies the decoded record (already a C object with
`offset`, `timestamp`, `key`, `value`, `headers`) into a new 11-field ConsumerRecord, measuring key
and value sizes and copying headers on the way; on the benchmark that copy was ~12 % of the worker.
A consumer built with `value_deserializer=RAW` gets the decoded records themselves. Everything else
(batching, read_committed filtering of aborted transactions, control batches, positions) is aiokafka's
own code, untouched: only the last per-record step is skipped.

Raw records have no `topic`/`partition`; the caller knows them from the batch's TopicPartition.
This relies on aiokafka's fetcher internals (`PartitionRecords._consumer_record`), so the version is
pinned below 0.15 and tests/integration checks the shim against a real broker.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer import fetcher


def RAW(value: bytes) -> bytes:  # noqa: N802 - a marker, compared by identity
    """Marks a consumer whose records come raw (if aiokafka ever calls it, it changes nothing)."""
    return value


def _as_is(tp: Any, record: Any) -> Any:
    return record


class _PartitionRecords(fetcher.PartitionRecords):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._value_deserializer is RAW:
            self._consumer_record = _as_is


def install() -> None:
    """Idempotent; consumers without the RAW marker are unaffected."""
    if fetcher.PartitionRecords is not _PartitionRecords:
        fetcher.PartitionRecords = _PartitionRecords
