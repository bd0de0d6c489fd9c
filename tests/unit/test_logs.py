"""LOG_FORMAT text|json on one handler; Faust's chatter and a new group's coordinator line only when debugging."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from clickagg import logs
from clickagg.log_quiet import QuietLibraries


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


def line(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_faust_start_up_chatter_only_when_debugging(root_level: None) -> None:
    quiet = QuietLibraries(clock=lambda: 0.0)
    logging.getLogger().setLevel(logging.INFO)
    assert not quiet.filter(line("faust.worker", logging.INFO, "[^--Monitor]: Starting..."))
    assert not quiet.filter(line("mode.services", logging.INFO, "[^Worker]: Ready"))
    assert quiet.filter(line("faust.worker", logging.WARNING, "something Faust warns about"))
    assert quiet.filter(line("clickagg.app.worker", logging.INFO, "ready: live page http://x/dashboard"))
    assert quiet.filter(line("mode.redirect", logging.INFO, "printed by the process"))  # never swallowed
    logging.getLogger().setLevel(logging.DEBUG)
    assert quiet.filter(line("faust.worker", logging.INFO, "[^--Monitor]: Starting..."))


def test_a_new_groups_coordinator_line_is_held_only_while_starting(root_level: None) -> None:
    now = [0.0]
    quiet = QuietLibraries(clock=lambda: now[0], startup_s=60)
    logging.getLogger().setLevel(logging.INFO)
    msg = "Group Coordinator Request failed: %s"
    err = "[Error 15] CoordinatorNotAvailableError"
    assert not quiet.filter(line("aiokafka.consumer.group_coordinator", logging.ERROR, msg, err))
    now[0] = 61.0  # after start-up the same line is news (rate-limited like the others)
    assert quiet.filter(line("aiokafka.consumer.group_coordinator", logging.ERROR, msg, err))


def test_json_lines_are_ecs_documents() -> None:
    out = io.StringIO()
    handler = logs.handler("json", stream=out)
    record = line("clickagg.health", logging.WARNING, "kafka: unreachable (%s)", "refused")
    handler.handle(record)
    doc = json.loads(out.getvalue())
    assert doc["message"] == "kafka: unreachable (refused)"
    assert doc["log.level"] == "warning" and doc["log"]["logger"] == "clickagg.health"
    assert "ecs.version" in doc and "@timestamp" in doc


def test_text_lines_keep_the_familiar_format() -> None:
    out = io.StringIO()
    logs.handler("text", stream=out).handle(line("clickagg.x", logging.INFO, "hello %s", "there"))
    assert out.getvalue().endswith("[INFO] hello there\n") and out.getvalue().startswith("[")


def test_setup_puts_one_handler_on_the_root_and_quiets_client_libraries(root_level: None) -> None:
    logs.setup("INFO", "json")
    root = logging.getLogger()
    assert len(root.handlers) == 1 and root.level == logging.INFO
    assert any(isinstance(f, QuietLibraries) for f in root.handlers[0].filters)
    assert logging.getLogger("elastic_transport").level == logging.WARNING
