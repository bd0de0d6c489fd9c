"""Stage 1's transaction with fakes for aiokafka: a failed send aborts it, nothing is committed.

(The real-stack tests in tests/integration/test_hostile_inputs.py show the same end to end; this one
pins the mechanism: aiokafka itself would commit a transaction whose batches failed.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from clickagg.agents.partial_counts import PartialCounter, SourceTask
from clickagg.config import Settings
from clickagg.core.watermarks import SourceClock
from clickagg.kafka_util import SendLimits


@dataclass
class Rec:
    value: bytes | None
    key: bytes | None
    offset: int
    timestamp: int


@dataclass
class FakeProducer:
    fail_on: bytes | None = None
    sent: list[tuple[str, Any]] = field(default_factory=list)
    outcome: str = ""
    offsets: list[Any] = field(default_factory=list)

    def transaction(self) -> FakeProducer:
        return self

    async def __aenter__(self) -> FakeProducer:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.outcome = "aborted" if exc_type else "committed"

    async def send(self, topic: str, value: bytes | None, **kw: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_on is not None and value == self.fail_on:
            future.set_exception(MessageSizeTooLargeError())
        else:
            future.set_result(None)
        self.sent.append((topic, value))
        return future

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        self.offsets.append(offsets)


class FakeConsumer:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}


def counter() -> PartialCounter:
    limits = SendLimits.from_topics(partials_limit=1_048_588, dlq_limit=1_048_588)
    c = PartialCounter(
        Settings(app_id="t"), reference=None, partials_partitions=2, source_partitions=1, limits=limits
    )
    c.consumer = FakeConsumer()  # type: ignore[assignment]
    return c


def test_a_failed_dead_letter_send_aborts_the_transaction_and_commits_no_offset() -> None:
    producer = FakeProducer(fail_on=b"bad")
    task = SourceTask(TopicPartition("events", 0), producer, position=10, clock=SourceClock())  # type: ignore[arg-type]
    rejected = [(Rec(b"bad", None, 10, 1), "invalid_json"), (Rec(b"also bad", None, 11, 1), "invalid_json")]

    async def run() -> None:
        with pytest.raises(MessageSizeTooLargeError):
            await counter()._transact(task, {(0, None, None, 1): [1, 0]}, rejected, 12, 5)

    asyncio.run(run())
    assert producer.outcome == "aborted" and producer.offsets == [] and task.position == 10
    assert [t for t, _ in producer.sent].count("user-activity-dlq") == 2  # every send was made and awaited


def test_a_good_transaction_sends_envelopes_and_dead_letters_then_commits_the_offset() -> None:
    producer = FakeProducer()
    task = SourceTask(TopicPartition("events", 0), producer, position=10, clock=SourceClock())  # type: ignore[arg-type]

    async def run() -> None:
        await counter()._transact(
            task, {(0, None, None, 1): [1, 0]}, [(Rec(b"x", b"k", 10, 1), "invalid_json")], 12, 5
        )

    asyncio.run(run())
    assert producer.outcome == "committed" and task.position == 12
    assert producer.offsets == [{TopicPartition("events", 0): (12, "5")}]
    assert sorted(t for t, _ in producer.sent) == ["t-partials", "t-partials", "user-activity-dlq"]
