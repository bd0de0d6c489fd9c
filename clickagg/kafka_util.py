"""Small Kafka helpers shared by the stages, the producer command and the tests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from clickagg import raw_records

log = logging.getLogger(__name__)


async def ensure_topics(bootstrap: str, topics: dict[str, int]) -> dict[str, int]:
    """Create missing topics with the given partition counts; return the actual counts of all."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # list_topics, not describe: a metadata request for a missing topic may auto-create it
        # with the broker's default partition count.
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, n, 1) for t, n in topics.items() if t not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        for _ in range(50):
            counts = await partition_counts(admin, list(topics))
            if len(counts) == len(topics):
                return counts
            await asyncio.sleep(0.2)
        raise RuntimeError(f"topics not visible after creation: {sorted(set(topics) - set(counts))}")
    finally:
        await admin.close()


async def partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    described: Any = await admin.describe_topics(topics)
    counts = {}
    for item in described:
        if item.get("error_code", 0) == 0 and item.get("partitions"):
            counts[item["topic"]] = len(item["partitions"])
    return counts


def transactional_reader(
    bootstrap: str, group_id: str, fetch_bytes: int, raw: bool = False
) -> AIOKafkaConsumer:
    """A group consumer for the stages: manual commits, read_committed, earliest when new.

    raw: records are aiokafka's decoded records, not ConsumerRecords (see clickagg.raw_records).
    """
    if raw:
        raw_records.install()
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=fetch_bytes,
        value_deserializer=raw_records.RAW if raw else None,
    )


def record_lag(consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int], stage: str) -> None:
    """consumer_lag{stage,partition}: records between our position and the partition's end."""
    from clickagg.metrics import METRICS

    for tp, position in positions.items():
        end = consumer.highwater(tp)
        if end is not None:
            METRICS.set(
                "consumer_lag",
                max(0, end - position),
                {"stage": stage, "topic": tp.topic, "partition": tp.partition},
            )


async def committed_with_metadata(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, tuple[int, str]]:
    """Committed offsets and their metadata strings (where the stages keep their watermarks)."""
    coordinator: Any = consumer._coordinator  # aiokafka exposes metadata only here
    result = await coordinator.fetch_committed_offsets(partitions)
    return {
        tp: (om.offset, om.metadata or "") for tp, om in result.items() if om is not None and om.offset >= 0
    }
