"""Readiness and the state-change log, decided by clickagg.health with an injected clock."""

from __future__ import annotations

from clickagg.health import LOG_EVERY_S, RECOVERED_S, STALL_S, Health


def test_an_outage_logs_one_line_then_one_every_30s_then_back() -> None:
    h = Health()
    lines = [h.bad("elasticsearch", "refused", now=t) for t in range(0, 95)]
    assert [x for x in lines if x] == [
        "elasticsearch: refused",
        "elasticsearch: still failing after 30s: refused",
        "elasticsearch: still failing after 60s: refused",
        "elasticsearch: still failing after 90s: refused",
    ]
    assert LOG_EVERY_S == 30
    ok, reasons = h.readiness(now=95)
    assert not ok and reasons == {"elasticsearch": "refused (for 95s)"}
    assert h.good("elasticsearch", now=96) == "elasticsearch: back after 96s"
    assert h.good("elasticsearch", now=97) is None
    assert h.readiness(now=97) == (True, {})


def test_a_stage_is_not_ready_until_it_runs_and_while_it_restarts() -> None:
    h = Health()
    h.expect("stage1")
    assert h.readiness(now=0) == (False, {"stage1": "not running"})
    h.stage_running("stage1", now=1)
    h.progressed("stage1", now=1)
    assert h.readiness(now=2) == (True, {})
    assert h.stage_failed("stage1", "KafkaError: boom", now=3) == "stage1: KafkaError: boom"
    assert h.readiness(now=4)[1] == {"stage1": "KafkaError: boom (for 1s)"}  # the cause, while down
    h.stage_running("stage1", now=5)  # restarted: still not ready until it has run a while
    assert h.progressed("stage1", now=6) is None
    assert h.readiness(now=6)[1] == {"stage1": "restarted after: KafkaError: boom (for 3s)"}
    assert h.progressed("stage1", now=5 + RECOVERED_S) == f"stage1: back after {2 + RECOVERED_S:.0f}s"
    assert h.readiness(now=5 + RECOVERED_S) == (True, {})


def test_no_progress_with_input_waiting_is_stuck_but_idle_is_not() -> None:
    h = Health()
    h.stage_running("stage2", now=0)
    h.progressed("stage2", now=0)
    assert h.readiness(now=STALL_S + 5) == (True, {})  # nothing waiting: idle, fine
    h.input_waiting("stage2", 1200)
    ok, reasons = h.readiness(now=STALL_S + 5)
    assert not ok and reasons == {"stage2": f"no progress for {STALL_S + 5:.0f}s with 1200 records waiting"}
    h.progressed("stage2", now=STALL_S + 6)
    assert h.readiness(now=STALL_S + 7) == (True, {})
