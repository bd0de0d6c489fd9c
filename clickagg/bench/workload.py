"""The benchmark's data: users, Zipf-popular articles, events, and their true counts.

The truth is computed here with a plain dict while generating, deliberately without clickagg's
core, so the benchmark's `exact` flag is an independent check.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate

import orjson

GENDERS = ("female", "male", "other")


@dataclass
class BenchData:
    users: int
    articles: int
    segments: int
    truth: dict[tuple[int, str | None, int | None, int], list[int]] = field(default_factory=dict)
    events: int = 0


def write_users(path: str, n_users: int, segments: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    rows = [(GENDERS[rng.randrange(3)], rng.randrange(1, segments + 1)) for _ in range(n_users)]
    with open(path, "w") as fh:
        fh.writelines(f"{uid},{g},{s}\n" for uid, (g, s) in enumerate(rows, start=1))
    return rows


def generate(
    data: BenchData,
    user_rows: list[tuple[str, int]],
    n: int,
    start_ms: int,
    span_ms: int,
    partitions: int,
    window_ms: int,
    click_ratio: float = 0.05,
    seed: int = 1,
) -> Iterator[tuple[int, int, bytes]]:
    """Yield (partition, timestamp_ms, value) round-robin over partitions, recording the truth."""
    rng = random.Random(seed)
    cum = list(accumulate(1 / (rank**1.1) for rank in range(1, data.articles + 1)))
    n_users = len(user_rows)
    truth = data.truth
    block = 100_000
    for base in range(0, n, block):
        count = min(block, n - base)
        articles = rng.choices(range(1, data.articles + 1), cum_weights=cum, k=count)
        for j in range(count):
            i = base + j
            user = rng.randrange(1, n_users + n_users // 50)  # ~2 % unknown users
            click = rng.random() < click_ratio
            ts = start_ms + (i * span_ms) // n
            article = articles[j]
            gender, segment = user_rows[user - 1] if user <= n_users else (None, None)
            key = (ts - ts % window_ms, gender, segment, article)
            counts = truth.get(key)
            if counts is None:
                counts = truth[key] = [0, 0]
            counts[1 if click else 0] += 1
            value = orjson.dumps(
                {"article_id": article, "user_id": user, "action": "click" if click else "impression"}
            )
            yield i % partitions, ts, value
    data.events += n
