"""Exact hourly rollups (pure): the hourly state is fed exactly the rows the minutes count.

Checked against the minutes themselves and, independently, against plain sums over the rows that
were not dead-lettered: whatever the order of envelopes, closes and replays after a restart, every
hour's final counts equal the sum of its minutes' final counts, and no dead-lettered row is in either.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clickagg.core.watermarks import MinWatermark
from clickagg.tables.window_state import HOUR_MS, Hours, WindowState, Write, hour_envelope

MIN = 60_000
LATENESS = 10_000
BASE = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def states() -> tuple[WindowState, WindowState]:
    return WindowState(0, MIN, LATENESS), WindowState(0, HOUR_MS, LATENESS, replay_below=None)


def feed(minutes: WindowState, hours: WindowState, offset: int, env: dict[str, Any]) -> None:
    summed: Hours = {}
    minutes.apply(offset, env, summed)
    hours.apply(offset, hour_envelope(env, summed))


def finals(writes: list[Write], resolution: int) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for w in writes:
        if w.final:
            s = w.source
            key = (
                w.window_start - w.window_start % resolution,
                s["gender"],
                s["segment_id"],
                s["article_id"],
            )
            out[key + ("i",)] += s["impression"]
            out[key + ("c",)] += s["click"]
    return +out


def test_two_minutes_of_one_hour_in_one_envelope_both_count() -> None:
    minutes, hours = states()
    env = {
        "src": 0,
        "n": 1,
        "wm": BASE + 5 * MIN,
        "windows": [[BASE, [["f", 1, 7, 2, 1]]], [BASE + MIN, [["f", 1, 7, 3, 0]]]],
    }
    feed(minutes, hours, 0, env)
    assert hours.windows[BASE] == {("f", 1, 7): [5, 1, 1]}


def test_rows_dead_lettered_by_the_minutes_never_reach_the_hour() -> None:
    minutes, hours = states()
    feed(
        minutes, hours, 0, {"src": 0, "n": 1, "wm": BASE + 3 * MIN, "windows": [[BASE, [["f", 1, 7, 1, 0]]]]}
    )
    minutes.close()
    hours.close()
    late = {"src": 0, "n": 1, "wm": BASE + 3 * MIN, "windows": [[BASE, [["f", 1, 7, 9, 9]]]]}
    feed(minutes, hours, 1, late)
    assert [r.reason for r in minutes.take_late()] == ["late"]
    assert hours.windows[BASE] == {("f", 1, 7): [1, 0, 1]}
    minutes.expire_before = BASE + HOUR_MS
    feed(
        minutes,
        hours,
        2,
        {"src": 0, "n": 1, "wm": BASE + 3 * MIN, "windows": [[BASE + 30 * MIN, [["m", 2, 8, 4, 4]]]]},
    )
    assert [r.reason for r in minutes.take_late()] == ["expired"]
    assert hours.windows[BASE] == {("f", 1, 7): [1, 0, 1]}


rows = st.lists(
    st.tuples(
        st.sampled_from(["female", "male", None]),
        st.sampled_from([1, 2, None]),
        st.integers(1, 4),
        st.integers(0, 5),
        st.integers(0, 2),
    ),  # fmt: skip
    min_size=1,
    max_size=4,
    unique_by=lambda r: r[:3],  # stage 1 sends one row per key and window in an envelope
)
step = st.tuples(st.integers(0, 150), rows, st.integers(0, 3), st.booleans())  # minute, rows, wm step, close


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=60), st.integers(0, 60), st.booleans())
def test_hour_finals_equal_the_sum_of_their_minutes_with_a_restart(
    steps: list[Any], crash_at: int, between: bool
) -> None:
    wm = BASE
    envelopes, closes = [], []
    for minute, rs, advance, close in steps:
        wm += advance * MIN
        envelopes.append(
            {"src": 0, "n": 1, "wm": wm, "windows": [[BASE + minute * MIN, [list(r) for r in rs]]]}
        )
        closes.append(close)
    envelopes.append({"src": 0, "n": 1, "wm": wm + 4 * HOUR_MS, "windows": []})  # closes everything
    closes.append(True)
    crash_at = min(crash_at, len(envelopes) - 2) if len(envelopes) > 1 else -1

    # Independent expectation: the rows the minutes did not dead-letter, in the run without a crash.
    minutes, hours = states()
    counted: Counter[tuple[Any, ...]] = Counter()
    for offset, env in enumerate(envelopes):
        before = minutes.late_rows
        feed(minutes, hours, offset, env)
        if minutes.late_rows == before:
            for start, rs in env["windows"]:
                for g, seg, a, i, c in rs:
                    counted[(start - start % HOUR_MS, g, seg, a, "i")] += i
                    counted[(start - start % HOUR_MS, g, seg, a, "c")] += c
        if closes[offset]:
            minutes.close()
            hours.close()

    # The same stream through stage 2's protocol: write then commit at each flush; kill -9 after
    # envelope crash_at; restart from the last commit (marks, closed_below, position as the
    # replay boundary, open documents from the index) and replay from there.
    minutes, hours = states()
    written_m: list[Write] = []
    written_h: list[Write] = []
    commit: tuple[int, int, Any] = (0, 0, None)
    offset = 0
    crashed = False
    while offset < len(envelopes):
        feed(minutes, hours, offset, envelopes[offset])
        if closes[offset]:
            minutes.close()
            hours.close()
            # As the writer does with a backlog (every window historical): finals only, except
            # that a flush that dead-letters rows writes every change first.
            everything = minutes.has_late()
            live = None if everything else float("inf")
            written_m += minutes.take_writes(live)
            written_h += hours.take_writes(live)
            minutes.take_late()
            position = offset + 1
            floor = min(minutes.commit_floor(position), hours.commit_floor(position))
            if not (
                offset == crash_at and between and not crashed
            ):  # killed after the writes, before the commit
                commit = (floor, position, (minutes.watermark.snapshot(), minutes.closed_below))
        if offset == crash_at and not crashed:
            # Replayed with the same closes as before (so the dead-letter decisions, and the
            # independent expectation above, stay the same).
            crashed = True
            minutes, hours = restart(commit, written_m, written_h)
            offset = commit[0]
            continue
        offset += 1
    assert finals(latest(written_m), HOUR_MS) == +counted
    assert finals(latest(written_h), HOUR_MS) == +counted


def latest(writes: list[Write]) -> list[Write]:
    """What the index holds: per document the write with the highest external version (409 otherwise)."""
    best: dict[str, Write] = {}
    for w in writes:
        if w.doc_id not in best or w.version > best[w.doc_id].version:
            best[w.doc_id] = w
    return list(best.values())


def restart(
    commit: tuple[int, int, Any], wm_: list[Write], wh: list[Write]
) -> tuple[WindowState, WindowState]:
    """The pair of states stage 2 builds after a crash: the committed marks and closed_below, the
    committed position as replay boundary (the replay starts at the commit floor, which unwritten open
    hours may hold back), and the open documents read back from the index."""
    _, position, marks = commit
    m2, h2 = states()
    m2.replay_below = position
    if marks is not None:
        snapshot, closed_below = marks
        m2.watermark, m2.closed_below = MinWatermark.restore(snapshot), closed_below
        h2.watermark, h2.closed_below = MinWatermark.restore(snapshot), closed_below
    for state, writes in ((m2, wm_), (h2, wh)):
        for w in latest(writes):
            # as stage 2 loads them: open documents, and every document of a window still open
            # at the committed point (its final may have been written after the commit)
            if not w.final or w.window_start + state.window_ms + state.lateness_ms > state.closed_below:
                s = w.source
                key = (w.window_start, s["gender"], s["segment_id"], s["article_id"])
                state.load(key, s["impression"], s["click"], w.version)
    return m2, h2
