"""The raw-record shim (clickagg.raw_records) against a real broker: same records, aborts honoured."""

from __future__ import annotations

import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from clickagg.kafka_util import ensure_topics, transactional_reader
from clickagg.stack.layout import StackLayout


async def _drain(consumer: AIOKafkaConsumer, tp: TopicPartition, want: int) -> list[Any]:
    got: list[Any] = []
    for _ in range(50):
        batches = await consumer.getmany(tp, timeout_ms=200)
        got.extend(batches.get(tp, []))
        if len(got) >= want:
            break
    return got


async def test_raw_records_equal_consumer_records_and_skip_aborted_transactions(stack: StackLayout) -> None:
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, {topic: 1})
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, transactional_id=f"{topic}-tx")
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(5):
                await producer.send(
                    topic, f"v{i}".encode(), key=f"k{i}".encode(), partition=0, timestamp_ms=1000 + i
                )
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"after", partition=0, timestamp_ms=2000)
    finally:
        await producer.stop()

    plain = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, isolation_level="read_committed")
    raw = transactional_reader(stack.kafka_bootstrap, f"{topic}-g", 1 << 20, raw=True)
    for consumer in (plain, raw):
        await consumer.start()
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
    try:
        want = await _drain(plain, tp, 6)
        got = await _drain(raw, tp, 6)
    finally:
        await plain.stop()
        await raw.stop()

    assert type(want[0]).__name__ == "ConsumerRecord" and type(got[0]).__name__ != "ConsumerRecord"
    fields = ("offset", "timestamp", "key", "value")
    assert [tuple(getattr(r, f) for f in fields) for r in got] == [
        tuple(getattr(r, f) for f in fields) for r in want
    ]
    assert [r.value for r in got] == [b"v0", b"v1", b"v2", b"v3", b"v4", b"after"]  # no b"aborted"
    assert [r.timestamp for r in got] == [1000, 1001, 1002, 1003, 1004, 2000]
