"""Small Kafka helpers shared by the stages, the producer command and the tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from clickagg import clients, raw_records
from clickagg.config import Settings
from clickagg.core.dead_letters import RECORD_OVERHEAD
from clickagg.core.envelope import MAX_ENVELOPE_BYTES

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8 * 1024 * 1024  # stage 1's producer requests; dead letters are cut to fit


Kafka = Settings | str  # settings (security included), or a plaintext bootstrap list (tools, tests)


def _settings(kafka: Kafka) -> Settings:
    return kafka if isinstance(kafka, Settings) else Settings(kafka_bootstrap_servers=kafka)


async def ensure_topics(
    kafka: Kafka, topics: dict[str, int], configs: dict[str, dict[str, str]] | None = None
) -> dict[str, int]:
    """Create missing topics with the given partition counts (and topic configs, for new topics
    only); return the actual counts of all."""
    admin = clients.admin(_settings(kafka))
    await admin.start()
    try:
        # list_topics, not describe: a metadata request for a missing topic may auto-create it
        # with the broker's default partition count.
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(t, n, 1, topic_configs=(configs or {}).get(t, {}))
            for t, n in topics.items()
            if t not in existing
        ]
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


@dataclass(frozen=True)
class SendLimits:
    """What stage 1's producer may send, derived from the topics' own limits (see from_topics)."""

    envelope_bytes: int
    dead_letter_bytes: int
    batch_bytes: int
    request_bytes: int = MAX_REQUEST_BYTES

    @classmethod
    def from_topics(cls, partials_limit: int, dlq_limit: int) -> SendLimits:
        """A record batch may not exceed its topic's max.message.bytes: several small records are
        batched up to batch_bytes, a bigger one travels alone, so batch_bytes fits both topics and
        each record fits its own topic (and one request)."""
        dead_letter = min(dlq_limit, MAX_REQUEST_BYTES)
        return cls(
            envelope_bytes=min(MAX_ENVELOPE_BYTES, partials_limit - RECORD_OVERHEAD),
            dead_letter_bytes=dead_letter,
            batch_bytes=min(1024 * 1024, partials_limit, dead_letter) - RECORD_OVERHEAD,
        )


async def max_message_bytes(kafka: Kafka, topics: list[str]) -> dict[str, int]:
    """Each topic's effective `max.message.bytes`: the largest record batch its broker accepts."""
    admin = clients.admin(_settings(kafka))
    await admin.start()
    try:
        responses: Any = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, {"max.message.bytes": None}) for t in topics]
        )
        limits = {}
        for response in responses:
            for error_code, _msg, _type, name, entries in response.resources:
                if error_code:
                    raise RuntimeError(f"cannot read the configuration of topic {name} (error {error_code})")
                for entry in entries:
                    if entry[0] == "max.message.bytes":
                        limits[name] = int(entry[1])
        return limits
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
    kafka: Kafka, group_id: str, fetch_bytes: int, raw: bool = False, metadata_max_age_ms: int = 300_000
) -> AIOKafkaConsumer:
    """A group consumer for the stages: manual commits, read_committed, earliest when new.

    raw: records are aiokafka's decoded records, not ConsumerRecords (see clickagg.raw_records).
    """
    if raw:
        raw_records.install()
    consumer: AIOKafkaConsumer = clients.consumer(
        _settings(kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=fetch_bytes,
        value_deserializer=raw_records.RAW if raw else None,
        metadata_max_age_ms=metadata_max_age_ms,
    )
    return consumer


def record_lag(consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int], stage: str) -> int:
    """consumer_lag{stage,partition}: records between our position and the partition's end.

    Returns the total: input is waiting when it is above 0 (readiness uses it to tell stuck from idle).
    """
    from clickagg.metrics import METRICS

    total = 0
    for tp, position in positions.items():
        end = consumer.highwater(tp)
        if end is not None:
            lag = max(0, end - position)
            total += lag
            METRICS.set("consumer_lag", lag, {"stage": stage, "topic": tp.topic, "partition": tp.partition})
    return total


async def resume_at(consumer: AIOKafkaConsumer, tp: TopicPartition, committed: int | None) -> int:
    """Both stages, on assignment: continue at the committed offset, or from the beginning (a new
    group reads everything: earliest, never latest, or records would be skipped). Returns the position."""
    if committed is None:
        await consumer.seek_to_beginning(tp)
        return int(await consumer.position(tp))
    consumer.seek(tp, committed)
    return committed


async def committed_with_metadata(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, tuple[int, str]]:
    """Committed offsets and their metadata strings (where the stages keep their watermarks)."""
    coordinator: Any = consumer._coordinator  # aiokafka exposes metadata only here
    result = await coordinator.fetch_committed_offsets(partitions)
    return {
        tp: (om.offset, om.metadata or "") for tp, om in result.items() if om is not None and om.offset >= 0
    }


class StageListener(ConsumerRebalanceListener):
    """Both stages' rebalance listener: (re)assignment under the stage's lock, failures kept.

    aiokafka only logs an exception raised by a listener, which would leave the partitions owned by
    nobody while the stage runs on; the error is handed to the stage (`failed`), whose loop raises it
    so that the stage restarts with fresh clients.
    """

    def __init__(
        self,
        lock: asyncio.Lock,
        assign: Callable[[list[TopicPartition]], Awaitable[None]],
        revoke: Callable[[list[TopicPartition]], Awaitable[None]],
        failed: Callable[[Exception], None],
    ) -> None:
        self.lock, self.assign, self.revoke, self.failed = lock, assign, revoke, failed

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._under_lock(self.revoke, list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._under_lock(self.assign, list(assigned))

    async def _under_lock(
        self, step: Callable[[list[TopicPartition]], Awaitable[None]], partitions: list[TopicPartition]
    ) -> None:
        try:
            async with self.lock:  # waits for the batch in flight
                await step(partitions)
        except Exception as exc:
            self.failed(exc)
