"""When stage 2 refreshes: live writes within a second, backlog writes rarely, idle at once."""

from __future__ import annotations

from clickagg.es.refresh_policy import RefreshPolicy


def test_nothing_written_nothing_to_refresh() -> None:
    policy = RefreshPolicy()
    assert not policy.due(now=100.0, idle=False)
    assert not policy.due(now=100.0, idle=True)


def test_live_writes_refresh_at_most_once_per_live_interval() -> None:
    policy = RefreshPolicy(live_interval_s=1.0, backlog_interval_s=10.0)
    policy.wrote(live=True)
    assert policy.due(now=100.0, idle=False)  # first refresh: immediately
    policy.refreshed(100.0)
    policy.wrote(live=True)
    assert not policy.due(now=100.5, idle=False)
    assert policy.due(now=101.0, idle=False)


def test_backlog_writes_wait_for_the_backlog_interval_unless_idle() -> None:
    policy = RefreshPolicy(live_interval_s=1.0, backlog_interval_s=10.0)
    policy.refreshed(100.0)
    policy.wrote(live=False)
    assert not policy.due(now=105.0, idle=False)
    assert policy.due(now=105.0, idle=True)  # caught up: show the end of the backlog now
    assert policy.due(now=110.0, idle=False)


def test_a_live_write_among_backlog_writes_makes_it_live() -> None:
    policy = RefreshPolicy(live_interval_s=1.0, backlog_interval_s=10.0)
    policy.refreshed(100.0)
    policy.wrote(live=False)
    policy.wrote(live=True)
    assert policy.due(now=101.0, idle=False)
    policy.refreshed(101.0)
    assert not policy.pending and not policy.due(now=200.0, idle=True)


def test_final_documents_of_a_live_window_are_refreshed_at_once() -> None:
    policy = RefreshPolicy(live_interval_s=1.0, backlog_interval_s=10.0)
    policy.wrote(live=True)
    policy.refreshed(100.0)
    policy.wrote(live=True, live_final=True)
    assert policy.due(now=100.1, idle=False)  # not a second later: the minute is complete now
    policy.refreshed(100.1)
    policy.wrote(live=True)
    assert not policy.due(now=100.5, idle=False)  # back to the live interval
