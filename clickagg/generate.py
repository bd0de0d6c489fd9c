"""Synthetic events and reference users, deterministic from a seed (demo, tests and benchmark)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson

GENDERS = ("female", "male", "other")


def users_csv(n_users: int, segments: int = 40, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = [f"{uid},{rng.choice(GENDERS)},{rng.randrange(1, segments + 1)}" for uid in range(1, n_users + 1)]
    return "\n".join(lines) + "\n"


def events(
    n: int,
    start_ms: int,
    span_ms: int,
    n_users: int,
    n_articles: int,
    click_ratio: float = 0.05,
    unknown_user_ratio: float = 0.02,
    seed: int = 11,
) -> Iterator[tuple[int, bytes]]:
    """(timestamp_ms, value) pairs, timestamps spread uniformly over [start, start+span)."""
    rng = random.Random(seed)
    weights = [1 / (rank**1.1) for rank in range(1, n_articles + 1)]  # Zipf(1.1) popularity
    articles = rng.choices(range(1, n_articles + 1), weights=weights, k=n)
    for i in range(n):
        user = (
            rng.randrange(n_users + 1, n_users * 2)
            if rng.random() < unknown_user_ratio
            else rng.randrange(1, n_users + 1)
        )
        action = "click" if rng.random() < click_ratio else "impression"
        ts = start_ms + (i * span_ms) // n
        yield ts, orjson.dumps({"article_id": articles[i], "user_id": user, "action": action})
