"""`clickagg produce`: send events from a JSONL file or the synthetic generator.

A file is checked before anything is sent: a line that is not a valid event (by the worker's own
rules, clickagg.core.events) would only become a dead letter, so the command refuses the file and says
how many lines and which first, unless --send-invalid asks for exactly that (to try the dead-letter
path). Kafka unreachable or refusing is one line, like the worker's preflight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path

from aiokafka.errors import KafkaError

from clickagg import clients
from clickagg.aio import quietly
from clickagg.config import ConfigError, Settings
from clickagg.core.events import parse_event
from clickagg.generate import events
from clickagg.preflight import held_kafka_lines, kafka_problem


class ProduceError(ConfigError):
    """Nothing was sent (bad input file, Kafka unreachable); the message says what to fix."""


async def send(
    settings: Settings,
    topic: str,
    records: Iterable[tuple[int | None, bytes]],
    partitions: int = 0,
    rate: float = 0.0,
) -> int:
    """Send (timestamp_ms, value) records; round-robin over partitions when partitions > 0.

    rate > 0: at most that many events a second (a live demo), else as fast as Kafka takes them.
    """
    producer = clients.producer(settings, linger_ms=20, max_batch_size=512 * 1024, acks="all")
    with held_kafka_lines() as messages:
        try:
            await producer.start()
        except Exception as exc:
            await quietly(producer.stop())  # else "Unclosed AIOKafkaProducer" at exit
            line, _ = kafka_problem(settings, [*messages, f"{type(exc).__name__}: {exc}"])
            raise ProduceError(line) from exc
    count = 0
    started = time.monotonic()
    try:
        pending = []
        for ts, value in records:
            partition = count % partitions if partitions else None
            pending.append(await producer.send(topic, value, timestamp_ms=ts, partition=partition))
            count += 1
            ahead = count / rate - (time.monotonic() - started) if rate > 0 else 0.0
            if len(pending) >= 10000 or ahead > 0.05:
                for fut in pending:
                    await fut
                pending.clear()
                if ahead > 0.05:
                    await asyncio.sleep(ahead)
        for fut in pending:
            await fut
    except KafkaError as exc:  # e.g. the broker went away, or the topic refuses the records
        raise ProduceError(
            f"Kafka at {settings.kafka_bootstrap_servers} failed while sending to {topic} "
            f"(about {count} events sent): {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        await quietly(producer.stop())
    return count


def check_jsonl(path: Path, time_field: str = "", send_invalid: bool = False) -> int:
    """The number of events in the file; ProduceError if it is missing or has lines that are not events.

    send_invalid: only that the file is there and readable (its invalid lines are wanted).
    """
    if not path.exists():
        raise ProduceError(f"--file {path}: no such file")
    if path.is_dir():
        raise ProduceError(f"--file {path} is a directory, not a JSONL file")
    if send_invalid:
        return sum(1 for _ in _lines(path))
    total, bad, first = 0, 0, ""
    for number, line in _lines(path):
        total += 1
        verdict = parse_event(line, time_field or None)
        if isinstance(verdict, str):
            bad += 1
            first = first or f"line {number}: {verdict}"
    if bad:
        raise ProduceError(
            f"--file {path}: {bad} of {total} lines are not valid events (first: {first}); fix them, "
            "or add --send-invalid to send them as they are (the worker dead-letters them)"
        )
    if not total:
        raise ProduceError(f"--file {path} holds no events (one JSON object per line)")
    return total


def _lines(path: Path) -> Iterable[tuple[int, bytes]]:
    try:
        with path.open("rb") as fh:
            for number, line in enumerate(fh, 1):
                line = line.rstrip(b"\r\n")
                if line:
                    yield number, line
    except OSError as exc:
        raise ProduceError(f"--file {path}: cannot read it ({exc.strerror})") from None


def jsonl_records(path: Path) -> Iterable[tuple[int | None, bytes]]:
    """Each non-empty line is one record value, sent as-is (stamped by the producer when sent)."""
    return ((None, line) for _, line in _lines(path))


def synthetic_records(
    n: int, minutes: float, users: int, articles: int, seed: int, live: bool = False
) -> Iterable[tuple[int | None, bytes]]:
    """Events whose timestamps span the last `minutes` minutes, ending now; live: stamped when sent."""
    span = int(minutes * 60_000)
    start = int(time.time() * 1000) - span
    return ((None if live else ts, v) for ts, v in events(n, start, span, users, articles, seed=seed))
