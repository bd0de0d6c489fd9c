"""Window math, watermarks and stage 2's idempotent state, driven with explicit offsets and clocks."""

from __future__ import annotations

from clickagg.core.watermarks import NO_WATERMARK, MinWatermark, SourceClock
from clickagg.core.windows import closes_at, live_from, window_start
from clickagg.tables.window_state import LateRow, WindowState

MIN = 60_000


def test_window_start_aligns_to_utc_minutes_and_handles_big_ms() -> None:
    assert window_start(1_700_000_059_999, MIN) == 1_700_000_040_000
    assert window_start(2**62 + 5, MIN) % MIN == 0
    assert closes_at(0, MIN, 5000) == 65_000
    # A record is late when its window closed under the watermark seen before it.
    assert not closes_at(window_start(59_999, MIN), MIN, 5000) <= 64_999
    assert closes_at(window_start(59_999, MIN), MIN, 5000) <= 65_000


def test_source_clock_idle_advance_uses_injected_clock() -> None:
    clock = SourceClock()
    clock.observe(1000, now_ms=10_000)
    assert not clock.advance_if_idle(now_ms=12_000, idle_ms=3000, caught_up=True)
    assert not clock.advance_if_idle(now_ms=20_000, idle_ms=3000, caught_up=False)
    assert clock.advance_if_idle(now_ms=20_000, idle_ms=3000, caught_up=True)
    assert clock.watermark == 17_000


def test_min_watermark_waits_for_every_source() -> None:
    wm = MinWatermark()
    wm.update(0, 100, sources=2)
    assert wm.current() == NO_WATERMARK
    wm.update(1, 50, sources=2)
    assert wm.current() == 50
    wm.update(1, 40, sources=2)  # never goes back
    assert wm.current() == 50
    assert MinWatermark.restore(wm.snapshot()).current() == 50


def envelope(src: int, wm: int, rows: list[list[object]], n: int = 1) -> dict[str, object]:
    """Stage 1's envelope from flat [start, gender, segment, article, imp, clk] rows."""
    windows: dict[object, list[list[object]]] = {}
    for row in rows:
        windows.setdefault(row[0], []).append(row[1:])
    return {"src": src, "n": n, "wm": wm, "windows": list(windows.items())}


def test_apply_is_idempotent_and_versions_follow_offsets() -> None:
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=0)
    state.apply(10, envelope(0, 5, [[0, "f", 1, 7, 2, 1]]))
    state.apply(11, envelope(0, 6, [[0, "f", 1, 7, 3, 0], [0, None, None, 8, 1, 0]]))
    state.apply(11, envelope(0, 6, [[0, "f", 1, 7, 3, 0]]))  # a replay of offset 11: skipped
    writes = {w.doc_id: w for w in state.take_writes()}
    assert len(writes) == 2
    by_article = {w.source["article_id"]: w for w in writes.values()}
    assert (by_article[7].source["impression"], by_article[7].source["click"], by_article[7].version) == (
        5,
        1,
        12,
    )
    assert by_article[8].source["gender"] is None and by_article[8].version == 12
    assert state.take_writes() == []


def test_window_closes_when_min_watermark_passes_end_plus_lateness() -> None:
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=1000)
    state.apply(0, envelope(0, 30_000, [[0, "f", 1, 7, 1, 0]], n=2))
    state.apply(1, envelope(1, 90_000, [[60_000, "m", 2, 7, 1, 0]], n=2))
    assert all(not w.final for w in state.take_writes())
    state.apply(2, envelope(0, 61_000, []))
    assert state.would_close()
    state.close()
    finals = [w for w in state.take_writes() if w.final]
    assert [(w.source["time"], w.version) for w in finals] == [("1970-01-01T00:00:00.000Z", 3)]
    assert list(state.open_keys()) == [(60_000, "m", 2, 7)]


def test_restored_state_skips_what_the_document_already_holds() -> None:
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=0)
    state.load((0, "f", 1, 7), impressions=4, clicks=1, version=21)
    state.apply(20, envelope(0, 1, [[0, "f", 1, 7, 2, 0]]))  # already in the document
    state.apply(21, envelope(0, 2, [[0, "f", 1, 7, 1, 1]]))
    (write,) = state.take_writes()
    assert (write.source["impression"], write.source["click"], write.version) == (5, 2, 22)


def test_historical_windows_get_only_final_writes_and_hold_back_the_commit() -> None:
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=0)
    state.apply(5, envelope(0, 10, [[0, "f", 1, 7, 1, 0]]))
    state.apply(6, envelope(0, 20, [[60_000, "f", 1, 7, 1, 0]]))
    # "Now" is 150 s: window [0, 60 s) closed more than a window ago, so it is historical and gets
    # no partial write; window [60 s, 120 s) closed 30 s ago: still live (what dashboards watch).
    live = live_from(150_000, MIN, 0)
    assert live == 30_000
    writes = state.take_writes(live)
    assert [w.window_start for w in writes] == [60_000]
    assert state.commit_floor(position=7) == 5  # the first window's change is still unwritten
    state.apply(7, envelope(0, 60_000, []))  # watermark closes window 0: its final is written
    state.close()
    (final,) = state.take_writes(live)
    assert final.final and final.window_start == 0 and final.version == 8
    assert state.commit_floor(position=8) == 8


def test_a_row_for_a_final_window_is_late_unless_it_is_a_replay() -> None:
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=0)
    state.apply(0, envelope(0, 70_000, [[0, "f", 1, 7, 1, 0]]))
    state.close()
    assert [w.final for w in state.take_writes()] == [True]
    state.apply(1, envelope(1, 70_000, [[0, "m", 2, 8, 3, 1]]))  # e.g. a source not known before
    assert state.take_late() == [LateRow(1, 1, 0, ("m", 2, 8, 3, 1))] and state.late_rows == 1
    assert state.take_late() == []
    replayed = WindowState(partition=0, window_ms=MIN, lateness_ms=0, closed_below=70_000, replay_below=5)
    replayed.apply(4, envelope(0, 70_000, [[0, "f", 1, 7, 1, 0]]))  # below the recorded position
    assert replayed.take_late() == [] and replayed.late_rows == 0


def test_a_window_waits_for_every_known_source_partition() -> None:
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=0)
    state.apply(0, envelope(0, 70_000, [[0, "f", 1, 7, 1, 0]], n=2))
    state.apply(1, envelope(1, 70_000, [], n=2))
    state.know_sources(3)  # the topic grew: partition 2 has not reported yet
    assert not state.would_close()
    state.close()
    assert list(state.open_keys()) == [(0, "f", 1, 7)]
    state.apply(2, envelope(2, 65_000, [[0, None, None, 7, 1, 0]], n=3))
    assert state.would_close()
    state.close()
    assert sorted((w.source["gender"] or "", w.final) for w in state.take_writes()) == [
        ("", True),
        ("f", True),
    ]


def test_a_final_write_is_never_below_a_restored_documents_version() -> None:
    state = WindowState(partition=0, window_ms=MIN, lateness_ms=0)
    state.load((0, "f", 1, 7), impressions=4, clicks=1, version=21)
    state.watermark.update(0, 70_000, 1)
    state.close()
    (final,) = state.take_writes()
    assert final.final and final.version == 21
