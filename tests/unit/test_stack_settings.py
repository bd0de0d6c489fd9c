"""The stack's CLICKAGG_* variables through the settings loader; port flags must match the stack dir."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from clickagg.stack import agree, procs
from clickagg.stack.layout import StackError, StackLayout


def test_flags_win_and_empty_variables_are_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLICKAGG_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("CLICKAGG_KAFKA_PORT", "19092")
    monkeypatch.setenv("CLICKAGG_ES_PORT", "")
    monkeypatch.setenv("CLICKAGG_STACK_TIMEOUT", "42")
    layout = StackLayout.from_env(es_port=19200)
    assert (layout.state_dir, layout.kafka_port, layout.es_port) == (tmp_path, 19092, 19200)
    assert layout.health_timeout_s == 42.0
    assert StackLayout.from_env(kafka_port=29092).kafka_port == 29092


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CLICKAGG_KAFKA_PORT", "abc", r"^CLICKAGG_KAFKA_PORT='abc' is not a valid int$"),
        ("CLICKAGG_ES_SECURE_PORT", "70000", r"^CLICKAGG_ES_SECURE_PORT=70000 is not a port number$"),
        ("CLICKAGG_STACK_TIMEOUT", "0", r"^CLICKAGG_STACK_TIMEOUT must be > 0 seconds, got 0.0$"),
    ],
)
def test_a_bad_variable_is_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(StackError, match=message):
        StackLayout.from_env()


def layout(state: Path, es_port: int) -> StackLayout:
    return StackLayout(cache_dir=state / "cache", state_dir=state, kafka_port=1, es_port=es_port)


def test_a_port_flag_for_another_stack_is_refused(tmp_path: Path) -> None:
    """A real process that looks like this stack dir's Elasticsearch (its tag and port on the command line)."""
    running = layout(tmp_path, 19200)
    running.service_dir("elasticsearch").mkdir(parents=True)
    tag = f"-Dclickagg.stack={running.service_dir('elasticsearch')}"
    code = "import time; time.sleep(60)"
    pid = procs.spawn(
        [sys.executable, "-c", code, tag, "-Dclickagg.es.http_port=19200"],
        running.pid_file("elasticsearch"),
        tmp_path / "es.log",
    )
    try:
        deadline = time.monotonic() + 10
        while agree.running_port(running, "elasticsearch") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agree.running_port(running, "elasticsearch") == 19200
        agree.check(running)  # the same port: fine
        with pytest.raises(
            StackError, match=r"runs elasticsearch on port 19200, not 9999: use --es-port 19200"
        ):
            agree.check(layout(tmp_path, 9999))
    finally:
        procs.stop(pid, timeout_s=5)
    agree.check(layout(tmp_path, 9999))  # nothing runs there any more: any port is fine
